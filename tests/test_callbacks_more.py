"""The callbacks pycurl 7.49 added to the classic set: PREREQFUNCTION,
RESOLVER_START_FUNCTION, TRAILERFUNCTION, FNMATCH_FUNCTION (over a local
FTP server), HSTSREADFUNCTION/HSTSWRITEFUNCTION (over a local HTTPS server)
and SSH_KEYFUNCTION/SSH_HOSTKEYFUNCTION; each with a real transfer, its
return rules, and an exception reaching perform()'s caller as __cause__."""

import datetime
import http.server
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
# Against the system's OpenSSH sshd (tests/sshserver.py), on CPython and PyPy alike.

SFTP_BODY = b"hello over sftp\n"


@pytest.fixture(scope="module")
def ssh_server():
    if "sftp" not in E.version_info()[8]:
        pytest.skip("libcurl built without SFTP (no SSH backend)")
    import sshserver
    reason = sshserver.missing()
    if reason:
        pytest.fail(reason + "; scripts/_setup.sh installs it")
    server = sshserver.SshServer({"hello.txt": SFTP_BODY})
    yield server
    server.close()


def _sftp(ssh_server, known_hosts, known=b""):
    """A Curl set for hello.txt, with the known_hosts file ``known_hosts``
    holding ``known`` (None: left as it is)."""
    if known is not None:
        known_hosts.write_bytes(known)
    c = Curl()
    c.setopt(c.URL, ssh_server.url("hello.txt"))
    c.setopt(c.USERNAME, ssh_server.user)
    c.setopt(c.SSH_AUTH_TYPES, c.SSH_AUTH_PUBLICKEY)
    c.setopt(c.SSH_PRIVATE_KEYFILE, ssh_server.client_key)
    c.setopt(c.SSH_PUBLIC_KEYFILE, ssh_server.client_pub)
    c.setopt(c.SSH_KNOWNHOSTS, str(known_hosts))
    return c


def _other_key(tmp_path):
    """The base64 of another ECDSA key: a host key that is not the server's."""
    import sshserver
    sshserver._keygen(str(tmp_path / "other"), "ecdsa")
    return (tmp_path / "other.pub").read_bytes().split()[1]


def _recorder(result, calls):
    def check(known_key, found_key, match):
        calls.append((known_key, found_key, match))
        return result
    return check


def test_ssh_without_callback_checks_known_hosts(ssh_server, tmp_path):
    # The baseline the callbacks change: libcurl alone accepts the known key
    # and refuses a missing one.
    c = _sftp(ssh_server, tmp_path / "known_hosts", ssh_server.known_hosts_line())
    assert c.perform_rb() == SFTP_BODY
    c.close()
    c = _sftp(ssh_server, tmp_path / "known_hosts")
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_PEER_FAILED_VERIFICATION
    c.close()


def test_ssh_key_callback_missing_key_fine(ssh_server, tmp_path):
    calls = []
    known_hosts = tmp_path / "known_hosts"
    c = _sftp(ssh_server, known_hosts)
    c.setopt(c.SSH_KEYFUNCTION, _recorder(E.KHSTAT_FINE, calls))
    assert c.perform_rb() == SFTP_BODY
    assert len(calls) == 1
    known_key, found_key, match = calls[0]
    assert known_key is None and match == E.KHMATCH_MISSING
    assert isinstance(found_key, E.KhKey)
    assert found_key == (ssh_server.host_key, E.KHTYPE_ECDSA)
    assert known_hosts.read_bytes() == b""  # FINE: accepted, not recorded
    c.close()


def test_ssh_key_callback_sees_the_known_key(ssh_server, tmp_path):
    calls = []
    c = _sftp(ssh_server, tmp_path / "known_hosts", ssh_server.known_hosts_line())
    c.setopt(c.SSH_KEYFUNCTION, _recorder(E.KHSTAT_FINE, calls))
    assert c.perform_rb() == SFTP_BODY
    assert len(calls) == 1
    known_key, found_key, match = calls[0]
    assert match == E.KHMATCH_OK
    # The known key as known_hosts holds it: base64 (libcurl hands it over
    # NUL-terminated, with a length of 0).
    assert known_key == (ssh_server.host_key_b64, E.KHTYPE_ECDSA)
    assert found_key == (ssh_server.host_key, E.KHTYPE_ECDSA)
    c.close()


def test_ssh_key_callback_mismatch_rejected(ssh_server, tmp_path):
    calls = []
    other = _other_key(tmp_path)
    known_hosts = tmp_path / "known_hosts"
    c = _sftp(ssh_server, known_hosts, ssh_server.known_hosts_line(other))
    c.setopt(c.SSH_KEYFUNCTION, _recorder(E.KHSTAT_REJECT, calls))
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_PEER_FAILED_VERIFICATION
    assert ei.value.__cause__ is None
    assert len(calls) == 1
    known_key, found_key, match = calls[0]
    assert match == E.KHMATCH_MISMATCH
    assert known_key.key == other and found_key.key == ssh_server.host_key
    assert known_hosts.read_bytes() == ssh_server.known_hosts_line(other)
    c.close()


