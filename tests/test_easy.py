"""Curl, the easy handle: setopt for every option type, getinfo for every
info type, and the life cycle (perform*, reset, duphandle, pause, close),
against the local servers of conftest.py.

Callbacks are in test_callbacks.py, failures in test_errors.py, lifetimes
and leaks in test_leaks.py."""

import ctypes
import errno
import gc
import io
import json
import os
import shutil
import ssl
import subprocess
import threading
import weakref
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import curlmulti
from curlmulti import Curl, error
from curlmulti._constnames import CONSTANTS as CONSTANT_NAMES

# CURLINFO_* type bits (libcurl's ABI).
INFO_STRING, INFO_LONG, INFO_DOUBLE, INFO_SLIST, INFO_SOCKET, INFO_OFF_T = (
    0x100000, 0x200000, 0x300000, 0x400000, 0x500000, 0x600000)


def collect():
    for _ in range(3):
        gc.collect()


def fetch(url, **options):
    """A finished transfer: (curl, body bytes)."""
    c = Curl()
    body = io.BytesIO()
    c.setopt(c.URL, url)
    c.setopt(c.WRITEFUNCTION, body.write)
    for name, value in options.items():
        c.setopt(getattr(curlmulti, name), value)
    c.perform()
    return c, body.getvalue()


def fetch_json(url, **options):
    c, body = fetch(url, **options)
    c.close()
    return json.loads(body.decode())


# -- integer options --------------------------------------------------------

def test_long_and_bool_options(httpbin):
    c, _ = fetch(httpbin("/redirect/2"), FOLLOWLOCATION=True)
    assert c.getinfo(c.RESPONSE_CODE) == 200
    assert c.getinfo(c.REDIRECT_COUNT) == 2
    assert c.getinfo(c.EFFECTIVE_URL) == httpbin("/get")
    c.setopt(c.FOLLOWLOCATION, False)
    c.perform()
    assert c.getinfo(c.RESPONSE_CODE) == 302
    c.setopt(c.FOLLOWLOCATION, 1)
    c.setopt(c.MAXREDIRS, 1)
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.args[0] == curlmulti.E_TOO_MANY_REDIRECTS
    c.close()


@pytest.mark.parametrize("unsigned", [False, True])
def test_unsigned_bitmask_option(httpbin, unsigned):
    # HTTPAUTH_ANY is ~CURLAUTH_DIGEST_IE: negative as a C long (as in
    # pycurl); its unsigned form, above LONG_MAX, is taken too.
    value = curlmulti.HTTPAUTH_ANY
    assert value < 0
    if unsigned:
        value += 1 << (8 * ctypes.sizeof(ctypes.c_long))
    c, body = fetch(httpbin("/basic-auth/user/secret"), HTTPAUTH=value, USERPWD="user:secret")
    assert c.getinfo(c.RESPONSE_CODE) == 200
    assert json.loads(body.decode())["authenticated"] is True
    c.close()


def test_long_option_bad_values():
    c = Curl()
    for bad in ("1", b"1", 1.0, [1], object()):
        with pytest.raises(TypeError):
            c.setopt(c.VERBOSE, bad)
    for big in (1 << 64, -(1 << 63) - 1):
        with pytest.raises(OverflowError):
            c.setopt(c.TIMEOUT, big)
    c.close()


def test_long_options_do_not_wrap():
    """Only the unsigned bitmask options take values past LONG_MAX (as their C
    bit pattern, for HTTPAUTH_ANY and co); any other long must fit."""
    c = Curl()
    for name, big in [("MAXREDIRS", (1 << 64) - 1), ("TIMEOUT", 1 << 63), ("VERBOSE", 1 << 63)]:
        with pytest.raises(OverflowError):
            c.setopt(getattr(c, name), big)
    for name in ("HTTPAUTH", "PROXYAUTH"):
        c.setopt(getattr(c, name), curlmulti.HTTPAUTH_ANY)
        c.setopt(getattr(c, name), (1 << 64) - 1)
        with pytest.raises(OverflowError):
            c.setopt(getattr(c, name), 1 << 64)
    c.setopt(c.MAXREDIRS, (1 << 63) - 1)
    c.setopt(c.MAXREDIRS, -1)
    c.close()


# -- curl_off_t options -----------------------------------------------------

def test_off_t_resume_beyond_4gib(big_body_server):
    start = (1 << 33) + 5                 # does not fit in 32 bits
    url = big_body_server(start + 20)
    c, body = fetch(url, RESUME_FROM_LARGE=start)
    assert c.getinfo(c.RESPONSE_CODE) == 206
    assert body == bytes((start + i) % 256 for i in range(20))
    assert big_body_server.requests[-1].headers["range"] == "bytes=%d-" % start
    c.close()


def test_off_t_maxfilesize(big_body_server):
    size = (1 << 33) + 1
    c = Curl()
    c.setopt(c.URL, big_body_server(size))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(c.MAXFILESIZE_LARGE, size - 1)
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.args[0] == curlmulti.E_FILESIZE_EXCEEDED
    c.setopt(c.MAXFILESIZE_LARGE, 1 << 40)
    c.setopt(c.NOBODY, 1)
    c.perform()
    assert c.getinfo(c.CONTENT_LENGTH_DOWNLOAD_T) == size
    c.close()


