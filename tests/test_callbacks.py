"""Every easy-handle callback: pycurl's signature and return-value rules,
an exception raised in it reaching perform()'s caller as ``__cause__`` of
``error``, and KeyboardInterrupt travelling as itself."""

import gc
import io
import os
import platform
import socket
import stat
import sys
import weakref

import pytest

import curlmulti
from curlmulti import Curl, error

E = curlmulti


def put_with_307(c, url, payload):
    """A PUT that the server redirects with 307: libcurl must rewind the
    upload (SEEKFUNCTION, else IOCTLFUNCTION) to send it again."""
    c.setopt(c.URL, url("/redirect-to?url=/put&status_code=307"))
    c.setopt(c.FOLLOWLOCATION, 1)
    c.setopt(c.UPLOAD, 1)
    src = io.BytesIO(payload)
    c.setopt(c.READFUNCTION, src.read)
    c.setopt(c.INFILESIZE, len(payload))
    return src


# -- WRITEFUNCTION ------------------------------------------------------------

def test_write_callback_gets_bytes(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/50000"))
    chunks = []
    c.setopt(c.WRITEFUNCTION, chunks.append)  # returns None: all consumed
    c.perform()
    assert all(type(x) is bytes for x in chunks)
    assert sum(map(len, chunks)) == 50000
    c.close()


@pytest.mark.parametrize("result, ok", [
    (None, True), ("len", True), (0, False), ("half", False), (True, False)])
def test_write_callback_return_values(httpbin, result, ok):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/100"))

    def write(data):
        if result == "len":
            return len(data)
        if result == "half":
            return len(data) // 2
        return result

    c.setopt(c.WRITEFUNCTION, write)
    if ok:
        c.perform()
    else:
        with pytest.raises(error) as ei:
            c.perform()
        assert ei.value.args[0] == E.E_WRITE_ERROR
        assert ei.value.__cause__ is None
    c.close()


@pytest.mark.parametrize("result, exc_type", [("x", TypeError), (-1, None), (1.0, TypeError),
                                              (1 << 70, OverflowError)])
def test_write_callback_bad_return_values(httpbin, result, exc_type):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/100"))
    c.setopt(c.WRITEFUNCTION, lambda data: result)
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.args[0] == E.E_WRITE_ERROR
    if exc_type is None:  # as pycurl: a C long cast to size_t, not the count given
        assert ei.value.__cause__ is None
    else:
        assert isinstance(ei.value.__cause__, exc_type)
    c.close()


# -- HEADERFUNCTION -----------------------------------------------------------

@pytest.mark.parametrize("option", ["WRITEFUNCTION", "HEADERFUNCTION"])
def test_use_memoryview_gives_a_read_only_view_released_after_the_call(httpbin, option):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/50000?seed=3"))
    views, copies = [], []

    def take(view):
        assert type(view) is memoryview and view.readonly
        views.append(view)
        copies.append(bytes(view))

    if option == "HEADERFUNCTION":
        c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(getattr(c, option), take, use_memoryview=True)
    c.perform()
    assert views and all(_released(v) for v in views)
    if option == "WRITEFUNCTION":
        c.unsetopt(c.WRITEFUNCTION)
        assert b"".join(copies) == c.perform_rb()  # the same bytes as without views
        assert len(b"".join(copies)) == 50000
    else:
        assert copies[0].startswith(b"HTTP/1.1 200")
    c.close()


def _released(view):
    try:
        len(view)
    except ValueError:
        return True
    return False


def test_use_memoryview_then_bytes_again(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/3000"))
    got = []
    c.setopt(c.WRITEFUNCTION, got.append, use_memoryview=True)
    c.perform()
    assert got and type(got[0]) is memoryview
    got.clear()
    c.setopt(c.WRITEFUNCTION, got.append)  # the flag goes with each setopt
    c.perform()
    assert got and all(type(x) is bytes for x in got) and sum(map(len, got)) == 3000
    c.close()


def test_use_memoryview_only_for_body_and_header_callbacks():
    c = Curl()
    with pytest.raises(TypeError, match="use_memoryview"):
        c.setopt(c.READFUNCTION, lambda n: b"", use_memoryview=True)
    with pytest.raises(TypeError, match="use_memoryview"):
        c.setopt(c.URL, "http://127.0.0.1/", use_memoryview=True)
    with pytest.raises(TypeError):
        c.setopt(c.WRITEFUNCTION, print, True)  # keyword-only, as in pycurl
    c.close()


def test_replacing_the_write_callback_between_transfers(httpbin, tmp_path):
    """The trampoline stays installed when only the callable changes; a C
    sink in between takes it out and a callable puts it back."""
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/1000"))
    for _ in range(3):
        buf = io.BytesIO()
        c.setopt(c.WRITEFUNCTION, buf.write)
        c.perform()
        assert len(buf.getvalue()) == 1000
    sink = curlmulti.Buffer()
    c.setopt(c.WRITEFUNCTION, sink.write)
    c.perform()
    assert len(sink.getvalue()) == 1000
    chunks = []
    c.setopt(c.WRITEFUNCTION, chunks.append)
    c.perform()
    assert sum(map(len, chunks)) == 1000 and len(sink.getvalue()) == 1000
    c.close()


def test_the_write_trampoline_is_in_c_on_cpython():
    """On CPython a Python WRITEFUNCTION is called by a C trampoline (the
    tests above then check it); PyPy keeps the cffi one."""
    from curlmulti import _callbacks
    assert _callbacks.C_WRITE is (platform.python_implementation() == "CPython")


@pytest.mark.parametrize("option", ["WRITEFUNCTION", "HEADERFUNCTION"])
def test_a_builtin_body_or_header_callback_that_raises(httpbin, option):
    """A callable with no Python frame (a closed BytesIO's write) raising:
    the cause is its exception, the transfer fails with a write error."""
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/5000"))
    buf = io.BytesIO()
    buf.close()
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(getattr(c, option), buf.write)
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.args[0] == E.E_WRITE_ERROR
    assert isinstance(ei.value.__cause__, ValueError)
    c.close()


class _Count(int):
    pass


@pytest.mark.parametrize("kind, ok", [("subclass", True), ("pause-then-more", True), ("huge", False)])
def test_write_callback_results_off_the_common_path(httpbin, kind, ok):
    """Results other than None and the length as an exact int: an int
    subclass equal to the length, a pause (the chunk is delivered again once
    unpaused), a number out of range."""
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/3000?seed=7"))
    got = []
    paused = []

    def write(data):
        if kind == "pause-then-more" and not paused:
            paused.append(True)
            return E.WRITEFUNC_PAUSE
        got.append(data)
        if kind == "huge":
            return 1 << 64
        return _Count(len(data))

    def progress(*args):
        if paused and len(paused) == 1:
            paused.append(True)
            c.pause(E.PAUSE_CONT)
        return 0

    c.setopt(c.WRITEFUNCTION, write)
    c.setopt(c.NOPROGRESS, 0)
    c.setopt(c.XFERINFOFUNCTION, progress)
    if ok:
        c.perform()
        assert sum(map(len, got)) == 3000
        assert len(paused) == (2 if kind == "pause-then-more" else 0)
    else:
        with pytest.raises(error) as ei:
            c.perform()
        assert ei.value.args[0] == E.E_WRITE_ERROR
        assert isinstance(ei.value.__cause__, OverflowError)
    c.close()


def test_the_body_and_header_trampolines_hold_no_references(httpbin):
    """What the trampolines are given and given back (the callables, each
    chunk, each result, an exception) is not kept: the reference counts are
    as before (CPython; PyPy has no reference counts to read)."""
    refcount = getattr(sys, "getrefcount", None)
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/20000"))
    chunks, results, lines, views = [], [], [], []

    def write(data):
        chunks.append(data)
        results.append(_Count(len(data)))
        return results[-1]

    def header(line):
        lines.append(line)

    c.setopt(c.WRITEFUNCTION, write)
    c.setopt(c.HEADERFUNCTION, header)
    before = refcount and (refcount(write), refcount(header))
    for _ in range(5):
        c.perform()
    assert sum(map(len, chunks)) == 5 * 20000 and len(results) == len(chunks) and lines
    assert refcount is None or (refcount(write), refcount(header)) == before
    # The memoryview path, and a callback that raises one exception object.
    c.setopt(c.WRITEFUNCTION, lambda view: views.append(bytes(view)), use_memoryview=True)
    c.perform()
    assert sum(map(len, views)) == 20000
    failure = _raise_and_forget(c)
    assert c.callback_error is None
    if refcount is not None:
        held = [_Count(7), bytes(range(10))]  # in a list only, as each chunk should be
        expected = {refcount(x) for x in held}
        assert len(expected) == 1
        # (a one-byte bytes object is a shared singleton: left out)
        counts = {refcount(x) for group in (chunks, lines, views) for x in group if len(x) > 1}
        counts |= {refcount(x) for x in results}
        assert counts == expected
    gc.collect()
    assert failure() is None  # the exception a callback raised is not kept alive
    c.close()


class _Stop(Exception):
    pass  # a Python subclass: weak references to it can be made


def _raise_and_forget(c):
    """A transfer whose callback raises; then one that succeeds (which
    forgets the stored exception).  A weak reference to the exception."""
    failure = _Stop("stop")

    def fail(data):
        raise failure

    c.setopt(c.WRITEFUNCTION, fail)
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.__cause__ is failure
    del ei
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.perform()
    return weakref.ref(failure)


def test_header_callback_gets_each_line(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/response-headers?X-Test=value"))
    lines = []
    c.setopt(c.HEADERFUNCTION, lines.append)
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.perform()
    assert lines[0].startswith(b"HTTP/1.1 200")
    assert b"X-Test: value\r\n" in lines
    assert lines[-1] == b"\r\n"
    assert all(type(x) is bytes and x.endswith(b"\r\n") for x in lines)
    c.setopt(c.HEADERFUNCTION, lambda line: 0)
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.args[0] == E.E_WRITE_ERROR
    c.close()


# -- READFUNCTION ----------------------------------------------------------------

def test_read_callback_bytes_and_str(fast_server):
    pieces = [b"abc", "def", b"\0\xff", b""]
    sizes = []

    def read(size):
        sizes.append(size)
        return pieces.pop(0)

    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.UPLOAD, 1)
    c.setopt(c.READFUNCTION, read)
    c.setopt(c.INFILESIZE, 8)
    assert c.perform_rb() == b"abcdef\0\xff"
    assert all(isinstance(n, int) and n > 0 for n in sizes)
    c.close()


def test_read_callback_chunked_upload(fast_server):
    payload = os.urandom(300000)
    src = io.BytesIO(payload)
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.POST, 1)
    c.setopt(c.HTTPHEADER, ["Transfer-Encoding: chunked"])
    c.setopt(c.READFUNCTION, src.read)
    assert c.perform_rb() == payload
    c.close()


def test_read_callback_abort(fast_server):
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.UPLOAD, 1)
    c.setopt(c.INFILESIZE, 100)
    c.setopt(c.READFUNCTION, lambda size: E.READFUNC_ABORT)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_ABORTED_BY_CALLBACK
    assert ei.value.__cause__ is None and c.callback_error is None
    c.close()


