"""Every C-to-Python callback of curlmulti, in one place.

How a callback travels:

1. ``Curl.setopt(WRITEFUNCTION, f)`` stores ``f`` on the Curl's owner record
   (``record.write_cb``, see ``_owner.py``) and asks the C shim
   ``cm_easy_set_callback`` to install the matching trampoline below, with the
   record's ``ffi.new_handle`` as the callback's userdata.  ``CurlMulti`` does
   the same for ``M_SOCKETFUNCTION``/``M_TIMERFUNCTION`` with its record.  The
   handle points at the record, never at the public object, so nothing forms
   a cycle through a ``Curl``.
2. libcurl calls the trampoline (an ``extern "Python"`` function) with that
   userdata; ``ffi.from_handle`` turns it back into the record.
3. The trampoline converts the C arguments the way pycurl does, calls the
   user's function and converts its result (None means "all consumed", ints
   such as ``WRITEFUNC_PAUSE`` pass through).
4. If anything raises (the user's code, or a bad return value), the exception
   is stored on the record (``record.callback_failed(exc)``) and the
   trampoline returns the abort value libcurl documents for that callback, so
   the transfer stops.  An exception raised before the trampoline's ``try``
   (a SIGINT's ``KeyboardInterrupt`` lands on the first line of Python that
   runs) reaches ``_onerror``, which stores it the same way: nothing is ever
   "ignored from cffi callback".
5. The Python call that was running libcurl (``Curl.perform``,
   ``CurlMulti.perform``/``socket_action``, or the failed transfer's entry in
   ``info_read``) raises ``error(code, message)`` with the stored exception as
   ``__cause__``; KeyboardInterrupt and SystemExit are raised as themselves,
   by the call that ran libcurl.
"""

import collections
import os
import socket
import struct
import sys
from threading import get_ident

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


# PyPy runs a pending signal handler (Ctrl-C's KeyboardInterrupt) only at
# a loop's back edge or a thread switch, not when a callback is entered from
# C: once the trampolines are compiled by its JIT, a SIGINT that lands during
# a transfer would wait for perform() to return.  A one-turn loop at the top
# of each trampoline is such a point.  CPython checks at every function entry.
_PYPY = sys.implementation.name == "pypy"
_ONE_TURN = (None,)


def _signal_point():
    for _ in _ONE_TURN:
        pass


# Exceptions that reached _onerror with no record to store them on (in
# practice never: the userdata is bound before any line of Python runs).
# Keyed by thread; the call that ran libcurl in that thread raises them.
UNCLAIMED = {}


def _record_from_frame(tb, owner_at):
    """The record a trampoline was called for, from the arguments in its
    frame (the first of the traceback: what escaped was raised there)."""
    if tb is None:
        return None
    f_locals = tb.tb_frame.f_locals
    userdata = f_locals.get("userdata")
    if userdata is None:
        args = f_locals.get("args")
        if not isinstance(args, tuple) or len(args) <= owner_at:
            return None
        userdata = args[owner_at]
    return ffi.from_handle(userdata)


def _onerror_for(owner_at):
    def onerror(exc_type, exc, tb):
        try:
            record = _record_from_frame(tb, owner_at)
        except BaseException:  # a second signal while looking: keep the first
            record = None
        if record is None:
            UNCLAIMED.setdefault(get_ident(), exc)
            return None
        record.callback_failed(exc)
        return None  # cffi returns the trampoline's abort value (0 for the multi callbacks)
    return onerror


def take_unclaimed():
    """The exception _onerror could not store for this thread, if any."""
    return UNCLAIMED.pop(get_ident(), None)


def _trampoline(abort, owner_at):
    """Register ``body(record, *c_args)`` as the extern "Python" function of
    the same name.  The record is found from the userdata at ``owner_at``."""

    def register(body):
        from_handle = ffi.from_handle

        def call(*args):
            try:
                if _PYPY:
                    _signal_point()
                return body(from_handle(args[owner_at]), *args)
            except BaseException as exc:  # stored, re-raised by the caller
                from_handle(args[owner_at]).callback_failed(exc)
                return abort

        call.__name__ = body.__name__
        ffi.def_extern(name=body.__name__, error=abort, onerror=_onerror_for(owner_at))(call)
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


