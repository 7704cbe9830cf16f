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
   The busy mark (``struct cm_multi`` in _decl/multigate.c: the owner
   thread, ``depth``, ``activity``) counts such calls; while it is set,
   detaches and closes asked for by callbacks are queued in ``deferred``
   (a closed Curl reads as closed at once) and carried out as soon as the
   outermost call returns.
4. Threads: ``perform``, ``socket_action``, ``socket_all`` and the waits
   (``select``, ``poll``, ``wait``) run without the lock, with the mark set.
   Another thread's call is then refused with ``error`` (as pycurl refuses
   calls during ``multi_perform``), except during a wait: there it wakes the
   wait (``curl_multi_wakeup``) and runs once it has returned.  Short calls
   (``add_handle``, ``setopt``, ``info_read``, ...) run under the lock.
   The lock and the mark live in C: the hot calls take the lock, check,
   mark, call libcurl and clear the mark in one C call (multigate.c), and
   fall back to the Python path (``enter``, ``long_call``) when that C call
   answers CM_MBUSY.
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

import functools
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from . import _callbacks, _deprecations, _eventcore
from ._constants import CONSTANTS
from ._curl import ffi, lib
from ._easy import Curl, _EasyRecord, _SocketCloser
from ._errors import (check_multi, closed_error, error, misuse, multi_strerror,
                      raise_from_callback)
from ._owner import ATTACHED, CLOSED, CLOSING, IDLE, OPEN, SLICE_MS, Owned

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
_multi_perform = lib.curl_multi_perform
_socket_action = lib.curl_multi_socket_action
_easy_detached = lib.cm_easy_detached
_CLOSED = "CurlMulti object"

# The record's lock and busy mark (struct cm_multi, multigate.c).
_BUSY = lib.CM_MBUSY        # a fast path's "not now": take the slow path
_NOTHERE = lib.CM_MNOTHERE  # cm_multi_remove: not attached to this multi
_SLICE_MS = SLICE_MS  # a blocked wait returns to Python this often (signals: Ctrl-C)
_mlock = lib.cm_multi_lock
_munlock = lib.cm_multi_unlock
_mreclaim = lib.cm_multi_reclaim
_HAND_LOCK = lib.CM_HAND_LOCK
_HAND_INFO = lib.CM_HAND_INFO
_HAND_REMOVE = lib.CM_HAND_REMOVE
_menter = lib.cm_multi_enter
_mbegin = lib.cm_multi_begin
_mend = lib.cm_multi_end
_mperform = lib.cm_multi_perform
_msocket_action = lib.cm_multi_socket_action
_msocket_all = lib.cm_multi_socket_all
_mselect = lib.cm_multi_select_g
_mpoll = lib.cm_multi_poll_g
_minfo = lib.cm_multi_info
_madd_begin = lib.cm_multi_add_begin
_madd_abandon = lib.cm_multi_add_abandon
_madd_finish = lib.cm_multi_add_finish
_mremove = lib.cm_multi_remove
ACT = {name: getattr(lib, "CM_ACT_" + name.upper())
       for name in ("perform", "socket_action", "socket_all", "select", "poll", "wait",
                    "run_ready", "add_handle", "remove_handle", "close", "pause")}
_ACT_NAMES = {code: name for name, code in ACT.items()}
_A_PERFORM = ACT["perform"]
_A_REMOVE = ACT["remove_handle"]