def test_read_callback_pause_and_unpause(fast_server):
    state = {"paused": False, "resumed": False}
    data = [b"hello ", b"world", b""]

    def read(size):
        if not state["paused"]:
            state["paused"] = True
            return E.READFUNC_PAUSE
        return data.pop(0)

    def progress(*args):
        if state["paused"] and not state["resumed"]:
            state["resumed"] = True
            c.unpause()

    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.UPLOAD, 1)
    c.setopt(c.INFILESIZE, 11)
    c.setopt(c.READFUNCTION, read)
    c.setopt(c.XFERINFOFUNCTION, progress)
    c.setopt(c.NOPROGRESS, 0)
    assert c.perform_rb() == b"hello world"
    assert state == {"paused": True, "resumed": True}
    c.close()


@pytest.mark.parametrize("result, exc_type", [
    (None, TypeError), (3, ValueError), (1.5, TypeError), ("\u00e9", UnicodeEncodeError),
    (b"x" * 1000000, ValueError)])
def test_read_callback_bad_return_values(fast_server, result, exc_type):
    c = Curl()
    c.setopt(c.URL, fast_server("/echo"))
    c.setopt(c.UPLOAD, 1)
    c.setopt(c.INFILESIZE, 10)
    c.setopt(c.READFUNCTION, lambda size: result)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_ABORTED_BY_CALLBACK
    assert isinstance(ei.value.__cause__, exc_type)
    c.close()


