"""WebSockets (ws_send, ws_recv, ws_recv_into, ws_close, ws_meta, WsFrame)
against a local server (wsserver.py); skipped where the libcurl loaded has
no WebSockets, where the names must not exist at all."""

import os
import select

import pytest

import curlmulti
from curlmulti import Curl, error
from fdguard import GUARD
from wsserver import BINARY, CLOSE, PING, TEXT, WsServer

HAS_WS = "ws" in curlmulti.version_info()[8]
needs_ws = pytest.mark.skipif(not HAS_WS, reason="this libcurl has no WebSockets")
WS_NAMES = ("ws_send", "ws_recv", "ws_recv_into", "ws_close", "ws_meta")


@pytest.fixture(scope="module")
def ws_server():
    server = WsServer()
    server.start()
    owned = server.owned_fds()
    GUARD.protect_all(owned)
    try:
        yield server
    finally:
        GUARD.release(owned)
        server.stop()


def test_names_exist_only_with_websockets():
    for name in WS_NAMES:
        assert hasattr(Curl, name) == HAS_WS, name
    assert hasattr(curlmulti, "WsFrame") == HAS_WS
    assert ("WsFrame" in curlmulti.__all__) == HAS_WS


def connect(url):
    c = Curl()
    c.setopt(c.URL, url)
    c.setopt(c.CONNECT_ONLY, 2)
    c.perform()
    return c


def wait(c):
    fd = c.getinfo(c.ACTIVESOCKET)
    select.select([fd], [], [], 10)


def recv_message(c):
    """(payload, frame flags) of one whole message."""
    out, flags = b"", None
    while True:
        try:
            data, meta = c.ws_recv(65536)
        except BlockingIOError:
            wait(c)
            continue
        out += data
        flags = meta.flags if flags is None else flags
        if meta.bytesleft == 0 and not meta.flags & curlmulti.WS_CONT:
            return out, flags


@needs_ws
def test_detached_send_and_receive(ws_server):
    c = connect(ws_server.url + "/echo")
    assert c.ws_send("héllo") == len("héllo".encode())
    data, flags = recv_message(c)
    assert data == "héllo".encode() and flags & curlmulti.WS_TEXT
    assert c.ws_send(b"\x00\x01\x02") == 3
    data, flags = recv_message(c)
    assert data == b"\x00\x01\x02" and flags & curlmulti.WS_BINARY
    assert c.ws_send(bytearray(b"bin"), curlmulti.WS_TEXT) == 3
    big = os.urandom(100000)
    sent = 0
    while sent < len(big):
        try:
            sent += c.ws_send(memoryview(big)[sent:], curlmulti.WS_BINARY)
        except BlockingIOError:
            select.select([], [c.getinfo(c.ACTIVESOCKET)], [], 10)
    assert recv_message(c)[0] == b"bin"
    assert recv_message(c)[0] == big
    assert c.ws_close(1000, "done") > 0
    data, flags = recv_message(c)  # the server answers with the same close frame
    assert data == b"\x03\xe8done" and flags & curlmulti.WS_CLOSE
    c.close()
    assert (TEXT, "héllo".encode()) in ws_server.frames
    assert (BINARY, big) in ws_server.frames
    assert (CLOSE, b"\x03\xe8done") in ws_server.frames


@needs_ws
def test_recv_into_and_frame_metadata(ws_server):
    c = connect(ws_server.url + "/hello")
    buf = bytearray(64)
    while True:
        try:
            n, meta = c.ws_recv_into(buf)
            break
        except BlockingIOError:
            wait(c)
    assert bytes(buf[:n]) == b"hello"
    assert isinstance(meta, curlmulti.WsFrame)
    assert meta.flags & curlmulti.WS_TEXT and meta.len == 5 and meta.bytesleft == 0
    assert c.ws_meta() is None  # outside a write callback
    with pytest.raises(ValueError):
        c.ws_recv_into(buf, 65)
    with pytest.raises(TypeError):
        c.ws_recv_into(b"read-only")
    with pytest.raises(ValueError):
        c.ws_recv(-1)
    with pytest.raises(BlockingIOError):
        c.ws_recv(10)  # nothing was sent to us
    c.ws_send(b"ping!", curlmulti.WS_PING)
    c.ws_close()
    seen = []
    while not seen or not seen[-1][1] & curlmulti.WS_CLOSE:
        seen.append(recv_message(c))
    assert seen[-1][0] == b""  # the server echoed the empty close
    assert all(flags & curlmulti.WS_PONG for _, flags in seen[:-1])  # and answered the ping
    c.close()
    assert (PING, b"ping!") in ws_server.frames


@needs_ws
def test_argument_rules():
    c = Curl()
    with pytest.raises(TypeError):
        c.ws_send(None)
    with pytest.raises(TypeError):
        c.ws_send("text", curlmulti.WS_BINARY)
    with pytest.raises(TypeError):
        c.ws_send("text", curlmulti.WS_CLOSE)
    with pytest.raises(UnicodeEncodeError):
        c.ws_send("é", encoding="ascii")
    with pytest.raises(ValueError):
        c.ws_close(1005)
    with pytest.raises(ValueError):
        c.ws_close(None, "reason")
    with pytest.raises(ValueError):
        c.ws_close(1000, "x" * 124)
    with pytest.raises(UnicodeDecodeError):
        c.ws_close(1000, b"\xff")
    with pytest.raises(error):
        c.ws_send(b"not connected")
    c.close()
    with pytest.raises(error, match="closed"):
        c.ws_send(b"x")


@needs_ws
def test_write_callback_mode_with_meta_and_reply(ws_server):
    c = Curl()
    c.setopt(c.URL, ws_server.url + "/hello")
    got = []

    def write(data):
        meta = c.ws_meta()
        got.append((data, meta))
        if data == b"hello":
            c.ws_send(b"reply")  # blocking inside the callback
        elif data == b"reply":
            c.ws_close(1000)
    c.setopt(c.WRITEFUNCTION, write)
    try:
        c.perform()
    except error:
        pass  # some libcurl versions end a closed connection with an error
    c.close()
    assert got[0][0] == b"hello" and got[0][1].flags & curlmulti.WS_TEXT
    assert got[1][0] == b"reply" and got[1][1].flags & curlmulti.WS_BINARY
    assert (BINARY, b"reply") in ws_server.frames
    assert (CLOSE, b"\x03\xe8") in ws_server.frames


@needs_ws
def test_exception_in_callback_reaches_perform(ws_server):
    c = Curl()
    c.setopt(c.URL, ws_server.url + "/hello")

    def write(data):
        raise RuntimeError("from a websocket write")
    c.setopt(c.WRITEFUNCTION, write)
    with pytest.raises(error) as info:
        c.perform()
    assert isinstance(info.value.__cause__, RuntimeError)
    c.close()


def test_loaded_libcurl_is_the_one_asked_for():
    """scripts/test.sh with CURLMULTI_LIBCURL=8.14 builds against Debian's
    backported libcurl: the module must really have loaded it."""
    want = os.environ.get("CURLMULTI_LIBCURL")
    if not want:
        pytest.skip("CURLMULTI_LIBCURL not set: the system libcurl")
    assert curlmulti.version_info()[1].startswith(want + "."), curlmulti.version
    assert "libcurl/" + want + "." in curlmulti.version