@ffi.def_extern(error=SIZE_MAX, onerror=_onerror_for(3))
def cm_write_cb(ptr, size, nmemb, userdata):
    rec = _from_handle(userdata)
    n = size * nmemb
    try:
        if _PYPY:
            _signal_point()
        if rec.write_view:
            result = _call_with_view(rec.write_cb, ptr, n)
        else:
            result = rec.write_cb(_unpack(ptr, n))
        return n if result is None else _consumed(result, n)
    except BaseException as exc:  # stored, re-raised by the caller
        rec.callback_failed(exc)
        return SIZE_MAX


@ffi.def_extern(error=SIZE_MAX, onerror=_onerror_for(3))
def cm_header_cb(ptr, size, nmemb, userdata):
    rec = _from_handle(userdata)
    n = size * nmemb
    try:
        if _PYPY:
            _signal_point()
        if rec.header_view:
            result = _call_with_view(rec.header_cb, ptr, n)
        else:
            result = rec.header_cb(_unpack(ptr, n))
        return n if result is None else _consumed(result, n)
    except BaseException as exc:
        rec.callback_failed(exc)
        return SIZE_MAX


@_trampoline(READFUNC_ABORT, 3)
def cm_read_cb(curl, ptr, size, nmemb, _):
    n = size * nmemb
    return _read_result(curl.read_cb(n), ptr, n)


def _read_result(data, ptr, n):
    """A read callback's result copied into libcurl's buffer: its length."""
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
    return 1 if curl.xferinfo_cb(dltotal, dlnow, ultotal, ulnow) else 0


@_trampoline(1, 0)
def cm_progress_cb(curl, _, dltotal, dlnow, ultotal, ulnow):
    return 1 if curl.progress_cb(dltotal, dlnow, ultotal, ulnow) else 0


@_trampoline(0, 4)
def cm_debug_cb(curl, _h, infotype, data, size, _):
    curl.debug_cb(infotype, ffi.unpack(data, size))
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
    return _int_result(curl.seek_cb(offset, origin), "seek")


@_trampoline(2, 2)  # CURLIOE_FAILRESTART
def cm_ioctl_cb(curl, _h, cmd, _):
    return _int_result(curl.ioctl_cb(cmd), "ioctl")


@_trampoline(1, 0)  # CURL_SOCKOPT_ERROR
def cm_sockopt_cb(curl, _, fd, purpose):
    return _int_result(curl.sockopt_cb(fd, purpose), "sockopt")


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
    result = curl.opensocket_cb(purpose, addr)
    if result is None or (type(result) is int and result == SOCKET_BAD):
        return SOCKET_BAD
    if isinstance(result, int):
        # A bare descriptor would have two owners (the Python socket object
        # it came from, and libcurl, which closes what it is given).
        raise TypeError("opensocket callback must return a socket object or SOCKET_BAD, not the "
                        "int %d (libcurl closes the descriptor it gets: it would have two owners)" % result)
    fileno = getattr(result, "fileno", None)
    if not callable(fileno):
        raise TypeError("opensocket callback must return a socket object or SOCKET_BAD, not %s"
                        % type(result).__name__)
    # libcurl owns the descriptor it gets; the Python object keeps its own.
    return os.dup(fileno())


@_trampoline(1, 0)
def cm_closesocket_cb(closer, _, fd):
    func = closer.closesocket_cb
    if func is None:  # unset since the connection was made: close it as libcurl does
        os.close(fd)
        return 0
    return _int_result(func(fd), "closesocket")


# The multi callbacks: only -1 means something to libcurl (abort every transfer
# of the multi, as it documents); any other result, None included, is 0.
_POLL_REMOVE = lib.CURL_POLL_REMOVE