class _MultiLock(object):
    """The lock of a multi's record: the recursive lock of its ``struct
    cm_multi`` (multigate.c), which the hot calls take in the same C call
    as their libcurl call.  ``acquire()`` waits in slices of _SLICE_MS, so
    that a signal handler (Ctrl-C) runs while another thread holds it;
    ``release()`` is the C call itself.

    An exception raised as a call that takes a level returns (a pending
    signal: CPython and PyPy run handlers right after a C call) loses the
    result; the handler asks ``cm_multi_reclaim`` whether the call took the
    level, and undoes it if so.  Every call that hands Python a level
    (this one, info_read's and remove_handle's fast paths, run_ready's
    run) is wrapped so."""

    __slots__ = ("g", "release")

    g: _CData
    release: Callable[[], None]

    def __init__(self, g: _CData) -> None:
        self.g = g
        self.release = functools.partial(_munlock, g)

    def acquire(self) -> None:
        g = self.g
        try:
            while _mlock(g, _SLICE_MS):
                pass  # not free yet: a loop's back edge, where PyPy runs signal handlers
        except BaseException:
            _mreclaim(g, 1, _HAND_LOCK)  # released if that call took it
            raise

    def __enter__(self) -> _MultiLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


if TYPE_CHECKING:
    from ._curl import _CData

# What info_read() and run_ready() give: (running or queued, ok, failed).
_Done = Tuple[int, List[Curl], List[Tuple[Curl, int, str]]]


