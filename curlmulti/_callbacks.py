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

On CPython the body and header callbacks skip steps 2 and 3: C trampolines
(``_decl/cwrite.c``) make the chunk a ``bytes`` and call the record's
``write_cb``/``header_cb`` with the C API, and hand anything but a result of
None or the chunk's length (and every exception) to ``_cwrite_outcome``, so
the rules above are still written once, here.
"""

from __future__ import annotations

import collections
import datetime as _datetime
import os
import socket
import struct
import sys
import sysconfig
from threading import get_ident
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Protocol, Tuple, Type, TypeVar, Union

from ._cbtypes import CurlSockAddr, HstsEntry, HstsIndex, KhKey
from ._curl import ffi, lib

if TYPE_CHECKING:
    from ._curl import _CData
    from ._easy import _SocketCloser

# A trampoline's body returns what libcurl gets: an int (or the int of a
# size_t or curl_socket_t).
_Body = TypeVar("_Body", bound=Callable[..., int])
# cffi's onerror: called with (type, value, traceback) of what escaped.
_OnError = Callable[[Type[BaseException], BaseException, Optional[TracebackType]], None]


class _Owner(Protocol):
    """What every trampoline's userdata stands for: an owner record that
    stores what a callback raised (``_easy._EasyRecord``, its
    ``_SocketCloser``, ``_mime._DataSource``, ``_multi._MultiRecord``)."""

    def callback_failed(self, exc: BaseException) -> None: ...


class _EasyOwner(_Owner, Protocol):
    """An easy handle's record as its trampolines see it: the callable of
    each callback whose trampoline is installed is set (``None`` only while
    the trampoline is not; see ``_easy._EasyRecord.set_callback``)."""

    callback_error: Optional[BaseException]
    write_view: bool
    header_view: bool
    write_cb: Callable[[Any], object]
    header_cb: Callable[[Any], object]
    read_cb: Callable[[int], object]
    xferinfo_cb: Callable[[int, int, int, int], object]
    progress_cb: Callable[[float, float, float, float], object]
    debug_cb: Callable[[int, bytes], object]
    seek_cb: Callable[[int, int], object]
    ioctl_cb: Callable[[int], object]
    sockopt_cb: Callable[[int, int], object]
    opensocket_cb: Callable[[int, CurlSockAddr], object]
    ssh_key_cb: Callable[[Optional[KhKey], Optional[KhKey], int], object]
    ssh_hostkey_cb: Callable[[int, bytes], object]
    prereq_cb: Callable[[str, str, int, int], object]
    trailer_cb: Callable[[], object]
    resolver_start_cb: Callable[[], object]
    fnmatch_cb: Callable[[bytes, bytes], object]
    hstsread_cb: Callable[[], object]
    hstswrite_cb: Callable[[HstsEntry, HstsIndex], object]


class _MultiOwner(_Owner, Protocol):
    """A multi's record as its trampolines see it (``_multi._MultiRecord``
    while M_SOCKETFUNCTION/M_TIMERFUNCTION/M_NOTIFYFUNCTION are set)."""

    socket_cb: Callable[[int, int, Any, Any], object]
    timer_cb: Callable[[int], object]
    notify_cb: Optional[Callable[[int, Any], object]]
    handles: Dict[Any, Any]
    assigned: Dict[int, Any]
    adding: bool
    add_refused: bool

    def public(self) -> Any: ...


class _MimeSource(_Owner, Protocol):
    """A CurlMimePart's data_cb content as its trampolines see it
    (``_mime._DataSource`` before its release)."""

    callback_error: Optional[BaseException]
    read: Callable[[Any, int], object]
    seek: Optional[Callable[[Any, int, int], object]]
    userdata: Any

    def release(self) -> None: ...


SIZE_MAX = int(ffi.cast("size_t", -1))
# The C ranges of the trampolines' int and curl_socket_t results: a result
# out of range is refused inside the body, where the error is stored, not by
# cffi's conversion after it (printed as "Exception ignored" and lost).
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_LONG_MAX = (1 << (8 * ffi.sizeof("long") - 1)) - 1
_LONG_MIN = -_LONG_MAX - 1
_SOCKET_BITS = 8 * ffi.sizeof("curl_socket_t") - 1
_SOCKET_MIN, _SOCKET_MAX = -(1 << _SOCKET_BITS), (1 << _SOCKET_BITS) - 1
SOCKET_BAD = -1
READFUNC_ABORT = lib.CURL_READFUNC_ABORT
READFUNC_PAUSE = lib.CURL_READFUNC_PAUSE



# PyPy runs a pending signal handler (Ctrl-C's KeyboardInterrupt) only at
# a loop's back edge or a thread switch, not when a callback is entered from
# C: once the trampolines are compiled by its JIT, a SIGINT that lands during
# a transfer would wait for perform() to return.  A one-turn loop at the top
# of each trampoline is such a point.  CPython checks at every function entry.
_PYPY = sys.implementation.name == "pypy"
_ONE_TURN = (None,)


def _signal_point() -> None:
    for _ in _ONE_TURN:
        pass


# Exceptions that reached _onerror with no record to store them on (in
# practice never: the userdata is bound before any line of Python runs).
# Keyed by thread; the call that ran libcurl in that thread raises them.
UNCLAIMED: Dict[int, BaseException] = {}


def _record_from_frame(tb: Optional[TracebackType], owner_at: int) -> Optional[_Owner]:
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
    record: _Owner = ffi.from_handle(userdata)
    return record


def _onerror_for(owner_at: int) -> _OnError:
    def onerror(exc_type: Type[BaseException], exc: BaseException, tb: Optional[TracebackType]) -> None:
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


def take_unclaimed() -> Optional[BaseException]:
    """The exception _onerror could not store for this thread, if any."""
    return UNCLAIMED.pop(get_ident(), None)


def _halted(rec: Union[_EasyOwner, _MimeSource]) -> bool:
    """A KeyboardInterrupt or SystemExit is stored for this transfer: every
    later callback returns its abort value at once without calling Python
    code, so the transfer stops at the next callback whatever its kind (a
    debug callback's result, for one, is ignored by libcurl)."""
    exc = rec.callback_error
    return exc is not None and not isinstance(exc, Exception)


def _trampoline(abort: int, owner_at: int, halts: bool = True) -> Callable[[_Body], _Body]:
    """Register ``body(record, *c_args)`` as the extern "Python" function of
    the same name.  The record is found from the userdata at ``owner_at``.
    ``halts``: the callback is skipped once the transfer is interrupted
    (see _halted)."""

    def register(body: _Body) -> _Body:
        from_handle = ffi.from_handle

        def call(*args: Any) -> int:
            try:
                if _PYPY:
                    _signal_point()
                owner = from_handle(args[owner_at])
                if halts and owner.callback_error is not None and _halted(owner):
                    return abort
                result: int = body(owner, *args)
                return result
            except BaseException as exc:  # stored, re-raised by the caller
                from_handle(args[owner_at]).callback_failed(exc)
                return abort

        call.__name__ = body.__name__
        ffi.def_extern(name=body.__name__, error=abort, onerror=_onerror_for(owner_at))(call)
        return body

    return register


def _consumed(result: object, n: int) -> int:
    """A write callback's result: None means all of it.  As pycurl, an int
    goes to libcurl as a C long cast to size_t (-1 is a write error like any
    count but n); one that does not fit in a long is refused."""
    if result is None:
        return n
    if type(result) is not int and not isinstance(result, int):
        raise TypeError("write callback must return None or an int, not %s" % type(result).__name__)
    if not _LONG_MIN <= result <= _LONG_MAX:
        raise OverflowError("write callback returned %d which does not fit in a C long" % result)
    return int.__and__(result, SIZE_MAX)  # an exact int, whatever the subclass's & does


# The body and header trampolines run once per chunk, so they are written
# out flat, without _trampoline's generic wrapper.
_from_handle, _unpack, _buffer = ffi.from_handle, ffi.unpack, ffi.buffer


def _call_with_view(func: Callable[[memoryview], object], ptr: _CData, n: int) -> object:
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
def cm_write_cb(ptr: _CData, size: int, nmemb: int, userdata: _CData) -> int:
    rec: _EasyOwner = _from_handle(userdata)
    n = size * nmemb
    try:
        if _PYPY:
            _signal_point()
        if rec.callback_error is not None and _halted(rec):
            return SIZE_MAX
        if rec.write_view:
            result = _call_with_view(rec.write_cb, ptr, n)
        else:
            result = rec.write_cb(_unpack(ptr, n))
        # None, or the length as a file's write() returns it: all consumed,
        # without a call to _consumed (the common case, once per chunk).
        if result is None or (type(result) is int and result == n):
            return n
        return _consumed(result, n)
    except BaseException as exc:  # stored, re-raised by the caller
        rec.callback_failed(exc)
        return SIZE_MAX


# The body and header trampolines in C (_decl/cwrite.c), CPython only: they
# call the callback themselves and hand these two the uncommon cases.
def _cwrite_full(rec: _EasyOwner, address: int, n: int, header: bool) -> int:
    """All of cm_write_cb (cm_header_cb) for a record with a stored error or
    a memoryview callback: libcurl's buffer is at ``address``."""
    try:
        if rec.callback_error is not None and _halted(rec):
            return SIZE_MAX
        ptr = ffi.cast("char *", address)
        func = rec.header_cb if header else rec.write_cb
        if rec.header_view if header else rec.write_view:
            result = _call_with_view(func, ptr, n)
        else:
            result = func(_unpack(ptr, n))
        return _consumed(result, n)
    except BaseException as exc:
        rec.callback_failed(exc)
        return SIZE_MAX


def _cwrite_outcome(rec: _EasyOwner, result: object, exc: Optional[BaseException], n: int) -> int:
    """The callback raised ``exc`` (stored: the transfer stops), or returned
    ``result``, which is neither None nor n."""
    try:
        if exc is not None:
            rec.callback_failed(exc)
            return SIZE_MAX
        return _consumed(result, n)
    except BaseException as exc2:
        rec.callback_failed(exc2)
        return SIZE_MAX


# True where the C trampolines are built (CPython): Curl then installs them
# for a Python WRITEFUNCTION or HEADERFUNCTION (see _EasyRecord.set_callback).
# They need the C API and ids that are addresses, and rely on the GIL.
C_WRITE = (sys.implementation.name == "cpython" and not sysconfig.get_config_var("Py_GIL_DISABLED")
           and lib.cm_cwrite_init(ffi.cast("void *", id(_cwrite_full)),
                                  ffi.cast("void *", id(_cwrite_outcome))) == 0)


@ffi.def_extern(error=SIZE_MAX, onerror=_onerror_for(3))
def cm_header_cb(ptr: _CData, size: int, nmemb: int, userdata: _CData) -> int:
    rec: _EasyOwner = _from_handle(userdata)
    n = size * nmemb
    try:
        if _PYPY:
            _signal_point()
        if rec.callback_error is not None and _halted(rec):
            return SIZE_MAX
        if rec.header_view:
            result = _call_with_view(rec.header_cb, ptr, n)
        else:
            result = rec.header_cb(_unpack(ptr, n))
        if result is None or (type(result) is int and result == n):
            return n
        return _consumed(result, n)
    except BaseException as exc:
        rec.callback_failed(exc)
        return SIZE_MAX


@_trampoline(READFUNC_ABORT, 3)
def cm_read_cb(curl: _EasyOwner, ptr: _CData, size: int, nmemb: int, _: _CData) -> int:
    n = size * nmemb
    return _read_result(curl.read_cb(n), ptr, n)


def _read_result(data: object, ptr: _CData, n: int) -> int:
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
        length = len(data)  # type: ignore[arg-type]  # any sized buffer; the TypeError is the check
    except TypeError:
        raise TypeError("read callback must return bytes, not %s" % type(data).__name__) from None
    if length > n:
        raise ValueError("read callback returned %d bytes, more than the %d asked for" % (length, n))
    if length:
        ffi.memmove(ptr, data, length)
    return length


def _progress_result(result: object, what: str) -> int:
    """As pycurl: None is 0 (go on), an int goes to libcurl as it is (it
    must fit in a C int), anything else by its truth value."""
    if result is None:
        return 0
    if isinstance(result, int):
        return _int_result(result, what)
    return 1 if result else 0


@_trampoline(1, 0)
def cm_xferinfo_cb(curl: _EasyOwner, _: _CData, dltotal: int, dlnow: int, ultotal: int, ulnow: int) -> int:
    return _progress_result(curl.xferinfo_cb(dltotal, dlnow, ultotal, ulnow), "xferinfo")


@_trampoline(1, 0)
def cm_progress_cb(curl: _EasyOwner, _: _CData, dltotal: float, dlnow: float, ultotal: float,
                   ulnow: float) -> int:
    return _progress_result(curl.progress_cb(dltotal, dlnow, ultotal, ulnow), "progress")


@_trampoline(0, 4)
def cm_debug_cb(curl: _EasyOwner, _h: _CData, infotype: int, data: _CData, size: int, _: _CData) -> int:
    curl.debug_cb(infotype, ffi.unpack(data, size))
    return 0


def _int_result(result: object, what: str) -> int:
    if result is None:
        return 0
    if not isinstance(result, int):
        raise TypeError("%s callback must return an int or None, not %s" % (what, type(result).__name__))
    if not _INT_MIN <= result <= _INT_MAX:
        raise OverflowError("%s callback returned %d which does not fit in an int" % (what, result))
    return result


@_trampoline(2, 0)  # CURL_SEEKFUNC_CANTSEEK, as pycurl when the callback fails
def cm_seek_cb(curl: _EasyOwner, _: _CData, offset: int, origin: int) -> int:
    result = _int_result(curl.seek_cb(offset, origin), "seek")
    if not 0 <= result <= 2:
        raise ValueError("seek callback returned %d, not SEEKFUNC_OK (0), SEEKFUNC_FAIL (1) "
                         "or SEEKFUNC_CANTSEEK (2)" % result)
    return result


@_trampoline(2, 2)  # CURLIOE_FAILRESTART
def cm_ioctl_cb(curl: _EasyOwner, _h: _CData, cmd: int, _: _CData) -> int:
    return _int_result(curl.ioctl_cb(cmd), "ioctl")


@_trampoline(1, 0)  # CURL_SOCKOPT_ERROR
def cm_sockopt_cb(curl: _EasyOwner, _: _CData, fd: int, purpose: int) -> int:
    return _int_result(curl.sockopt_cb(fd, purpose), "sockopt")


def _sockaddr(family: int, raw: bytes) -> Union[Tuple[str, int], Tuple[str, int, int, int], bytes]:
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
def cm_opensocket_cb(curl: _EasyOwner, _: _CData, purpose: int, address: _CData) -> int:
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


@_trampoline(1, 0, halts=False)  # a socket is closed whatever happened
def cm_closesocket_cb(closer: _SocketCloser, _: _CData, fd: int) -> int:
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
def cm_socket_cb(_easy: _CData, fd: int, what: int, userdata: _CData, socketp: _CData) -> int:
    rec: _MultiOwner = _from_handle(userdata)
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
def cm_timer_cb(_m: _CData, timeout_ms: int, userdata: _CData) -> int:
    rec: _MultiOwner = _from_handle(userdata)
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


# M_NOTIFYFUNCTION (libcurl 8.17+; installed only where the build has it).
# libcurl ignores what it returns, and so does this: an exception is stored
# like the socket and timer callbacks' ones, for the call that ran libcurl
# (perform() or socket_action(), the only calls that dispatch notifications)
# to raise.  easy_owner is the easy handle's CURLINFO_PRIVATE: the record of
# a Curl, which is given to the callback while it is attached to this multi,
# else None (libcurl's internal handles; M_NOTIFY_INFO_READ passes one).
# notify_cb is None after setopt(M_NOTIFYFUNCTION, None) from inside a
# callback, where the trampoline stays installed (see _multi.py).
@ffi.def_extern(onerror=_onerror_for(0))
def cm_notify_cb(userdata: _CData, notification: int, easy_owner: _CData) -> None:
    rec: _MultiOwner = _from_handle(userdata)
    try:
        if _PYPY:
            _signal_point()
        func = rec.notify_cb
        if func is not None:
            func(notification, rec.handles.get(_from_handle(easy_owner)) if easy_owner else None)
    except BaseException as exc:  # stored, re-raised by the caller
        rec.callback_failed(exc)


class MultiCallbackAbort(Exception):
    """A socket or timer callback returned -1: the cause of the call's error."""


# -- The callbacks pycurl 7.49 added: SSH keys, PREREQ, trailers, resolver
# start, FTP wildcard matching, HSTS.  Each has libcurl's abort value as its
# error result; their bodies convert as pycurl does (see _cbtypes.py).

def _lib_const(name: str, default: int) -> int:
    value: int = getattr(lib, name, default)
    return value


_KHSTAT_REJECT = _lib_const("CURLKHSTAT_REJECT", 3)
_KHMATCH_MISMATCH = _lib_const("CURLKHMATCH_MISMATCH", 1)
_PREREQFUNC_ABORT = _lib_const("CURL_PREREQFUNC_ABORT", 1)
_TRAILERFUNC_OK = _lib_const("CURL_TRAILERFUNC_OK", 0)
_TRAILERFUNC_ABORT = _lib_const("CURL_TRAILERFUNC_ABORT", 1)
_FNMATCHFUNC_FAIL = _lib_const("CURL_FNMATCHFUNC_FAIL", 2)
_STS_OK = _lib_const("CURLSTS_OK", 0)
_STS_DONE = _lib_const("CURLSTS_DONE", 1)
_STS_FAIL = _lib_const("CURLSTS_FAIL", 2)
_HSTS_FORMAT = "%Y%m%d %H:%M:%S"  # libcurl's expire stamp, in UTC


def _strict_int(result: object, what: str) -> int:
    """A result that must be an int (no None default), as pycurl requires."""
    if not isinstance(result, int):
        raise TypeError("%s callback must return an int, not %s" % (what, type(result).__name__))
    if not _INT_MIN <= result <= _INT_MAX:
        raise OverflowError("%s callback returned %d, out of range of a C int" % (what, result))
    return result


def _khkey(key: _CData) -> Optional[KhKey]:
    if key == ffi.NULL:
        return None
    if key.key == ffi.NULL:
        data = None
    elif key.len:
        data = ffi.unpack(key.key, key.len)  # raw key
    else:
        data = ffi.string(key.key)           # base64, NUL-terminated
    return KhKey(data, lib.cm_khkey_keytype(key))


@_trampoline(_KHSTAT_REJECT, 3)
def cm_ssh_key_cb(curl: _EasyOwner, known: _CData, found: _CData, match: int, _: _CData) -> int:
    return _strict_int(curl.ssh_key_cb(_khkey(known), _khkey(found), match), "ssh key")


@_trampoline(_KHMATCH_MISMATCH, 0)
def cm_ssh_hostkey_cb(curl: _EasyOwner, _: _CData, keytype: int, key: _CData, keylen: int) -> int:
    return _strict_int(curl.ssh_hostkey_cb(keytype, ffi.unpack(key, keylen)), "ssh hostkey")


def _c_text(ptr: _CData) -> str:
    return ffi.string(ptr).decode("utf-8", "surrogateescape") if ptr != ffi.NULL else ""


@_trampoline(_PREREQFUNC_ABORT, 0)
def cm_prereq_cb(curl: _EasyOwner, _: _CData, primary_ip: _CData, local_ip: _CData, primary_port: int,
                 local_port: int) -> int:
    result = curl.prereq_cb(_c_text(primary_ip), _c_text(local_ip), primary_port, local_port)
    return _strict_int(result, "prereq")


@_trampoline(_TRAILERFUNC_ABORT, 1)
def cm_trailer_cb(curl: _EasyOwner, list_p: _CData, _: _CData) -> int:
    result = curl.trailer_cb()
    if result is None:
        return _TRAILERFUNC_OK
    if not isinstance(result, (list, tuple)):
        raise TypeError("trailer callback must return None or a list or tuple of header "
                        "strings, not %s" % type(result).__name__)
    head = ffi.NULL
    try:
        for item in result:
            if isinstance(item, str):
                item = item.encode("ascii")  # as HTTPHEADER: UnicodeEncodeError otherwise
            elif not isinstance(item, bytes):
                raise TypeError("trailer callback: each header must be str or bytes, not %s"
                                % type(item).__name__)
            if b"\0" in item:
                raise ValueError("trailer callback: a header contains a NUL byte")
            nxt = lib.curl_slist_append(head, item)
            if nxt == ffi.NULL:
                raise MemoryError("curl_slist_append failed")
            head = nxt
    except BaseException:
        if head != ffi.NULL:
            lib.curl_slist_free_all(head)
        raise
    list_p[0] = head  # libcurl frees it
    return _TRAILERFUNC_OK


@_trampoline(1, 2)
def cm_resolver_start_cb(curl: _EasyOwner, _state: _CData, _reserved: _CData, _: _CData) -> int:
    result = curl.resolver_start_cb()
    return 0 if result is None else _strict_int(result, "resolver start")


@_trampoline(_FNMATCHFUNC_FAIL, 0)
def cm_fnmatch_cb(curl: _EasyOwner, _: _CData, pattern: _CData, string: _CData) -> int:
    return _strict_int(curl.fnmatch_cb(ffi.string(pattern), ffi.string(string)), "fnmatch")


def _hsts_expire(stamp: bytes) -> Optional[_datetime.datetime]:
    """libcurl's stamp as an aware UTC datetime; None when it never expires."""
    if not stamp or stamp == b"unlimited":
        return None
    when = _datetime.datetime.strptime(stamp.decode("ascii"), _HSTS_FORMAT)
    return when.replace(tzinfo=_datetime.timezone.utc)


def _hsts_stamp(expire: object) -> bytes:
    if expire is None:
        return b""  # never expires
    if not isinstance(expire, _datetime.datetime):
        raise TypeError("hstsread callback: expire must be a datetime or None, not %s"
                        % type(expire).__name__)
    if expire.tzinfo is not None:
        expire = expire.astimezone(_datetime.timezone.utc)
    stamp = expire.strftime(_HSTS_FORMAT).encode("ascii")
    if len(stamp) >= 18:
        raise ValueError("hstsread callback: expire %r does not fit libcurl's stamp" % (expire,))
    return stamp


@_trampoline(_STS_FAIL, 1)
def cm_hstsread_cb(curl: _EasyOwner, entry: _CData, _: _CData) -> int:
    result = curl.hstsread_cb()
    if result is None:
        return _STS_DONE
    if not isinstance(result, tuple) or len(result) != 3:
        raise TypeError("hstsread callback must return None or a 3-tuple (host, expire, "
                        "include_subdomains), not %s" % type(result).__name__)
    host, expire, include = result
    if isinstance(host, str):
        host = host.encode("ascii")
    elif not isinstance(host, bytes):
        raise TypeError("hstsread callback: host must be str or bytes, not %s" % type(host).__name__)
    if not host or b"\0" in host:
        raise ValueError("hstsread callback: host must be a non-empty name without NUL bytes")
    if len(host) > entry.namelen:
        raise ValueError("hstsread callback: host is %d bytes, libcurl takes at most %d"
                         % (len(host), entry.namelen))
    stamp = _hsts_stamp(expire)
    ffi.memmove(entry.expire, stamp + b"\0", len(stamp) + 1)
    entry.include_subdomains = 1 if include else 0
    ffi.memmove(entry.name, host + b"\0", len(host) + 1)
    entry.namelen = len(host)
    return _STS_OK


@_trampoline(_STS_FAIL, 3)
def cm_hstswrite_cb(curl: _EasyOwner, entry: _CData, index: int, total: int, _: _CData) -> int:
    host = ffi.unpack(entry.name, entry.namelen)
    record = HstsEntry(host, _hsts_expire(ffi.string(entry.expire)), bool(entry.include_subdomains))
    result = curl.hstswrite_cb(record, HstsIndex(index, total))
    if result is None:
        return _STS_OK
    result = _strict_int(result, "hstswrite")
    if not 0 <= result <= _STS_FAIL:
        raise ValueError("hstswrite callback returned %d: not CURLSTS_OK, CURLSTS_DONE or CURLSTS_FAIL"
                         % result)
    return result


# CurlMimePart.data_cb: the userdata is a _mime._DataSource, which holds the
# user's read/seek/free and their userdata, and stores what they raise on
# the record of the Curl the mime belongs to.
@_trampoline(READFUNC_ABORT, 3)
def cm_mime_read_cb(src: _MimeSource, ptr: _CData, size: int, nitems: int, _: _CData) -> int:
    n = size * nitems
    return _read_result(src.read(src.userdata, n), ptr, n)


@_trampoline(1, 0)  # CURL_SEEKFUNC_FAIL
def cm_mime_seek_cb(src: _MimeSource, _: _CData, offset: int, origin: int) -> int:
    if src.seek is None:
        return 2  # CURL_SEEKFUNC_CANTSEEK
    result = src.seek(src.userdata, offset, origin)
    if result is None:
        return 0
    if isinstance(result, bool) or not isinstance(result, int) or result not in (0, 1, 2):
        raise ValueError("mime seek callback must return 0 (SEEKFUNC_OK), 1 (SEEKFUNC_FAIL), "
                         "2 (SEEKFUNC_CANTSEEK) or None, not %r" % (result,))
    return result


def _free_onerror(exc_type: Type[BaseException], exc: BaseException, tb: Optional[TracebackType]) -> None:
    _unraisable(exc, "the free callback of a CurlMimePart")


@ffi.def_extern(onerror=_free_onerror)
def cm_mime_free_cb(arg: _CData) -> None:
    """libcurl let go of a part's content (the mime freed, the content
    replaced, or a copy made by duphandle freed): the last let-go calls the
    user's free(userdata).  Nothing can abort here, so what it raises goes
    to sys.unraisablehook."""
    try:
        ffi.from_handle(arg).release()
    except BaseException as exc:
        _unraisable(exc, "the free callback of a CurlMimePart")


def _unraisable(exc: BaseException, what: str) -> None:
    hook = getattr(sys, "unraisablehook", None)
    if hook is None:  # pragma: no cover - every supported interpreter has it
        sys.excepthook(type(exc), exc, exc.__traceback__)
        return
    UnraisableHookArgs = collections.namedtuple("UnraisableHookArgs",
                                                "exc_type exc_value exc_traceback err_msg object")
    hook(UnraisableHookArgs(type(exc), exc, exc.__traceback__, "Exception ignored in " + what, None))