# They run once or twice per transfer, so they too are written out flat.
# Their userdata is the CurlMulti's record (see _multi._MultiRecord).
#
# Neither hands -1 to libcurl.  After a socket callback returned -1,
# libcurl 7.88's multi handle is corrupt (its running count goes negative,
# and a later socket_action() with two transfers crashes); after a timer
# callback returned -1 inside curl_multi_perform, with a handle removed in
# the same call, curl_multi_perform crashed (both found by the property
# tests).  An exception, or a -1 result, is stored instead, and the call
# that ran the callback raises it; the transfers go on, for the caller to
# remove or close.
@ffi.def_extern(error=0, onerror=_onerror_for(3))
def cm_socket_cb(_easy, fd, what, userdata, socketp):
    rec = _from_handle(userdata)
    try:
        if _PYPY:
            _signal_point()
        try:
            result = rec.socket_cb(what, fd, rec.public(), _from_handle(socketp) if socketp else None)
        finally:
            if what == _POLL_REMOVE and rec.assigned:
                rec.assigned.pop(fd, None)  # libcurl forgets the socket's object now
        if result == -1:
            raise MultiCallbackAbort("the socket callback returned -1 for socket %d" % fd)
    except BaseException as exc:  # stored, re-raised by the caller
        rec.callback_failed(exc)
    return 0


@ffi.def_extern(error=0, onerror=_onerror_for(2))
def cm_timer_cb(_m, timeout_ms, userdata):
    rec = _from_handle(userdata)
    try:
        if _PYPY:
            _signal_point()
        if rec.timer_cb(timeout_ms) == -1:
            if rec.adding:
                # add_handle() undoes the add and raises (libcurl 7.88 leaves
                # a half-added handle when the timer fails inside it).
                rec.add_refused = True
            else:
                raise MultiCallbackAbort("the timer callback returned -1")
    except BaseException as exc:  # stored, re-raised by the caller
        rec.callback_failed(exc)
    return 0


class MultiCallbackAbort(Exception):
    """A socket or timer callback returned -1: the cause of the call's error."""


# CurlMimePart.data_cb: the userdata is a _mime._DataSource, which holds the
# user's read/seek/free and their userdata, and stores what they raise on
# the record of the Curl the mime belongs to.
@_trampoline(READFUNC_ABORT, 3)
def cm_mime_read_cb(src, ptr, size, nitems, _):
    n = size * nitems
    return _read_result(src.read(src.userdata, n), ptr, n)


@_trampoline(1, 0)  # CURL_SEEKFUNC_FAIL
def cm_mime_seek_cb(src, _, offset, origin):
    if src.seek is None:
        return 2  # CURL_SEEKFUNC_CANTSEEK
    result = src.seek(src.userdata, offset, origin)
    if result is None:
        return 0
    if isinstance(result, bool) or not isinstance(result, int) or result not in (0, 1, 2):
        raise ValueError("mime seek callback must return 0 (SEEKFUNC_OK), 1 (SEEKFUNC_FAIL), "
                         "2 (SEEKFUNC_CANTSEEK) or None, not %r" % (result,))
    return result


def _free_onerror(exc_type, exc, tb):
    _unraisable(exc, "the free callback of a CurlMimePart")


@ffi.def_extern(onerror=_free_onerror)
def cm_mime_free_cb(arg):
    """libcurl let go of a part's content (the mime freed, the content
    replaced, or a copy made by duphandle freed): the last let-go calls the
    user's free(userdata).  Nothing can abort here, so what it raises goes
    to sys.unraisablehook."""
    try:
        ffi.from_handle(arg).release()
    except BaseException as exc:
        _unraisable(exc, "the free callback of a CurlMimePart")


def _unraisable(exc, what):
    hook = getattr(sys, "unraisablehook", None)
    if hook is None:  # pragma: no cover - every supported interpreter has it
        sys.excepthook(type(exc), exc, exc.__traceback__)
        return
    args = collections.namedtuple("UnraisableHookArgs", "exc_type exc_value exc_traceback err_msg object")
    hook(args(type(exc), exc, exc.__traceback__, "Exception ignored in " + what, None))