def test_off_t_bad_values():
    c = Curl()
    with pytest.raises(TypeError):
        c.setopt(c.MAXFILESIZE_LARGE, "10")
    with pytest.raises(TypeError):
        c.setopt(c.MAXFILESIZE_LARGE, 10.0)
    with pytest.raises(OverflowError):
        c.setopt(c.MAXFILESIZE_LARGE, 1 << 64)
    c.close()


# -- string options ---------------------------------------------------------

def test_string_option_str_and_bytes(httpbin):
    assert fetch_json(httpbin("/user-agent"), USERAGENT="agent/1.0") == {"user-agent": "agent/1.0"}
    # bytes go through as they are, even non-ASCII ones.
    got = fetch_json(httpbin("/user-agent"), USERAGENT=b"caf\xe9")
    assert got["user-agent"] == "caf\xe9"
    c, _ = fetch(httpbin("/get").encode("ascii"))  # the URL as bytes
    assert c.getinfo(c.RESPONSE_CODE) == 200
    c.close()


def test_string_option_bad_values():
    c = Curl()
    with pytest.raises(UnicodeEncodeError):
        c.setopt(c.URL, "http://example.test/\u00e9")
    with pytest.raises(ValueError):
        c.setopt(c.URL, "http://a\0b/")
    with pytest.raises(ValueError):
        c.setopt(c.USERAGENT, b"a\0b")
    for bad in (1, 1.5, ["x"], bytearray(b"x")):
        with pytest.raises(TypeError):
            c.setopt(c.URL, bad)
    c.close()


def test_string_option_is_copied(httpbin):
    c = Curl()
    ua = "".join(["agent/", "2.0"])  # a new object, dropped below
    c.setopt(c.USERAGENT, ua)
    del ua
    collect()
    body = io.BytesIO()
    c.setopt(c.URL, httpbin("/user-agent"))
    c.setopt(c.WRITEFUNCTION, body.write)
    c.perform()
    assert json.loads(body.getvalue().decode()) == {"user-agent": "agent/2.0"}
    c.close()


def test_setopt_none_unsets_only_what_pycurl_unsets(httpbin):
    c = Curl()
    # pycurl 7.49 refuses None for the options its unsetopt() does not know
    # (URL, USERAGENT, longs, WRITEDATA, POSTFIELDS, ...), naming the option.
    for option, name in ((c.USERAGENT, "USERAGENT"), (c.URL, "URL"), (c.VERBOSE, "VERBOSE"),
                         (c.POSTFIELDS, "POSTFIELDS"), (c.COOKIEFILE, "COOKIEFILE")):
        with pytest.raises(TypeError, match="unsetopt\\(\\) is not supported for this option: " + name):
            c.setopt(option, None)
    # ... and unsets those it knows.
    c.setopt(c.PROXY, "http://127.0.0.1:1")
    c.setopt(c.PROXY, None)
    c.setopt(c.HTTPHEADER, ["X-Gone: 1"])
    c.setopt(c.HTTPHEADER, None)
    c.setopt(c.URL, httpbin("/headers"))
    headers = json.loads(c.perform_rb().decode())["headers"]
    assert "X-Gone" not in headers
    # unsetopt() also resets any string option (more than pycurl's).
    c.setopt(c.USERAGENT, "to-be-removed")
    c.unsetopt(c.USERAGENT)
    headers = json.loads(c.perform_rb().decode())["headers"]
    assert "User-Agent" not in headers
    c.close()


def test_setopt_string(httpbin):
    c = Curl()
    c.setopt_string(c.URL, httpbin("/user-agent"))
    c.setopt_string(c.USERAGENT, b"raw-agent")
    assert json.loads(c.perform_rb().decode()) == {"user-agent": "raw-agent"}
    # Only options libcurl lists as strings: a pointer to text is never
    # handed to a long, a callback or a data option.
    for option in (c.VERBOSE, c.WRITEFUNCTION, c.WRITEDATA, c.HTTPHEADER, c.POSTFIELDS):
        with pytest.raises(TypeError):
            c.setopt_string(option, "x")
    with pytest.raises(TypeError):
        c.setopt_string(c.URL, 1)
    with pytest.raises(ValueError):
        c.setopt_string(c.URL, "a\0b")
    with pytest.raises(error) as ei:
        c.setopt_string(10999, "x")
    assert ei.value.args[0] == curlmulti.E_UNKNOWN_OPTION
    c.close()


# -- list options -------------------------------------------------------------

def test_httpheader_list_and_tuple(httpbin):
    got = fetch_json(httpbin("/headers"), HTTPHEADER=["X-One: 1", b"X-Two: 2"])
    assert got["headers"]["X-One"] == "1" and got["headers"]["X-Two"] == "2"
    got = fetch_json(httpbin("/headers"), HTTPHEADER=("X-Three: 3",))
    assert got["headers"]["X-Three"] == "3"
    got = fetch_json(httpbin("/headers"), HTTPHEADER=[])
    assert "X-One" not in got["headers"]