class _MultiRecord(object):
    """The owner record of one ``CURLM *`` (see the module docstring)."""

    __slots__ = ("h", "g", "ud", "lock", "state", "handles", "deferred", "assigned", "closers",
                 "socket_cb", "timer_cb", "notify_cb", "callback_exc", "running", "long", "drain",
                 "fdbuf", "keep", "adding", "add_refused", "close_handles", "public", "core",
                 "info_pending", "__weakref__")

    h: Optional[_CData]  # the CURLM *, None once cleaned up
    g: _CData  # struct cm_multi: the lock and the busy mark (multigate.c)
    ud: Optional[_CData]
    lock: _MultiLock
    state: str
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
    info_pending: Optional[Tuple[List[Curl], List[Tuple[Curl, int, str]]]]

    def __init__(self, h: _CData, public: CurlMulti, close_handles: bool) -> None:
        # The C side of the record: its lock, and the busy mark (which
        # thread is inside one of the multi's libcurl calls, how deep, and
        # which call; the threads waiting for a wait to end).  Memory owned
        # by the cdata: freed with the last reference, never before a
        # finalizer (CurlMulti.__del__ in a collected cycle) that uses it.
        g = self.g = ffi.new("struct cm_multi *")
        lib.cm_multi_init(g, h)
        self.h = h
        self.ud = ffi.new_handle(self)  # a cycle through the record only; broken by teardown
        self.lock = _MultiLock(self.g)
        self.state = OPEN
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
        self.info_pending = None  # (ok, failed) read by an info_read() that then raised

    # The busy mark, as Python reads it (written only in C).
    @property
    def thread(self) -> Optional[int]:
        """A number for the thread inside one of this multi's libcurl calls
        (on Linux its pthread id, as threading.get_ident()), else None."""
        return self.g.ident or None

    @property
    def depth(self) -> int:
        depth: int = self.g.depth
        return depth

    @property
    def activity(self) -> Optional[str]:
        return _ACT_NAMES.get(self.g.activity)

    @property
    def waiters(self) -> int:
        waiters: int = self.g.waiters
        return waiters

    def callback_failed(self, exc: BaseException) -> None:
        """Called by the trampolines (and by an attached Curl's record for
        KeyboardInterrupt/SystemExit): the first exception wins."""
        if self.callback_exc is None:
            self.callback_exc = exc

    # -- state (under self.lock) -------------------------------------------------

    def enter(self, method: str, is_long: bool = False) -> bool:
        """Check that ``method`` may run now: True if it is called from
        inside one of this multi's libcurl calls (a callback), False if the
        multi is idle.  A call from another thread while one runs is
        refused; during a wait it wakes the wait and waits for it to end.
        ``is_long``: a long call also lets threads that woke the last wait
        go first.  The waiting is done in C with the lock released, in
        slices: each turn of this loop is where a signal handler runs."""
        g = self.g
        while True:
            r = _menter(g, is_long, _SLICE_MS)
            if r == 0:
                return False
            if r == 1:
                return True
            if r < 0:
                raise misuse("cannot invoke %s() - %s() is currently running in another thread"
                             % (method, _ACT_NAMES.get(-r, "perform")))

    def open_handle(self, method: str) -> _CData:
        if self.state is not OPEN:
            raise closed_error(_CLOSED, method)
        return self.h

    def begin(self, activity: int) -> None:
        _mbegin(self.g, activity)

    def end(self) -> None:
        _mend(self.g)

    def call_locked(self, func: Callable[..., int], *args: Any) -> int:
        """func(*args) as one of this multi's calls, under the lock (callbacks
        it runs defer what they detach); deferred work done after."""
        _mbegin(self.g, ACT["pause"])
        try:
            code = func(*args)
        finally:
            _mend(self.g)
        if self.deferred or self.callback_exc is not None:
            self.settle(0)
        return code

    def long_call(self, method: str, func: Callable[..., int], *args: Any) -> int:
        """Under the lock: the slow path of a long call (a libcurl call that
        may take long or run many callbacks), ``func(self.g, *args)``, one
        of the C calls of multigate.c that mark the multi busy with this
        thread, release the lock (one level) while libcurl runs, and take it
        back and clear the mark before returning, all in C.  First refused,
        or held back until a wait has ended, as ``enter()`` says."""
        g = self.g
        while True:
            self.enter(method, True)  # raises, waits a wait out, or it is a callback
            self.open_handle(method)  # after any wait: closed meanwhile?
            code = func(g, *args)
            if code != _BUSY:
                return code

    def settle(self, code: int, recount: Optional[Callable[[_CData], int]] = None) -> None:
        """Under the lock, after a libcurl call of this multi returned: once
        the outermost call is done, carry out the deferred detaches, then
        raise what a callback stored or what libcurl returned.

        The detaches change the number of running transfers the call
        reported, and a stale count can stall the caller's loop, so
        ``recount`` (a libcurl call that does no more than that call would)
        runs again."""
        if self.g.depth:
            if code:
                raise error(code, multi_strerror(code))
            return
        while self.deferred:
            self.run_deferred()
            if recount is None or code or self.callback_exc is not None or self.state is not OPEN:
                break
            _mbegin(self.g, _A_PERFORM)
            try:
                code = recount(self.h)
            finally:
                _mend(self.g)
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

    def refuse_attach(self, erec: _EasyRecord) -> None:
        """Raise why erec, not idle when add_handle() looked, cannot be
        attached (under its own lock); returns if it is idle now."""
        own = erec.own_lock
        own.acquire()
        try:
            state = erec.state
            if state is ATTACHED:
                if erec.multi is self:
                    raise misuse("curl object already on this multi-stack "
                                 "(it is already attached to this CurlMulti)")
                raise misuse("cannot add/remove handle - curl object already on another multi-stack "
                             "(it is attached to another CurlMulti)")
            if state is not IDLE:
                erec.enter("add_handle")  # raises: closed, or perform() running
        finally:
            own.release()

    def read_done(self, n: int, owners: _CData, codes: _CData, ok: List[Curl],
                  failed: List[Tuple[Curl, int, str]], removed: Optional[_CData] = None) -> None:
        """Under the lock: the n finished transfers a drain (info_read) or a
        run (run_ready) put in owners and codes, appended to ok and failed.
        A run has removed them from libcurl (removed: each removal's
        result): they are unlinked here too."""
        handles = self.handles
        for i in range(n):
            erec = _from_handle(owners[i])
            curl = handles.get(erec)
            if curl is None:
                continue  # closed meanwhile, from a callback
            if removed is not None and erec.state is CLOSING:
                continue  # closed from a callback of the run
            code = codes[i]
            if code == 0 and erec.callback_error is None:
                ok.append(curl)
            else:
                err = erec.transfer_error(code or _E_ABORTED_BY_CALLBACK)
                failed.append((curl, err.args[0], err.args[1]))
            # Unlinked after it is reported: read_rest() finds an entry
            # interrupted in between again, and reports it once.
            if removed is not None and not removed[i]:
                self.unlink(erec)

    def read_rest(self, n: int, owners: _CData, codes: _CData, ok: List[Curl],
                  failed: List[Tuple[Curl, int, str]], removed: Optional[_CData] = None) -> None:
        """Under the lock, after read_done() of the same n entries raised part
        way (a signal's exception) or before it began: the entries not yet in
        ok or failed appended, and a run's unlinks finished."""
        more_ok: List[Curl] = []
        more_failed: List[Tuple[Curl, int, str]] = []
        self.read_done(n, owners, codes, more_ok, more_failed, removed)
        seen = {id(curl) for curl in ok}
        seen.update(id(entry[0]) for entry in failed)
        ok.extend(curl for curl in more_ok if id(curl) not in seen)
        failed.extend(entry for entry in more_failed if id(entry[0]) not in seen)
        if removed is not None:
            handles = self.handles
            for i in range(n):
                erec = _from_handle(owners[i])
                if erec in handles or removed[i] or erec.state is CLOSING:
                    continue
                if erec.multi is self:
                    self.unlink(erec)  # an unlink interrupted part way
                elif erec.multi is None and erec.state is IDLE and not erec.gate.idle:
                    _easy_detached(erec.gate, 1)  # ... in its last step

    def keep_read(self, ok: List[Curl], failed: List[Tuple[Curl, int, str]]) -> None:
        """Under the lock, in info_read()'s handlers: ok and failed, and what
        the last drain read (queued[1] of the drain arrays) not yet in them,
        for the next call to give first."""
        drain = self.drain
        assert drain is not None  # made by info_read() before its first drain
        owners, codes, queued = drain
        self.read_rest(queued[1], owners, codes, ok, failed)
        if not ok and not failed:
            return
        pending = self.info_pending
        if pending is not None:
            ok, failed = pending[0] + ok, pending[1] + failed
        self.info_pending = ok, failed

    def removed(self, erec: _EasyRecord) -> None:
        """Under the lock: the Python side of a removal cm_multi_remove did
        in C, finished from wherever it was interrupted."""
        self.handles.pop(erec, None)
        if erec.lock is not erec.own_lock:  # not yet switched: erec is still this multi's alone
            if erec.state is ATTACHED:
                erec.state = IDLE
            erec.multi = None
            erec.retired = None
            erec.lock = erec.own_lock
        if erec.closers:
            self.closers.update(erec.closers)

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
            # No longer attached for cm_multi_remove; idle: the fast paths
            # may run again.
            _easy_detached(erec.gate, 1 if idle else 0)
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
            # Deferred: no longer removable by cm_multi_remove (another
            # thread's fast path), only by run_deferred.
            _easy_detached(erec.gate, 0)
            if closing:
                erec.state = CLOSING  # closed for Python at once; freed on unwinding
            return True
        code = 0
        try:
            if erec.h is not None and self.state is OPEN:
                # Still attached for Python during the call: a callback it
                # runs that closes this very handle is deferred like any other.
                _mbegin(self.g, _A_REMOVE)
                try:
                    code = lib.curl_multi_remove_handle(self.h, erec.h)
                finally:
                    _mend(self.g)
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
        _mbegin(self.g, _A_REMOVE)
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
            _mend(self.g)

    # -- the end ---------------------------------------------------------------

    def teardown(self) -> List[Curl]:
        """Under the lock: remove every handle, free the multi; returns the
        Curls to close (with close_handles)."""
        h, self.h = self.h, None
        lib.cm_multi_close(self.g)  # the fast paths see a closed multi from now on
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
        _mbegin(self.g, ACT["close"])
        try:
            for erec, _ in handles:
                if erec.h is not None:
                    lib.curl_multi_remove_handle(h, erec.h)
            lib.curl_multi_cleanup(h)
        finally:
            _mend(self.g)
            for erec, _ in handles:
                self.unlink(erec)
            self.run_deferred()  # the closes requested meanwhile; the multi is gone
            self.assigned.clear()
            self.closers.clear()
            self.callback_exc = None
            self.info_pending = None
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
        if refuse_in_callback and rec.g.depth and rec.enter("close"):
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

    def _locked(self, method: str) -> Tuple[_MultiLock, _CData]:
        """Acquire the lock and check: (lock, CURLM *).  The caller releases."""
        rec = self._rec
        lock = rec.lock
        lock.acquire()
        try:
            if rec.g.depth:
                rec.enter(method)
            return lock, rec.open_handle(method)  # after any wait: closed meanwhile?
        except BaseException:
            lock.release()
            raise

    # -- handles ------------------------------------------------------------

    def add_handle(self, curl: Curl) -> None:
        """Attach an easy handle; the multi keeps it alive until removed."""
        rec = self._rec
        g = rec.g
        erec = curl._rec if type(curl) is Curl or isinstance(curl, Curl) else None
        gate = erec.gate if erec is not None else None
        # Between _madd_begin and _madd_finish the lock is held (one more
        # level), the multi marked busy with this thread and the handle's own
        # mutex held.  _madd_abandon undoes that if this thread is still
        # there, and is a no-op otherwise, so the handler below is right
        # wherever an exception lands (on PyPy a signal's can land between
        # any two bytecodes): it undoes the Python side of the attach too
        # only if this call began it (mine: not a Curl already attached
        # here, which _madd_begin does not refuse) and the C side never
        # happened.
        mine = False
        try:
            if gate is None or _madd_begin(g, gate):
                self._add_begin_slow(curl)  # raises, or returns begun
            assert erec is not None and gate is not None  # as the slow path checked
            if erec.state is not IDLE:
                _madd_abandon(g, gate)
                rec.refuse_attach(erec)  # raises why not
                return self.add_handle(curl)  # idle now (detached meanwhile): once more
            # Attached for Python before libcurl runs the timer callback, so
            # that a close() from there is deferred, not done under libcurl.
            mine = True  # before any of it: undoing what was not done yet is harmless
            erec.multi = rec
            erec.state = ATTACHED
            erec.lock = rec.lock
            erec.callback_error = None
            rec.handles[erec] = curl
            rec.adding = True
            # gate.idle cleared, its mutex released, curl_multi_add_handle,
            # the mark and the lock's level released.
            code = _madd_finish(g, gate)
            rec.adding = False
        except BaseException:
            rec.adding = False
            if gate is None or erec is None:
                raise
            if _madd_abandon(g, gate):
                if mine:
                    # stopped before libcurl was called: not attached after all
                    rec.handles.pop(erec, None)
                    erec.state = IDLE
                    erec.lock = erec.own_lock
                    erec.multi = None
            elif mine and (gate.idle or rec.add_refused or rec.callback_exc is not None):
                # Stopped as _madd_finish returned (its code lost), with
                # libcurl's refusal or a failed timer callback to undo, as
                # below; the callback's exception stays for the multi's next
                # call.
                with rec.lock:
                    if erec.multi is rec and gate.idle:
                        rec.unlink(erec)
                    if rec.add_refused or rec.callback_exc is not None:
                        rec.add_refused = False
                        if erec.multi is rec:
                            stored = rec.callback_exc
                            try:
                                rec.detach(erec, curl, False, "add_handle")
                            except Exception:  # the stored one: the signal's goes first
                                rec.callback_exc = stored
            raise
        if code or rec.add_refused or rec.callback_exc is not None or rec.deferred:
            with rec.lock:
                if code:
                    # Refused before libcurl linked it (the timer callback
                    # never fails an add: see _callbacks.cm_timer_cb).
                    rec.unlink(erec)
                    rec.settle(code)
                if rec.add_refused or rec.callback_exc is not None:
                    # The timer callback failed: undo the add, then raise.
                    rec.add_refused = False
                    rec.detach(erec, curl, False, "add_handle")
                    rec.settle(_M_ABORTED)  # raises the callback's exception
                    raise error(_M_ABORTED, "the timer callback returned -1: the handle was not added")
                rec.settle(0)

    def _add_begin_slow(self, curl: Curl) -> None:
        """add_handle()'s first half when the fast one said not now: the
        multi busy (or closed), its lock another thread's, or a bad argument,
        checked in pycurl's order.  Returns with the add begun (the level of
        the lock taken here given back), or raises with nothing of it held."""
        rec = self._rec
        g = rec.g
        with rec.lock:
            if g.depth:
                rec.enter("add_handle")
            rec.open_handle("add_handle")  # after any wait: closed meanwhile?
            if type(curl) is not Curl and not isinstance(curl, Curl):
                raise TypeError("add_handle() takes a Curl, not %s" % type(curl).__name__)
            erec = curl._rec
            if erec is None:
                raise closed_error("Curl object", "add_handle")
            if _madd_begin(g, erec.gate):  # idle or ours, and held: cannot be refused
                raise error(lib.CURLM_INTERNAL_ERROR, "add_handle(): the multi's state changed")

    def remove_handle(self, curl: Curl) -> None:
        """Detach an easy handle (it stays open).  A closed Curl has already
        been detached, so removing it does nothing, as in pycurl."""
        rec = self._rec
        if type(curl) is Curl and not rec.deferred:
            erec = curl._rec
            if erec is not None:
                # The common case, detach() with no deferral, no close and the
                # multi idle, in one C call: the lock taken, erec checked to be
                # attached here, the mark set, curl_multi_remove_handle, gate
                # idle again (a fast path of another thread may run from then
                # on: libcurl no longer has the handle), the mark cleared.
                # With a CURLMcode the lock is handed to Python: until this
                # thread's next call into the multi, _mreclaim says so, and
                # the handler finishes the removal's Python side wherever an
                # exception (a signal's) landed.
                g = rec.g
                try:
                    code = _mremove(g, erec.gate)
                    if code != _BUSY and code != _NOTHERE:
                        del rec.handles[erec]  # removed(), written out: a hot path
                        erec.state = IDLE
                        erec.multi = None
                        erec.retired = None
                        erec.lock = erec.own_lock
                        if erec.closers:
                            rec.closers.update(erec.closers)
                        try:
                            if code or rec.callback_exc is not None or rec.deferred:
                                rec.settle(code)
                        finally:
                            _munlock(g)
                        return
                except BaseException:
                    if _mreclaim(g, 0, _HAND_REMOVE):
                        try:
                            rec.removed(erec)
                        finally:
                            _munlock(g)
                    raise
        lock = rec.lock
        lock.acquire()
        try:
            if rec.g.depth:
                rec.enter("remove_handle")
            rec.open_handle("remove_handle")  # after any wait: closed meanwhile?
            if type(curl) is not Curl and not isinstance(curl, Curl):
                raise TypeError("remove_handle() takes a Curl, not %s" % type(curl).__name__)
            erec = curl._rec
            if erec not in rec.handles:
                if curl.closed:
                    return
                raise misuse("curl object not on this multi-stack (it is not attached to this CurlMulti)")
            rec.detach(erec, curl, False, "remove_handle")
        finally:
            lock.release()

    # -- driving transfers ----------------------------------------------------

    def perform(self) -> Tuple[int, int]:
        """``curl_multi_perform`` -> ``(0, running)``; raises on any error."""
        rec = self._rec
        # The common case in one C call: the multi idle (or this thread in
        # one of its calls), marked busy, curl_multi_perform, the mark
        # cleared; no Python runs between the call and the clearing.
        code = _mperform(rec.g, rec.running)
        if code == _BUSY:
            return self._long("perform", _mperform, _perform_again(rec), rec.running)
        if code or rec.callback_exc is not None or rec.deferred or _callbacks.UNCLAIMED:
            lock = rec.lock
            lock.acquire()
            try:
                rec.settle(code, _perform_again(rec))
            finally:
                lock.release()
        return 0, rec.running[0]

    def _long(self, method: str, func: Callable[..., int],
              recount: Optional[Callable[[_CData], int]], *args: Any) -> Tuple[int, int]:
        """The slow path of perform(), socket_action(), socket_all()."""
        rec = self._rec
        lock = rec.lock
        lock.acquire()
        try:
            code = rec.long_call(method, func, *args)
            if code or rec.callback_exc is not None or rec.deferred or _callbacks.UNCLAIMED:
                rec.settle(code, recount)
            running: int = rec.running[0]
            return 0, running
        finally:
            lock.release()

    def socket_action(self, sockfd: int, ev_bitmask: int) -> Tuple[int, int]:
        """``curl_multi_socket_action`` -> ``(0, running)``."""
        rec = self._rec
        try:
            # As in perform(): the common case in one C call.
            code = _msocket_action(rec.g, sockfd, ev_bitmask, rec.running)
        except OverflowError:
            raise ValueError("socket_action(): sockfd and ev_bitmask must fit in a C int") from None
        if code == _BUSY:
            return self._long("socket_action", _msocket_action, _timeout_again(rec),
                              sockfd, ev_bitmask, rec.running)
        if code or rec.callback_exc is not None or rec.deferred or _callbacks.UNCLAIMED:
            lock = rec.lock
            lock.acquire()
            try:
                rec.settle(code, _timeout_again(rec))
            finally:
                lock.release()
        return 0, rec.running[0]

    def socket_all(self) -> Tuple[int, int]:
        """``curl_multi_socket_all`` -> ``(0, running)``.  Deprecated (as in
        pycurl): use socket_action()."""
        _deprecations.warn("socket_all is deprecated; use socket_action")
        rec = self._rec
        return self._long("socket_all", _msocket_all,
                          lambda h: lib.curl_multi_socket_all(h, rec.running), rec.running)

    def info_read(self, max_objects: Optional[int] = None
                  ) -> Tuple[int, List[Curl], List[Tuple[Curl, int, str]]]:
        """``curl_multi_info_read`` -> ``(queued, ok_list, err_list)``; the
        error entries are ``(curl, code, message)``."""
        rec = self._rec
        drain = rec.drain
        if drain is None:
            drain = rec.drain = (ffi.new("void *[]", _DRAIN_CAP), ffi.new("int[]", _DRAIN_CAP),
                                 ffi.new("int[2]"))
        owners, codes, queued = drain
        if max_objects is None:
            max_objects = _INT_MAX
            cap = _DRAIN_CAP
        elif type(max_objects) is not int and not isinstance(max_objects, int):
            raise TypeError("info_read() takes an int, not %s" % type(max_objects).__name__)
        elif max_objects <= 0:
            raise misuse("argument to info_read must be greater than zero")
        else:
            cap = _DRAIN_CAP if max_objects > _DRAIN_CAP else max_objects
        if rec.info_pending is not None:  # read by a call that then raised: given first
            return self._info_pending(max_objects)
        # The common case in one C call: the lock taken, the multi idle (or
        # this thread in one of its calls), the queue drained; the lock
        # released again if nothing was there.
        try:
            n = _minfo(rec.g, owners, codes, cap, queued)
        except BaseException:
            # A signal's, raised as the call returned (n lost): if it took
            # the lock's level, what it read is given by the next call.
            if _mreclaim(rec.g, 0, _HAND_INFO):
                try:
                    rec.keep_read([], [])
                finally:
                    _munlock(rec.g)
            raise
        if not n:
            return queued[0], [], []
        lock = rec.lock
        ok: List[Curl] = []
        failed: List[Tuple[Curl, int, str]] = []
        if n == _BUSY:
            started = False
            lock.acquire()
            try:
                # The arrays are the record's, shared by every thread's
                # info_read(): cleared under the lock.  queued[1] then says
                # what the drain below read, if it raises as it returns.
                queued[1] = 0
                started = True
                if rec.g.depth:
                    rec.enter("info_read")
                h = rec.open_handle("info_read")  # after any wait: closed meanwhile?
                n = _info_drain(h, owners, codes, cap, queued)
            except BaseException:
                try:
                    if started:
                        rec.keep_read(ok, failed)
                finally:
                    lock.release()
                raise
        try:  # the lock is held: the handles live while they are looked up
            while True:
                rec.read_done(n, owners, codes, ok, failed)
                max_objects -= n
                if n < _DRAIN_CAP or not max_objects or not queued[0]:
                    return queued[0], ok, failed
                queued[1] = 0
                n = _info_drain(rec.h, owners, codes, min(max_objects, _DRAIN_CAP), queued)
        except BaseException:
            # A signal's, as a drain returned or while its entries were
            # mapped: what was read is given by the next call.
            rec.keep_read(ok, failed)
            raise
        finally:
            lock.release()

    def _info_pending(self, max_objects: int) -> _Done:
        """info_read() of what a call that raised as it returned had read:
        up to max_objects of those still attached, and 1 (call again)."""
        rec = self._rec
        with rec.lock:
            if rec.g.depth:
                rec.enter("info_read")
            rec.open_handle("info_read")
            pending = rec.info_pending
            rec.info_pending = None
            if pending is None:  # taken by another thread meanwhile
                return 1, [], []
            handles = rec.handles
            done = [(curl, None) for curl in pending[0]] + [(e[0], e) for e in pending[1]]
            done = [d for d in done if d[0]._rec in handles]  # not removed or closed since
            if len(done) > max_objects:
                rest = done[max_objects:]
                rec.info_pending = ([d[0] for d in rest if d[1] is None],
                                    [d[1] for d in rest if d[1] is not None])
                done = done[:max_objects]
            return (1, [d[0] for d in done if d[1] is None],
                    [d[1] for d in done if d[1] is not None])

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
        # One C call: marked busy, curl_multi_poll and the timer check, the
        # mark cleared (no Python between the wait and the clearing, where a
        # signal could leave the multi marked busy).
        n: int = _mselect(rec.g, ms)
        if n == _BUSY:
            lock = rec.lock
            lock.acquire()
            try:
                n = rec.long_call("select", _mselect, ms)
            finally:
                lock.release()
        if n < 0:
            check_multi(-n)
        return n

    def wait(self, timeout_ms: int = 1000) -> int:
        """``curl_multi_wait``: the number of descriptors with activity."""
        return self._poll("wait", 1, timeout_ms)

    def poll(self, timeout_ms: int = 1000) -> int:
        """``curl_multi_poll``: like wait(), but sleeps even with no sockets and
        can be woken early by wakeup()."""
        return self._poll("poll", 0, timeout_ms)

    def _poll(self, method: str, wait: int, timeout_ms: int) -> int:
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int):
            raise TypeError("timeout must be an int number of milliseconds")
        if timeout_ms < 0:
            raise ValueError("timeout must not be negative")
        out = ffi.new("int *")  # per call: poll() may run in several threads
        rec = self._rec
        timeout_ms = min(timeout_ms, _INT_MAX)
        code = _mpoll(rec.g, wait, timeout_ms, out)
        if code == _BUSY:
            lock = rec.lock
            lock.acquire()
            try:
                code = rec.long_call(method, _mpoll, wait, timeout_ms, out)
            finally:
                lock.release()
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
        try:
            while more:
                _, o, f, _, more = _eventcore.run(rec, 0)
                ok += o
                failed += f
        except BaseException:
            _eventcore.keep_first(rec, ok, failed)  # the batches read so far: given next time
            raise
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