# -- XFERINFOFUNCTION, PROGRESSFUNCTION ---------------------------------------------

@pytest.mark.parametrize("option, number", [("XFERINFOFUNCTION", int), ("PROGRESSFUNCTION", float)])
def test_progress_callbacks(httpbin, option, number):
    calls = []
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/20000"))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(getattr(c, option), lambda *args: calls.append(args))
    c.setopt(c.NOPROGRESS, 0)
    c.perform()
    assert calls
    assert all(len(a) == 4 and all(type(x) is number for x in a) for a in calls)
    assert calls[-1][0] == calls[-1][1] == 20000       # dltotal, dlnow
    # A true result aborts the transfer; no exception is involved.
    c.setopt(getattr(c, option), lambda *args: 1)
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.args[0] == E.E_ABORTED_BY_CALLBACK and ei.value.__cause__ is None
    c.setopt(getattr(c, option), lambda *args: 0)
    c.perform()
    c.close()


def test_progress_not_called_with_noprogress(httpbin):
    calls = []
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/100"))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(c.XFERINFOFUNCTION, lambda *args: calls.append(args))
    c.perform()           # NOPROGRESS defaults to 1
    assert calls == []
    c.close()


# -- DEBUGFUNCTION -----------------------------------------------------------------

def test_debug_callback(httpbin):
    seen = []
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.VERBOSE, 1)
    c.setopt(c.DEBUGFUNCTION, lambda kind, data: seen.append((kind, data)))
    c.perform_rb()
    kinds = {k for k, _ in seen}
    assert {E.INFOTYPE_TEXT, E.INFOTYPE_HEADER_OUT, E.INFOTYPE_HEADER_IN} <= kinds
    assert all(type(d) is bytes for _, d in seen)
    out = b"".join(d for k, d in seen if k == E.INFOTYPE_HEADER_OUT)
    assert out.startswith(b"GET /get HTTP/1.1\r\n")
    c.close()


