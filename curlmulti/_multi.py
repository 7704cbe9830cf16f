"""``CurlMulti``: pycurl's multi handle over libcurl's ``CURLM *``.

Ownership (see ``_owner.py`` for the rules every class follows)
-------------------------------------------------------------------
1. A ``_MultiRecord`` owns the ``CURLM *``, the callback data libcurl's
   SOCKETDATA/TIMERDATA/NOTIFYDATA point at (a handle to the record itself), the
   objects given to ``assign()`` and the blocklists.  The public
   ``CurlMulti`` holds the record, and the record the CurlMulti only
   weakly; the CurlMulti's finalizer tears the record down when it is
   dropped unclosed, so a dropped multi detaches its handles at once on
   CPython, with no ``gc.collect()``.
2. While a ``Curl`` is attached, the record holds it strongly
   (``handles``: easy record -> Curl) and the Curl's record points at this
   record (``multi``) and is guarded by this record's ``lock``: one lock for
   the multi and all its attached handles.  Attaching takes both locks
   (the multi's first); detaching is done under the multi's, switching the
   record back to its own lock last.
3. libcurl forbids removing or cleaning up an easy handle while one of this
   multi's calls is on the stack (its callbacks run inside those calls).
   ``depth`` counts such calls in ``thread``; while it is non-zero,
   detaches and closes asked for by callbacks are queued in ``deferred``
   (a closed Curl reads as closed at once) and carried out as soon as the
   outermost call returns.
4. Threads: ``perform``, ``socket_action``, ``socket_all`` and the waits
   (``select``, ``poll``, ``wait``) run without the lock, with ``thread`` set.
   Another thread's call is then refused with ``error`` (as pycurl refuses
   calls during ``multi_perform``), except during a wait: there it wakes the
   wait (``curl_multi_wakeup``) and runs once it has returned.  Short calls
   (``add_handle``, ``setopt``, ``info_read``, ...) run under the lock.
5. A connection outlives the transfer that opened it in the multi's
   connection cache, and libcurl calls the CLOSESOCKETFUNCTION of the Curl
   that opened it when it finally closes it, possibly at
   ``curl_multi_cleanup``.  The record therefore keeps the closers of every
   handle it detached until its own cleanup.
6. ``close()`` and the finalizer share ``teardown``: no user callbacks, every
   handle removed (easy handles whose close was requested meanwhile freed
   after), ``curl_multi_cleanup``, then with ``close_handles`` the handles
   closed.

Errors
------
libcurl return codes raise ``error(code, message)``.  An exception raised in
``M_SOCKETFUNCTION``/``M_TIMERFUNCTION`` (or a -1 it returns) or in
``M_NOTIFYFUNCTION`` (libcurl 8.17+) is stored on
the record and raised from the call that ran the callback as ``__cause__`` of
``error``; libcurl is told 0, since libcurl 7.88 does not survive a -1 from
there (see _callbacks.py), so the transfers go on.  Exceptions in an easy handle's callbacks fail
that transfer only: ``info_read()`` reports it, with the exception on
``curl.callback_error``; KeyboardInterrupt and SystemExit are also raised
from the multi call."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from . import _callbacks, _deprecations, _eventcore
from ._constants import CONSTANTS
from ._curl import ffi, lib
from ._easy import Curl, _EasyRecord, _SocketCloser
from ._errors import (check_multi, closed_error, error, misuse, multi_strerror,
                      raise_from_callback)
from ._owner import ATTACHED, CLOSED, CLOSING, IDLE, OPEN, Owned, get_ident

_M_SOCKETFUNCTION = lib.CURLMOPT_SOCKETFUNCTION
_M_TIMERFUNCTION = lib.CURLMOPT_TIMERFUNCTION
# Multi notifications: only where the build has them (libcurl 8.17+), else
# None, and notify_enable/notify_disable are not defined (see the end).
_HAS_NOTIFY = bool(lib.CM_HAS_NOTIFY) and "M_NOTIFYFUNCTION" in CONSTANTS
_M_NOTIFYFUNCTION = CONSTANTS["M_NOTIFYFUNCTION"] if _HAS_NOTIFY else None
_NOTIFY_MAX = 0xFFFFFFFF  # the C unsigned int libcurl takes
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
_add_handle = lib.curl_multi_add_handle
_multi_perform = lib.curl_multi_perform
_socket_action = lib.curl_multi_socket_action
_remove_handle = lib.curl_multi_remove_handle
_add_locked = lib.cm_multi_add_locked
_remove_idle = lib.cm_multi_remove_idle
_select = lib.cm_multi_select
_easy_lock = lib.cm_easy_lock
_easy_unlock = lib.cm_easy_unlock
_set_idle = lib.cm_easy_set_idle
_get_ident = get_ident
_CLOSED = "CurlMulti object"
_WAITS = ("select", "poll", "wait")

if TYPE_CHECKING:
    from ._curl import _CData

# What info_read() and run_ready() give: (running or queued, ok, failed).
_Done = Tuple[int, List[Curl], List[Tuple[Curl, int, str]]]


class _MultiRecord(object):
    """The owner record of one ``CURLM *`` (see the module docstring)."""

    __slots__ = ("h", "ud", "lock", "cond", "state", "thread", "activity", "depth", "waiters",
                 "handles", "deferred", "assigned", "closers", "socket_cb", "timer_cb", "notify_cb",
                 "callback_exc", "running", "long", "drain", "fdbuf", "keep", "adding",
                 "add_refused", "close_handles", "public", "core", "__weakref__")

    h: Optional[_CData]  # the CURLM *, None once cleaned up
    ud: Optional[_CData]
    lock: threading.RLock
    cond: threading.Condition
    state: str
    thread: Optional[int]
    activity: Optional[str]
    depth: int
    waiters: int
    handles: Dict[_EasyRecord, Curl]
    deferred: List[List[Any]]  # [erec, curl, closing]: a list, as closing can be raised later
    assigned: Dict[int, _CData]
    closers: Set[_SocketCloser]
    socket_cb: Optional[Callable[[int, int, CurlMulti, Any], object]]
    timer_cb: Optional[Callable[[int], object]]
    notify_cb: Optional[Callable[[int, Optional[Curl]], object]]
    callback_exc: Optional[BaseException]
    running: _CData
    long: _CData
    drain: Optional[Tuple[_CData, _CData, _CData]]
    fdbuf: Optional[_CData]
    keep: Optional[Dict[int, Tuple[List[_CData], _CData]]]
    adding: bool
    add_refused: bool
    close_handles: bool
    public: weakref.ref[CurlMulti]
    core: Optional[_eventcore.EventCore]

    def __init__(self, h: _CData, public: CurlMulti, close_handles: bool) -> None:
        self.h = h
        self.ud = ffi.new_handle(self)  # a cycle through the record only; broken by teardown
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.state = OPEN
        self.thread = None      # the thread inside one of this multi's libcurl calls
        self.activity = None    # and which call it is
        self.depth = 0
        self.waiters = 0        # threads waiting for a wait to end
        self.handles = {}       # easy record -> Curl, in order of addition
        self.deferred = []      # [easy record, Curl, close?] waiting for the stack to unwind
        self.assigned = {}      # socket -> ffi.new_handle(object) given to libcurl
        self.closers = set()    # CLOSESOCKETFUNCTION owners of detached handles
        self.socket_cb = self.timer_cb = self.notify_cb = None
        self.callback_exc = None
        self.running = ffi.new("int *")
        self.long = ffi.new("long *")
        self.drain = self.fdbuf = self.keep = None
        self.adding = self.add_refused = False
        self.close_handles = close_handles
        self.public = weakref.ref(public)
        self.core = None        # the native event core, once installed (_eventcore.py)

    def callback_failed(self, exc: BaseException) -> None:
        """Called by the trampolines (and by an attached Curl's record for
        KeyboardInterrupt/SystemExit): the first exception wins."""
        if self.callback_exc is None:
            self.callback_exc = exc

    # -- state (under self.lock) -------------------------------------------------

    def enter(self, method: str) -> bool:
        """Check that ``method`` may run now: True if it is called from
        inside one of this multi's libcurl calls (a callback), False if the
        multi is idle.  A call from another thread while one runs is
        refused; during a wait it wakes the wait and waits for it to end."""
        while True:
            thread = self.thread
            if thread is None:
                return False
            if thread == get_ident():
                return True
            if self.activity not in _WAITS:
                raise misuse("cannot invoke %s() - %s() is currently running in another thread"
                             % (method, self.activity))
            lib.curl_multi_wakeup(self.h)
            self.waiters += 1
            try:
                self.cond.wait()
            finally:
                self.waiters -= 1
                if not self.waiters:
                    self.cond.notify_all()  # a long call held back for us may go

    def open_handle(self, method: str) -> _CData:
        if self.state is not OPEN:
            raise closed_error(_CLOSED, method)
        return self.h

    def begin(self, activity: str) -> None:
        if not self.depth:
            self.thread = get_ident()
            self.activity = activity
        self.depth += 1

    def end(self) -> None:
        self.depth -= 1
        if not self.depth:
            self.thread = self.activity = None
            if self.waiters:
                self.cond.notify_all()

    def call_locked(self, func: Callable[..., int], *args: Any) -> int:
        """func(*args) as one of this multi's calls, under the lock (callbacks
        it runs defer what they detach); deferred work done after."""
        self.begin("pause")
        try:
            code = func(*args)
        finally:
            self.end()
        if self.deferred or self.callback_exc is not None:
            self.settle(0)
        return code

    def long_call(self, activity: str, func: Callable[..., int], *args: Any) -> int:
        """Run a libcurl call that may take long or run many callbacks: the
        multi is marked busy with this thread, and the lock is released
        meanwhile (unless an outer call of this thread holds it: then other
        threads wait for that one).  Returns with the lock held again; the
        caller releases it.  (begin/end written out: a hot path.)"""
        lock = self.lock
        lock.acquire()
        if self.thread is not None or self.waiters or self.h is None:
            try:
                # Threads that woke this thread's previous wait go first: the
                # lock is not fair, and a loop of select() and perform() would
                # otherwise take it again before them, for ever.
                while self.thread is None and self.waiters:
                    self.cond.wait()
                if self.thread is not None:
                    self.enter(activity)  # raises, waits a wait out, or it is a callback
                self.open_handle(activity)  # after any wait: closed meanwhile?
            except BaseException:
                lock.release()
                raise
        h = self.h
        outer = not self.depth
        if outer:
            self.thread = _get_ident()
            self.activity = activity
        self.depth += 1
        lock.release()
        try:
            code = func(h, *args)
        except BaseException:
            with lock:
                self.end()
            raise
        lock.acquire()
        if outer and self.depth == 1 and not self.waiters:
            self.depth = 0
            self.thread = self.activity = None
        else:
            self.end()
        return code

    def settle(self, code: int, recount: Optional[Callable[[_CData], int]] = None) -> None:
        """Under the lock, after a libcurl call of this multi returned: once
        the outermost call is done, carry out the deferred detaches, then
        raise what a callback stored or what libcurl returned.

        The detaches change the number of running transfers the call
        reported, and a stale count can stall the caller's loop, so
        ``recount`` (a libcurl call that does no more than that call would)
        runs again."""
        if self.depth:
            if code:
                raise error(code, multi_strerror(code))
            return
        while self.deferred:
            self.run_deferred()
            if recount is None or code or self.callback_exc is not None or self.state is not OPEN:
                break
            self.begin("perform")
            try:
                code = recount(self.h)
            finally:
                self.end()
        exc = self.callback_exc
        if exc is None and _callbacks.UNCLAIMED:
            exc = _callbacks.take_unclaimed()
        if exc is not None:
            self.callback_exc = None
            raise_from_callback(error(code or _M_ABORTED, "a multi callback raised %s: %s"
                                      % (type(exc).__name__, exc)), exc)
        if code:
            raise error(code, multi_strerror(code))

    # -- attaching and detaching (under self.lock) ---------------------------------

    def attach(self, erec: _EasyRecord, curl: Curl) -> None:
        """Make erec ATTACHED to this multi (under both locks: an operation
        under its own lock in another thread finishes first)."""
        own = erec.own_lock
        own.acquire()
        try:
            state = erec.state
            if state is not IDLE:
                if state is ATTACHED:
                    if erec.multi is self:
                        raise misuse("curl object already on this multi-stack "
                                     "(it is already attached to this CurlMulti)")
                    raise misuse("cannot add/remove handle - curl object already on another multi-stack "
                                 "(it is attached to another CurlMulti)")
                erec.enter("add_handle")  # raises: closed, or perform() running
            erec.state = ATTACHED
            erec.gate.idle = 0  # under own_lock: no fast path from now on
            erec.multi = self
            erec.lock = self.lock
            erec.callback_error = None
        finally:
            own.release()
        self.handles[erec] = curl

    def unlink(self, erec: _EasyRecord) -> None:
        """erec is no longer attached (after curl_multi_remove_handle)."""
        self.handles.pop(erec, None)
        if erec.multi is self:
            # Under this multi's lock, which guards erec while attached; the
            # switch back to its own lock comes last, so a thread that took
            # the own lock meanwhile sees erec only once it is idle.
            idle = erec.state is ATTACHED
            if idle:
                erec.state = IDLE
            erec.multi = None
            erec.retired = None  # frees what the Curl replaced while attached
            erec.lock = erec.own_lock
            if idle:
                _set_idle(erec.gate, 1)  # the fast paths may run again
        closers = erec.closers
        if closers:
            self.closers.update(closers)

    def detach(self, erec: _EasyRecord, curl: Curl, closing: bool, method: str) -> bool:
        """Remove erec from libcurl and from handles; with closing, free it
        too.  Deferred while one of this multi's calls is running.  False if
        erec was detached by another thread while this one waited."""
        in_callback = self.enter(method)
        if erec.multi is not self:
            return False
        if in_callback:
            for entry in self.deferred:
                if entry[0] is erec:
                    entry[2] = entry[2] or closing
                    break
            else:
                self.deferred.append([erec, curl, closing])
            if closing:
                erec.state = CLOSING  # closed for Python at once; freed on unwinding
            return True
        code = 0
        try:
            if erec.h is not None and self.state is OPEN:
                # Still attached for Python during the call: a callback it
                # runs that closes this very handle is deferred like any other.
                self.begin("remove_handle")
                try:
                    code = lib.curl_multi_remove_handle(self.h, erec.h)
                finally:
                    self.end()
        finally:
            self.unlink(erec)
            if closing and erec.h is not None:
                erec.free(erec.take_handle())
        core = self.core
        if core is not None:
            core.after_detach()  # tells an asyncio driver of a foreign removal
        if code or self.callback_exc is not None or self.deferred:
            self.settle(code)
        return True

    def run_deferred(self) -> None:
        """Carry out the queued detaches; callbacks they run store their
        exceptions, which the caller raises."""
        deferred = self.deferred
        self.begin("remove_handle")
        try:
            while deferred:
                erec, curl, closing = deferred.pop(0)
                try:
                    if erec.h is not None and self.state is OPEN:
                        lib.curl_multi_remove_handle(self.h, erec.h)
                finally:
                    self.unlink(erec)  # after: a close from its callbacks is deferred
                    if closing and erec.h is not None:
                        erec.free(erec.take_handle())
        finally:
            self.end()

    # -- the end ---------------------------------------------------------------

    def teardown(self) -> List[Curl]:
        """Under the lock: remove every handle, free the multi; returns the
        Curls to close (with close_handles)."""
        h, self.h = self.h, None
        self.state = CLOSED
        lib.cm_multi_set_callback(h, _M_SOCKETFUNCTION, _NULL)
        lib.cm_multi_set_callback(h, _M_TIMERFUNCTION, _NULL)
        if _M_NOTIFYFUNCTION is not None:
            # Before curl_multi_cleanup, which may notify while it closes
            # the cached connections.
            lib.cm_multi_set_callback(h, _M_NOTIFYFUNCTION, _NULL)
        self.socket_cb = self.timer_cb = self.notify_cb = None
        handles = list(self.handles.items())
        handles += [(erec, curl) for erec, curl, _ in self.deferred
                    if erec.state is CLOSING and erec not in self.handles]
        self.begin("close")
        try:
            for erec, _ in handles:
                if erec.h is not None:
                    lib.curl_multi_remove_handle(h, erec.h)
            lib.curl_multi_cleanup(h)
        finally:
            self.end()
            for erec, _ in handles:
                self.unlink(erec)
            self.run_deferred()  # the closes requested meanwhile; the multi is gone
            self.assigned.clear()
            self.closers.clear()
            self.callback_exc = None
            self.ud = None
            core, self.core = self.core, None
            if core is not None:
                core.release()  # libcurl's callbacks were reset, the multi is gone
        return [curl for _, curl in handles] if self.close_handles else []


def _perform_again(rec: _MultiRecord) -> Callable[[_CData], int]:
    return lambda h: _multi_perform(h, rec.running)


def _timeout_again(rec: _MultiRecord) -> Callable[[_CData], int]:
    return lambda h: _socket_action(h, _SOCKET_TIMEOUT, 0, rec.running)


def _close(rec: _MultiRecord, refuse_in_callback: bool) -> None:
    """CurlMulti.close(), or its finalizer (the CurlMulti dropped unclosed)."""
    lock = rec.lock
    lock.acquire()
    try:
        if rec.state is not OPEN:
            return
        if refuse_in_callback and rec.thread is not None and rec.enter("close"):
            raise misuse("cannot invoke close() - perform() or socket_action() is running")
        curls = rec.teardown()
    finally:
        lock.release()
    for curl in curls:
        curl.close()


class CurlMulti(Owned):
    """A libcurl multi handle (``curl_multi_init``), pycurl-compatible.

    ``close_handles=True`` closes the attached easy handles when the multi is
    closed; by default they are only removed.  Thread-safe in pycurl's way:
    a call from another thread while ``perform()``/``socket_action()`` runs
    is refused with ``error``; one made during ``select()``/``poll()`` wakes
    the wait and runs when it has returned."""

    _rec: _MultiRecord  # None (Owned's default) only while __init__ has not run

    def __init__(self, *, close_handles: bool = False) -> None:
        if self._rec is not None:
            return  # already set up (or closed): as in pycurl, a second __init__ does nothing
        h = lib.curl_multi_init()
        if h == _NULL:
            raise error(lib.CURLM_OUT_OF_MEMORY, "curl_multi_init() failed")
        self._rec = _MultiRecord(h, self, bool(close_handles))

    def __del__(self) -> None:
        # Dropped unclosed.  Not weakref.finalize: its registry would hold the
        # record, and through the attached handles' callbacks the record can
        # refer to this very object, which would then never be collected.
        rec = self._rec
        if rec is not None and rec.state is OPEN:
            _close(rec, False)

    # -- state ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._rec.state is not OPEN

    def __contains__(self, curl: object) -> bool:
        if not isinstance(curl, Curl):
            raise TypeError("'in <CurlMulti>' requires a Curl, not %s" % type(curl).__name__)
        return curl._rec in self._rec.handles

    def _locked(self, method: str) -> Tuple[threading.RLock, _CData]:
        """Acquire the lock and check: (lock, CURLM *).  The caller releases."""
        rec = self._rec
        lock = rec.lock
        lock.acquire()
        try:
            if rec.thread is not None:
                rec.enter(method)
            return lock, rec.open_handle(method)  # after any wait: closed meanwhile?
        except BaseException:
            lock.release()
            raise

    # -- handles ------------------------------------------------------------

    def add_handle(self, curl: Curl) -> None:
        """Attach an easy handle; the multi keeps it alive until removed."""
        rec = self._rec
        lock = rec.lock
        lock.acquire()
        try:
            h = rec.h
            if rec.thread is not None or h is None:
                rec.enter("add_handle")
                h = rec.open_handle("add_handle")  # after any wait: closed meanwhile?
            if type(curl) is not Curl and not isinstance(curl, Curl):
                raise TypeError("add_handle() takes a Curl, not %s" % type(curl).__name__)
            erec = curl._rec
            if erec is None:
                raise closed_error("Curl object", "add_handle")
            # One of this multi's calls (begin/end written out: a hot path).
            outer = not rec.depth
            if outer:
                rec.thread = _get_ident()
                rec.activity = "add_handle"
            rec.depth += 1
            rec.adding = True
            try:
                # Attached for Python before libcurl runs the timer callback,
                # so that a close() from there is deferred, not done under
                # libcurl.
                gate = erec.gate
                _easy_lock(gate)  # its own lock (the C mutex of _EasyLock)
                if erec.state is IDLE:  # attach() written out: a hot path
                    erec.state = ATTACHED
                    erec.multi = rec
                    erec.lock = lock
                    erec.callback_error = None
                    rec.handles[erec] = curl
                    # Clears gate.idle, releases the own lock, then adds.
                    code = _add_locked(h, gate)
                else:
                    _easy_unlock(gate)
                    rec.attach(erec, curl)  # raises why not
                    code = _add_handle(h, erec.h)
            finally:
                rec.adding = False
                if outer and rec.depth == 1 and not rec.waiters:
                    rec.depth = 0
                    rec.thread = rec.activity = None
                else:
                    rec.end()
            if code:
                # Refused before libcurl linked it (the timer callback never
                # fails an add: see _callbacks.cm_timer_cb).
                rec.unlink(erec)
                rec.settle(code)
            elif rec.add_refused or rec.callback_exc is not None:
                # The timer callback failed: undo the add, then raise.
                rec.add_refused = False
                rec.detach(erec, curl, False, "add_handle")
                rec.settle(_M_ABORTED)  # raises the callback's exception
                raise error(_M_ABORTED, "the timer callback returned -1: the handle was not added")
            elif rec.deferred:
                rec.settle(0)
        finally:
            lock.release()

    def remove_handle(self, curl: Curl) -> None:
        """Detach an easy handle (it stays open).  A closed Curl has already
        been detached, so removing it does nothing, as in pycurl."""
        rec = self._rec
        lock = rec.lock
        lock.acquire()
        try:
            h = rec.h
            if rec.thread is not None or h is None:
                rec.enter("remove_handle")
                h = rec.open_handle("remove_handle")  # after any wait: closed meanwhile?
            if type(curl) is not Curl and not isinstance(curl, Curl):
                raise TypeError("remove_handle() takes a Curl, not %s" % type(curl).__name__)
            erec = curl._rec
            handles = rec.handles
            if erec not in handles:
                if curl.closed:
                    return
                raise misuse("curl object not on this multi-stack (it is not attached to this CurlMulti)")
            if rec.depth or rec.deferred or rec.thread is not None:
                rec.detach(erec, curl, False, "remove_handle")
                return
            # The common case, detach() with no deferral, no close and the
            # multi idle, written out (a hot path).
            rec.thread = _get_ident()
            rec.activity = "remove_handle"
            rec.depth = 1
            try:
                # Removed, then gate.idle set (a fast path of another thread
                # may run from then on: libcurl no longer has the handle).
                code = _remove_idle(h, erec.gate)
            finally:
                rec.depth = 0
                rec.thread = rec.activity = None
                if rec.waiters:
                    rec.cond.notify_all()
                del handles[erec]  # unlink() written out: a hot path
                erec.state = IDLE
                erec.multi = None
                erec.retired = None
                erec.lock = erec.own_lock
                if erec.closers:
                    rec.closers.update(erec.closers)
            if code or rec.callback_exc is not None or rec.deferred:
                rec.settle(code)
        finally:
            lock.release()

    # -- driving transfers ----------------------------------------------------

    def perform(self) -> Tuple[int, int]:
        """``curl_multi_perform`` -> ``(0, running)``; raises on any error."""
        rec = self._rec
        lock = rec.lock
        lock.acquire()
        if rec.thread is None and not rec.waiters and rec.h is not None:
            # The common case: the multi idle.  Marked busy under the lock,
            # the mark cleared without it: nobody waits for a perform (another
            # thread's call is refused), so there is no one to notify.
            h = rec.h
            rec.thread = _get_ident()
            rec.activity = "perform"
            rec.depth = 1
            lock.release()
            try:
                code = _multi_perform(h, rec.running)
            finally:
                rec.depth = 0
                rec.thread = rec.activity = None
            if code or rec.callback_exc is not None or rec.deferred or _callbacks.UNCLAIMED:
                lock.acquire()
                try:
                    rec.settle(code, _perform_again(rec))
                finally:
                    lock.release()
            return 0, rec.running[0]
        lock.release()
        code = rec.long_call("perform", _multi_perform, rec.running)
        try:
            if code or rec.callback_exc is not None or rec.deferred or _callbacks.UNCLAIMED:
                rec.settle(code, _perform_again(rec))
            return 0, rec.running[0]
        finally:
            lock.release()

    def socket_action(self, sockfd: int, ev_bitmask: int) -> Tuple[int, int]:
        """``curl_multi_socket_action`` -> ``(0, running)``."""
        rec = self._rec
        lock = rec.lock
        lock.acquire()
        if rec.thread is None and not rec.waiters and rec.h is not None:
            # As in perform(): the common case written out.  (A shared helper
            # for both was tried: one more Python call cost 1.7k instructions
            # a call, and the asyncio driver calls this several times a transfer.)
            h = rec.h
            rec.thread = _get_ident()
            rec.activity = "socket_action"
            rec.depth = 1
            lock.release()
            try:
                code = _socket_action(h, sockfd, ev_bitmask, rec.running)
            except OverflowError:
                raise ValueError("socket_action(): sockfd and ev_bitmask must fit in a C int") from None
            finally:
                rec.depth = 0
                rec.thread = rec.activity = None
            if code or rec.callback_exc is not None or rec.deferred or _callbacks.UNCLAIMED:
                lock.acquire()
                try:
                    rec.settle(code, _timeout_again(rec))
                finally:
                    lock.release()
            return 0, rec.running[0]
        lock.release()
        try:
            code = rec.long_call("socket_action", _socket_action, sockfd, ev_bitmask, rec.running)
        except OverflowError:
            raise ValueError("socket_action(): sockfd and ev_bitmask must fit in a C int") from None
        try:
            if code or rec.callback_exc is not None or rec.deferred or _callbacks.UNCLAIMED:
                rec.settle(code, _timeout_again(rec))
            return 0, rec.running[0]
        finally:
            lock.release()

    def socket_all(self) -> Tuple[int, int]:
        """``curl_multi_socket_all`` -> ``(0, running)``.  Deprecated (as in
        pycurl): use socket_action()."""
        _deprecations.warn("socket_all is deprecated; use socket_action")
        rec = self._rec
        code = rec.long_call("socket_all", lib.curl_multi_socket_all, rec.running)
        try:
            if code or rec.callback_exc is not None or rec.deferred or _callbacks.UNCLAIMED:
                rec.settle(code, lambda h: lib.curl_multi_socket_all(h, rec.running))
            return 0, rec.running[0]
        finally:
            rec.lock.release()

    def info_read(self, max_objects: Optional[int] = None
                  ) -> Tuple[int, List[Curl], List[Tuple[Curl, int, str]]]:
        """``curl_multi_info_read`` -> ``(queued, ok_list, err_list)``; the
        error entries are ``(curl, code, message)``."""
        if max_objects is None:
            max_objects = _INT_MAX
        elif type(max_objects) is not int and not isinstance(max_objects, int):
            raise TypeError("info_read() takes an int, not %s" % type(max_objects).__name__)
        elif max_objects <= 0:
            raise misuse("argument to info_read must be greater than zero")
        rec = self._rec
        lock = rec.lock
        lock.acquire()
        try:
            h = rec.h
            if rec.thread is not None or h is None:  # _locked() written out: a hot path
                rec.enter("info_read")
                h = rec.open_handle("info_read")  # after any wait: closed meanwhile?
            drain = rec.drain
            if drain is None:
                drain = rec.drain = (ffi.new("void *[]", _DRAIN_CAP), ffi.new("int[]", _DRAIN_CAP),
                                     ffi.new("int *"))
            owners, codes, queued = drain
            n = _info_drain(h, owners, codes, _DRAIN_CAP if max_objects > _DRAIN_CAP else max_objects,
                            queued)
            if not n:
                return queued[0], [], []
            handles = rec.handles
            ok, failed = [], []
            while True:
                for i in range(n):
                    erec = _from_handle(owners[i])
                    curl = handles.get(erec)
                    if curl is None:
                        continue  # closed meanwhile, from a callback
                    code = codes[i]
                    if code == 0 and erec.callback_error is None:
                        ok.append(curl)
                    else:
                        err = erec.transfer_error(code or _E_ABORTED_BY_CALLBACK)
                        failed.append((curl, err.args[0], err.args[1]))
                max_objects -= n
                if n < _DRAIN_CAP or not max_objects or not queued[0]:
                    return queued[0], ok, failed
                n = _info_drain(h, owners, codes, min(max_objects, _DRAIN_CAP), queued)
        finally:
            lock.release()

    def timeout(self) -> int:
        """``curl_multi_timeout``: milliseconds to wait, or -1."""
        rec = self._rec
        lock, h = self._locked("timeout")
        try:
            out = rec.long
            check_multi(lib.curl_multi_timeout(h, out))
            ms: int = out[0]
            return ms
        finally:
            lock.release()

    def fdset(self) -> Tuple[List[int], List[int], List[int]]:
        """``curl_multi_fdset`` as three lists (read, write, except) for
        ``select.select``.  As with select(2), descriptors >= 1024 cannot be
        reported this way (libcurl leaves them out); use select()/poll()."""
        rec = self._rec
        lock, h = self._locked("fdset")
        try:
            buf = rec.fdbuf
            if buf is None:
                buf = rec.fdbuf = ffi.new("int[]", _FDSET_CAP)
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
        finally:
            lock.release()

    def select(self, timeout: float = 1.0) -> int:
        """Wait up to ``timeout`` seconds for activity on libcurl's sockets;
        returns the number of ready descriptors, 0 on timeout.  Uses poll(2)
        through ``curl_multi_poll``, so any descriptor number works.  When
        libcurl's own timer expires first with no socket ready, it returns 1:
        perform() has work to do.  Another thread's call to this multi wakes
        it early."""
        ms = _milliseconds(timeout)
        rec = self._rec
        n: int = rec.long_call("select", _select, ms)
        rec.lock.release()
        if n < 0:
            check_multi(-n)
        return n

    def wait(self, timeout_ms: int = 1000) -> int:
        """``curl_multi_wait``: the number of descriptors with activity."""
        return self._poll("wait", lib.curl_multi_wait, timeout_ms)

    def poll(self, timeout_ms: int = 1000) -> int:
        """``curl_multi_poll``: like wait(), but sleeps even with no sockets and
        can be woken early by wakeup()."""
        return self._poll("poll", lib.curl_multi_poll, timeout_ms)

    def _poll(self, method: str, func: Callable[..., int], timeout_ms: int) -> int:
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int):
            raise TypeError("timeout must be an int number of milliseconds")
        if timeout_ms < 0:
            raise ValueError("timeout must not be negative")
        out = ffi.new("int *")  # per call: poll() may run in several threads
        rec = self._rec
        code = rec.long_call(method, func, _NULL, 0, min(timeout_ms, _INT_MAX), out)
        rec.lock.release()
        check_multi(code)
        count: int = out[0]
        return count

    def wakeup(self) -> None:
        """``curl_multi_wakeup``: end a poll() early; safe from any thread."""
        rec = self._rec
        lock = rec.lock
        lock.acquire()
        try:
            code = lib.curl_multi_wakeup(rec.open_handle("wakeup"))
        finally:
            lock.release()
        check_multi(code)

    # -- the native event core (_eventcore.py) ---------------------------------

    def event_fileno(self) -> int:
        """The descriptor to wait on (readable) for this multi's sockets.  The
        first call, which must come before the first add_handle(), installs
        the native event core (Linux): libcurl's socket and timer callbacks
        become C, and M_SOCKETFUNCTION/M_TIMERFUNCTION can no longer be set.
        NotImplementedError where there is no core."""
        return _eventcore.install(self._rec).fd

    def event_timeout(self) -> int:
        """Milliseconds to wait at most before calling run_ready() (-1: no
        timer, wait for event_fileno() only)."""
        return _eventcore.timeout_ms(self._rec)

    def run_ready(self) -> _Done:
        """One call per wake-up of a custom loop: serve every ready socket
        and the expired timer, then return ``(running, ok_list, err_list)``
        of the transfers that finished, as info_read() does, except that
        they are already removed from the multi.  ``running`` is the number
        of handles still attached."""
        rec = self._rec
        _, ok, failed, _, more = _eventcore.run(rec, _eventcore.RUN_SOCKETS)
        while more:
            _, o, f, _, more = _eventcore.run(rec, 0)
            ok += o
            failed += f
        return len(rec.handles), ok, failed

    # -- sockets and options --------------------------------------------------

    def assign(self, sockfd: int, obj: Any) -> None:
        """``curl_multi_assign``: attach obj to a socket (None clears); the
        object is passed as ``socketp`` to the socket callback from the next
        call on."""
        if obj is None:
            return self.unassign(sockfd)
        if not isinstance(sockfd, int):
            raise TypeError("assign() takes an int socket, not %s" % type(sockfd).__name__)
        rec = self._rec
        lock, h = self._locked("assign")
        try:
            ud = ffi.new_handle(obj)
            check_multi(lib.curl_multi_assign(h, _socket(sockfd), ud))
            rec.assigned[sockfd] = ud
        finally:
            lock.release()

    def unassign(self, sockfd: int) -> None:
        """Clear the object assigned to a socket and release it."""
        if not isinstance(sockfd, int):
            raise TypeError("unassign() takes an int socket, not %s" % type(sockfd).__name__)
        rec = self._rec
        lock, h = self._locked("unassign")
        try:
            code = lib.curl_multi_assign(h, _socket(sockfd), _NULL)
            rec.assigned.pop(sockfd, None)
            check_multi(code)
        finally:
            lock.release()

    def setopt(self, option: int, value: Any) -> None:
        """``curl_multi_setopt`` for every M_* option."""
        rec = self._rec
        lock, h = self._locked("setopt")
        try:
            self._setopt(rec, h, option, value)
        finally:
            lock.release()

    def _setopt(self, rec: _MultiRecord, h: _CData, option: int, value: Any) -> None:
        if not isinstance(option, int):
            raise TypeError("option must be an int, not %s" % type(option).__name__)
        if option in _RESERVED:
            raise TypeError("M_SOCKETDATA and M_TIMERDATA are reserved by curlmulti")
        if not 0 <= option <= _INT_MAX:
            raise error(_M_UNKNOWN_OPTION, "%s: %d" % (multi_strerror(_M_UNKNOWN_OPTION), option))
        if option == _M_SOCKETFUNCTION or option == _M_TIMERFUNCTION:
            if rec.core is not None:
                raise misuse("M_SOCKETFUNCTION and M_TIMERFUNCTION belong to the event core "
                             "(event_fileno() was called)")
            if value is not None and not callable(value):
                raise TypeError("option %d takes a callable, not %s" % (option, type(value).__name__))
            check_multi(lib.cm_multi_set_callback(h, option, rec.ud if value is not None else _NULL))
            if option == _M_SOCKETFUNCTION:
                rec.socket_cb = value
            else:
                rec.timer_cb = value
            return
        if _M_NOTIFYFUNCTION is not None and option == _M_NOTIFYFUNCTION:
            if value is not None and not callable(value):
                raise TypeError("M_NOTIFYFUNCTION takes a callable, not %s" % type(value).__name__)
            if value is None and rec.thread is not None:
                # From a callback (this thread runs perform() or
                # socket_action(): enter() let it through): libcurl calls
                # its notify function for every queued notification without
                # checking for NULL again, so the trampoline stays and finds
                # notify_cb None.  Removed for libcurl by the next setopt.
                rec.notify_cb = None
                return
            check_multi(lib.cm_multi_set_callback(h, option, rec.ud if value is not None else _NULL))
            rec.notify_cb = value
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
                if rec.keep:
                    rec.keep.pop(option, None)
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
            if rec.keep is None:
                rec.keep = {}
            rec.keep[option] = (items, array)
        else:
            raise TypeError("option %d is not supported by curlmulti.CurlMulti.setopt" % option)

    # -- notifications (libcurl 8.17+; removed below where the build lacks them) --

    def notify_enable(self, *notifications: int) -> None:
        """``curl_multi_notify_enable`` for each of ``notifications``
        (``M_NOTIFY_INFO_READ``, ``M_NOTIFY_EASY_DONE``), left to right; the
        first libcurl refuses raises ``error``, those before it stay enabled.
        M_NOTIFYFUNCTION receives them."""
        self._notify("notify_enable", notifications, 1)

    def notify_disable(self, *notifications: int) -> None:
        """``curl_multi_notify_disable`` for each of ``notifications``, as
        notify_enable() does."""
        self._notify("notify_disable", notifications, 0)

    def _notify(self, method: str, notifications: Tuple[int, ...], enable: int) -> None:
        if not notifications:
            raise TypeError("%s() takes at least one M_NOTIFY_* constant" % method)
        lock, h = self._locked(method)
        try:
            for n in notifications:
                if isinstance(n, bool) or not isinstance(n, int):
                    raise TypeError("%s() takes M_NOTIFY_* constants (int), not %s"
                                    % (method, type(n).__name__))
                code = lib.cm_multi_notify(h, n, enable) if 0 <= n <= _NOTIFY_MAX else _M_UNKNOWN_OPTION
                if code:
                    raise error(code, "%s(%d): %s: %d is not an M_NOTIFY_* value this libcurl knows"
                                % (method, n, multi_strerror(code), n)
                                if code == _M_UNKNOWN_OPTION else
                                "%s(%d): %s" % (method, n, multi_strerror(code)))
        finally:
            lock.release()

    # -- life cycle ---------------------------------------------------------

    def close(self) -> None:
        """Remove every easy handle (closing them with close_handles=True) and
        free the multi handle.  Idempotent; an error from inside one of its
        callbacks, or while another thread runs perform() on it."""
        _close(self._rec, True)

    def __repr__(self) -> str:
        rec = self._rec
        if rec.state is not OPEN:
            return "<curlmulti.CurlMulti closed>"
        return "<curlmulti.CurlMulti with %d handles>" % len(rec.handles)


def _socket(sockfd: int) -> int:
    if not -1 <= sockfd <= _INT_MAX:
        raise ValueError("socket %d is out of range" % sockfd)
    return sockfd


def _milliseconds(timeout: float) -> int:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds")
    if timeout != timeout or timeout < 0:
        raise ValueError("timeout must be a non-negative number of seconds")
    return int(min(timeout * 1000.0, _INT_MAX))


for _name, _value in CONSTANTS.items():
    setattr(CurlMulti, _name, _value)
if not _HAS_NOTIFY:
    # hasattr(CurlMulti, "notify_enable") tells whether the build has them.
    del CurlMulti.notify_enable, CurlMulti.notify_disable, CurlMulti._notify
