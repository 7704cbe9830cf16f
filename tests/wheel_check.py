"""Checks an installed curlmulti binary wheel (scripts/wheels.sh, test stage).

Run by the venv's interpreter from outside the source tree, so that it
imports the installed package:

    python tests/wheel_check.py --cert CERT --key KEY --expect-curl 8.14 --work DIR

It checks that
  - curlmulti comes from the venv, and its extension from the wheel;
  - the extension loads the libcurl bundled in the wheel (curlmulti.libs/):
    ldd resolves libcurl there, and the process maps that file and no other
    libcurl;
  - version_info() reports the expected libcurl with HTTP/2, TLS, brotli,
    zstd, zlib and WebSockets;
and then runs transfers against an nginx it starts on 127.0.0.1 (TLS with
HTTP/2 on one port, cleartext HTTP/2 on another):
  - one HTTPS transfer with the easy interface (certificate verified, HTTP/2,
    gzip decoded);
  - 100 HTTP/2 transfers on one CurlMulti, multiplexed over ONE TLS
    connection: libcurl reports one connect and one connection id, and
    nginx's access log shows the 100 requests on one connection;
  - 20 cleartext HTTP/2 (prior knowledge) transfers multiplexed on one
    connection.

Not collected by pytest (its name does not start with test_); it needs
nginx and openssl, which scripts/wheels.sh provides.
"""
import argparse
import functools
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time

N_MULTIPLEXED = 100
N_PRIOR_KNOWLEDGE = 20


def say(msg):
    print("    " + msg, flush=True)