def test_slist_is_kept_alive(httpbin):
    c = Curl()
    c.setopt(c.HTTPHEADER, ["X-Kept-%d: %d" % (i, i * i) for i in range(3)])
    collect()
    [os.urandom(32) for _ in range(1000)]  # reuse freed memory, if any
    c.setopt(c.URL, httpbin("/headers"))
    headers = json.loads(c.perform_rb().decode())["headers"]
    assert [headers["X-Kept-%d" % i] for i in range(3)] == ["0", "1", "4"]
    c.close()


def test_resolve_and_connect_to(httpbin):
    port = httpbin.port
    got = fetch_json("http://curlmulti.test:%d/headers" % port,
                     RESOLVE=["curlmulti.test:%d:127.0.0.1" % port])
    assert got["headers"]["Host"] == "curlmulti.test:%d" % port
    got = fetch_json("http://elsewhere.test/headers",
                     CONNECT_TO=["elsewhere.test:80:127.0.0.1:%d" % port])
    assert got["headers"]["Host"] == "elsewhere.test"


def test_list_option_bad_values():
    c = Curl()
    for bad in ("X-A: 1", b"X-A: 1", 1, {"X-A": "1"}, None.__class__):
        with pytest.raises(TypeError):
            c.setopt(c.HTTPHEADER, bad)
    with pytest.raises(TypeError):
        c.setopt(c.HTTPHEADER, ["X-A: 1", 2])
    with pytest.raises(ValueError):
        c.setopt(c.HTTPHEADER, ["X-A: \0"])
    with pytest.raises(UnicodeEncodeError):
        c.setopt(c.HTTPHEADER, ["X-A: \u00e9"])
    c.close()


# -- POSTFIELDS ---------------------------------------------------------------

def test_postfields_binary_with_nul_bytes(fast_server):
    payload = bytes(range(256)) * 40 + b"\0tail\0"
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.POSTFIELDS, payload)
    assert c.perform_rb() == payload
    assert c.getinfo(c.EFFECTIVE_METHOD) == "POST"
    assert c.getinfo(c.SIZE_UPLOAD_T) == len(payload)
    c.close()


def test_postfields_buffer_kept_alive(fast_server):
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    data = b"".join([b"x=", b"%d" % 12345] * 100)  # built here, dropped below
    expected = bytes(data)
    c.setopt(c.POSTFIELDS, data)
    del data
    collect()
    junk = [os.urandom(len(expected)) for _ in range(50)]  # reuse freed memory
    assert c.perform_rb() == expected
    del junk
    c.close()


def test_postfields_str_and_form(httpbin):
    got = fetch_json(httpbin("/post"), POSTFIELDS="a=1&b=two")
    assert got["form"] == {"a": "1", "b": "two"}
    with pytest.raises(UnicodeEncodeError):
        Curl().setopt(curlmulti.POSTFIELDS, "\u00e9")
    with pytest.raises(TypeError):
        Curl().setopt(curlmulti.POSTFIELDS, 1)


def test_copypostfields(fast_server):
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.COPYPOSTFIELDS, b"copied\0bytes")
    collect()
    assert c.perform_rb() == b"copied\0bytes"
    c.close()


def test_unset_postfields_goes_back_to_get(fast_server):
    c = Curl()
    c.setopt(c.URL, fast_server("/get"))
    c.setopt(c.POSTFIELDS, b"abc")
    c.unsetopt(c.POSTFIELDS)
    c.setopt(c.HTTPGET, 1)
    assert json.loads(c.perform_rb().decode())["method"] == "GET"
    c.close()


# -- file objects ---------------------------------------------------------------

def test_writedata_and_headerdata_files(httpbin, tmp_path):
    body, head = io.BytesIO(), io.BytesIO()
    c = Curl()
    c.setopt(c.URL, httpbin("/response-headers?X-Marker=yes"))
    c.setopt(c.WRITEDATA, body)
    c.setopt(c.HEADERDATA, head)
    c.perform()
    assert json.loads(body.getvalue().decode())["X-Marker"] == "yes"
    assert head.getvalue().startswith(b"HTTP/1.1 200")
    assert b"X-Marker: yes\r\n" in head.getvalue()
    # WRITEHEADER is HEADERDATA's old name; a real file works as well.
    path = tmp_path / "headers.txt"
    with open(str(path), "wb") as f:
        c.setopt(c.WRITEHEADER, f)
        c.setopt(c.WRITEDATA, io.BytesIO())
        c.perform()
    assert path.read_bytes().startswith(b"HTTP/1.1 200")
    c.close()


def test_readdata_file(fast_server, tmp_path):
    path = tmp_path / "upload.bin"
    payload = os.urandom(100000)
    path.write_bytes(payload)
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.UPLOAD, 1)
    with open(str(path), "rb") as f:
        c.setopt(c.READDATA, f)
        c.setopt(c.INFILESIZE_LARGE, len(payload))
        assert c.perform_rb() == payload
    c.close()


def test_file_options_bad_values():
    c = Curl()
    for option in (c.WRITEDATA, c.HEADERDATA, c.WRITEHEADER):
        with pytest.raises(TypeError):
            c.setopt(option, object())
        with pytest.raises(TypeError):
            c.setopt(option, "file.txt")
    with pytest.raises(TypeError):
        c.setopt(c.READDATA, io.StringIO().write)
    c.close()


