"""Every C-to-Python callback of curlmulti, in one place.

How a callback travels:

1. ``Curl.setopt(WRITEFUNCTION, f)`` stores ``f`` on the Curl
   (``curl._write_cb``) and asks the C shim ``cm_easy_set_callback`` to
   install the matching trampoline below, with the Curl's own
   ``ffi.new_handle(self)`` as the callback's userdata.  ``CurlMulti`` does
   the same for ``M_SOCKETFUNCTION``/``M_TIMERFUNCTION``.
2. libcurl calls the trampoline (an ``extern "Python"`` function) with that
   userdata; ``ffi.from_handle`` turns it back into the owner.
3. The trampoline converts the C arguments the way pycurl does, calls the
   user's function and converts its result (None means "all consumed", ints
   such as ``WRITEFUNC_PAUSE`` pass through).
4. If anything raises (the user's code, or a bad return value), the exception
   is stored on the owner (``owner._callback_failed(exc)``) and the trampoline
   returns the abort value libcurl documents for that callback, so the
   transfer stops.
5. The Python call that was running libcurl (``Curl.perform``,
   ``CurlMulti.perform``/``socket_action``, or the failed transfer's entry in
   ``info_read``) raises ``error(code, message)`` with the stored exception as
   ``__cause__``; KeyboardInterrupt and SystemExit are raised as themselves.
"""

import collections
import os
import socket
import struct

from ._curl import ffi, lib

SIZE_MAX = int(ffi.cast("size_t", -1))
# The C ranges of the trampolines' int and curl_socket_t results: a result
# out of range is refused inside the body, where the error is stored, not by
# cffi's conversion after it (printed as "Exception ignored" and lost).
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_SOCKET_BITS = 8 * ffi.sizeof("curl_socket_t") - 1
_SOCKET_MIN, _SOCKET_MAX = -(1 << _SOCKET_BITS), (1 << _SOCKET_BITS) - 1
SOCKET_BAD = -1
READFUNC_ABORT = lib.CURL_READFUNC_ABORT
READFUNC_PAUSE = lib.CURL_READFUNC_PAUSE

# The address an OPENSOCKETFUNCTION receives, as pycurl passes it.
CurlSockAddr = collections.namedtuple("CurlSockAddr", "family socktype protocol addr")


def _trampoline(abort, owner_at):
    """Register ``body(owner, *c_args)`` as the extern "Python" function of the
    same name.  The owner is found from the userdata at ``owner_at``."""

    def register(body):
        from_handle = ffi.from_handle

        def call(*args):
            owner = from_handle(args[owner_at])
            try:
                return body(owner, *args)
            except BaseException as exc:  # stored, re-raised by the caller
                owner._callback_failed(exc)
                return abort

        call.__name__ = body.__name__
        ffi.def_extern(name=body.__name__, error=abort)(call)
        return body

    return register


def _consumed(result, n):
    """A write callback's result: None means all of it."""
    if result is None:
        return n
    if type(result) is not int and not isinstance(result, int):
        raise TypeError("write callback must return None or an int, not %s" % type(result).__name__)
    if not 0 <= result <= SIZE_MAX:
        raise ValueError("write callback returned %d, out of range" % result)
    return result


# The body and header trampolines run once per chunk, so they are written
# out flat, without _trampoline's generic wrapper.
_from_handle, _unpack, _buffer = ffi.from_handle, ffi.unpack, ffi.buffer


def _call_with_view(func, ptr, n):
    """``use_memoryview``: func gets a read-only view of libcurl's buffer,
    released when it returns."""
    view = memoryview(_buffer(ptr, n)).toreadonly()
    try:
        return func(view)
    finally:
        try:
            view.release()
        except BufferError:  # the callback exported it: as pycurl, left as is
            pass


@ffi.def_extern(error=SIZE_MAX)
def cm_write_cb(ptr, size, nmemb, userdata):
    curl = _from_handle(userdata)
    n = size * nmemb
    try:
        if curl._write_view:
            result = _call_with_view(curl._write_cb, ptr, n)
        else:
            result = curl._write_cb(_unpack(ptr, n))
        return n if result is None else _consumed(result, n)
    except BaseException as exc:  # stored, re-raised by the caller
        curl._callback_failed(exc)
        return SIZE_MAX


@ffi.def_extern(error=SIZE_MAX)
def cm_header_cb(ptr, size, nmemb, userdata):
    curl = _from_handle(userdata)
    n = size * nmemb
    try:
        if curl._header_view:
            result = _call_with_view(curl._header_cb, ptr, n)
        else:
            result = curl._header_cb(_unpack(ptr, n))
        return n if result is None else _consumed(result, n)
    except BaseException as exc:
        curl._callback_failed(exc)
        return SIZE_MAX


@_trampoline(READFUNC_ABORT, 3)
def cm_read_cb(curl, ptr, size, nmemb, _):
    n = size * nmemb
    data = curl._read_cb(n)
    if isinstance(data, int):
        if data in (READFUNC_ABORT, READFUNC_PAUSE):
            return data
        raise ValueError("read callback may return only READFUNC_ABORT or READFUNC_PAUSE as an int, not %d" % data)
    if isinstance(data, str):
        data = data.encode("ascii")
    elif data is None:
        raise TypeError("read callback must return bytes (b'' at the end), not None")
    try:
        length = len(data)
    except TypeError:
        raise TypeError("read callback must return bytes, not %s" % type(data).__name__) from None
    if length > n:
        raise ValueError("read callback returned %d bytes, more than the %d asked for" % (length, n))
    if length:
        ffi.memmove(ptr, data, length)
    return length


