"""The test servers themselves, checked with the standard library only
(socket, http.client, urllib), so a failing curlmulti test can trust them."""

import http.client
import json
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from servers import (BigBodyServer, FastServer, HttpbinServer, RawServer, ResetServer, ServerURL,
                     StallingServer, pattern)


def raw_exchange(url, path="/", request=None, timeout=5.0):
    """Send a GET (or ``request`` bytes) and read until EOF; returns (data, error)."""
    s = socket.create_connection((url.host, url.port), timeout=timeout)
    try:
        s.sendall(request or ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data, None
                data += chunk
        except OSError as e:
            return data, e
    finally:
        s.close()


def split_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return lines[0], headers, body


def conn(url, timeout=10):
    return http.client.HTTPConnection(url.host, url.port, timeout=timeout)


def test_pattern():
    assert pattern(0, 3) == b"\x00\x01\x02"
    assert pattern(254, 4) == b"\xfe\xff\x00\x01"
    assert pattern(65530, 70000) == bytes((i % 256) for i in range(65530, 135530))


def test_server_url():
    u = ServerURL("http://127.0.0.1:8080/")
    assert u == "http://127.0.0.1:8080" and u.url == u and u.port == 8080
    assert u("/get") == u("get") == u.url + "/get" == "http://127.0.0.1:8080/get"


# ---------------------------------------------------------------- httpbin

def test_httpbin_get(httpbin):
    with urllib.request.urlopen(httpbin("/get?a=1"), timeout=10) as r:
        assert r.status == 200
        doc = json.loads(r.read())
    assert doc["args"] == {"a": "1"}
    assert doc["url"] == httpbin.url + "/get?a=1"


def test_httpbin_post_status_bytes(httpbin):
    c = conn(httpbin)
    c.request("POST", "/post", body=b'{"x": 1}', headers={"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["json"] == {"x": 1}
    c.request("GET", "/status/418")
    r = c.getresponse()
    r.read()
    assert r.status == 418
    c.request("GET", "/bytes/1000")
    r = c.getresponse()
    assert r.status == 200 and len(r.read()) == 1000
    c.close()


def test_httpbin_many_keepalive_connections(httpbin):
    """200 connections open at once, 3 requests each, all on the same connection."""
    n = 200
    barrier = threading.Barrier(n, timeout=30)

    def client(i):
        c = conn(httpbin, timeout=30)
        c.connect()
        barrier.wait()
        sizes = []
        for _ in range(3):
            c.request("GET", "/bytes/%d" % (100 + i))
            r = c.getresponse()
            sizes.append(len(r.read()))
            assert r.getheader("Connection", "").lower() != "close"
        c.close()
        return sizes

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(client, range(n)))
    assert results == [[100 + i] * 3 for i in range(n)]


def test_httpbin_server_stops():
    server = HttpbinServer().start()
    c = conn(server.url)
    c.request("GET", "/get")
    assert c.getresponse().read()
    t0 = time.monotonic()
    server.stop()
    server.stop()
    assert time.monotonic() - t0 < 2
    assert c.sock.recv(10) == b""              # the idle keep-alive connection was closed
    c.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.url.host, server.port), timeout=5)


# ---------------------------------------------------------------- fast server

def test_fast_routes(fast_server):
    before = fast_server.server.connections
    c = conn(fast_server)
    c.request("GET", "/bytes/100000")
    r = c.getresponse()
    assert r.status == 200 and r.read() == pattern(0, 100000)
    c.request("GET", "/status/503")
    r = c.getresponse()
    assert r.status == 503 and r.read() == b""
    c.request("GET", "/status/204")
    r = c.getresponse()
    assert r.status == 204 and r.read() == b""
    c.request("POST", "/echo", body=b"hello" * 1000, headers={"Content-Type": "text/x-test"})
    r = c.getresponse()
    assert r.read() == b"hello" * 1000 and r.getheader("Content-Type") == "text/x-test"
    c.request("POST", "/echo", body=iter([b"ab", b"cd", b"e"]), encode_chunked=True)
    assert c.getresponse().read() == b"abcde"
    c.request("GET", "/headers", headers={"X-Probe": "42"})
    assert json.loads(c.getresponse().read())["headers"]["X-Probe"] == "42"
    c.request("GET", "/get?q=z")
    assert json.loads(c.getresponse().read())["args"] == {"q": "z"}
    c.request("HEAD", "/bytes/77")
    r = c.getresponse()
    assert r.getheader("Content-Length") == "77" and r.read() == b""
    c.request("GET", "/nope")
    r = c.getresponse()
    assert r.status == 404
    r.read()
    c.close()
    assert fast_server.server.connections == before + 1     # all on one connection


def test_fast_delay(fast_server):
    t0 = time.monotonic()
    with urllib.request.urlopen(fast_server("/delay/0.3"), timeout=10) as r:
        assert json.loads(r.read()) == {"delay": 0.3}
    assert 0.3 <= time.monotonic() - t0 < 2


def test_fast_expect_continue_and_close(fast_server):
    s = socket.create_connection((fast_server.host, fast_server.port), timeout=5)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
              b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
    assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"xyz")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    status, headers, body = split_response(data)
    assert status == "HTTP/1.1 200 OK" and headers["connection"] == "close" and body == b"xyz"