def test_callable_options_reject_non_callables():
    c = Curl()
    for name in ("WRITEFUNCTION", "HEADERFUNCTION", "READFUNCTION", "XFERINFOFUNCTION",
                 "PROGRESSFUNCTION", "DEBUGFUNCTION", "SEEKFUNCTION", "IOCTLFUNCTION",
                 "SOCKOPTFUNCTION", "OPENSOCKETFUNCTION", "CLOSESOCKETFUNCTION"):
        with pytest.raises(TypeError):
            c.setopt(getattr(c, name), 1)
        with pytest.raises(TypeError):
            c.setopt(getattr(c, name), "print")
    c.close()


def test_unsupported_object_options_raise():
    c = Curl()
    # Pointers curlmulti owns itself, or has no Python form for.
    for name in ("PRIVATE", "ERRORBUFFER", "STDERR", "SHARE", "XFERINFODATA", "DEBUGDATA"):
        if hasattr(curlmulti, name):
            with pytest.raises(TypeError):
                c.setopt(getattr(curlmulti, name), 1)
    c.close()


# -- unsetopt -----------------------------------------------------------------

def test_unsetopt(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/headers"))
    c.setopt(c.USERAGENT, "ua")
    c.setopt(c.HTTPHEADER, ["X-Gone: 1"])
    c.unsetopt(c.USERAGENT)
    c.unsetopt(c.HTTPHEADER)
    headers = json.loads(c.perform_rb().decode())["headers"]
    assert "User-Agent" not in headers and "X-Gone" not in headers
    seen = []
    c.setopt(c.WRITEFUNCTION, seen.append)
    c.unsetopt(c.WRITEFUNCTION)
    c.setopt(c.WRITEDATA, io.BytesIO())
    c.unsetopt(c.WRITEDATA)
    c.perform_rb()
    assert seen == []
    # pycurl has no unsetopt for integer options.
    with pytest.raises(TypeError):
        c.unsetopt(c.VERBOSE)
    with pytest.raises(TypeError):
        c.unsetopt(c.MAXFILESIZE_LARGE)
    with pytest.raises(error) as ei:
        c.unsetopt(99999)
    assert ei.value.args[0] == curlmulti.E_UNKNOWN_OPTION
    c.close()


# -- perform, perform_rb, perform_rs -------------------------------------------

def test_perform_rb_and_rs(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/encoding/utf8"))
    rb = c.perform_rb()
    rs = c.perform_rs()
    assert isinstance(rb, bytes) and isinstance(rs, str)
    assert rs == rb.decode("utf-8") and "\u2200" in rs
    c.close()


def test_perform_rb_restores_write_target(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/64"))
    seen = []
    c.setopt(c.WRITEFUNCTION, seen.append)
    assert len(c.perform_rb()) == 64
    assert seen == []
    c.perform()
    assert sum(map(len, seen)) == 64
    sink = curlmulti.Buffer()
    c.setopt(c.WRITEDATA, sink)
    assert len(c.perform_rb()) == 64 and len(sink) == 0
    c.perform()
    assert len(sink) == 64
    c.close()


def test_perform_repeatedly_reuses_connection(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.perform_rb()
    c.perform_rb()
    assert c.getinfo(c.NUM_CONNECTS) == 0  # the second transfer reused the first connection
    c.close()


# -- getinfo / getinfo_raw --------------------------------------------------------

def _info_names():
    for name, cname in CONSTANT_NAMES:
        if cname.startswith("CURLINFO_") and hasattr(curlmulti, name):
            value = getattr(curlmulti, name)
            if value & 0xF00000:
                yield name, value


def test_getinfo_every_info_type(httpbin):
    c, body = fetch(httpbin("/response-headers?Set-Cookie=k%3Dv"), COOKIEFILE="")
    checked = set()
    for name, info in _info_names():
        kind = info & 0xF00000
        if name in ("TLS_SESSION", "TLS_SSL_PTR"):
            # Pointers to TLS library structures: refused, never misread.
            with pytest.raises(error):
                c.getinfo(info)
            continue
        value, raw = c.getinfo(info), c.getinfo_raw(info)
        if kind == INFO_STRING:
            assert value is None or isinstance(value, str), name
            assert raw is None or isinstance(raw, bytes), name
            assert (value is None) == (raw is None) and (raw is None or raw.decode() == value)
        elif kind == INFO_DOUBLE:
            assert isinstance(value, float), name
        elif kind == INFO_SLIST:
            assert isinstance(value, list) and isinstance(raw, list), name
        else:
            assert isinstance(value, int) and not isinstance(value, bool), name
            assert value == raw
        checked.add(kind)
    assert checked == {INFO_STRING, INFO_LONG, INFO_DOUBLE, INFO_SLIST, INFO_SOCKET, INFO_OFF_T}
    # And the values are the transfer's.
    assert c.getinfo(c.RESPONSE_CODE) == c.getinfo(c.HTTP_CODE) == 200
    assert c.getinfo(c.CONTENT_TYPE) == "application/json"
    assert c.getinfo_raw(c.CONTENT_TYPE) == b"application/json"
    assert c.getinfo(c.EFFECTIVE_URL) == httpbin("/response-headers?Set-Cookie=k%3Dv")
    assert c.getinfo(c.PRIMARY_IP) == "127.0.0.1"
    assert c.getinfo(c.PRIMARY_PORT) == httpbin.port
    assert c.getinfo(c.SIZE_DOWNLOAD_T) == len(body) == c.getinfo(c.SIZE_DOWNLOAD)
    assert 0 < c.getinfo(c.TOTAL_TIME) < 30
    assert c.getinfo(c.TOTAL_TIME_T) > 0
    assert c.getinfo(c.INFO_COOKIELIST) == ["127.0.0.1\tFALSE\t/\tFALSE\t0\tk\tv"]
    assert c.getinfo_raw(c.INFO_COOKIELIST) == [b"127.0.0.1\tFALSE\t/\tFALSE\t0\tk\tv"]
    assert all(isinstance(e, str) for e in c.getinfo(c.SSL_ENGINES))
    assert c.getinfo(c.ACTIVESOCKET) >= 0  # the kept-alive connection
    assert c.getinfo(c.INFO_CERTINFO) == []  # plain http: no certificates
    c.close()


def test_getinfo_non_ascii_string(httpbin):
    c, _ = fetch(httpbin("/redirect-to?url=/caf%C3%A9"), FOLLOWLOCATION=0)
    assert c.getinfo(c.REDIRECT_URL) == httpbin("/caf%C3%A9")
    c.close()
    c = Curl()
    c.setopt(c.URL, b"http://127.0.0.1:%d/caf\xc3\xa9" % httpbin.port)
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.perform()
    assert c.getinfo_raw(c.EFFECTIVE_URL).endswith(b"/caf\xc3\xa9")
    assert c.getinfo(c.EFFECTIVE_URL).endswith("/caf\u00e9")
    c.close()


def test_getinfo_before_perform_and_bad_infos():
    c = Curl()
    assert c.getinfo(c.RESPONSE_CODE) == 0
    assert c.getinfo(c.ACTIVESOCKET) == -1
    with pytest.raises(TypeError):
        c.getinfo("RESPONSE_CODE")
    with pytest.raises(error) as ei:
        c.getinfo(INFO_LONG + 9999)
    assert ei.value.args[0] == curlmulti.E_UNKNOWN_OPTION
    with pytest.raises(error):
        c.getinfo(12345)
    c.close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server with a fresh self-signed certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    d = tmp_path_factory.mktemp("tls")
    key, cert = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=curlmulti-test",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"secure")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with open(cert, "rb") as f:
        pem = f.read()
    yield "https://127.0.0.1:%d/" % server.server_address[1], pem
    server.shutdown()
    server.server_close()


def test_certinfo_over_tls(tls_server):
    url, pem = tls_server
    c = Curl()
    c.setopt(c.URL, url)
    c.setopt(c.CAINFO_BLOB, pem)  # verification on, against our own certificate
    c.setopt(c.OPT_CERTINFO, 1)
    assert c.perform_rb() == b"secure"
    certs = c.getinfo(c.INFO_CERTINFO)
    assert len(certs) == 1
    fields = dict(certs[0])
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in certs[0])
    assert "curlmulti-test" in fields["Subject"]
    assert fields["Cert"].startswith("-----BEGIN CERTIFICATE-----")
    raw = c.getinfo_raw(c.INFO_CERTINFO)
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in raw[0])
    assert dict(raw[0])[b"Subject"] == fields["Subject"].encode()
    assert c.getinfo(c.SSL_VERIFYRESULT) == 0
    c.close()


def test_tls_verification_fails_without_the_ca(tls_server):
    url, _ = tls_server
    c = Curl()
    c.setopt(c.URL, url)
    c.setopt(c.CAINFO, os.devnull)
    c.setopt(c.CAPATH, None)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] in (curlmulti.E_PEER_FAILED_VERIFICATION,
                                curlmulti.E_SSL_CACERT_BADFILE)
    c.close()


# -- reset, duphandle ---------------------------------------------------------------

def test_reset(httpbin):
    c = Curl()
    seen = []
    c.setopt(c.URL, httpbin("/headers"))
    c.setopt(c.USERAGENT, "before-reset")
    c.setopt(c.HTTPHEADER, ["X-Before: 1"])
    c.setopt(c.WRITEFUNCTION, seen.append)
    c.reset()
    with pytest.raises(error) as ei:
        c.perform()                       # no URL any more
    assert ei.value.args[0] == curlmulti.E_URL_MALFORMAT
    c.setopt(c.URL, httpbin("/headers"))
    headers = json.loads(c.perform_rb().decode())["headers"]
    assert seen == []
    assert "X-Before" not in headers and headers.get("User-Agent") != "before-reset"
    # The error buffer still works after a reset.
    c.setopt(c.URL, "htp://nope/")
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.args[1] == c.errstr() and "htp" in c.errstr()
    c.close()


def test_duphandle_copies_options(fast_server):
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.POSTFIELDS, b"posted\0data")
    c.setopt(c.HTTPHEADER, ["Content-Type: text/x-dup"])
    d = c.duphandle()
    assert d is not c and isinstance(d, Curl)
    assert d.perform_rb() == b"posted\0data"
    assert d.getinfo(d.CONTENT_TYPE) == "text/x-dup"
    c.close()
    d.close()


