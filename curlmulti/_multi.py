"""``CurlMulti``: pycurl's multi handle over libcurl's ``CURLM *``.

Lifetimes
---------
1. While a ``Curl`` is attached, the multi holds it strongly (``_handles``)
   and the Curl holds the multi only weakly (``Curl._multi_ref``), so an
   attached handle needs no other reference and a dropped multi is freed.
   What a Curl replaces while attached (a POSTFIELDS buffer, a slist: a
   transfer in flight may still read it) hangs off ``_multi_ref`` (an
   ``_easy._Attached``), so every detach frees it once libcurl let go.
   libcurl's SOCKETDATA/TIMERDATA point at an ``_Owner`` that refers to the
   multi weakly too: no cycle, so on CPython a dropped multi is freed (and
   its handles detached) at once, as in pycurl, not at the next collection.
2. libcurl forbids removing or cleaning up an easy handle while one of this
   multi's libcurl calls is on the stack (its callbacks run inside those
   calls).  ``_depth`` counts such calls; while it is non-zero, detaches and
   closes are queued in ``_deferred`` (a closed Curl reads as closed at once)
   and carried out as soon as the outermost call returns.
3. ``_polling`` counts poll()/wait()/select() calls, which may run in another
   thread: close() refuses to free the multi under them, and wakeup() and
   close() share a lock so wakeup() never touches a freed handle.
4. Objects given to ``assign()`` are held in ``_assigned`` until unassign(),
   the socket's ``POLL_REMOVE`` or close().
5. A connection outlives the transfer that opened it in the multi's
   connection cache, and libcurl calls the CLOSESOCKETFUNCTION of the Curl
   that opened it when it finally closes it, possibly at
   ``curl_multi_cleanup``.  The multi therefore keeps the closers
   (``Curl._closers``) of every handle it detached until its own cleanup.
6. close() and the ``__del__`` backstop share ``_teardown``: no user
   callbacks, every handle removed (easy handles whose close was requested
   meanwhile freed after), ``curl_multi_cleanup``, then with
   ``close_handles`` the handles closed.

Errors
------
libcurl return codes raise ``error(code, message)``.  An exception raised in
``M_SOCKETFUNCTION``/``M_TIMERFUNCTION`` is stored on the multi (the
trampoline returns -1, so libcurl aborts the call and, as it documents, fails
the transfers in progress) and raised from the call that ran the callback as
``__cause__`` of ``error``.  Exceptions in an easy handle's callbacks fail
that transfer only: ``info_read()`` reports it, with the exception on
``curl.callback_error``; KeyboardInterrupt and SystemExit are also raised
from the multi call."""

import gc
import threading
import weakref

from . import _callbacks  # noqa: F401  (registers the trampolines)
from ._constants import CONSTANTS
from ._curl import ffi, lib
from ._easy import Curl
from ._errors import (check_multi, closed_error, error, misuse, multi_strerror, no_copy,
                      no_pickle, raise_from_callback)

_M_SOCKETFUNCTION = lib.CURLMOPT_SOCKETFUNCTION
_M_TIMERFUNCTION = lib.CURLMOPT_TIMERFUNCTION
_RESERVED = {lib.CURLMOPT_SOCKETDATA, lib.CURLMOPT_TIMERDATA}
_KNOWN = {v for k, v in CONSTANTS.items() if k.startswith("M_")}
_M_ABORTED = CONSTANTS.get("E_MULTI_ABORTED_BY_CALLBACK", lib.CURLM_INTERNAL_ERROR)
_M_UNKNOWN_OPTION = lib.CURLM_UNKNOWN_OPTION
_SOCKET_TIMEOUT = lib.CURL_SOCKET_TIMEOUT
_E_ABORTED_BY_CALLBACK = lib.CURLE_ABORTED_BY_CALLBACK
_DRAIN_CAP = 256  # finished transfers info_read takes from libcurl per C call
_FDSET_CAP = 1024  # FD_SETSIZE: curl_multi_fdset cannot report more
_INT_MAX = 0x7FFFFFFF
_LONG_MAX = (1 << (8 * ffi.sizeof("long") - 1)) - 1
_NULL = ffi.NULL
_from_handle = ffi.from_handle
_info_drain = lib.cm_multi_info_drain
_CLOSED = "CurlMulti object"


