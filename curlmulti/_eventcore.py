"""The native event core of a ``CurlMulti`` (C in ``_decl/eventcore.c``).

Once installed, libcurl's socket and timer callbacks are C functions: the
sockets libcurl wants watched sit in an epoll set and the next deadline in
C, so socket events, mask changes and timer changes cost no Python at all.
The owner of the loop waits for one descriptor (``fileno``) and one timeout
(``timeout_ms``), then makes one call per wake-up (``run``): every ready
socket and the expired timer are served, ``curl_multi_info_read`` is
drained and the finished transfers are removed from the multi, all in C.
Python then maps each finished ``CURL *`` back to its ``Curl`` through the
multi's record (``handles``), as ``info_read()`` does.

Ownership: the ``cm_evcore`` belongs to the ``_MultiRecord`` (``core``); the
record's teardown resets libcurl's callbacks and then frees it.  ``run`` is
one of the multi's long calls (``cm_multi_run``: marked busy, lock released
while libcurl works), so easy-handle callbacks that run in it (write,
header, ...) still run in Python with their exceptions stored on their
records, and a detach or close asked for from one of them is deferred until
the call has returned, as for ``socket_action``.

Linux only (``AVAILABLE``); elsewhere ``install`` raises and the asyncio
driver keeps its Python path.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from . import _callbacks
from ._curl import ffi, lib
from ._errors import error, misuse

if TYPE_CHECKING:
    from ._async import AsyncCurlMulti
    from ._easy import Curl
    from ._multi import _MultiRecord

AVAILABLE = bool(lib.CM_EVCORE)
RUN_SOCKETS = lib.CM_RUN_SOCKETS
RUN_TIMER = lib.CM_RUN_TIMER
_CAP = 256  # finished transfers taken per C call
_M_INTERNAL = lib.CURLM_INTERNAL_ERROR
_run = lib.cm_multi_run  # cm_evcore_run as one of the multi's long calls
_reclaim = lib.cm_multi_reclaim
_HAND_RUN = lib.CM_HAND_RUN
_unlock = lib.cm_multi_unlock
_BUSY = lib.CM_MBUSY


class EventCore(object):
    """The Python side of one ``cm_evcore``: the C struct and the arrays the
    run fills (allocated once)."""

    __slots__ = ("c", "owners", "codes", "removed", "out", "pending", "fd", "owner")

    fd: int  # the epoll descriptor the owner of the loop waits on
    owner: Optional[weakref.ref[AsyncCurlMulti]]
    pending: Optional[Tuple[List[Curl], List[Tuple[Curl, int, str]]]]

    def __init__(self, c: Any) -> None:
        self.c = c
        self.fd = c.epfd
        self.owners = ffi.new("void *[]", _CAP)
        self.codes = ffi.new("int[]", _CAP)
        self.removed = ffi.new("int[]", _CAP)
        self.out = ffi.new("int[]", 6)
        self.pending = None  # (ok, failed) read by a run that then raised
        self.owner = None  # weakref to an AsyncCurlMulti: told of removals outside its calls

    def after_detach(self) -> None:
        """A handle was detached outside a run: if that ran the socket or
        timer callback outside the owner's own calls (a Curl closed by its
        owner), tell the owner now rather than at its next wake-up."""
        c = self.c
        if c is not None and c.foreign and self.owner is not None:
            owner = self.owner()
            if owner is not None:
                owner._foreign()

    def release(self) -> None:
        """Free the C core; libcurl must no longer point at it."""
        c, self.c = self.c, None
        if c is not None:
            ffi.release(c)


def install(rec: _MultiRecord) -> EventCore:
    """Give the multi of ``rec`` the native core (idempotent); returns it.
    Refused while M_SOCKETFUNCTION or M_TIMERFUNCTION is set."""
    core = rec.core
    if core is not None:
        return core
    if not AVAILABLE:
        raise NotImplementedError("the native event core needs epoll (Linux)")
    lock = rec.lock
    lock.acquire()
    try:
        if rec.g.depth:
            rec.enter("event_fileno")
        h = rec.open_handle("event_fileno")
        if rec.core is not None:
            return rec.core
        if rec.handles:
            # libcurl announces a socket or a timer only when it changes:
            # those of transfers already attached would never reach the core.
            raise misuse("event_fileno() must be called before the first add_handle()")
        if rec.socket_cb is not None or rec.timer_cb is not None:
            raise misuse("the native event core cannot be used while M_SOCKETFUNCTION or "
                         "M_TIMERFUNCTION is set")
        c = lib.cm_evcore_new(h)
        if c == ffi.NULL:
            raise error(_M_INTERNAL, "the native event core could not be set up")
        core = rec.core = EventCore(ffi.gc(c, lib.cm_evcore_free))
        return core
    finally:
        lock.release()


def timeout_ms(rec: _MultiRecord) -> int:
    """Milliseconds until libcurl's deadline, 0 if it has passed, -1 if none."""
    core = rec.core
    if core is None or core.c is None:
        return -1
    return int(lib.cm_evcore_timeout(core.c))