def test_ssh_key_callback_mismatch_accepted(ssh_server, tmp_path):
    # The callback overrules a mismatch: FINE proceeds with the found key.
    calls = []
    other = _other_key(tmp_path)
    c = _sftp(ssh_server, tmp_path / "known_hosts", ssh_server.known_hosts_line(other))
    c.setopt(c.SSH_KEYFUNCTION, _recorder(E.KHSTAT_FINE, calls))
    assert c.perform_rb() == SFTP_BODY
    assert [m for _, _, m in calls] == [E.KHMATCH_MISMATCH]
    c.close()


def test_ssh_key_callback_add_to_file(ssh_server, tmp_path):
    calls = []
    known_hosts = tmp_path / "known_hosts"
    c = _sftp(ssh_server, known_hosts)
    c.setopt(c.SSH_KEYFUNCTION, _recorder(E.KHSTAT_FINE_ADD_TO_FILE, calls))
    assert c.perform_rb() == SFTP_BODY
    c.close()
    assert [m for _, _, m in calls] == [E.KHMATCH_MISSING]
    # libcurl wrote the found key to the file: the next transfer knows it.
    assert ssh_server.host_key_b64 in known_hosts.read_bytes()
    calls.clear()
    c = _sftp(ssh_server, known_hosts, None)
    c.setopt(c.SSH_KEYFUNCTION, _recorder(E.KHSTAT_REJECT, calls))
    with pytest.raises(error):
        c.perform_rb()   # rejected by the callback, though the key is known now
    c.close()
    assert len(calls) == 1 and calls[0][2] == E.KHMATCH_OK
    assert calls[0][0].key == ssh_server.host_key_b64


@needs("KHSTAT_FINE_REPLACE")
def test_ssh_key_callback_replace(ssh_server, tmp_path):
    calls = []
    other = _other_key(tmp_path)
    known_hosts = tmp_path / "known_hosts"
    c = _sftp(ssh_server, known_hosts, ssh_server.known_hosts_line(other))
    c.setopt(c.SSH_KEYFUNCTION, _recorder(E.KHSTAT_FINE_REPLACE, calls))
    assert c.perform_rb() == SFTP_BODY
    c.close()
    assert [m for _, _, m in calls] == [E.KHMATCH_MISMATCH]
    written = known_hosts.read_bytes()
    assert ssh_server.host_key_b64 in written and other not in written


def test_ssh_key_callback_defer(ssh_server, tmp_path):
    # DEFER does not let the transfer proceed.  libcurl 7.88 and 8.14 (libssh2)
    # then ask the callback again at once, and again, until it says something
    # else: here REJECT, the second time.
    calls = []

    def defer_then_reject(known_key, found_key, match):
        calls.append(match)
        return E.KHSTAT_DEFER if len(calls) == 1 else E.KHSTAT_REJECT

    known_hosts = tmp_path / "known_hosts"
    c = _sftp(ssh_server, known_hosts)
    c.setopt(c.SSH_KEYFUNCTION, defer_then_reject)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_PEER_FAILED_VERIFICATION
    assert ei.value.__cause__ is None
    assert calls[0] == E.KHMATCH_MISSING and len(calls) <= 2
    assert known_hosts.read_bytes() == b""
    c.close()


@pytest.mark.parametrize("result, exc_type", [
    (E.KHSTAT_REJECT, None), (99, None), (Boom("ssh key"), Boom), (None, TypeError),
    ("fine", TypeError), (2 ** 40, OverflowError)])
def test_ssh_key_callback_rejects(ssh_server, tmp_path, result, exc_type):
    # Refused even though the key is known: the callback decides.
    c = _sftp(ssh_server, tmp_path / "known_hosts", ssh_server.known_hosts_line())
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
    # The callback alone decides: known_hosts holds another key, which
    # libcurl would refuse, yet KHMATCH_OK lets the transfer through.
    calls = []
    c = _sftp(ssh_server, tmp_path / "known_hosts", ssh_server.known_hosts_line(_other_key(tmp_path)))
    c.setopt(c.SSH_HOSTKEYFUNCTION, lambda keytype, key: calls.append((keytype, key)) or E.KHMATCH_OK)
    assert c.perform_rb() == SFTP_BODY
    assert calls == [(E.KHTYPE_ECDSA, ssh_server.host_key)]
    c.close()


@needs("SSH_HOSTKEYFUNCTION")
@pytest.mark.parametrize("result, exc_type", [
    (E.KHMATCH_MISMATCH, None), (E.KHMATCH_MISSING, None), (Boom("hostkey"), Boom),
    (None, TypeError)])
def test_ssh_hostkey_callback_rejects(ssh_server, tmp_path, result, exc_type):
    # Refused though known_hosts holds the right key.
    calls = []

    def hostkey(keytype, key):
        calls.append((keytype, key))
        if isinstance(result, Exception):
            raise result
        return result

    c = _sftp(ssh_server, tmp_path / "known_hosts", ssh_server.known_hosts_line())
    c.setopt(c.SSH_HOSTKEYFUNCTION, hostkey)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_PEER_FAILED_VERIFICATION
    assert (ei.value.__cause__ is None) if exc_type is None else isinstance(ei.value.__cause__, exc_type)
    assert calls == [(E.KHTYPE_ECDSA, ssh_server.host_key)]
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