# -- SEEKFUNCTION, IOCTLFUNCTION ----------------------------------------------------

def test_seek_callback_rewinds_upload(httpbin):
    c = Curl()
    payload = b"0123456789" * 1000
    src = put_with_307(c, httpbin, payload)
    calls = []

    def seek(offset, origin):
        calls.append((offset, origin))
        src.seek(offset, origin)
        return E.SEEKFUNC_OK

    c.setopt(c.SEEKFUNCTION, seek)
    body = c.perform_rb()
    assert calls == [(0, os.SEEK_SET)]
    assert c.getinfo(c.RESPONSE_CODE) == 200
    assert payload.decode() in body.decode()
    c.close()


@pytest.mark.parametrize("result", ["CANTSEEK", "FAIL"])
def test_seek_callback_failure(httpbin, result):
    c = Curl()
    put_with_307(c, httpbin, b"x" * 100)
    c.setopt(c.SEEKFUNCTION, lambda offset, origin: getattr(E, "SEEKFUNC_" + result))
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_SEND_FAIL_REWIND
    c.close()


def test_ioctl_callback_rewinds_upload(httpbin):
    c = Curl()
    payload = b"abcdefghij" * 1000
    src = put_with_307(c, httpbin, payload)
    calls = []

    def ioctl(cmd):
        calls.append(cmd)
        src.seek(0)
        return E.IOE_OK

    c.setopt(c.IOCTLFUNCTION, ioctl)
    body = c.perform_rb()
    assert calls == [E.IOCMD_RESTARTREAD]
    assert payload.decode() in body.decode()
    src.seek(0)
    c.setopt(c.IOCTLFUNCTION, lambda cmd: E.IOE_FAILRESTART)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_SEND_FAIL_REWIND
    c.close()


# -- SOCKOPTFUNCTION, OPENSOCKETFUNCTION, CLOSESOCKETFUNCTION ---------------------------

def test_sockopt_callback(httpbin):
    calls = []

    def sockopt(fd, purpose):
        assert stat.S_ISSOCK(os.fstat(fd).st_mode)
        calls.append(purpose)
        return E.SOCKOPT_OK

    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.SOCKOPTFUNCTION, sockopt)
    c.perform_rb()
    assert calls == [E.SOCKTYPE_IPCXN]
    c.setopt(c.FORBID_REUSE, 1)
    c.perform_rb()
    c.setopt(c.SOCKOPTFUNCTION, lambda fd, purpose: E.SOCKOPT_ERROR)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_ABORTED_BY_CALLBACK
    c.close()