class _Owner(object):
    """The object libcurl's callback data points at: the multi, weakly."""

    __slots__ = ("multi",)

    def __init__(self, multi):
        self.multi = weakref.ref(multi)

    def _callback_failed(self, exc):
        multi = self.multi()
        if multi is not None:
            multi._callback_failed(exc)


class CurlMulti(object):
    """A libcurl multi handle (``curl_multi_init``), pycurl-compatible.

    ``close_handles=True`` closes the attached easy handles when the multi is
    closed; by default they are only removed."""

    _h = None
    _ud = None             # libcurl's callback data; set once, by the first __init__
    _depth = 0
    _polling = 0
    _drain = None          # info_read's buffers, made on first use
    _keep = None           # option -> the C arrays libcurl points at (the blocklists)
    _adding = False        # curl_multi_add_handle is running
    _add_refused = False   # and the timer callback returned -1

    def __init__(self, close_handles=False):
        # (Never self.__dict__ here or on other paths: on CPython 3.11 that turns
        # the instance's inline attribute values into a dict for good, and
        # every attribute access of the hot calls gets slower.)
        if self._ud is not None:
            return  # already set up (or closed): as in pycurl, a second __init__ does nothing
        self._close_handles = bool(close_handles)
        self._handles = {}       # Curl -> None, in order of addition
        self._assigned = {}      # socket -> ffi.new_handle(object) given to libcurl
        self._deferred = []      # [Curl, CURL *, close?] waiting for the stack to unwind
        self._closers = set()    # CLOSESOCKETFUNCTION owners of detached handles
        self._socket_cb = None
        self._timer_cb = None
        self._callback_exc = None
        self._lock = threading.Lock()
        self._ref = weakref.ref(self)
        self._running = ffi.new("int *")
        self._long = ffi.new("long *")
        self._fdbuf = None
        self._ud = ffi.new_handle(_Owner(self))
        h = lib.curl_multi_init()
        if h == _NULL:
            raise error(lib.CURLM_OUT_OF_MEMORY, "curl_multi_init() failed")
        self._h = h

    # -- state ------------------------------------------------------------------

    def _handle(self, method):
        h = self._h
        if h is None:
            raise closed_error(_CLOSED, method)
        return h

    @property
    def closed(self):
        return self._h is None

    def __contains__(self, curl):
        return curl in self._handles

    def _callback_failed(self, exc):
        """Called by the trampolines (and by an attached Curl for
        KeyboardInterrupt/SystemExit): the first exception wins."""
        if self._callback_exc is None:
            self._callback_exc = exc

    def _settle(self, code, recount=None):
        """After a libcurl call of this multi returned: once the outermost call
        is done, carry out the deferred detaches, then raise what a callback
        stored or what libcurl returned.

        The detaches change the number of running transfers the call reported,
        and a stale count can stall the caller's loop, so ``recount`` (a
        libcurl call that does no more than that call would) runs again."""
        if self._depth:
            if code:
                raise error(code, multi_strerror(code))
            return
        while self._deferred:
            self._run_deferred()
            if recount is None or code or self._callback_exc is not None or self._h is None:
                break
            self._depth += 1
            try:
                code = recount()
            finally:
                self._depth -= 1
        exc = self._callback_exc
        if exc is not None:
            self._callback_exc = None
            raise_from_callback(error(code or _M_ABORTED, "a multi callback raised %s: %s"
                                      % (type(exc).__name__, exc)), exc)
        if code:
            raise error(code, multi_strerror(code))

    # -- handles ------------------------------------------------------------

    def add_handle(self, curl):
        """Attach an easy handle; the multi keeps it alive until removed."""
        h = self._h
        if h is None:
            raise closed_error(_CLOSED, "add_handle")
        if not isinstance(curl, Curl):
            raise TypeError("add_handle() takes a Curl, not %s" % type(curl).__name__)
        easy = curl._h
        if easy is None:
            curl._handle("add_handle")  # raises: closed
        if curl._multi_ref is not None:
            if curl._attached_multi() is self:
                raise misuse("cannot add the Curl object - it is already attached to this CurlMulti")
            # Another multi, or one nothing refers to any more that has not
            # been collected yet (collecting it detaches its handles).
            gc.collect()
            if curl._attached_multi() is not None:
                raise misuse("cannot add the Curl object - it is already attached to another CurlMulti")
        if curl._busy:
            raise misuse("cannot add the Curl object - perform() is running on it")
        curl.callback_error = None
        # Attached for Python before libcurl runs the timer callback, so that a
        # close() from there is deferred, not done under libcurl's feet.
        self._handles[curl] = None
        curl._multi_ref = self._ref
        self._depth += 1
        self._adding = True
        try:
            code = lib.curl_multi_add_handle(h, easy)
        finally:
            self._depth -= 1
            self._adding = False
        if code:
            # Refused before libcurl linked it (the timer callback never fails
            # an add: see _callbacks.cm_timer_cb).
            self._detach(curl, False, remove=False)
            self._settle(code)
        elif self._add_refused or self._callback_exc is not None:
            # The timer callback failed: undo the add, then raise.
            self._add_refused = False
            self._detach(curl, False)
            self._settle(_M_ABORTED)  # raises the callback's exception
            raise error(_M_ABORTED, "the timer callback returned -1: the handle was not added")
        elif self._deferred:
            self._settle(0)

    def remove_handle(self, curl):
        """Detach an easy handle (it stays open).  A closed Curl has already
        been detached, so removing it does nothing, as in pycurl."""
        h = self._handle("remove_handle")
        if not isinstance(curl, Curl):
            raise TypeError("remove_handle() takes a Curl, not %s" % type(curl).__name__)
        handles = self._handles
        if curl not in handles:
            if curl._h is None:
                return
            raise misuse("cannot remove the Curl object - it is not attached to this CurlMulti")
        if self._depth or self._deferred:
            return self._detach(curl, False)
        # The common case, _detach() without the deferral and closing cases.
        self._depth = 1
        try:
            code = lib.curl_multi_remove_handle(h, curl._h)
        finally:
            self._depth = 0
            del handles[curl]
            curl._multi_ref = None
            if curl._closers:
                self._closers.update(curl._closers)
        if code or self._callback_exc is not None or self._deferred:
            self._settle(code)

    def _detach(self, curl, closing, remove=True):
        """Remove curl from libcurl and from _handles; with closing, free it
        too.  Deferred while a libcurl call of this multi is running."""
        if self._depth:
            for entry in self._deferred:
                if entry[0] is curl:
                    entry[2] = entry[2] or closing
                    break
            else:
                self._deferred.append([curl, curl._h, closing])
            if closing:
                curl._h = None  # closed for Python at once; freed on unwinding
            return
        easy = curl._h
        code = 0
        try:
            if remove and easy is not None and self._h is not None:
                # Still attached for Python during the call: a callback it
                # runs that closes this very handle is deferred like any other.
                self._depth += 1
                try:
                    code = lib.curl_multi_remove_handle(self._h, easy)
                finally:
                    self._depth -= 1
        finally:
            self._unlink(curl)
            if closing and curl._h is not None:
                curl._close_now()
        if code or self._callback_exc is not None or self._deferred:
            self._settle(code)

    def _unlink(self, curl):
        self._handles.pop(curl, None)
        ref = curl._multi_ref
        if ref is self._ref or getattr(ref, "ref", None) is self._ref:
            curl._multi_ref = None  # frees what the Curl retired while attached
        closers = curl._closers
        if closers:
            self._closers.update(closers)

    def _run_deferred(self):
        """Carry out the queued detaches; callbacks they run store their
        exceptions, which the caller raises."""
        deferred = self._deferred
        self._depth += 1
        try:
            while deferred:
                curl, easy, closing = deferred.pop(0)
                try:
                    if easy is not None and self._h is not None:
                        lib.curl_multi_remove_handle(self._h, easy)
                finally:
                    self._unlink(curl)  # after: a close from its callbacks is deferred
                    if closing and easy is not None:
                        lib.curl_easy_cleanup(easy)
                        curl._release()
        finally:
            self._depth -= 1

    # -- driving transfers ----------------------------------------------------

    def perform(self):
        """``curl_multi_perform`` -> ``(0, running)``; raises on any error."""
        h = self._h
        if h is None:
            raise closed_error(_CLOSED, "perform")
        self._depth += 1
        try:
            code = lib.curl_multi_perform(h, self._running)
        finally:
            self._depth -= 1
        if code or self._callback_exc is not None or self._deferred:
            self._settle(code, lambda: lib.curl_multi_perform(h, self._running))
        return 0, self._running[0]

    def socket_action(self, sockfd, ev_bitmask):
        """``curl_multi_socket_action`` -> ``(0, running)``."""
        h = self._h
        if h is None:
            raise closed_error(_CLOSED, "socket_action")
        self._depth += 1
        try:
            code = lib.curl_multi_socket_action(h, sockfd, ev_bitmask, self._running)
        except OverflowError:
            raise ValueError("socket_action(): sockfd and ev_bitmask must fit in a C int") from None
        finally:
            self._depth -= 1
        if code or self._callback_exc is not None or self._deferred:
            self._settle(code, lambda: lib.curl_multi_socket_action(
                h, _SOCKET_TIMEOUT, 0, self._running))
        return 0, self._running[0]

    def socket_all(self):
        """``curl_multi_socket_all`` -> ``(0, running)``."""
        h = self._handle("socket_all")
        self._depth += 1
        try:
            code = lib.curl_multi_socket_all(h, self._running)
        finally:
            self._depth -= 1
        if code or self._callback_exc is not None or self._deferred:
            self._settle(code, lambda: lib.curl_multi_socket_all(h, self._running))
        return 0, self._running[0]

    def info_read(self, max_objects=None):
        """``curl_multi_info_read`` -> ``(queued, ok_list, err_list)``; the
        error entries are ``(curl, code, message)``."""
        h = self._h
        if h is None:
            raise closed_error(_CLOSED, "info_read")
        if max_objects is None:
            max_objects = _INT_MAX
        elif type(max_objects) is not int and not isinstance(max_objects, int):
            raise TypeError("info_read() takes an int, not %s" % type(max_objects).__name__)
        elif max_objects <= 0:
            raise misuse("argument to info_read must be greater than zero")
        drain = self._drain
        if drain is None:
            drain = self._drain = (ffi.new("void *[]", _DRAIN_CAP), ffi.new("int[]", _DRAIN_CAP),
                                   ffi.new("int *"))
        owners, codes, queued = drain
        n = _info_drain(h, owners, codes, _DRAIN_CAP if max_objects > _DRAIN_CAP else max_objects, queued)
        if not n:
            return queued[0], [], []
        ok, failed = [], []
        while True:
            for i in range(n):
                curl = _from_handle(owners[i])
                code = codes[i]
                if code == 0 and curl.callback_error is None:
                    ok.append(curl)
                else:
                    err = curl._transfer_error(code or _E_ABORTED_BY_CALLBACK)
                    failed.append((curl, err.args[0], err.args[1]))
            max_objects -= n
            if n < _DRAIN_CAP or not max_objects or not queued[0]:
                return queued[0], ok, failed
            n = _info_drain(h, owners, codes, min(max_objects, _DRAIN_CAP), queued)

    def timeout(self):
        """``curl_multi_timeout``: milliseconds to wait, or -1."""
        h = self._handle("timeout")
        out = self._long
        check_multi(lib.curl_multi_timeout(h, out))
        return out[0]

    def fdset(self):
        """``curl_multi_fdset`` as three lists (read, write, except) for
        ``select.select``.  As with select(2), descriptors >= 1024 cannot be
        reported this way (libcurl leaves them out); use select()/poll()."""
        h = self._handle("fdset")
        buf = self._fdbuf
        if buf is None:
            buf = self._fdbuf = ffi.new("int[]", _FDSET_CAP)
        n = lib.cm_multi_fdset(h, buf, _FDSET_CAP)
        if n < 0:
            raise error(lib.CURLM_INTERNAL_ERROR, "curl_multi_fdset() failed")
        r, w, x = [], [], []
        for i in range(n):
            fd, kind = divmod(buf[i], 4)
            if kind & 1:
                r.append(fd)
            if kind & 2:
                w.append(fd)
            if kind & 4:
                x.append(fd)
        return r, w, x

    def select(self, timeout=1.0):
        """Wait up to ``timeout`` seconds for activity on libcurl's sockets;
        returns the number of ready descriptors, 0 on timeout.  Uses poll(2)
        through ``curl_multi_poll``, so any descriptor number works.  When
        libcurl's own timer expires first with no socket ready, it returns 1:
        perform() has work to do."""
        h = self._handle("select")
        ms = _milliseconds(timeout)
        self._polling += 1
        try:
            n = lib.cm_multi_select(h, ms)
        finally:
            self._polling -= 1
        if n < 0:
            check_multi(-n)
        return n

    def wait(self, timeout_ms=1000):
        """``curl_multi_wait``: the number of descriptors with activity."""
        return self._poll(self._handle("wait"), lib.curl_multi_wait, timeout_ms)

    def poll(self, timeout_ms=1000):
        """``curl_multi_poll``: like wait(), but sleeps even with no sockets and
        can be woken early by wakeup()."""
        return self._poll(self._handle("poll"), lib.curl_multi_poll, timeout_ms)

    def _poll(self, h, func, timeout_ms):
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int):
            raise TypeError("timeout must be an int number of milliseconds")
        if timeout_ms < 0:
            raise ValueError("timeout must not be negative")
        out = ffi.new("int *")  # per call: poll() may run in several threads
        self._polling += 1
        try:
            code = func(h, _NULL, 0, min(timeout_ms, _INT_MAX), out)
        finally:
            self._polling -= 1
        check_multi(code)
        return out[0]

    def wakeup(self):
        """``curl_multi_wakeup``: end a poll() early; safe from any thread."""
        with self._lock:
            code = lib.curl_multi_wakeup(self._handle("wakeup"))
        check_multi(code)

    # -- sockets and options --------------------------------------------------

    def assign(self, sockfd, obj):
        """``curl_multi_assign``: attach obj to a socket (None clears); the
        object is passed as ``socketp`` to the socket callback from the next
        call on."""
        h = self._handle("assign")
        if obj is None:
            return self.unassign(sockfd)
        if not isinstance(sockfd, int):
            raise TypeError("assign() takes an int socket, not %s" % type(sockfd).__name__)
        ud = ffi.new_handle(obj)
        check_multi(lib.curl_multi_assign(h, _socket(sockfd), ud))
        self._assigned[sockfd] = ud

    def unassign(self, sockfd):
        """Clear the object assigned to a socket and release it."""
        h = self._handle("unassign")
        if not isinstance(sockfd, int):
            raise TypeError("unassign() takes an int socket, not %s" % type(sockfd).__name__)
        code = lib.curl_multi_assign(h, _socket(sockfd), _NULL)
        self._assigned.pop(sockfd, None)
        check_multi(code)

    def setopt(self, option, value):
        """``curl_multi_setopt`` for every M_* option."""
        h = self._handle("setopt")
        if not isinstance(option, int):
            raise TypeError("option must be an int, not %s" % type(option).__name__)
        if option in _RESERVED:
            raise TypeError("M_SOCKETDATA and M_TIMERDATA are reserved by curlmulti")
        if not 0 <= option <= _INT_MAX:
            raise error(_M_UNKNOWN_OPTION, "%s: %d" % (multi_strerror(_M_UNKNOWN_OPTION), option))
        if option == _M_SOCKETFUNCTION or option == _M_TIMERFUNCTION:
            if value is not None and not callable(value):
                raise TypeError("option %d takes a callable, not %s" % (option, type(value).__name__))
            check_multi(lib.cm_multi_set_callback(h, option, self._ud if value is not None else _NULL))
            if option == _M_SOCKETFUNCTION:
                self._socket_cb = value
            else:
                self._timer_cb = value
            return
        base = option - option % 10000
        if base == 0 or base == 30000:
            if isinstance(value, float) or not isinstance(value, int):
                raise TypeError("option %d takes an int, not %s" % (option, type(value).__name__))
            if not -_LONG_MAX - 1 <= value <= _LONG_MAX:
                raise OverflowError("option %d: %d does not fit in a C %s"
                                    % (option, value, "long" if base == 0 else "curl_off_t"))
            if base == 0:
                check_multi(lib.cm_multi_setopt_long(h, option, value))
            else:
                check_multi(lib.cm_multi_setopt_off_t(h, option, value))
        elif option not in _KNOWN:
            raise error(_M_UNKNOWN_OPTION, "%s: %d" % (multi_strerror(_M_UNKNOWN_OPTION), option))
        elif base == 10000 and (value is None or isinstance(value, (list, tuple))):
            # The (obsolete) pipelining blocklists: NULL-terminated char *[].
            if value is None:
                check_multi(lib.cm_multi_setopt_ptr(h, option, _NULL))
                if self._keep:
                    self._keep.pop(option, None)
                return
            items = []
            for v in value:
                if isinstance(v, str):
                    v = v.encode("ascii")
                elif not isinstance(v, bytes):
                    raise TypeError("option %d takes a list of str, not %s" % (option, type(v).__name__))
                if 0 in v:
                    raise ValueError("option %d: value contains a NUL byte" % option)
                items.append(ffi.new("char[]", v))
            array = ffi.new("char *[]", items + [_NULL])
            check_multi(lib.cm_multi_setopt_ptr(h, option, array))
            if self._keep is None:
                self._keep = {}
            self._keep[option] = (items, array)
        else:
            raise TypeError("option %d is not supported by curlmulti.CurlMulti.setopt" % option)

    # -- life cycle ---------------------------------------------------------

    def close(self):
        """Remove every easy handle (closing them with close_handles=True) and
        free the multi handle.  Idempotent; an error while a libcurl call of
        this multi is running (from inside a callback, or poll() in another
        thread)."""
        if self._h is None:
            return
        if self._depth:
            raise misuse("cannot invoke close() - perform() or socket_action() is running")
        if self._polling:
            raise misuse("cannot invoke close() - poll() is running in another thread")
        with self._lock:
            h, self._h = self._h, None
        self._teardown(h, self._close_handles)

    def _teardown(self, h, close_handles):
        lib.cm_multi_set_callback(h, _M_SOCKETFUNCTION, _NULL)
        lib.cm_multi_set_callback(h, _M_TIMERFUNCTION, _NULL)
        self._socket_cb = self._timer_cb = None
        # Every easy pointer now: callbacks run by the removals may close
        # handles, which are then deferred (the multi reads as closed already).
        handles = [(curl, curl._h) for curl in self._handles]
        handles += [(curl, easy) for curl, easy, _ in self._deferred if curl._h is None]
        self._depth += 1
        try:
            for curl, easy in handles:
                if easy is not None:
                    lib.curl_multi_remove_handle(h, easy)
            lib.curl_multi_cleanup(h)
        finally:
            self._depth -= 1
            for curl, _ in handles:
                self._unlink(curl)
            self._run_deferred()  # the closes requested meanwhile; the multi is gone
            self._assigned.clear()
            self._closers.clear()
            self._callback_exc = None
        if close_handles:
            for curl, _ in handles:
                curl.close()

    def __del__(self):
        h = self._h
        if h is None:
            return
        self._h = None
        self._teardown(h, self._close_handles)

    # One object per C handle: copying or pickling would make two owners.
    __copy__ = __deepcopy__ = no_copy
    __reduce__ = __reduce_ex__ = __getstate__ = no_pickle

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        if self._h is None:
            return "<curlmulti.CurlMulti closed>"
        return "<curlmulti.CurlMulti with %d handles>" % len(self._handles)


def _socket(sockfd):
    if not -1 <= sockfd <= _INT_MAX:
        raise ValueError("socket %d is out of range" % sockfd)
    return sockfd


def _milliseconds(timeout):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds")
    if timeout != timeout or timeout < 0:
        raise ValueError("timeout must be a non-negative number of seconds")
    return int(min(timeout * 1000.0, _INT_MAX))


for _name, _value in CONSTANTS.items():
    setattr(CurlMulti, _name, _value)
