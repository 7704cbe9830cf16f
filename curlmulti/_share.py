"""``CurlShare``: pycurl's share handle over libcurl's ``CURLSH *``.

Lifetimes
---------
1. The C side is a ``cm_share`` (shims.c): the CURLSH and one mutex per
   ``curl_lock_data``, installed as its LOCKFUNC/UNLOCKFUNC, so handles that
   use one share may run in several threads (the locks are taken in C, with
   no Python call).  Its memory is owned by an ``ffi.gc`` cdata that the
   CurlShare and every Curl using it hold, so no code can reach a freed one.
2. ``Curl.setopt(SHARE, share)`` attaches through ``cm_easy_use_share``,
   which counts the handle as a user; the Curl's record holds the CurlShare
   strongly and the share's record its users' records weakly (``users``).  The
   count drops when the Curl detaches (``unsetopt(SHARE)``, another share)
   or after its ``curl_easy_cleanup`` (close, or the ``__del__`` backstop).
3. The CURLSH is cleaned up in C once the CurlShare is closed and the count
   is 0, by whichever comes last: closing or collecting the share and its
   handles in any order never leaves a handle pointing at a freed CURLSH,
   and ``curl_share_cleanup`` never meets CURLSHE_IN_USE.
4. ``close()`` first detaches every user that is idle.  A user attached to
   a CurlMulti or inside ``perform()`` cannot be detached under a transfer
   (its connection may live in the share's cache), so it keeps the CURLSH
   until it is detached from it or closed; the CurlShare reads as closed at
   once either way.
5. With LOCK_DATA_CONNECT, connections live in the share's cache and are
   closed at its cleanup with the CLOSESOCKETFUNCTION of the Curl that
   opened them: the share's record keeps the closers of every handle that
   used it, as a CurlMulti does.
6. A ``_ShareRecord`` owns it all, with one lock, never held while another
   lock is taken; ``weakref.finalize`` on the CurlShare closes it when it is
   dropped unclosed.

Errors
------
A failing CURLSHcode raises ``error(code, share_strerror(code))``; wrong
types raise TypeError; any method but ``close()`` on a closed share raises
``error`` saying so.
"""

import threading
import weakref
from typing import Any, Set, Tuple

from ._constants import CONSTANTS
from ._curl import ffi, lib
from ._errors import closed_error, error, share_strerror
from ._owner import Owned

_SH_SHARE = lib.CURLSHOPT_SHARE
_SH_UNSHARE = lib.CURLSHOPT_UNSHARE
_RESERVED = {lib.CURLSHOPT_LOCKFUNC, lib.CURLSHOPT_UNLOCKFUNC, lib.CURLSHOPT_USERDATA}
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_CLOSED = "CurlShare object"


def check_share(code: int) -> None:
    if code != 0:
        raise error(code, share_strerror(code))


class _ShareRecord(object):
    """The owner record of one cm_share (a CURLSH and its C mutexes)."""

    __slots__ = ("s", "lock", "users", "closers", "detach_on_close", "__weakref__")

    def __init__(self, s: Any, detach_on_close: bool = True) -> None:
        self.s = s  # the cm_share cdata (ffi.gc), None once closed
        self.detach_on_close = detach_on_close
        # Reentrant: a record freed by the collector while this thread holds
        # the lock (an allocation inside join() can run it) leaves the share.
        self.lock = threading.RLock()
        self.users: "weakref.WeakSet[Any]" = weakref.WeakSet()  # the records of the Curls attached
        self.closers: Set[Any] = set()  # CLOSESOCKETFUNCTION owners of handles that used it

    def join(self, erec: Any) -> None:
        with self.lock:
            self.users.add(erec)

    def leave(self, erec: Any) -> None:
        """erec no longer uses the share (detached, or cleaned up)."""
        with self.lock:
            try:
                self.users.discard(erec)
            except TypeError:
                pass  # PyPy: no new weakref to a record being finalized (the set drops it itself)
            if erec.closers:
                self.closers.update(erec.closers)  # its cache may hold our connections
            if self.s is None and not self.users:
                self.closers.clear()

    def close(self, explicit: bool = True) -> None:
        """``explicit``: CurlShare.close(), which with detach_on_close=False
        refuses while handles use the share (the finalizer never does)."""
        with self.lock:
            if self.s is None:
                return
            if explicit and not self.detach_on_close and self.users:
                n = len(self.users)
                raise error(0, "cannot close CurlShare: still in use by %d active Curl object%s"
                            % (n, "" if n == 1 else "s"))  # pycurl's words
            s, self.s = self.s, None
            users = list(self.users)
        # Never under self.lock: leave_share takes the Curl's lock, then ours.
        for erec in users:
            erec.leave_share(self)
        check_share(lib.cm_share_close(s))
        with self.lock:
            if not self.users:
                self.closers.clear()


class CurlShare(Owned):
    """A libcurl share handle (``curl_share_init``), pycurl-compatible:
    ``setopt(SH_SHARE, LOCK_DATA_COOKIE)`` (one LOCK_DATA_* value a call),
    then ``Curl.setopt(SHARE, share)`` on each handle that shares it.
    Thread-safe: its lock callbacks are C mutexes."""

    def __init__(self, *, detach_on_close: bool = True) -> None:
        """``detach_on_close`` (pycurl 7.49): close() detaches the handles
        that use the share (the default); with False, close() raises
        ``error`` while any does, and the share stays open."""
        if self._rec is not None:
            return  # already set up (or closed): as in pycurl, a second __init__ does nothing
        s = lib.cm_share_new()
        if s == ffi.NULL:
            raise error(lib.CURLSHE_NOMEM, "curl_share_init() failed")
        rec = self._rec = _ShareRecord(ffi.gc(s, lib.cm_share_free, size=256), bool(detach_on_close))
        weakref.finalize(self, rec.close, False).atexit = False

    @property
    def closed(self) -> bool:
        return self._rec.s is None

    def _handle(self, method: str) -> Any:
        s = self._rec.s
        if s is None:
            raise closed_error(_CLOSED, method)
        return s

    def setopt(self, option: int, value: int) -> None:
        """``curl_share_setopt``: SH_SHARE or SH_UNSHARE with one LOCK_DATA_*
        value.  libcurl refuses changes while a Curl uses the share
        (CURLSHE_IN_USE) and unknown data (CURLSHE_BAD_OPTION)."""
        s = self._handle("setopt")
        if isinstance(option, bool) or not isinstance(option, int):
            raise TypeError("option must be an int, not %s" % type(option).__name__)
        if option in _RESERVED:
            raise TypeError("share option %d is reserved by curlmulti (its thread locks)" % option)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("share option %d takes a LOCK_DATA_* int, not %s"
                            % (option, type(value).__name__))
        if not _INT_MIN <= value <= _INT_MAX:
            raise OverflowError("share option %d: %d does not fit in a C int" % (option, value))
        if not _INT_MIN <= option <= _INT_MAX:
            option = 0  # CURLSHOPT_NONE: CURLSHE_BAD_OPTION, as for any unknown option
        # s (a local) keeps the cm_share's memory alive; a close() meanwhile
        # only marks it closed (freed when its last user lets go).
        check_share(lib.cm_share_setopt(s, option, value))

    def share(self, *data: int) -> None:
        """``setopt(SH_SHARE, item)`` for each LOCK_DATA_* item, in order (as
        pycurl 7.49); at least one.  Items already applied stay applied if
        a later one fails."""
        self._each("share", _SH_SHARE, data)

    def unshare(self, *data: int) -> None:
        """``setopt(SH_UNSHARE, item)`` for each LOCK_DATA_* item, in order."""
        self._each("unshare", _SH_UNSHARE, data)

    def _each(self, method: str, option: int, data: Tuple[int, ...]) -> None:
        if not data:
            raise TypeError("%s() takes at least one LOCK_DATA_* argument" % method)
        self._handle(method)
        for item in data:
            self.setopt(option, item)

    def close(self) -> None:
        """Detach the idle handles that use this share and free it; a handle
        attached to a CurlMulti or in perform() keeps libcurl's share until
        it is detached or closed.  Idempotent."""
        self._rec.close()

    def __repr__(self) -> str:
        rec = self._rec
        if rec.s is None:
            return "<curlmulti.CurlShare closed>"
        return "<curlmulti.CurlShare with %d handles>" % len(rec.users)


for _name, _value in CONSTANTS.items():
    setattr(CurlShare, _name, _value)