def test_duphandle_survives_the_original(fast_server):
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.POSTFIELDS, b"A" * 5000 + b"\0" + b"B" * 5000)
    c.setopt(c.HTTPHEADER, ["Content-Type: text/x-orig"])
    got = []
    c.setopt(c.WRITEFUNCTION, got.append)
    d = c.duphandle()
    c.close()
    del c
    collect()
    [os.urandom(10001) for _ in range(100)]  # reuse whatever was freed
    d.perform()
    assert b"".join(got) == b"A" * 5000 + b"\0" + b"B" * 5000
    assert d.getinfo(d.CONTENT_TYPE) == "text/x-orig"
    d.close()


def test_duphandle_owns_its_callbacks(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/10"))
    first = []
    c.setopt(c.WRITEFUNCTION, first.append)
    d = c.duphandle()
    second = []
    d.setopt(d.WRITEFUNCTION, second.append)
    c.perform()
    assert sum(map(len, first)) == 10 and second == []
    d.perform()
    assert sum(map(len, second)) == 10 and sum(map(len, first)) == 10
    # A failure in the copy's callback is the copy's.
    d.setopt(d.WRITEFUNCTION, lambda data: 1 / 0)
    with pytest.raises(error):
        d.perform()
    assert isinstance(d.callback_error, ZeroDivisionError)
    assert c.callback_error is None
    c.perform()
    assert c.callback_error is None
    # Resetting the original leaves the copy alone.
    c.reset()
    d.setopt(d.WRITEFUNCTION, second.append)
    d.perform()
    assert sum(map(len, second)) == 20
    c.close()
    d.close()


# -- pause -----------------------------------------------------------------------

def test_pause_and_unpause_from_progress(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/30000"))
    chunks, state = [], {"paused": 0, "ticks": 0}

    def write(data):
        if not state["paused"]:
            state["paused"] = 1
            return curlmulti.WRITEFUNC_PAUSE  # libcurl keeps this chunk for later
        chunks.append(data)

    def progress(*args):
        if state["paused"] == 1:
            state["ticks"] += 1
            if state["ticks"] == 3:
                state["paused"] = 2
                c.unpause()

    c.setopt(c.WRITEFUNCTION, write)
    c.setopt(c.XFERINFOFUNCTION, progress)
    c.setopt(c.NOPROGRESS, 0)
    c.perform()
    assert state == {"paused": 2, "ticks": 3}
    assert sum(map(len, chunks)) == 30000
    c.close()


def test_pause_all_and_cont(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/20000"))
    got, ticks = [], []

    def write(data):
        if not got:
            c.pause(curlmulti.PAUSE_ALL)
        got.append(data)

    def progress(*args):
        if len(got) == 1 and not ticks:
            ticks.append(1)
            c.pause(curlmulti.PAUSE_CONT)

    c.setopt(c.WRITEFUNCTION, write)
    c.setopt(c.XFERINFOFUNCTION, progress)
    c.setopt(c.NOPROGRESS, 0)
    c.perform()
    assert ticks == [1] and sum(map(len, got)) == 20000
    with pytest.raises(TypeError):
        c.pause("all")
    c.close()


# -- errstr ------------------------------------------------------------------------

def test_errstr_and_errstr_raw(refused_port, httpbin):
    c = Curl()
    assert c.errstr() == "" and c.errstr_raw() == b""
    c.setopt(c.URL, refused_port("/"))
    with pytest.raises(error) as ei:
        c.perform()
    assert c.errstr() == ei.value.args[1]
    assert c.errstr_raw() == ei.value.args[1].encode()
    assert "Failed to connect" in c.errstr()
    c.setopt(c.URL, httpbin("/get"))
    c.perform_rb()
    assert c.errstr() == ""   # cleared by the next transfer
    c.close()


def test_errstr_is_per_handle_after_duphandle_and_reset(refused_port):
    # Each Curl has its own error buffer: a duplicate's failure is not
    # written into the original's, and reset() keeps the buffer bound.
    c = Curl()
    c.setopt(c.URL, refused_port("/"))
    with pytest.raises(error):
        c.perform()
    first = c.errstr()
    assert "Failed to connect" in first
    d = c.duphandle()
    assert d.errstr() == ""
    d.setopt(d.URL, "htp://bad-scheme/")
    with pytest.raises(error) as ei:
        d.perform()
    assert d.errstr() == ei.value.args[1] and "htp" in d.errstr()
    assert c.errstr() == first
    c.reset()
    c.setopt(c.URL, "htp://other/")
    with pytest.raises(error) as ei:
        c.perform()
    assert c.errstr() == ei.value.args[1] and "htp" in c.errstr()
    assert "htp" in d.errstr()
    d.close()
    c.close()


# -- close, closed, context manager ------------------------------------------------

def test_close_is_idempotent():
    c = Curl()
    assert not c.closed
    c.close()
    assert c.closed
    c.close()
    assert c.closed
    assert "closed" in repr(c)


def test_context_manager(httpbin):
    with Curl() as c:
        assert isinstance(c, Curl) and not c.closed
        c.setopt(c.URL, httpbin("/get"))
        c.perform_rb()
    assert c.closed
    with pytest.raises(ZeroDivisionError):
        with Curl() as c2:
            1 / 0
    assert c2.closed


def test_subclass():
    class MyCurl(Curl):
        def __init__(self):
            Curl.__init__(self)
            self.extra = 1

    c = MyCurl()
    c.setopt(c.VERBOSE, 0)
    assert c.extra == 1
    c.close()


# -- constants on objects ------------------------------------------------------------

def test_constants_are_attributes_of_curl_objects():
    c = Curl()
    names = [name for name, _ in CONSTANT_NAMES if hasattr(curlmulti, name)]
    assert len(names) > 500
    for name in names:
        assert getattr(c, name) == getattr(Curl, name) == getattr(curlmulti, name), name
    c.close()
    assert c.URL == curlmulti.URL   # still there once closed


# -- threads ----------------------------------------------------------------------------

def test_calls_from_another_thread_during_perform(slow_body_server):
    c = Curl()
    c.setopt(c.URL, slow_body_server("/?bytes=30&interval=0.05"))
    started = threading.Event()
    got = []

    def write(data):
        got.append(data)
        started.set()

    c.setopt(c.WRITEFUNCTION, write)
    errors = []

    def run():
        try:
            c.perform()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    try:
        assert started.wait(10)
        for call in (c.perform, c.perform_rb, c.reset, c.close,
                     lambda: c.setopt(c.VERBOSE, 1),
                     lambda: c.unsetopt(c.HTTPHEADER)):
            with pytest.raises(error) as ei:
                call()
            assert "perform() is currently running" in ei.value.args[1]
        for call in (lambda: c.getinfo(c.RESPONSE_CODE), lambda: c.getinfo(c.EFFECTIVE_URL),
                     c.errstr, lambda: c.pause(c.PAUSE_ALL)):
            # libcurl's state is the other thread's while it runs (pycurl 7.48+ too)
            with pytest.raises(error) as ei:
                call()
            assert "perform() is currently running on another thread" in ei.value.args[1]
    finally:
        t.join(20)
    assert not t.is_alive() and errors == []
    assert len(b"".join(got)) == 30
    assert not c.closed
    c.perform()        # usable again once the other thread is done
    c.close()


def test_two_handles_in_two_threads(httpbin):
    results = {}

    def run(i):
        with Curl() as c:
            c.setopt(c.URL, httpbin("/bytes/%d" % (1000 + i)))
            results[i] = len(c.perform_rb())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: 1000 + i for i in range(8)}


def test_gc_of_unclosed_handle_frees_it(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.perform_rb()
    ref = weakref.ref(c)
    del c
    collect()
    assert ref() is None


# -- pycurl extras: CONNECT_ONLY recv/send, multi(), share(), set_ca_certs ---------------

def _wait(c, readable, timeout=10):
    import select
    fd = c.getinfo(c.ACTIVESOCKET)
    r, w, _ = select.select([fd] if readable else [], [] if readable else [fd], [], timeout)
    assert r or w, "socket not ready"


def test_connect_only_send_and_recv(fast_server):
    c = Curl()
    c.setopt(c.URL, fast_server("/"))
    c.setopt(c.CONNECT_ONLY, 1)
    c.perform()
    request = b"GET /bytes/300 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    sent = 0
    while sent < len(request):
        try:
            sent += c.send(memoryview(request)[sent:])
        except BlockingIOError:
            _wait(c, readable=False)
    data = b""
    while True:
        try:
            chunk = c.recv(64) if len(data) % 2 else c.recv(1000)
        except BlockingIOError as e:
            assert e.errno == errno.EAGAIN
            _wait(c, readable=True)
            continue
        if not chunk:
            break                          # the server closed the connection
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == bytes(range(256)) + bytes(range(44))
    c.close()


def test_connect_only_recv_into(fast_server):
    c = Curl()
    c.setopt(c.URL, fast_server("/"))
    c.setopt(c.CONNECT_ONLY, 1)
    c.perform()
    _wait(c, readable=False)
    c.send(b"GET /bytes/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    buf = bytearray(4096)
    got = b""
    while not got.endswith(b"\x00\x01\x02\x03\x04"):
        try:
            n = c.recv_into(buf)
        except BlockingIOError:
            _wait(c, readable=True)
            continue
        assert n > 0
        got += bytes(buf[:n])
    with pytest.raises(ValueError):
        c.recv_into(buf, len(buf) + 1)
    with pytest.raises(ValueError):
        c.recv_into(buf, -1)
    with pytest.raises(TypeError):
        c.recv_into(b"read-only")
    with pytest.raises(ValueError):
        c.recv(-1)
    with pytest.raises(TypeError):
        c.send("text")
    c.close()


def test_recv_without_connection():
    c = Curl()
    with pytest.raises(error) as ei:
        c.recv(10)
    assert ei.value.args[0] == curlmulti.E_UNSUPPORTED_PROTOCOL
    c.close()
    with pytest.raises(error):
        c.send(b"x")


def test_multi_and_share_accessors():
    c = Curl()
    assert c.multi() is None and c.share() is None
    m = curlmulti.CurlMulti()
    m.add_handle(c)
    assert c.multi() is m
    m.remove_handle(c)
    assert c.multi() is None
    m.close()
    c.close()
    assert c.multi() is None  # as pycurl: no error on a closed handle


def test_set_ca_certs(tls_server):
    url, pem = tls_server
    for certs in (pem, pem.decode("ascii")):
        c = Curl()
        c.setopt(c.URL, url)
        c.set_ca_certs(certs)
        assert c.perform_rb() == b"secure"
        c.close()
    c = Curl()
    c.setopt(c.URL, url)
    c.set_ca_certs(b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    with pytest.raises(error):
        c.perform_rb()
    with pytest.raises(TypeError):
        c.set_ca_certs(1)
    c.close()


# -- HTTPPOST (pycurl's multipart form list) -------------------------------------------------

def test_httppost_fields_files_and_buffers(httpbin, tmp_path):
    path = tmp_path / "upload.txt"
    path.write_bytes(b"file contents\n")
    c = Curl()
    c.setopt(c.URL, httpbin("/post"))
    c.setopt(c.HTTPPOST, [
        ("plain", "value"),
        ("bytes", b"raw"),
        ("contents", (c.FORM_CONTENTS, "typed", c.FORM_CONTENTTYPE, "text/plain")),
        ("upload", (c.FORM_FILE, str(path))),
        ("renamed", (c.FORM_FILE, str(path), c.FORM_FILENAME, "other.txt",
                     c.FORM_CONTENTTYPE, "application/x-test")),
        ("buffer", (c.FORM_BUFFER, "readme.txt", c.FORM_BUFFERPTR, b"buffer\0data")),
    ])
    got = json.loads(c.perform_rb().decode())
    assert got["form"] == {"plain": "value", "bytes": "raw", "contents": "typed"}
    assert got["files"]["upload"] == "file contents\n"
    assert got["files"]["renamed"] == "file contents\n"
    assert got["files"]["buffer"] == "buffer\0data"
    assert got["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert c.getinfo(c.EFFECTIVE_METHOD) == "POST"
    # The form survives a duphandle and the original's close.
    d = c.duphandle()
    c.close()
    collect()
    assert json.loads(d.perform_rb().decode())["form"]["plain"] == "value"
    # Unset: back to a GET.
    d.unsetopt(d.HTTPPOST)
    d.setopt(d.HTTPGET, 1)
    d.setopt(d.URL, httpbin("/get"))
    assert d.perform_rb()
    d.close()


def test_httppost_filename_reaches_the_server(fast_server, tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00\x01")
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.HTTPPOST, [("f", (c.FORM_FILE, str(path), c.FORM_FILENAME, "given.bin")),
                          ("b", (c.FORM_BUFFER, "buf.txt", c.FORM_BUFFERPTR, "x"))])
    body = c.perform_rb()
    assert b'name="f"; filename="given.bin"' in body and b"\r\n\x00\x01\r\n" in body
    assert b'name="b"; filename="buf.txt"' in body
    c.close()


def test_httppost_bad_values(tmp_path):
    c = Curl()
    for bad in ("a=b", [("name",)], [("a", "b", "c")], [("a", 1)], [("a", (c.FORM_FILE,))],
                [("a", (12345, "x"))], [1], None.__class__):
        with pytest.raises(TypeError):
            c.setopt(c.HTTPPOST, bad)
    with pytest.raises(UnicodeEncodeError):
        c.setopt(c.HTTPPOST, [("a", "\u00e9")])
    with pytest.raises(ValueError):
        c.setopt(c.HTTPPOST, [("a\0", "b")])
    # A file that is not there: refused at once (pycurl fails in perform()).
    with pytest.raises(error) as ei:
        c.setopt(c.HTTPPOST, [("f", (c.FORM_FILE, str(tmp_path / "missing")))])
    assert ei.value.args[0] == curlmulti.E_READ_ERROR
    c.close()


def test_duphandle_keeps_use_memoryview(httpbin):
    got = []
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/100"))
    c.setopt(c.WRITEFUNCTION, lambda data: got.append(type(data)), use_memoryview=True)
    c.setopt(c.HEADERFUNCTION, lambda line: got.append(type(line)), use_memoryview=True)
    d = c.duphandle()
    c.close()
    d.perform()
    assert got and set(got) == {memoryview}
    d.close()


def test_second_init_keeps_the_handle(httpbin):
    """As in pycurl, __init__ on a set-up Curl does nothing (it used to replace
    the handle and leak the old one)."""
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    body = io.BytesIO()
    c.setopt(c.WRITEFUNCTION, body.write)
    c.__init__()
    gc.collect()
    c.perform()                          # the options are still there
    assert c.getinfo(c.RESPONSE_CODE) == 200 and body.getvalue()
    c.close()
    c.__init__()
    assert c.closed
