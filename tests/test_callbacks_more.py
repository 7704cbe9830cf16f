"""The callbacks pycurl 7.49 added to the classic set: PREREQFUNCTION,
RESOLVER_START_FUNCTION, TRAILERFUNCTION, FNMATCH_FUNCTION (over a local
FTP server), HSTSREADFUNCTION/HSTSWRITEFUNCTION (over a local HTTPS server)
and SSH_KEYFUNCTION/SSH_HOSTKEYFUNCTION; each with a real transfer, its
return rules, and an exception reaching perform()'s caller as __cause__."""

import datetime
import http.server
import os
import socket
import ssl
import threading

import pytest

import curlmulti
from curlmulti import Curl, error

E = curlmulti
UTC = datetime.timezone.utc


class Boom(Exception):
    pass


def _raiser(exc):
    def callback(*args):
        raise exc
    return callback


def needs(name):
    return pytest.mark.skipif(not hasattr(E, name), reason="libcurl built against lacks " + name)


# -- servers --------------------------------------------------------------------

class TrailerServer:
    """Reads chunked requests (trailers included; one per connection) and
    answers each with 200; ``.raw`` holds each request as received."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d/" % self.sock.getsockname()[1]
        self.raw = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # shut down
                return
            with conn:
                conn.settimeout(10)
                data = b""
                try:
                    while True:
                        head, sep, body = data.partition(b"\r\n\r\n")
                        if sep and (body.startswith(b"0\r\n") or b"\r\n0\r\n" in body) \
                                and body.endswith(b"\r\n\r\n"):
                            break
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    self.raw.append(data)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                except OSError:
                    pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept() (Linux)
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def trailer_server():
    server = TrailerServer()
    yield server
    server.close()


class HstsServer:
    """HTTPS for the name ``hsts.test`` (a trustme CA in ``.ca_file``),
    answering every GET with 200 and a Strict-Transport-Security header."""

    HOST = "hsts.test"

    def __init__(self, tmp_path):
        import trustme
        ca = trustme.CA()
        self.ca_file = str(tmp_path / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(self.HOST).configure_cert(ctx)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(200)
                self.send_header("Strict-Transport-Security", "max-age=3600; includeSubDomains")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def setup(self, c, scheme="https"):
        c.setopt(c.URL, "%s://%s:%d/" % (scheme, self.HOST, self.port))
        c.setopt(c.RESOLVE, ["%s:%d:127.0.0.1" % (self.HOST, self.port)])
        c.setopt(c.CAINFO, self.ca_file)
        c.setopt(c.HSTS_CTRL, E.CURLHSTS_ENABLE)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def hsts_server(tmp_path):
    server = HstsServer(tmp_path)
    yield server
    server.close()


class FtpServer:
    """pyftpdlib, anonymous and read-only, over a directory of small files."""

    FILES = {"a1.txt": b"first\n", "a2.txt": b"second\n", "b.txt": b"other\n", "c.log": b"log\n"}

    def __init__(self, tmp_path):
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer
        for name, data in self.FILES.items():
            (tmp_path / name).write_bytes(data)
        authorizer = DummyAuthorizer()
        authorizer.add_anonymous(str(tmp_path))
        handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
        self.server = FTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.address[1]
        self.url = "ftp://127.0.0.1:%d/" % self.port
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stopping.is_set():  # pyftpdlib's own way to serve from a thread
                self.server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        finally:
            self.server.close_all()

    def close(self):
        self.stopping.set()
        self.thread.join(5)


@pytest.fixture
def ftp_server(tmp_path):
    pytest.importorskip("pyftpdlib")
    if "ftp" not in E.version_info()[8]:
        pytest.skip("libcurl built without FTP")
    server = FtpServer(tmp_path)
    yield server
    server.close()


# -- PREREQFUNCTION ----------------------------------------------------------------

@needs("PREREQFUNCTION")
@pytest.mark.parametrize("result, ok", [(0, True), (1, False)])
def test_prereq_callback(httpbin, result, ok):
    calls = []

    def prereq(primary_ip, local_ip, primary_port, local_port):
        calls.append((primary_ip, local_ip, primary_port, local_port))
        return result

    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.PREREQFUNCTION, prereq)
    if ok:
        assert c.perform_rb()
        assert c.getinfo(c.RESPONSE_CODE) == 200
    else:
        with pytest.raises(error) as ei:
            c.perform_rb()
        assert ei.value.args[0] == E.E_ABORTED_BY_CALLBACK
        assert ei.value.__cause__ is None
        assert c.getinfo(c.RESPONSE_CODE) == 0  # no request was sent
    assert len(calls) == 1
    primary_ip, local_ip, primary_port, local_port = calls[0]
    assert (primary_ip, local_ip, primary_port) == ("127.0.0.1", "127.0.0.1", httpbin.port)
    assert type(local_port) is int and local_port > 0
    assert E.PREREQFUNC_OK == 0 and E.PREREQFUNC_ABORT == 1
    c.close()


@needs("PREREQFUNCTION")
@pytest.mark.parametrize("result, exc_type", [(None, TypeError), ("0", TypeError), (1 << 40, OverflowError)])
def test_prereq_callback_must_return_an_int(httpbin, result, exc_type):
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.PREREQFUNCTION, lambda *args: result)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert isinstance(ei.value.__cause__, exc_type)
    assert ei.value.args[0] == E.E_ABORTED_BY_CALLBACK
    c.close()


# -- RESOLVER_START_FUNCTION -----------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_resolver_start_callback(httpbin, host):
    calls = []
    c = Curl()
    c.setopt(c.URL, "http://%s:%d/get" % (host, httpbin.port))
    c.setopt(c.IPRESOLVE, c.IPRESOLVE_V4)
    c.setopt(c.RESOLVER_START_FUNCTION, lambda *args: calls.append(args))  # None: go on
    assert c.perform_rb()
    assert calls == [()]
    c.setopt(c.FRESH_CONNECT, 1)
    c.setopt(c.DNS_CACHE_TIMEOUT, 0)
    c.setopt(c.RESOLVER_START_FUNCTION, lambda: 0)
    assert c.perform_rb()
    c.setopt(c.RESOLVER_START_FUNCTION, lambda: 1)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.__cause__ is None
    assert ei.value.args[0] in (E.E_ABORTED_BY_CALLBACK, E.E_COULDNT_RESOLVE_HOST)
    c.close()


@pytest.mark.parametrize("name", ["PREREQFUNCTION", "RESOLVER_START_FUNCTION"])
@pytest.mark.parametrize("exc", [Boom("boom"), KeyboardInterrupt("stop")])
def test_exception_in_connection_callbacks(httpbin, name, exc):
    if not hasattr(E, name):
        pytest.skip("libcurl built against lacks " + name)
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(getattr(E, name), _raiser(exc))
    if isinstance(exc, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt) as ki:
            c.perform_rb()
        assert ki.value is exc
    else:
        with pytest.raises(error) as ei:
            c.perform_rb()
        assert ei.value.__cause__ is exc and c.callback_error is exc
        assert ei.value.args[0] in (E.E_ABORTED_BY_CALLBACK, E.E_COULDNT_RESOLVE_HOST)
    assert c.getinfo(c.RESPONSE_CODE) == 0  # aborted before the request
    c.unsetopt(getattr(E, name))
    assert c.perform_rb()
    c.close()


# -- TRAILERFUNCTION -------------------------------------------------------------------

def _chunked_upload(c, url, payload=b"hello"):
    c.setopt(c.URL, url)
    c.setopt(c.UPLOAD, 1)
    c.setopt(c.HTTPHEADER, ["Transfer-Encoding: chunked", "Expect:"])
    parts = [payload, b""]
    c.setopt(c.READFUNCTION, lambda n: parts.pop(0))


@pytest.mark.parametrize("result", [["X-Sum: 5", b"X-Other: two"], ("X-Sum: 5", "X-Other: two"), [], None])
def test_trailer_callback(trailer_server, result):
    c = Curl()
    _chunked_upload(c, trailer_server.url)
    calls = []

    def trailers(*args):
        calls.append(args)
        return result

    c.setopt(c.TRAILERFUNCTION, trailers)
    assert c.perform_rb() == b"ok"
    assert calls == [()]
    raw = trailer_server.raw[-1]
    assert b"hello" in raw
    tail = raw.rpartition(b"\r\n0\r\n")[2] if b"\r\n0\r\n" in raw else raw.rpartition(b"\r\n\r\n0\r\n")[2]
    if result:
        assert tail == b"X-Sum: 5\r\nX-Other: two\r\n\r\n"
    else:
        assert tail == b"\r\n"
    c.close()


@pytest.mark.parametrize("result, exc_type", [
    ("X-Sum: 5", TypeError), ([b"X-A: 1", 5], TypeError), (["X-A: \0"], ValueError),
    (["X-A: \xe9"], UnicodeEncodeError), (Boom("trailer"), Boom)])
def test_trailer_callback_failures(trailer_server, result, exc_type):
    c = Curl()
    _chunked_upload(c, trailer_server.url)
    c.setopt(c.TRAILERFUNCTION, _raiser(result) if isinstance(result, Exception) else lambda: result)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert isinstance(ei.value.__cause__, exc_type)
    assert ei.value.args[0] == E.E_ABORTED_BY_CALLBACK
    c.close()


# -- FNMATCH_FUNCTION -------------------------------------------------------------------

# libcurl 7.88 reports a failed match as a missing file; others as a bad list.
FNMATCH_FAILED = (E.E_REMOTE_FILE_NOT_FOUND, E.E_FTP_BAD_FILE_LIST)


def test_fnmatch_callback_picks_the_files(ftp_server):
    calls = []

    def fnmatch(pattern, string):
        calls.append((pattern, string))
        return E.FNMATCHFUNC_MATCH if string.startswith(b"a") else E.FNMATCHFUNC_NOMATCH

    c = Curl()
    c.setopt(c.URL, ftp_server.url + "*.txt")
    c.setopt(c.WILDCARDMATCH, 1)
    c.setopt(c.FNMATCH_FUNCTION, fnmatch)
    body = c.perform_rb()
    assert body == b"first\nsecond\n"
    assert all(p == b"*.txt" for p, _ in calls)
    assert {s for _, s in calls} >= {b"a1.txt", b"a2.txt", b"b.txt", b"c.log"}
    c.close()


@pytest.mark.parametrize("result, exc_type", [
    (Boom("fnmatch"), Boom), (None, TypeError), (b"yes", TypeError)])
def test_fnmatch_callback_failures(ftp_server, result, exc_type):
    c = Curl()
    c.setopt(c.URL, ftp_server.url + "*.txt")
    c.setopt(c.WILDCARDMATCH, 1)
    c.setopt(c.FNMATCH_FUNCTION, _raiser(result) if isinstance(result, Exception) else lambda p, s: result)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert isinstance(ei.value.__cause__, exc_type)
    assert ei.value.args[0] in FNMATCH_FAILED
    c.close()


def test_fnmatch_fail_result(ftp_server):
    c = Curl()
    c.setopt(c.URL, ftp_server.url + "*.txt")
    c.setopt(c.WILDCARDMATCH, 1)
    c.setopt(c.FNMATCH_FUNCTION, lambda p, s: E.FNMATCHFUNC_FAIL)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.__cause__ is None
    assert ei.value.args[0] in FNMATCH_FAILED
    c.close()


# -- HSTSREADFUNCTION / HSTSWRITEFUNCTION -------------------------------------------------

@needs("HSTSWRITEFUNCTION")
def test_hsts_write_callback_gets_the_cache(hsts_server):
    entries = []
    c = Curl()
    hsts_server.setup(c)
    c.setopt(c.HSTSWRITEFUNCTION, lambda entry, index: entries.append((entry, index)))
    before = datetime.datetime.now(UTC).replace(microsecond=0)
    assert c.perform_rb() == b"ok"
    c.close()  # libcurl saves its cache when the handle is cleaned up
    after = datetime.datetime.now(UTC)
    assert len(entries) == 1
    entry, index = entries[0]
    assert isinstance(entry, E.HstsEntry) and isinstance(index, E.HstsIndex)
    assert entry.host == b"hsts.test" and entry.include_subdomains is True
    assert entry.expire.tzinfo is not None
    assert before + datetime.timedelta(seconds=3600) <= entry.expire <= after + datetime.timedelta(seconds=3601)
    assert index == (0, 1) and index.idx == 0 and index.total == 1


@needs("HSTSREADFUNCTION")
@pytest.mark.parametrize("host", [b"hsts.test", "hsts.test"])
@pytest.mark.parametrize("expire", ["never", "aware", "naive"])
def test_hsts_read_callback_upgrades_to_https(hsts_server, host, expire):
    when = {"never": None,
            "aware": datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=5))) + datetime.timedelta(days=1),
            "naive": datetime.datetime.utcnow() + datetime.timedelta(days=1)}[expire]
    preload = [E.HstsEntry(host, when, False), (b"other.test", None, 1)]
    calls = []

    def read(*args):
        calls.append(args)
        return preload.pop(0) if preload else None

    saved = []
    c = Curl()
    hsts_server.setup(c, scheme="http")  # a plain http:// URL on the TLS port
    c.setopt(c.HSTSREADFUNCTION, read)
    c.setopt(c.HSTSWRITEFUNCTION, lambda entry, index: saved.append(entry))
    assert c.perform_rb() == b"ok"
    assert c.getinfo(c.EFFECTIVE_URL).startswith("https://hsts.test:")
    assert calls == [(), (), ()]
    c.close()
    # The server's header replaced the preloaded entry; the other one stays.
    saved = {e.host: e for e in saved}
    assert set(saved) == {b"hsts.test", b"other.test"}
    assert saved[b"other.test"].expire is None and saved[b"other.test"].include_subdomains is True


@needs("HSTSREADFUNCTION")
def test_hsts_read_without_an_entry_stays_on_http(hsts_server):
    c = Curl()
    hsts_server.setup(c, scheme="http")
    c.setopt(c.HSTSREADFUNCTION, lambda: None)
    with pytest.raises(error):  # plain HTTP to a TLS port
        c.perform_rb()
    c.close()


@needs("HSTSREADFUNCTION")
@pytest.mark.parametrize("result, exc_type", [
    (Boom("hstsread"), Boom), ("hsts.test", TypeError), ((b"hsts.test", None), TypeError),
    ((b"hsts.test", "tomorrow", False), TypeError), ((b"", None, False), ValueError),
    ((b"x" * 70000, None, False), ValueError), (("h\xe9.test", None, False), UnicodeEncodeError)])
def test_hsts_read_callback_failures(hsts_server, result, exc_type):
    # The host name is longer than libcurl's buffer (256 bytes in 7.88, more
    # in 8.x).  The callback gives its result once, then None: a result that
    # libcurl accepts after all must end the preload, not repeat forever.
    results = iter([result])
    c = Curl()
    hsts_server.setup(c, scheme="http")
    c.setopt(c.HSTSREADFUNCTION, _raiser(result) if isinstance(result, Exception)
             else lambda: next(results, None))
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert isinstance(ei.value.__cause__, exc_type)
    assert ei.value.args[0] == E.E_ABORTED_BY_CALLBACK
    c.close()


@needs("HSTSWRITEFUNCTION")
@pytest.mark.parametrize("result, exc_type", [
    (Boom("hstswrite"), Boom), ("ok", TypeError), (7, ValueError)])
def test_hsts_write_callback_failures_at_close(hsts_server, result, exc_type):
    """libcurl writes its cache when the handle is freed: an exception there
    is kept as callback_error (close() itself does not raise)."""
    c = Curl()
    hsts_server.setup(c)
    c.setopt(c.HSTSWRITEFUNCTION, _raiser(result) if isinstance(result, Exception)
             else lambda entry, index: result)
    assert c.perform_rb() == b"ok"
    assert c.callback_error is None
    c.close()
    assert isinstance(c.callback_error, exc_type)


@needs("HSTSWRITEFUNCTION")
def test_hsts_write_callback_done_stops_the_iteration(hsts_server):
    calls = []
    c = Curl()
    hsts_server.setup(c)
    c.setopt(c.HSTSREADFUNCTION, iter([(b"one.test", None, 0), (b"two.test", None, 0), None]).__next__)
    c.setopt(c.HSTSWRITEFUNCTION, lambda entry, index: calls.append(index) or E.CURLSTS_DONE)
    c.perform_rb()
    c.close()
    assert len(calls) == 1 and calls[0].total == 3



# -- SSH_KEYFUNCTION / SSH_HOSTKEYFUNCTION -------------------------------------------------

class SshServer:
    """paramiko serving SFTP (read-only, from a directory) to user "u" with
    password "p", with a fresh ECDSA host key (``.host_key``)."""

    def __init__(self, root):
        import paramiko

        self.root = str(root)
        self.host_key = paramiko.ECDSAKey.generate()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.transports = []
        self.thread = threading.Thread(target=self._run, args=(paramiko,), daemon=True)
        self.thread.start()

    def _run(self, paramiko):
        root = self.root

        class Server(paramiko.ServerInterface):
            def get_allowed_auths(self, username):
                return "password"

            def check_auth_password(self, username, password):
                ok = (username, password) == ("u", "p")
                return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

            def check_channel_request(self, kind, chanid):
                return paramiko.OPEN_SUCCEEDED if kind == "session" else \
                    paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

        class Handle(paramiko.SFTPHandle):
            pass

        class Files(paramiko.SFTPServerInterface):
            def _path(self, path):
                return os.path.join(root, os.path.basename(path))

            def stat(self, path):
                try:
                    return paramiko.SFTPAttributes.from_stat(os.stat(self._path(path)))
                except OSError as e:
                    return paramiko.SFTPServer.convert_errno(e.errno)

            lstat = stat

            def open(self, path, flags, attr):
                try:
                    f = open(self._path(path), "rb")
                except OSError as e:
                    return paramiko.SFTPServer.convert_errno(e.errno)
                handle = Handle(flags)
                handle.filename = self._path(path)
                handle.readfile = f
                return handle

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(self.host_key)
            t.set_subsystem_handler("sftp", paramiko.SFTPServer, Files)
            self.transports.append(t)
            try:
                t.start_server(server=Server())
            except (paramiko.SSHException, EOFError, OSError):
                pass

    def url(self, name):
        return "sftp://127.0.0.1:%d/%s" % (self.port, name)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()
        for t in self.transports:
            t.close()


@pytest.fixture
def ssh_server(tmp_path):
    pytest.importorskip("paramiko")
    if "sftp" not in E.version_info()[8]:
        pytest.skip("libcurl built without SFTP")
    (tmp_path / "hello.txt").write_bytes(b"hello over sftp\n")
    server = SshServer(tmp_path)
    yield server
    server.close()


def _sftp(c, ssh_server, tmp_path, user="u:p"):
    c.setopt(c.URL, ssh_server.url("hello.txt"))
    c.setopt(c.USERPWD, user)
    c.setopt(c.SSH_AUTH_TYPES, c.SSH_AUTH_PASSWORD)
    known = tmp_path / "known_hosts"
    known.write_bytes(b"")
    c.setopt(c.SSH_KNOWNHOSTS, str(known))


def test_ssh_key_callback(ssh_server, tmp_path):
    calls = []

    def check(known_key, found_key, match):
        calls.append((known_key, found_key, match))
        return E.KHSTAT_FINE

    c = Curl()
    _sftp(c, ssh_server, tmp_path)
    c.setopt(c.SSH_KEYFUNCTION, check)
    assert c.perform_rb() == b"hello over sftp\n"
    assert len(calls) == 1
    known_key, found_key, match = calls[0]
    assert known_key is None and match == E.KHMATCH_MISSING
    assert isinstance(found_key, E.KhKey)
    assert found_key.key == ssh_server.host_key.asbytes()
    assert found_key.keytype == E.KHTYPE_ECDSA
    c.close()


@pytest.mark.parametrize("result, exc_type", [
    (E.KHSTAT_REJECT, None), (Boom("ssh key"), Boom), (None, TypeError), ("fine", TypeError)])
def test_ssh_key_callback_rejects(ssh_server, tmp_path, result, exc_type):
    c = Curl()
    _sftp(c, ssh_server, tmp_path)
    c.setopt(c.SSH_KEYFUNCTION, _raiser(result) if isinstance(result, Exception) else lambda *a: result)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_PEER_FAILED_VERIFICATION
    if exc_type is None:
        assert ei.value.__cause__ is None
    else:
        assert isinstance(ei.value.__cause__, exc_type)
    c.close()


@needs("SSH_HOSTKEYFUNCTION")
def test_ssh_hostkey_callback(ssh_server, tmp_path):
    calls = []
    c = Curl()
    _sftp(c, ssh_server, tmp_path)
    c.setopt(c.SSH_HOSTKEYFUNCTION, lambda keytype, key: calls.append((keytype, key)) or E.KHMATCH_OK)
    assert c.perform_rb() == b"hello over sftp\n"
    assert calls == [(E.KHTYPE_ECDSA, ssh_server.host_key.asbytes())]
    c.close()


@needs("SSH_HOSTKEYFUNCTION")
@pytest.mark.parametrize("result, exc_type", [
    (E.KHMATCH_MISMATCH, None), (Boom("hostkey"), Boom), (None, TypeError)])
def test_ssh_hostkey_callback_rejects(ssh_server, tmp_path, result, exc_type):
    c = Curl()
    _sftp(c, ssh_server, tmp_path)
    c.setopt(c.SSH_HOSTKEYFUNCTION, _raiser(result) if isinstance(result, Exception) else lambda *a: result)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_PEER_FAILED_VERIFICATION
    assert (ei.value.__cause__ is None) if exc_type is None else isinstance(ei.value.__cause__, exc_type)
    c.close()


# -- copies, unsetting, dropping ---------------------------------------------------------

@needs("PREREQFUNCTION")
def test_duphandle_and_unsetopt(httpbin):
    calls = []
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.PREREQFUNCTION, lambda *args: calls.append("prereq") or 0)
    c.setopt(c.RESOLVER_START_FUNCTION, lambda: calls.append("resolve"))
    d = c.duphandle()
    c.close()
    assert d.perform_rb()
    assert calls == ["resolve", "prereq"]
    d.unsetopt(d.PREREQFUNCTION)
    d.setopt(d.RESOLVER_START_FUNCTION, None)
    d.setopt(d.FRESH_CONNECT, 1)
    assert d.perform_rb()
    assert calls == ["resolve", "prereq"]
    d.close()


@needs("HSTSWRITEFUNCTION")
def test_hsts_write_callback_of_a_dropped_curl(hsts_server):
    """A Curl freed without close(): libcurl saves its cache with the
    callback removed first (the object it would get is gone)."""
    import gc
    import weakref
    saved = []
    c = Curl()
    hsts_server.setup(c)
    c.setopt(c.HSTSWRITEFUNCTION, lambda entry, index: saved.append(entry))
    assert c.perform_rb() == b"ok"
    ref = weakref.ref(c)
    del c
    for _ in range(3):
        gc.collect()
    assert ref() is None
    assert saved == []


# -- OPENSOCKETFUNCTION's address ----------------------------------------------------------

@pytest.mark.parametrize("family", ["inet", "inet6", "unix"])
def test_opensocket_address_is_a_curlsockaddr(tmp_path, family):
    """The address as the socket module spells it; the callback declines
    (SOCKET_BAD), so nothing needs to listen."""
    if family == "inet6" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    seen = []

    def opensocket(purpose, address):
        seen.append((purpose, address))
        return E.SOCKET_BAD

    c = Curl()
    if family == "unix":
        path = str(tmp_path / "nobody.sock")
        c.setopt(c.UNIX_SOCKET_PATH, path)
        c.setopt(c.URL, "http://localhost/")
    else:
        c.setopt(c.URL, "http://127.0.0.1:9/" if family == "inet" else "http://[::1]:9/")
    c.setopt(c.OPENSOCKETFUNCTION, opensocket)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_COULDNT_CONNECT and ei.value.__cause__ is None
    purpose, address = seen[0]
    assert purpose == E.SOCKTYPE_IPCXN
    assert isinstance(address, E.CurlSockAddr)
    assert address.socktype & socket.SOCK_STREAM
    if family == "inet":
        assert address.family == socket.AF_INET and address.addr == ("127.0.0.1", 9)
    elif family == "inet6":
        assert address.family == socket.AF_INET6 and address.addr == ("::1", 9, 0, 0)
    else:
        assert address.family == socket.AF_UNIX and address.addr == path.encode()
    c.close()