def run(rec: _MultiRecord, flags: int) -> Tuple[int, List[Curl], List[Tuple[Curl, int, str]], bool, bool]:
    """One wake-up: ``(running, ok, failed, foreign, more)``.  ``running``
    is libcurl's count after the last action (-1 if none ran); ``ok`` the
    Curls that succeeded, ``failed`` ``(curl, code, message)`` for the
    others, both already removed from the multi; ``foreign`` whether a
    socket or timer callback ran outside the multi's own calls since the
    last run (a Curl closed by its owner); ``more`` whether finished
    transfers are left to read (call again with flags 0)."""
    core = rec.core
    if core is None:
        raise misuse("run_ready() needs the event core: call event_fileno() first")
    if core.pending is not None:
        # Kept by a run that raised: taken under the lock, so that two
        # threads do not both return it.
        with rec.lock:
            pending, core.pending = core.pending, None
        if pending is not None:
            return -1, pending[0], pending[1], False, True
    c = core.c
    owners, codes, removed, out = core.owners, core.codes, core.removed, core.out
    # One C call: marked busy, the run, the mark cleared and the lock taken
    # (the finished handles are looked up under it).
    try:
        n = _run(rec.g, c, flags, owners, codes, removed, _CAP, out)
    except BaseException:
        # A signal's, raised as the run returned (its n lost): if the run
        # took the lock's level, what it finished is given by the next run.
        if _reclaim(rec.g, 0, _HAND_RUN):
            _keep(rec, core)
        raise
    if n == _BUSY:
        lock = rec.lock
        lock.acquire()
        try:
            n = rec.long_call("run_ready", _run, c, flags, owners, codes, removed, _CAP, out)
        except BaseException:
            # The run took its level (handed over) as it returned?  Not if the
            # exception came before the run: the level acquire() handed over
            # is of another kind, and released below.
            if _reclaim(rec.g, 0, _HAND_RUN):
                _keep(rec, core)
            raise
        finally:
            lock.release()  # the level the run took is still held
    try:  # the lock is held
        ok: List[Curl] = []
        failed: List[Tuple[Curl, int, str]] = []
        if n:
            try:
                rec.read_done(n, owners, codes, ok, failed, removed)
            except BaseException:
                # A signal's, while the batch was mapped: the rest mapped and
                # unlinked (the run removed them from libcurl), all of it
                # given by the next run.
                try:
                    rec.read_rest(n, owners, codes, ok, failed, removed)
                finally:
                    core.pending = (ok, failed)
                raise
        code, running, queued, foreign, errno_ = out[0], out[1], out[2], out[3], out[4]
        if code or errno_ or rec.callback_exc is not None or rec.deferred or _callbacks.UNCLAIMED:
            core.pending = (ok, failed)  # given by the next run if this one raises
            rec.settle(code)
            if errno_:
                raise error(_M_INTERNAL, "the event core's epoll set failed: %s" % os.strerror(errno_))
            core.pending = None
        return running, ok, failed, bool(foreign), bool(queued) or n == _CAP
    finally:
        rec.lock.release()


def keep_first(rec: _MultiRecord, ok: List[Curl], failed: List[Tuple[Curl, int, str]]) -> None:
    """run_ready()'s batches read before a later run raised: given by the
    next run, ahead of what that run kept."""
    core = rec.core
    if core is None or not (ok or failed):
        return
    with rec.lock:
        pending = core.pending
        core.pending = (ok + pending[0], failed + pending[1]) if pending is not None else (ok, failed)


def _keep(rec: _MultiRecord, core: EventCore) -> None:
    """The handler of an exception raised as a run returned (n lost) that
    took its level of the lock: what it finished is given by the next run,
    and the level released."""
    try:
        n = core.out[5]
        if n:
            done: Tuple[List[Curl], List[Tuple[Curl, int, str]]] = ([], [])
            rec.read_done(n, core.owners, core.codes, done[0], done[1], core.removed)
            core.pending = done
    finally:
        _unlock(rec.g)


def watched(rec: _MultiRecord) -> Dict[int, int]:
    """{fd: POLL_IN/POLL_OUT mask} of the sockets in the epoll set."""
    core = rec.core
    if core is None or core.c is None:
        return {}
    fds = ffi.new("int[]", 1024)
    masks = ffi.new("int[]", 1024)
    n = lib.cm_evcore_watched(core.c, fds, masks, 1024)
    return {fds[i]: masks[i] for i in range(n)}