def test_opensocket_callback(httpbin):
    calls = []

    def opensocket(purpose, address):
        calls.append((purpose, address))
        return socket.socket(address.family, address.socktype, address.protocol)

    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.OPENSOCKETFUNCTION, opensocket)
    assert c.getinfo(c.RESPONSE_CODE) == 0
    c.perform_rb()
    assert c.getinfo(c.RESPONSE_CODE) == 200
    purpose, address = calls[0]
    assert purpose == E.SOCKTYPE_IPCXN
    assert address.family == socket.AF_INET and address.protocol == socket.IPPROTO_TCP
    assert address.socktype & socket.SOCK_STREAM
    assert address.addr == ("127.0.0.1", httpbin.port)
    assert tuple(address) == (address.family, address.socktype, address.protocol, address.addr)
    c.close()


@pytest.mark.parametrize("fd", ["detached", "borrowed"])
def test_opensocket_callback_refuses_a_bare_descriptor(httpbin, fd):
    """A bare int would have two owners (libcurl closes what it is given):
    refused as pycurl does, with the reason as __cause__, and the socket the
    callback made is closed by its own object, once."""
    made, given = [], []

    def opensocket(purpose, address):
        s = socket.socket(address.family, address.socktype, address.protocol)
        made.append(s)
        given.append(s.detach() if fd == "detached" else s.fileno())
        return given[-1]

    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.OPENSOCKETFUNCTION, opensocket)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_COULDNT_CONNECT
    assert isinstance(ei.value.__cause__, TypeError)
    assert "socket object" in str(ei.value.__cause__)
    c.close()
    os.fstat(given[0])  # libcurl did not close it: it still has exactly one owner
    if fd == "detached":
        os.close(given[0])
    else:
        made[0].close()


def test_opensocket_callback_refuses(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.OPENSOCKETFUNCTION, lambda purpose, address: None)
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.args[0] == E.E_COULDNT_CONNECT and ei.value.__cause__ is None
    c.close()


@pytest.mark.skipif(0x075700 <= E.COMPILE_LIBCURL_VERSION_NUM < 0x080100,
                    reason="libcurl 7.87-8.0 ignores CURL_SOCKOPT_ALREADY_CONNECTED")
def test_opensocket_connected_socket(httpbin):
    socks = []

    def opensocket(purpose, address):
        s = socket.create_connection(address.addr)
        socks.append(s)
        return s

    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.OPENSOCKETFUNCTION, opensocket)
    c.setopt(c.SOCKOPTFUNCTION, lambda fd, purpose: E.SOCKOPT_ALREADY_CONNECTED)
    c.perform_rb()
    assert c.getinfo(c.RESPONSE_CODE) == 200 and len(socks) == 1
    c.close()


def test_closesocket_callback(httpbin):
    opened, closed = [], []

    def opensocket(purpose, address):
        s = socket.socket(address.family, address.socktype, address.protocol)
        opened.append(s)
        return s                        # libcurl gets a duplicate of its own

    def closesocket(fd):
        closed.append(os.fstat(fd).st_ino)
        os.close(fd)
        return 0

    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.OPENSOCKETFUNCTION, opensocket)
    c.setopt(c.CLOSESOCKETFUNCTION, closesocket)
    c.setopt(c.FORBID_REUSE, 1)        # closed at the end of each transfer
    c.perform_rb()
    c.perform_rb()
    inodes = [os.fstat(s.fileno()).st_ino for s in opened]
    assert len(opened) == 2 and closed == inodes
    c.setopt(c.FORBID_REUSE, 0)
    c.perform_rb()
    assert len(closed) == 2
    c.close()                           # the cached connection is closed now
    inodes = [os.fstat(s.fileno()).st_ino for s in opened]
    assert closed == inodes and len(opened) == 3
    for s in opened:
        s.close()                       # the Python objects still own theirs


def _is_closed(fd, inode):
    try:
        return os.fstat(fd).st_ino != inode   # the number may be reused already
    except OSError:
        return True


@pytest.mark.parametrize("how", ["replace", "unset", "reset"])
def test_closesocket_callback_replaced_or_removed(httpbin, how):
    """The connection kept alive by a transfer is closed through the
    callback set when it is closed (as in pycurl), or directly once the
    callback is removed: never leaked, never closed twice."""
    first, second = [], []
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(c.CLOSESOCKETFUNCTION, lambda fd: first.append(fd) or os.close(fd) or 0)
    c.perform()
    fd = c.getinfo(c.ACTIVESOCKET)
    inode = os.fstat(fd).st_ino
    if how == "replace":
        c.setopt(c.CLOSESOCKETFUNCTION, lambda fd: second.append(fd) or os.close(fd) or 0)
    elif how == "unset":
        c.unsetopt(c.CLOSESOCKETFUNCTION)
    else:
        c.reset()
    assert not _is_closed(fd, inode)
    c.close()
    assert first == [] and second == ([fd] if how == "replace" else [])
    assert _is_closed(fd, inode)


