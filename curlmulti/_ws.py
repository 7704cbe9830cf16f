"""WebSockets on a ``Curl``: ``ws_send``, ``ws_recv``, ``ws_recv_into``,
``ws_close``, ``ws_meta`` and ``WsFrame``, where libcurl has them.

They exist only when both hold: the module was compiled against headers
with libcurl's WebSocket calls (``CM_HAS_WS`` in objects.c, libcurl 7.86+),
and the libcurl loaded speaks ``ws`` (Debian 12's 7.88 is built without
it).  Otherwise none of these names is defined, so ``hasattr(Curl,
"ws_send")`` and ``hasattr(curlmulti, "WsFrame")`` tell the truth.

Every call goes through the Curl's own state checks (``_enter``): allowed
when idle (``CONNECT_ONLY=2``, the detached mode) and from the transfer's own
callbacks (a reply from a WRITEFUNCTION); refused from another thread while
a transfer runs.
"""

import collections
from typing import Any, Optional, Tuple, Union

from ._curl import ffi, lib
from ._easy import Curl
from ._globals import version_info

WsFrame = collections.namedtuple("WsFrame", "age flags offset bytesleft len")
WsFrame.__doc__ = "The metadata of a WebSocket frame chunk (libcurl's struct curl_ws_frame)."


def _has_ws() -> bool:
    return bool(lib.CM_HAS_WS) and "ws" in version_info()[8]


HAS_WS = _has_ws()
_TEXT, _BINARY, _CLOSE = (getattr(lib, "CURLWS_" + n, 0) for n in ("TEXT", "BINARY", "CLOSE"))
_CLOSE_CODES = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


def _frame(meta: Any) -> WsFrame:
    return WsFrame(meta.age, meta.flags, meta.offset, meta.bytesleft, meta.len)


def _send(self: Any, method: str, view: Any, flags: int, fragsize: int) -> int:
    sent = ffi.new("size_t *")
    lock, h = self._enter(method, mutating=False)
    try:
        code = lib.cm_ws_send(h, view, len(view), sent, fragsize, flags)
    finally:
        lock.release()
    self._check_io(code)
    return int(sent[0])


def ws_send(self: Curl, data: Union[str, bytes, bytearray, memoryview], flags: Optional[int] = None,
            fragsize: int = 0, encoding: str = "utf-8") -> int:
    """Send a WebSocket frame (``curl_ws_send``); returns the bytes libcurl
    took.  str is sent as WS_TEXT (encoded with ``encoding``), anything
    bytes-like as WS_BINARY, unless ``flags`` says otherwise."""
    if data is None:
        raise TypeError("ws_send() takes str or a bytes-like object, not None (use b'' for empty)")
    if flags is not None and (isinstance(flags, bool) or not isinstance(flags, int)):
        raise TypeError("ws_send(): flags must be an int (WS_* constants)")
    if isinstance(fragsize, bool) or not isinstance(fragsize, int):
        raise TypeError("ws_send(): fragsize must be an int")
    if isinstance(data, str):
        if flags is not None and flags & (_BINARY | _CLOSE):
            raise TypeError("ws_send(): str data cannot be sent as WS_BINARY or WS_CLOSE "
                            "(give bytes, or use ws_close())")
        data = data.encode(encoding)
        if flags is None:
            flags = _TEXT
    elif flags is None:
        flags = _BINARY
    if not 0 <= flags < (1 << 32):
        raise ValueError("ws_send(): flags out of range")
    view = ffi.from_buffer(data)
    return _send(self, "ws_send", view, flags, fragsize)


def ws_close(self: Curl, code: Optional[int] = None,
             reason: Union[str, bytes, bytearray, memoryview, None] = None,
             encoding: str = "utf-8") -> int:
    """Send a WebSocket close frame: an optional status code and an optional
    UTF-8 reason (RFC 6455 5.5.1).  Returns the bytes libcurl took."""
    payload = b""
    if code is not None:
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError("ws_close(): code must be an int")
        if code not in _CLOSE_CODES:
            raise ValueError("ws_close(): %d is not a close code that may be sent" % code)
        payload = code.to_bytes(2, "big")
    if reason is not None:
        if code is None:
            raise ValueError("ws_close(): a reason needs a code")
        raw = reason.encode(encoding) if isinstance(reason, str) else bytes(memoryview(reason))
        raw.decode("utf-8")  # the reason travels as UTF-8: UnicodeDecodeError if it is not
        payload += raw
    if len(payload) > 125:
        raise ValueError("ws_close(): code and reason take %d bytes, more than 125" % len(payload))
    return _send(self, "ws_close", ffi.from_buffer(payload), _CLOSE, 0)


def ws_recv(self: Curl, buffersize: int) -> Tuple[bytes, WsFrame]:
    """Receive up to buffersize bytes of a frame (``curl_ws_recv``): returns
    ``(data, WsFrame)``.  BlockingIOError when nothing is there yet."""
    if isinstance(buffersize, bool) or not isinstance(buffersize, int):
        raise TypeError("ws_recv() takes an int")
    if buffersize < 0:
        raise ValueError("ws_recv(): buffersize must not be negative")
    buf = ffi.new("char[]", max(buffersize, 1))
    n, meta = _recv(self, "ws_recv", buf, buffersize)
    return ffi.unpack(buf, n), meta


def ws_recv_into(self: Curl, buffer: Any, nbytes: int = 0) -> Tuple[int, WsFrame]:
    """Receive into a writable buffer: returns ``(count, WsFrame)``."""
    try:
        view = ffi.from_buffer(buffer, require_writable=True)
    except (TypeError, BufferError):
        raise TypeError("ws_recv_into() takes a writable bytes-like object, not %s"
                        % type(buffer).__name__) from None
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise TypeError("ws_recv_into(): nbytes must be an int")
    if nbytes < 0 or nbytes > len(view):
        raise ValueError("ws_recv_into(): nbytes out of range")
    return _recv(self, "ws_recv_into", view, nbytes or len(view))


def _recv(self: Any, method: str, buf: Any, size: int) -> Tuple[int, WsFrame]:
    n = ffi.new("size_t *")
    meta = ffi.new("struct cm_ws_frame *")
    lock, h = self._enter(method, mutating=False)
    try:
        code = lib.cm_ws_recv(h, buf, size, n, meta)
    finally:
        lock.release()
    self._check_io(code)
    return int(n[0]), _frame(meta)


def ws_meta(self: Any) -> Optional[WsFrame]:
    """The metadata of the frame being delivered to the WRITEFUNCTION now
    (``curl_ws_meta``), or None outside one."""
    meta = ffi.new("struct cm_ws_frame *")
    lock, h = self._enter("ws_meta", mutating=False)
    try:
        found = lib.cm_ws_meta(h, meta)
    finally:
        lock.release()
    return _frame(meta) if found else None


if HAS_WS:
    for _f in (ws_send, ws_close, ws_recv, ws_recv_into, ws_meta):
        setattr(Curl, _f.__name__, _f)
    del _f