def test_fast_pipelining(fast_server):
    s = socket.create_connection((fast_server.host, fast_server.port), timeout=5)
    s.sendall(b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n" * 2 +
              b"GET /bytes/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.endswith(b"\r\n\r\n\x00\x01")


def test_fast_many_connections(fast_server):
    """1000 connections open at once, each with one request in flight."""
    n = 1000
    socks = [socket.create_connection((fast_server.host, fast_server.port), timeout=20)
             for _ in range(n)]
    try:
        for i, s in enumerate(socks):
            s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        for i, s in enumerate(socks):
            data = b""
            while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < i:
                chunk = s.recv(65536)
                assert chunk
                data += chunk
            assert split_response(data)[2] == pattern(0, i)
    finally:
        for s in socks:
            s.close()


def test_fast_server_stops():
    server = FastServer().start()
    s = socket.create_connection((server.host, server.port), timeout=5)
    server.stop()
    server.stop()
    assert s.recv(10) == b""
    s.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=5)


# ---------------------------------------------------------------- fault servers

def test_reset_server(reset_server):
    data, err = raw_exchange(reset_server)
    assert isinstance(err, ConnectionResetError)
    status, headers, body = split_response(data)
    assert status == "HTTP/1.1 200 OK" and headers["content-length"] == str(1 << 20)
    assert body == pattern(0, 1024)
    c = conn(reset_server)
    c.request("GET", "/")
    r = c.getresponse()
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        r.read()
    c.close()


def test_reset_server_before_headers(reset_server):
    data, err = raw_exchange(reset_server, "/before-headers")
    assert data == b"" and isinstance(err, ConnectionResetError)
    assert [r.path for r in reset_server.server.requests] == ["/before-headers"]


def test_truncating_server(truncating_server):
    data, err = raw_exchange(truncating_server)
    assert err is None
    status, headers, body = split_response(data)
    assert headers["content-length"] == "1000" and body == pattern(0, 500)
    c = conn(truncating_server)
    c.request("GET", "/?length=300&sent=10")
    with pytest.raises(http.client.IncompleteRead) as e:
        c.getresponse().read()
    assert e.value.partial == pattern(0, 10)
    c.close()


def test_truncating_server_empty(truncating_server):
    assert raw_exchange(truncating_server, "/empty") == (b"", None)


def test_stalling_server(stalling_server):
    s = socket.create_connection((stalling_server.host, stalling_server.port), timeout=0.3)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(socket.timeout):
        s.recv(100)
    s.close()
    c = conn(stalling_server, timeout=0.3)
    c.request("GET", "/after-headers")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "1000"
    with pytest.raises(socket.timeout):
        r.read()
    c.close()


def test_stalling_server_stops_quickly():
    server = StallingServer().start()
    s = socket.create_connection((server.host, server.port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    while not server.requests:
        time.sleep(0.01)
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 1
    assert s.recv(10) == b""
    s.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("stalling-")]


def test_garbage_server(garbage_server):
    data, err = raw_exchange(garbage_server)
    assert err is None and data and not data.startswith(b"HTTP/")
    c = conn(garbage_server)
    c.request("GET", "/")
    with pytest.raises(http.client.HTTPException):
        c.getresponse()
    c.close()


def test_slow_body_server(slow_body_server):
    t0 = time.monotonic()
    c = conn(slow_body_server)
    c.request("GET", "/?bytes=10&interval=0.05")
    r = c.getresponse()
    assert r.getheader("Content-Length") == "10"
    assert r.read() == pattern(0, 10)
    assert time.monotonic() - t0 >= 9 * 0.05
    c.request("GET", "/?bytes=6&chunk=3&interval=0.01")        # keep-alive
    assert c.getresponse().read() == pattern(0, 6)
    c.close()
    assert slow_body_server.server.connections == 1


def test_refused_port(refused_port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((refused_port.host, refused_port.port), timeout=5)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(refused_port("/"), timeout=5)


def test_big_body_server(big_body_server):
    size = 64 << 20
    c = conn(big_body_server)
    c.request("GET", "/bytes/%d" % size)
    r = c.getresponse()
    assert r.getheader("Content-Length") == str(size)
    got = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        assert chunk[:300] == pattern(got, min(300, len(chunk)))
        got += len(chunk)
    assert got == size
    c.request("GET", "/bytes/1000", headers={"Range": "bytes=300-"})       # keep-alive
    r = c.getresponse()
    assert r.status == 206 and r.getheader("Content-Range") == "bytes 300-999/1000"
    assert r.read() == pattern(300, 700)
    c.request("HEAD", "/bytes/5")
    r = c.getresponse()
    assert r.getheader("Content-Length") == "5" and r.read() == b""
    c.close()


def test_big_body_server_gigabyte_without_memory(big_body_server):
    """A 1 GiB body read in part and dropped: the server streams and notices."""
    url = big_body_server(1 << 30)
    assert url == big_body_server.url + "/bytes/1073741824"
    c = conn(big_body_server)
    c.request("GET", "/bytes/%d" % (1 << 30))
    r = c.getresponse()
    assert r.getheader("Content-Length") == str(1 << 30)
    assert r.read(1 << 20) == pattern(0, 1 << 20)
    c.close()


def test_raw_servers_stop_idempotent():
    for cls in (ResetServer, BigBodyServer):
        server = cls().start()
        server.stop()
        server.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((server.host, server.port), timeout=5)
    assert issubclass(ResetServer, RawServer)