def test_closesocket_callback_after_curl_is_gone(httpbin):
    """A connection left in a CurlMulti's cache outlives its Curl; closing
    it later must not call into the freed object."""
    import gc
    m = curlmulti.CurlMulti()
    closed = []
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(c.CLOSESOCKETFUNCTION, lambda fd: closed.append(fd) or os.close(fd))
    m.add_handle(c)
    while m.perform()[1]:
        m.select(1.0)
    assert m.info_read()[1] == [c]
    fd = c.getinfo(c.ACTIVESOCKET)
    assert fd >= 0
    m.remove_handle(c)
    c.close()
    del c
    for _ in range(3):
        gc.collect()
    m.close()                           # closes the cached connection
    assert closed == [fd]


# -- exceptions in every callback ------------------------------------------------------

class Boom(Exception):
    pass


def _raiser(exc):
    def callback(*args):
        raise exc
    return callback


def _setup_write(c, url, f):
    c.setopt(c.URL, url("/bytes/100"))
    c.setopt(c.WRITEFUNCTION, f)


def _setup_header(c, url, f):
    c.setopt(c.URL, url("/get"))
    c.setopt(c.HEADERFUNCTION, f)


def _setup_read(c, url, f):
    c.setopt(c.URL, url("/put"))
    c.setopt(c.UPLOAD, 1)
    c.setopt(c.INFILESIZE, 10)
    c.setopt(c.READFUNCTION, f)


def _setup_xferinfo(c, url, f):
    c.setopt(c.URL, url("/bytes/100"))
    c.setopt(c.XFERINFOFUNCTION, f)
    c.setopt(c.NOPROGRESS, 0)


def _setup_progress(c, url, f):
    c.setopt(c.URL, url("/bytes/100"))
    c.setopt(c.PROGRESSFUNCTION, f)
    c.setopt(c.NOPROGRESS, 0)


def _setup_debug(c, url, f):
    c.setopt(c.URL, url("/get"))
    c.setopt(c.VERBOSE, 1)
    c.setopt(c.DEBUGFUNCTION, f)


def _setup_seek(c, url, f):
    put_with_307(c, url, b"x" * 100)
    c.setopt(c.SEEKFUNCTION, f)


def _setup_ioctl(c, url, f):
    put_with_307(c, url, b"x" * 100)
    c.setopt(c.IOCTLFUNCTION, f)


def _setup_sockopt(c, url, f):
    c.setopt(c.URL, url("/get"))
    c.setopt(c.SOCKOPTFUNCTION, f)


def _setup_opensocket(c, url, f):
    c.setopt(c.URL, url("/get"))
    c.setopt(c.OPENSOCKETFUNCTION, f)


def _setup_closesocket(c, url, f):
    c.setopt(c.URL, url("/get"))
    c.setopt(c.FORBID_REUSE, 1)

    def closesocket(fd):
        os.close(fd)       # close it anyway: the test is about the exception
        f(fd)

    c.setopt(c.CLOSESOCKETFUNCTION, closesocket)


# callback -> (setup, the CURLcode perform() reports)
CALLBACKS = {
    "WRITEFUNCTION": (_setup_write, E.E_WRITE_ERROR),
    "HEADERFUNCTION": (_setup_header, E.E_WRITE_ERROR),
    "READFUNCTION": (_setup_read, E.E_ABORTED_BY_CALLBACK),
    "XFERINFOFUNCTION": (_setup_xferinfo, E.E_ABORTED_BY_CALLBACK),
    "PROGRESSFUNCTION": (_setup_progress, E.E_ABORTED_BY_CALLBACK),
    # libcurl ignores what a debug callback returns: the transfer finishes,
    # and perform() raises the exception afterwards.
    "DEBUGFUNCTION": (_setup_debug, E.E_ABORTED_BY_CALLBACK),
    "SEEKFUNCTION": (_setup_seek, E.E_SEND_FAIL_REWIND),
    "IOCTLFUNCTION": (_setup_ioctl, E.E_SEND_FAIL_REWIND),
    "SOCKOPTFUNCTION": (_setup_sockopt, E.E_ABORTED_BY_CALLBACK),
    "OPENSOCKETFUNCTION": (_setup_opensocket, E.E_COULDNT_CONNECT),
    # The socket is closed after a successful transfer.
    "CLOSESOCKETFUNCTION": (_setup_closesocket, E.E_ABORTED_BY_CALLBACK),
}


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_exception_in_callback_is_cause(httpbin, name):
    setup, code = CALLBACKS[name]
    c = Curl()
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    exc = Boom("from " + name)
    setup(c, httpbin, _raiser(exc))
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.__cause__ is exc
    assert c.callback_error is exc
    assert ei.value.args[0] == code
    assert isinstance(ei.value.args[1], str) and ei.value.args[1]
    # The handle is still usable, and the stored exception is cleared by the
    # next transfer.
    c.reset()
    c.setopt(c.URL, httpbin("/get"))
    assert c.perform_rb()
    assert c.callback_error is None
    c.close()