def fail(msg):
    sys.exit("wheel_check: FAILED: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def check_install(pycurl):
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    pkg = os.path.realpath(os.path.dirname(pycurl.__file__))
    check(pkg.startswith(site + os.sep), "curlmulti imported from %s, not from %s" % (pkg, site))
    ext = os.path.realpath(sys.modules["curlmulti._curl"].__file__)
    libs = os.path.join(site, "curlmulti.libs")
    check(os.path.isdir(libs), "the wheel installed no curlmulti.libs/ directory")
    say("curlmulti %s from %s" % (pycurl.__version__, pkg))
    say("extension %s" % os.path.basename(ext))
    say("bundled libraries: %s" % " ".join(sorted(os.listdir(libs))))

    # What the dynamic linker resolves for the extension, as a user would see it.
    out = subprocess.run(["ldd", ext], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True).stdout
    curl_lines = [line.strip() for line in out.splitlines() if "libcurl" in line]
    for line in out.splitlines():
        say("ldd: " + line.strip())
    check(len(curl_lines) == 1, "ldd shows %d libcurl lines:\n%s" % (len(curl_lines), out))
    m = re.match(r"(\S+) => (\S+)", curl_lines[0])
    check(m is not None, "ldd does not resolve libcurl: %s" % curl_lines[0])
    check(os.path.dirname(os.path.realpath(m.group(2))) == os.path.realpath(libs),
          "ldd resolves libcurl to %s, not into %s" % (m.group(2), libs))
    # What this process actually mapped: the bundled file, and no other libcurl.
    with open("/proc/self/maps") as f:
        mapped = {line.split()[-1] for line in f if "libcurl" in line.rsplit("/", 1)[-1]}
    check(len(mapped) == 1, "the process maps %d libcurl files: %s" % (len(mapped), sorted(mapped)))
    (path,) = mapped
    check(os.path.dirname(os.path.realpath(path)) == os.path.realpath(libs),
          "the process maps %s, not the bundled libcurl" % path)
    say("libcurl loaded from the wheel: %s" % path)


def check_version(pycurl, expect):
    info = pycurl.version_info()
    version, features, ssl, libz, protocols = info[1], info[4], info[5], info[7], info[8]
    say("version_info(): libcurl %s, %s, zlib %s" % (version, ssl, libz))
    say("protocols: %s" % " ".join(protocols))
    check(version == expect or version.startswith(expect + "."),
          "version_info() reports libcurl %s, expected %s" % (version, expect))
    check("libcurl/" + version in pycurl.version,
          "curlmulti.version does not name libcurl %s: %r" % (version, pycurl.version))
    wanted = {"HTTP2": pycurl.VERSION_HTTP2, "SSL": pycurl.VERSION_SSL, "BROTLI": pycurl.VERSION_BROTLI,
              "ZSTD": pycurl.VERSION_ZSTD, "LIBZ": pycurl.VERSION_LIBZ}
    missing = [name for name, bit in wanted.items() if not features & bit]
    check(not missing, "libcurl lacks the features %s" % missing)
    check(ssl.startswith("OpenSSL/"), "libcurl's TLS library is %r, not OpenSSL" % ssl)
    check("ws" in protocols and "wss" in protocols, "libcurl lacks WebSockets (ws, wss)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx(object):
    """nginx with one worker: HTTP/2 over TLS on one port, cleartext HTTP/2
    on another; the access log names each request's connection."""

    def __init__(self, work, cert, key):
        self.dir = os.path.abspath(work)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(os.path.join(self.dir, "www", "f"))
        for i in range(N_MULTIPLEXED):
            with open(os.path.join(self.dir, "www", "f", str(i)), "w") as f:
                f.write("file %d\n" % i)
        with open(os.path.join(self.dir, "www", "big"), "w") as f:
            f.write("curlmulti wheel check\n" * 2000)
        self.tls_port, self.h2c_port = free_port(), free_port()
        self.log = os.path.join(self.dir, "access.log")
        self.cert, self.key = cert, key
        self.proc = None

    def config(self):
        info = subprocess.run([self.binary(), "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True).stdout
        temps = ["client_body_temp_path %s/body;" % self.dir]
        for mod in ("proxy", "fastcgi", "uwsgi", "scgi"):
            if "--without-http_%s_module" % mod not in info:
                temps.append("%s_temp_path %s/%s;" % (mod, self.dir, mod))
        return """
%(user)s
daemon off;
master_process on;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 256; }
http {
    log_format conns '$connection $connection_requests $server_port $server_protocol $status $request_uri';
    access_log %(log)s conns;
    default_type text/plain;
    gzip on;
    gzip_types text/plain;
    gzip_min_length 100;
    http2_max_concurrent_streams 128;
    %(temps)s
    server {
        listen 127.0.0.1:%(tls)d ssl http2;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        root %(dir)s/www;
    }
    server {
        listen 127.0.0.1:%(h2c)d http2;
        root %(dir)s/www;
    }
}
""" % {"user": "user root root;" if os.geteuid() == 0 else "", "dir": self.dir, "log": self.log,
       "temps": "\n    ".join(temps), "tls": self.tls_port, "h2c": self.h2c_port,
       "cert": self.cert, "key": self.key}

    @staticmethod
    def binary():
        return shutil.which("nginx") or "/usr/sbin/nginx"

    def start(self):
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self.config())
        self.proc = subprocess.Popen([self.binary(), "-p", self.dir, "-c", conf, "-e",
                                      os.path.join(self.dir, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for port in (self.tls_port, self.h2c_port):
            # Wait until nginx listens (or exits): connect, retrying.
            while True:
                if self.proc.poll() is not None:
                    with open(os.path.join(self.dir, "error.log")) as f:
                        fail("nginx exited (%s):\n%s" % (self.proc.returncode, f.read()))
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                except OSError:
                    time.sleep(0.05)
        say("nginx on 127.0.0.1:%d (TLS, HTTP/2) and :%d (cleartext HTTP/2)" % (self.tls_port, self.h2c_port))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def requests(self, port):
        """(connection, path) of every request nginx logged on port."""
        with open(self.log) as f:
            rows = [line.split() for line in f]
        return [(r[0], r[5]) for r in rows if r[2] == str(port)]


def easy_transfer(pycurl, nginx, cert):
    buf = io.BytesIO()
    c = pycurl.Curl()
    c.setopt(pycurl.URL, "https://127.0.0.1:%d/big" % nginx.tls_port)
    c.setopt(pycurl.CAINFO, cert)
    c.setopt(pycurl.ACCEPT_ENCODING, "")
    c.setopt(pycurl.WRITEDATA, buf)
    c.perform()
    code, http_version = c.getinfo(pycurl.RESPONSE_CODE), c.getinfo(pycurl.INFO_HTTP_VERSION)
    c.close()
    check(code == 200, "GET /big: status %s" % code)
    check(http_version == pycurl.CURL_HTTP_VERSION_2_0, "GET /big: HTTP version %s, not 2" % http_version)
    check(buf.getvalue() == b"curlmulti wheel check\n" * 2000, "GET /big: wrong body (%d bytes)" % len(buf.getvalue()))
    say("easy: GET https://.../big: 200 over HTTP/2, certificate verified, gzip decoded")


def multiplexed(pycurl, nginx, scheme, port, n, cert=None):
    """n transfers on one CurlMulti; returns {connection ids}, total connects."""
    conn_ids = set()

    def write(c, buf, chunk):
        # CONN_ID while the transfer runs: once it is done, libcurl 8.14
        # reports -1 for a transfer whose connection other transfers still use.
        conn_ids.add(c.getinfo(pycurl.CONN_ID))
        buf.write(chunk)

    m = pycurl.CurlMulti()
    m.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
    handles = []
    for i in range(n):
        c = pycurl.Curl()
        buf = io.BytesIO()
        c.setopt(pycurl.URL, "%s://127.0.0.1:%d/f/%d" % (scheme, port, i))
        c.setopt(pycurl.WRITEFUNCTION, functools.partial(write, c, buf))
        # Wait for the first connection to say it multiplexes, rather than
        # opening another one.  No limit on connections per host: without
        # multiplexing, libcurl would open one per concurrent transfer.
        c.setopt(pycurl.PIPEWAIT, 1)
        if scheme == "https":
            c.setopt(pycurl.CAINFO, cert)
            c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
        else:
            c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
        m.add_handle(c)
        handles.append((c, buf))
    done, failed = 0, []
    running = 1
    while running:
        _, running = m.perform()
        while True:
            queued, ok, bad = m.info_read()
            done += len(ok)
            failed.extend(bad)
            if not queued:
                break
        if running:
            m.select(1.0)
    check(not failed, "%s: %d transfers failed, first: %s" % (scheme, len(failed), failed[:1]))
    check(done == n, "%s: %d of %d transfers reported done" % (scheme, done, n))
    connects = 0
    for i, (c, buf) in enumerate(handles):
        code = c.getinfo(pycurl.RESPONSE_CODE)
        check(code == 200, "%s /f/%d: status %s" % (scheme, i, code))
        check(buf.getvalue() == b"file %d\n" % i, "%s /f/%d: wrong body %r" % (scheme, i, buf.getvalue()[:40]))
        check(c.getinfo(pycurl.INFO_HTTP_VERSION) == pycurl.CURL_HTTP_VERSION_2_0, "%s /f/%d: not HTTP/2" % (scheme, i))
        connects += c.getinfo(pycurl.NUM_CONNECTS)
        m.remove_handle(c)
        c.close()
    m.close()
    return conn_ids, connects


def check_multiplexing(pycurl, nginx, cert):
    for scheme, port, n in (("https", nginx.tls_port, N_MULTIPLEXED), ("http", nginx.h2c_port, N_PRIOR_KNOWLEDGE)):
        conn_ids, connects = multiplexed(pycurl, nginx, scheme, port, n, cert)
        check(len(conn_ids) == 1, "%s: libcurl used %d connections: %s" % (scheme, len(conn_ids), sorted(conn_ids)))
        check(connects == 1, "%s: NUM_CONNECTS adds up to %d, not 1" % (scheme, connects))
        # The server's view: nginx writes its log line when a request ends,
        # before the response's last frame reaches us, so it is complete now.
        rows = [(conn, path) for conn, path in nginx.requests(port) if path.startswith("/f/")]
        paths = sorted(path for _, path in rows)
        check(paths == sorted("/f/%d" % i for i in range(n)),
              "%s: nginx logged %d requests, not the %d sent" % (scheme, len(rows), n))
        server_conns = {conn for conn, _ in rows}
        check(len(server_conns) == 1, "%s: nginx saw %d connections" % (scheme, len(server_conns)))
        say("multi: %d %s transfers over HTTP/2, all on one connection (libcurl: CONN_ID %s, NUM_CONNECTS %d; "
            "nginx: connection %s)" % (n, "TLS" if scheme == "https" else "cleartext prior-knowledge",
                                       conn_ids.pop(), connects, server_conns.pop()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--expect-curl", required=True, help="libcurl version, e.g. 8.14 or 8.14.1")
    ap.add_argument("--work", required=True, help="a directory for nginx (emptied)")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") not in (here, os.path.dirname(here))]
    import curlmulti as pycurl

    check_install(pycurl)
    check_version(pycurl, args.expect_curl)
    nginx = Nginx(args.work, os.path.abspath(args.cert), os.path.abspath(args.key))
    nginx.start()
    try:
        easy_transfer(pycurl, nginx, args.cert)
        check_multiplexing(pycurl, nginx, args.cert)
    finally:
        nginx.stop()
    print("wheel_check: ok", flush=True)


if __name__ == "__main__":
    main()