@_trampoline(1, 0)
def cm_xferinfo_cb(curl, _, dltotal, dlnow, ultotal, ulnow):
    return 1 if curl._xferinfo_cb(dltotal, dlnow, ultotal, ulnow) else 0


@_trampoline(1, 0)
def cm_progress_cb(curl, _, dltotal, dlnow, ultotal, ulnow):
    return 1 if curl._progress_cb(dltotal, dlnow, ultotal, ulnow) else 0


@_trampoline(0, 4)
def cm_debug_cb(curl, _h, infotype, data, size, _):
    curl._debug_cb(infotype, ffi.unpack(data, size))
    return 0


def _int_result(result, what):
    if result is None:
        return 0
    if not isinstance(result, int):
        raise TypeError("%s callback must return an int or None, not %s" % (what, type(result).__name__))
    if not _INT_MIN <= result <= _INT_MAX:
        raise OverflowError("%s callback returned %d, out of range of a C int" % (what, result))
    return result


@_trampoline(1, 0)  # CURL_SEEKFUNC_FAIL
def cm_seek_cb(curl, _, offset, origin):
    return _int_result(curl._seek_cb(offset, origin), "seek")


@_trampoline(2, 2)  # CURLIOE_FAILRESTART
def cm_ioctl_cb(curl, _h, cmd, _):
    return _int_result(curl._ioctl_cb(cmd), "ioctl")


@_trampoline(1, 0)  # CURL_SOCKOPT_ERROR
def cm_sockopt_cb(curl, _, fd, purpose):
    return _int_result(curl._sockopt_cb(fd, purpose), "sockopt")


def _sockaddr(family, raw):
    if family == socket.AF_INET:
        port, = struct.unpack_from("!H", raw, 2)
        return (socket.inet_ntop(family, raw[4:8]), port)
    if family == socket.AF_INET6:
        port, flowinfo = struct.unpack_from("!HI", raw, 2)
        scope_id, = struct.unpack_from("=I", raw, 24)
        return (socket.inet_ntop(family, raw[8:24]), port, flowinfo, scope_id)
    if family == getattr(socket, "AF_UNIX", None):
        return raw[2:].split(b"\0", 1)[0]
    return raw


@_trampoline(SOCKET_BAD, 0)
def cm_opensocket_cb(curl, _, purpose, address):
    raw = ffi.unpack(ffi.cast("char *", lib.cm_sockaddr_bytes(address)), address.addrlen)
    addr = CurlSockAddr(address.family, address.socktype, address.protocol,
                        _sockaddr(address.family, raw))
    result = curl._opensocket_cb(purpose, addr)
    if result is None:
        return SOCKET_BAD
    if isinstance(result, int):
        if not _SOCKET_MIN <= result <= _SOCKET_MAX:
            raise OverflowError("opensocket callback returned %d, out of range of a socket" % result)
        return result
    # libcurl owns the descriptor it gets; the Python object keeps its own.
    return os.dup(result.fileno())


@_trampoline(1, 0)
def cm_closesocket_cb(closer, _, fd):
    func = closer._closesocket_cb
    if func is None:  # unset since the connection was made: close it as libcurl does
        os.close(fd)
        return 0
    return _int_result(func(fd), "closesocket")


# The multi callbacks: only -1 means something to libcurl (abort every transfer
# of the multi, as it documents); any other result, None included, is 0.
_POLL_REMOVE = lib.CURL_POLL_REMOVE


# They run once or twice per transfer, so they too are written out flat.
@ffi.def_extern(error=-1)
def cm_socket_cb(_easy, fd, what, userdata, socketp):
    owner = _from_handle(userdata)  # a CurlMulti._Owner: the multi, weakly
    try:
        multi = owner.multi()
        try:
            result = multi._socket_cb(what, fd, multi, _from_handle(socketp) if socketp else None)
        finally:
            if what == _POLL_REMOVE and multi._assigned:
                multi._assigned.pop(fd, None)  # libcurl forgets the socket's object now
        return -1 if result == -1 else 0
    except BaseException as exc:  # stored, re-raised by the caller
        owner._callback_failed(exc)
        return -1


@ffi.def_extern(error=-1)
def cm_timer_cb(_m, timeout_ms, userdata):
    owner = _from_handle(userdata)
    try:
        multi = owner.multi()
        if multi._adding:
            # libcurl 7.88 leaves a handle half-added (and its multi corrupt)
            # when the timer callback fails inside curl_multi_add_handle, so
            # there it never fails: add_handle() undoes the add and raises.
            try:
                if multi._timer_cb(timeout_ms) == -1:
                    multi._add_refused = True
            except BaseException as exc:
                multi._callback_failed(exc)
            return 0
        return -1 if multi._timer_cb(timeout_ms) == -1 else 0
    except BaseException as exc:
        owner._callback_failed(exc)
        return -1