def _setup_closesocket_result(c, url, f):
    c.setopt(c.URL, url("/get"))
    c.setopt(c.FORBID_REUSE, 1)

    def closesocket(fd):
        os.close(fd)
        return f(fd)

    c.setopt(c.CLOSESOCKETFUNCTION, closesocket)


@pytest.mark.parametrize("result", [1 << 70, -(1 << 70), 1 << 31, -(1 << 31) - 1])
@pytest.mark.parametrize("name", ["SEEKFUNCTION", "IOCTLFUNCTION", "SOCKOPTFUNCTION",
                                  "OPENSOCKETFUNCTION", "CLOSESOCKETFUNCTION"])
def test_int_result_out_of_c_range_is_cause(httpbin, capfd, name, result):
    """A result cffi cannot convert to the C return type is refused inside the
    trampoline: stored and raised as __cause__, not printed and lost."""
    setup, code = CALLBACKS[name]
    if name == "CLOSESOCKETFUNCTION":
        setup = _setup_closesocket_result
    c = Curl()
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    setup(c, httpbin, lambda *args: result)
    with pytest.raises(error) as ei:
        c.perform()
    expected = TypeError if name == "OPENSOCKETFUNCTION" else OverflowError  # no bare ints there
    assert isinstance(ei.value.__cause__, expected), repr(ei.value.__cause__)
    assert ei.value.args[0] == code
    c.close()
    assert "Exception ignored" not in capfd.readouterr().err


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_keyboard_interrupt_in_callback(httpbin, name):
    setup, _ = CALLBACKS[name]
    c = Curl()
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    setup(c, httpbin, _raiser(KeyboardInterrupt("from " + name)))
    with pytest.raises(KeyboardInterrupt) as ei:
        c.perform()
    assert str(ei.value) == "from " + name
    c.close()


def test_system_exit_in_callback(httpbin):
    c = Curl()
    _setup_write(c, httpbin, _raiser(SystemExit(3)))
    with pytest.raises(SystemExit) as ei:
        c.perform()
    assert ei.value.code == 3
    c.close()


def test_exception_in_callback_via_perform_rb(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    exc = Boom("header")
    c.setopt(c.HEADERFUNCTION, _raiser(exc))
    with pytest.raises(error) as ei:
        c.perform_rb()
    assert ei.value.__cause__ is exc
    c.close()


def test_callback_may_call_getinfo_and_pause(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/10"))
    codes = []

    def write(data):
        codes.append(c.getinfo(c.RESPONSE_CODE))
        c.pause(E.PAUSE_CONT)

    c.setopt(c.WRITEFUNCTION, write)
    c.perform()
    assert codes and set(codes) == {200}
    c.close()


@pytest.mark.parametrize("method", ["setopt", "unsetopt", "reset", "perform", "close"])
def test_callback_may_not_change_its_handle(httpbin, method):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/10"))
    calls = {
        "setopt": lambda: c.setopt(c.URL, "http://127.0.0.1:1/"),
        "unsetopt": lambda: c.unsetopt(c.HTTPHEADER),
        "reset": c.reset,
        "perform": c.perform,
        "close": c.close,
    }
    c.setopt(c.WRITEFUNCTION, lambda data: calls[method]())
    with pytest.raises(error) as ei:
        c.perform()
    assert isinstance(ei.value.__cause__, error)
    assert "perform() is currently running" in ei.value.__cause__.args[1]
    assert not c.closed
    c.close()
