"""A real nginx on 127.0.0.1 serving HTTPS with HTTP/2, for tests that need
a production HTTP/2 server (multiplexing, ALPN) rather than a Python one.

    with Nginx() as nginx:            # or the ``nginx`` fixture of test modules
        nginx.url("/f/3")             # "https://localhost:PORT/f/3"
        nginx.ca_file                 # the CA (trustme) that signed its certificate
        nginx.requests()              # [(connection, protocol, status, uri), ...]

- One master and one worker, in the foreground (``daemon off``), its
  configuration, files, logs and temporary directories in a directory of its
  own, removed at stop().
- The certificate is issued by a throw-away trustme CA for ``localhost`` and
  127.0.0.1; a client verifies it only if it trusts ``ca_file``.
- Ready means listening: nginx logs to its stderr (level notice), and the
  master says "start worker processes" after it has opened its listening
  sockets; start() reads stderr up to that line (no polling, no sleep).  A
  port taken in between by someone else makes nginx exit: start() tries
  again with other ports, a few times.
- The access log names each request's connection (``$connection``), so a
  test can see how many connections nginx served.
- Files: ``/f/0`` ... ``/f/{files - 1}`` ("file N\\n"), ``/big`` (about 40 KiB of
  text, sent gzip-compressed to a client that asks), ``/caf%C3%A9 menu.txt``.

``binary()`` is None when nginx is not installed (``apt-get install
nginx-light``): tests skip, saying so.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading

FILES = 64
BIG = b"curlmulti nginx test\n" * 2000
NON_ASCII_NAME = "caf\u00e9 menu.txt"


def binary():
    """The nginx executable, or None."""
    for path in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if path and os.access(path, os.X_OK):
            return path
    return None


def _free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Nginx(object):
    def __init__(self, files=FILES):
        import trustme

        self.exe = binary()
        if self.exe is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        self.dir = tempfile.mkdtemp(prefix="nginx-test-")
        www = os.path.join(self.dir, "www")
        os.makedirs(os.path.join(www, "f"))
        for i in range(files):
            with open(os.path.join(www, "f", str(i)), "w") as f:
                f.write("file %d\n" % i)
        with open(os.path.join(www, "big"), "wb") as f:
            f.write(BIG)
        with open(os.path.join(www, NON_ASCII_NAME), "w", encoding="utf-8") as f:
            f.write("non-ASCII name\n")
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        self.ca_file = os.path.join(self.dir, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self.cert_file = os.path.join(self.dir, "server.pem")
        self.key_file = os.path.join(self.dir, "server.key")
        cert.private_key_pem.write_to_path(self.key_file)
        with open(self.cert_file, "wb") as f:
            for blob in cert.cert_chain_pems:
                f.write(blob.bytes())
        self.log = os.path.join(self.dir, "access.log")
        self.port = None
        self.proc = None
        self.stderr_lines = []
        self._reader = None

    def url(self, path="/", host="localhost"):
        return "https://%s:%d%s" % (host, self.port, path)

    def _config(self):
        info = subprocess.run([self.exe, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
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
error_log stderr notice;
events { worker_connections 256; }
http {
    log_format conns '$connection $server_protocol $status $request_uri';
    access_log %(log)s conns;
    default_type text/plain;
    gzip on;
    gzip_types text/plain;
    gzip_min_length 100;
    http2_max_concurrent_streams 128;
    %(temps)s
    server {
        listen 127.0.0.1:%(port)d ssl http2;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        root %(dir)s/www;
    }
}
""" % {"user": "user root root;" if os.geteuid() == 0 else "", "dir": self.dir, "log": self.log,
       "temps": "\n    ".join(temps), "port": self.port, "cert": self.cert_file, "key": self.key_file}

    def start(self, attempts=5):
        for _ in range(attempts):
            self.port = _free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(self._config())
            proc = subprocess.Popen([self.exe, "-p", self.dir, "-c", conf, "-e", "stderr"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, universal_newlines=True)
            lines = []
            ready = False
            for line in proc.stderr:
                lines.append(line.rstrip("\n"))
                if "start worker processes" in line:
                    ready = True
                    break
            if ready:
                self.proc = proc
                self.stderr_lines = lines
                # Keep reading stderr so that nginx never blocks on a full pipe.
                self._reader = threading.Thread(target=self._drain, name="nginx-stderr", daemon=True)
                self._reader.start()
                return self
            proc.wait()
            proc.stderr.close()
            if not any("Address already in use" in line for line in lines):
                break
        self.close_dir()
        raise RuntimeError("nginx did not start (exit code %s):\n%s" % (proc.returncode, "\n".join(lines)))

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def requests(self):
        """(connection, protocol, status, uri) of every request logged so
        far; nginx writes a line when a request ends, before the last bytes
        of its response reach the client."""
        with open(self.log) as f:
            return [tuple(line.split(" ", 3)) for line in f.read().splitlines()]

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()  # nginx's fast shutdown: the master stops its worker
                proc.wait(60)
            if self._reader is not None:
                self._reader.join(60)
            proc.stderr.close()
        self.close_dir()

    def close_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
