"""Owner records: the one place where the state of a C object lives.

Every C object curlmulti allocates (a ``CURL``, a ``CURLM``, a ``CURLSH``, a
sink) has exactly one *owner record*: a small object that holds the pointer,
everything libcurl points at (callback data, error buffer, slists, buffers),
an explicit ``state`` and one ``lock``.  The public classes (``Curl``,
``CurlMulti``, ``CurlShare``, ``Buffer``, ``FileSink``) are thin views that
hold their record and nothing else of the C side; no class writes another
one's record except through the record's own methods.

The rules every public method follows:

1. Take the record's lock (``acquire(rec)``: an attached ``Curl`` is guarded
   by its multi's lock, so the lock to take can change while waiting).
2. Check the state, and refuse misuse with ``error`` before libcurl is
   reached (a closed handle, a call from another thread while a transfer
   runs, ...).
3. A short libcurl call (setopt, getinfo, add/remove) runs under the lock.
   A long one (``perform``, ``socket_action``, ``poll``) marks the record busy
   with the calling thread under the lock, runs without it, and clears the
   mark under it: other threads are refused while the mark is set, and
   callbacks (same thread) see it and follow the rules for callbacks.
4. Locks are taken in one order: a multi's before an easy handle's own
   (only ``add_handle`` holds both); a share's lock is never held while
   taking another.  User code (callbacks) may run while a lock is held only
   from libcurl calls that pycurl also makes with the GIL held (add/remove
   handles, pause, cleanup): the locks are reentrant for that.

Freeing: a record frees its C object when it is closed, or when the last
reference to it goes (``__del__`` on the record, which is never part of a
cycle, so on CPython that is at once).  Nothing in the library calls
``gc.collect()``.
"""

import threading
from typing import Any, TypeVar

from ._curl import lib
from ._errors import no_copy, no_pickle

# The states of a Curl's record; a multi, share or sink is OPEN or CLOSED.
IDLE = "idle"              # no transfer; every method allowed
PERFORMING = "performing"  # Curl.perform() runs in record.thread
ATTACHED = "attached"      # in a CurlMulti; guarded by the multi's lock
CLOSING = "closing"        # closed for Python, freed once its multi's call returns
CLOSED = "closed"          # the C object is freed
OPEN = "open"

get_ident = threading.get_ident
# A blocked wait for a record's lock returns to Python this often, so that
# a signal handler (Ctrl-C) runs while another thread holds the lock.
SLICE_MS = lib.CM_SLICE_MS
_T = TypeVar("_T", bound="Owned")


def acquire(rec: Any) -> Any:
    """Acquire the lock that guards ``rec`` now and return it.  A Curl's
    record switches between its own lock and its multi's when it is attached
    or detached, so after waiting the lock may no longer be the right one."""
    while True:
        lock = rec.lock
        lock.acquire()
        if rec.lock is lock:
            return lock
        lock.release()


class Owned(object):
    """Base of the public classes that stand for one C object: a second
    ``__init__`` does nothing (as in pycurl), copies and pickles are refused
    (they would be a second owner of the same pointer)."""

    _rec: Any = None  # the owner record, set by the first __init__

    __copy__ = __deepcopy__ = no_copy
    __reduce__ = __reduce_ex__ = __getstate__ = no_pickle

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError
