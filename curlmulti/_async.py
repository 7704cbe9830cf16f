"""``AsyncCurlMulti``: a ``CurlMulti`` driven by an asyncio event loop.

Two drivers behind one API.  Where the multi's native event core exists
(_eventcore.py, Linux) and CURLMULTI_ASYNC_DRIVER is not "python", libcurl's
socket and timer callbacks are C: the loop watches the core's epoll
descriptor and one timer handle, each wake-up is one call into the core
(``_run_native``) and the finished transfers' futures are resolved in one
batch; after its own libcurl calls the driver moves the loop's timer only if
the core's ``timer_gen`` changed.  Otherwise the pure-Python driver below runs,
over the public ``CurlMulti`` API (no ``lib``/``ffi``), so it can be driven by
a stand-in multi in tests; it is the reference the tests compare against.
The driver's states and the interface _stream.py/_request.py use are in
_driver.py.

How the pure-Python driver works:

1. libcurl tells us which sockets to watch through ``M_SOCKETFUNCTION``.  The
   mask currently registered for each descriptor is kept in ``_pywatch``; only
   a change of mask costs anything.  On Linux the sockets go into an epoll
   set of our own (``select.epoll``, one C call per change) and only that
   epoll descriptor is watched by the loop, once: when it is readable,
   ``_on_ready`` collects every ready socket with one ``poll(0)`` and calls
   ``socket_action`` for each (reads and writes in one call), then settles
   the batch.  asyncio's ``add_reader``/``remove_reader`` cost several times
   more per change and libcurl changes masks once or twice per transfer.
   Elsewhere (no ``select.epoll``) each socket is given to the loop with
   ``add_reader``/``add_writer``, which call ``_action(fd, mask)``.
2. libcurl asks for one timer through ``M_TIMERFUNCTION``; there is at most
   one loop handle for it (``call_soon`` for 0 ms, ``call_later`` otherwise),
   a repeated 0 ms request is coalesced.  No periodic task exists: an idle
   multi has nothing scheduled and wakes the loop zero times.
3. After each ``socket_action`` the count of running transfers is compared
   with the number of handles that should be running: the registered ones,
   plus those libcurl refused to remove (``_stray``: still attached, still
   running, no longer ours).  Only when fewer run is ``info_read()`` called,
   once, draining every message, and the futures are resolved in that batch.
   A stray handle leaves the count when its completion is read (and is
   removed then).
4. A future that is cancelled removes its handle at once (``cancel()`` is
   overridden), so no transfer keeps running for a cancelled caller.
5. An exception raised by an easy-handle callback aborts only that transfer:
   its future fails with ``error`` whose ``__cause__`` is the exception
   (``curl.callback_error``).  An exception in the driver itself (for
   instance ``socket_action`` raising) fails every pending future instead of
   leaving them hanging.
6. A ``Curl`` closed by its owner while registered is removed from libcurl
   by ``CurlMulti`` at once, and libcurl tells us through our socket
   callback (``POLL_REMOVE`` of its connection) or timer callback.  Those
   callbacks otherwise only run inside our own libcurl calls
   (``socket_action``, ``add_handle``, ``remove_handle``, the ``pause`` of
   _stream/_request: ``_in_action``/``_in_call``), so one arriving outside
   them schedules a check for such orphans on the next loop iteration
   (``_reap_orphans``: their futures fail with ``error``).  A handle with
   neither a watched socket nor a timer (paused by its write callback)
   triggers nothing; its future fails at the next completion check.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import os
import select
import socket
import weakref
from typing import (TYPE_CHECKING, Any, AsyncIterator, Callable, Deque, Dict, Iterable, List, Optional, Tuple,
                    Type, Union)

from . import _eventcore
from ._constants import CONSTANTS
from ._driver import BOUND, CLOSED, UNBOUND, check_transition
from ._easy import Curl
from ._errors import error
from ._multi import CurlMulti
from ._request import process
from ._stream import Stream

if TYPE_CHECKING:
    from ._curl import _CData
    from ._multi import _MultiRecord
    from ._request import _RequestState

_POLL_REMOVE = CONSTANTS["POLL_REMOVE"]
_POLL_IN = CONSTANTS["POLL_IN"]
_POLL_OUT = CONSTANTS["POLL_OUT"]
_CSELECT_IN = CONSTANTS["CSELECT_IN"]
_CSELECT_OUT = CONSTANTS["CSELECT_OUT"]
_SOCKET_TIMEOUT = CONSTANTS["SOCKET_TIMEOUT"]
_EPOLL: Optional[Type[select.epoll]] = getattr(select, "epoll", None)
if _EPOLL is not None:
    _EV = {_POLL_IN: select.EPOLLIN, _POLL_OUT: select.EPOLLOUT,
           _POLL_IN | _POLL_OUT: select.EPOLLIN | select.EPOLLOUT}
    _READABLE = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
    _WRITABLE = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP
_OWNED = frozenset(CONSTANTS[name] for name in ("M_SOCKETFUNCTION", "M_TIMERFUNCTION", "M_NOTIFYFUNCTION")
                   if name in CONSTANTS)

_get_running_loop = asyncio.get_running_loop
_InvalidStateError = asyncio.InvalidStateError
_RUN_SOCKETS = _eventcore.RUN_SOCKETS
_RUN_TIMER = _eventcore.RUN_TIMER
# Which driver: "native" (the event core, where it exists) or "python".
_DRIVER = os.environ.get("CURLMULTI_ASYNC_DRIVER", "native").strip().lower()
if _DRIVER not in ("native", "python"):
    raise ImportError("CURLMULTI_ASYNC_DRIVER must be 'native' or 'python', not %r" % _DRIVER)

_NOT_SELECTOR = ("AsyncCurlMulti needs a selector-style event loop (one with add_reader/add_writer), "
                 "not %s; on Windows use asyncio.WindowsSelectorEventLoopPolicy()")


class _Transfer(asyncio.Future[Curl]):
    """The future of one transfer; cancelling it removes the handle at once."""

    __slots__ = ("_acm", "_curl")

    _acm: Optional[AsyncCurlMulti]
    _curl: Curl

    def cancel(self, *args: Any, **kwargs: Any) -> bool:
        if not super().cancel(*args, **kwargs):
            return False
        acm = self._acm
        if acm is not None:
            acm._cancelled(self._curl, self)
        return True


def _check_selector_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Raise RuntimeError unless loop can watch sockets (add_reader)."""
    if type(loop).add_reader is asyncio.SelectorEventLoop.add_reader:
        return
    proactor = getattr(asyncio, "ProactorEventLoop", None)
    if proactor is not None and isinstance(loop, proactor):
        raise RuntimeError(_NOT_SELECTOR % type(loop).__name__)
    a, b = socket.socketpair()
    try:
        loop.add_reader(a.fileno(), _noop)
        loop.remove_reader(a.fileno())
    except NotImplementedError:
        raise RuntimeError(_NOT_SELECTOR % type(loop).__name__) from None
    finally:
        a.close()
        b.close()


def _noop() -> None:
    pass


class _Batch(object):
    """The state of one completed() iterator."""

    __slots__ = ("queue", "outstanding", "waiter", "on_done")

    def __init__(self) -> None:
        self.queue: Deque[_Transfer] = collections.deque()  # futures done, not yet yielded
        self.outstanding = 0                                # futures followed, not yet done
        self.waiter: Optional[asyncio.Future[None]] = None  # what the iterator awaits
        self.on_done: Callable[[_Transfer], None] = self._done

    def follow(self, fut: _Transfer) -> None:
        self.outstanding += 1
        fut.add_done_callback(self.on_done)

    def _done(self, fut: _Transfer) -> None:
        self.outstanding -= 1
        if not fut.cancelled():
            self.queue.append(fut)
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)


class _CoreFd(object):
    """The event core's epoll descriptor as the loop sees it (owned by the
    core, closed with the multi)."""

    __slots__ = ("fd", "closed")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        self.closed = True


def _transfer_error(curl: Curl, code: int, message: str) -> BaseException:
    """The exception a failed transfer's future gets."""
    cause = curl.callback_error
    if cause is not None and not isinstance(cause, Exception):
        return cause  # KeyboardInterrupt, SystemExit travel as themselves
    err = error(code, message)
    err.__cause__ = cause
    return err


class AsyncCurlMulti(object):
    """An asyncio-driven ``CurlMulti``: each transfer is an ``asyncio.Future``
    resolving to its ``Curl`` or raising ``error``.

    The constructor needs no running loop; the loop is captured by the first
    ``add_handle()`` and the instance stays bound to it.  Call ``aclose()``
    (or use ``async with``) to release the multi handle."""

    _multi_class: Type[CurlMulti] = CurlMulti  # a stand-in multi can be put here for tests
    _use_epoll = _EPOLL is not None  # False: every socket through loop.add_reader
    # With _use_epoll and the real CurlMulti: the native event core (C).
    _use_native = _eventcore.AVAILABLE and _DRIVER == "native"
    # Set by _setup_native (the native driver only).
    _rec: _MultiRecord
    _gen: int  # the core's timer_gen the loop's timer matches

    def __init__(self, close_handles: bool = False) -> None:
        multi = self._multi_class(close_handles=close_handles)
        self._multi = multi
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        # our epoll set of libcurl's sockets (when _use_epoll), or the core's
        self._ep: Optional[Union[select.epoll, _CoreFd]] = None
        self._futures: Dict[Curl, _Transfer] = {}  # in order of addition
        self._timer: Optional[asyncio.Handle] = None  # the one loop handle for libcurl's timer
        self._timer_soon = False   # ... and whether it is a call_soon
        self._kick_handle: Optional[asyncio.Handle] = None  # runs expired timers after an unpause
        self._state = UNBOUND      # UNBOUND -> BOUND -> CLOSED (see _driver.py)
        self._closed = False       # self._state is CLOSED (read on every call)
        self._in_action = False    # socket_action() is on the stack
        self._in_call = False      # ... or another libcurl call of ours (add, remove, pause)
        self._stray: Dict[Curl, None] = {}  # libcurl refused to remove it, still running
        self._reap_handle: Optional[asyncio.Handle] = None  # a call_soon of _on_reap (a callback came from elsewhere)
        self._dirty = False        # a handle was removed during socket_action()
        self._failure: Optional[BaseException] = None  # an exception in our socket/timer callback
        self._touched: List[_RequestState] = []  # request states whose callbacks ran (see _request.py)
        self._requests: Dict[Any, _RequestState] = {}  # request object -> its state, for process()
        self._core: Optional[_CData] = None  # the native core's C struct (native driver)
        self._batches: List[_Batch] = []  # the _Batch of each completed() iterator running
        # fd -> POLL_IN/POLL_OUT mask being watched (the Python driver; read as ``_watch``)
        self._pywatch: Dict[int, int] = {}
        if self._use_native and self._use_epoll and self._multi_class is CurlMulti:
            self._setup_native()
            return
        self._on_socket: Callable[[int, int, CurlMulti, object], None] = (
            self._on_socket_epoll if self._use_epoll else self._on_socket_loop)
        multi.setopt(CONSTANTS["M_SOCKETFUNCTION"], self._on_socket)
        multi.setopt(CONSTANTS["M_TIMERFUNCTION"], self._on_timer)

    # -- public API -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the underlying CurlMulti is closed."""
        return self._multi.closed

    def setopt(self, option: int, value: Any) -> None:
        """``CurlMulti.setopt``; the socket, timer (and notify) callbacks are
        owned by AsyncCurlMulti and raise ValueError."""
        if option in _OWNED:
            raise ValueError("AsyncCurlMulti owns M_SOCKETFUNCTION/M_TIMERFUNCTION/M_NOTIFYFUNCTION")
        self._multi.setopt(option, value)

    def add_handle(self, curl: Curl) -> "asyncio.Future[Curl]":
        """Start a transfer; returns an asyncio.Future resolving to ``curl`` or
        raising ``error``.  Cancelling the future removes the handle."""
        if self._closed:
            raise RuntimeError("AsyncCurlMulti is closed")
        loop = _get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        futures = self._futures
        if curl in futures:
            raise RuntimeError("Curl handle is already registered")
        fut = _Transfer()  # of the running loop: cheaper than passing loop=
        fut._acm = self
        fut._curl = curl
        if self._batches:
            for batch in self._batches:
                batch.follow(fut)
        core = self._core
        if core is not None:
            core.ours = 1  # the callbacks this runs are ours, not a foreign close
            try:
                self._multi.add_handle(curl)
            finally:
                core.ours = 0
            futures[curl] = fut
            gen = core.timer_gen
            if gen != self._gen:
                if core.timeout_ms == 0 and self._timer_soon and self._timer is not None:
                    self._gen = gen  # already due on the next loop iteration
                else:
                    self._sync_timer()
            return fut
        self._in_call = True
        try:
            self._multi.add_handle(curl)
        finally:
            self._in_call = False
        futures[curl] = fut
        if self._failure is not None:
            self._settle()
        return fut

    def remove_handle(self, curl: Curl) -> None:
        """Remove ``curl`` and cancel its future.  RuntimeError if it is not
        registered, after aclose() or from another event loop; ``error`` if
        libcurl refuses (the handle then runs on and is removed when it
        ends)."""
        if self._closed:
            raise RuntimeError("AsyncCurlMulti is closed")
        self._check_loop()
        try:
            fut = self._futures.pop(curl)
        except (KeyError, TypeError):
            raise RuntimeError("Curl handle is not registered") from None
        try:
            self._remove(curl)
        finally:
            fut.cancel()  # no longer registered: cancel() does not remove again

    async def perform(self, curl: Curl) -> Curl:
        """``await add_handle(curl)``: the Curl once its transfer is done."""
        return await self.add_handle(curl)

    async def completed(self) -> "AsyncIterator[Tuple[Curl, Optional[BaseException]]]":
        """Iterate ``(curl, exc)`` over the transfers as they finish, ``exc``
        None on success, else the exception their future holds; ends when
        no registered transfer is left.  Transfers added while iterating are
        included; cancelled ones are left out."""
        if self._closed:
            raise RuntimeError("AsyncCurlMulti is closed")
        self._check_loop()
        batch = _Batch()
        for fut in self._futures.values():
            batch.follow(fut)
        self._batches.append(batch)
        try:
            queue = batch.queue
            while True:
                while queue:
                    fut = queue.popleft()
                    yield fut._curl, fut.exception()
                if not batch.outstanding:
                    return
                batch.waiter = asyncio.get_running_loop().create_future()
                await batch.waiter
        finally:
            self._batches.remove(batch)

    def futures(self, curls: Optional[Iterable[Curl]] = None) -> "Tuple[asyncio.Future[Curl], ...]":
        """A snapshot tuple of the pending futures: all of them in order of
        addition, or those of ``curls`` in its order (KeyError for a handle
        that is not registered).  RuntimeError from another event loop."""
        self._check_loop()
        futures = self._futures
        if curls is None:
            return tuple([f for f in futures.values() if not f.done()])
        return tuple([futures[c] for c in curls])

    async def aclose(self) -> None:
        """Cancel the timer, unregister the socket watchers, cancel pending
        futures and close the multi handle.  Idempotent."""
        if self._closed:
            return
        loop = self._loop
        loop_open = loop is not None and not loop.is_closed()
        if loop_open and asyncio.get_running_loop() is not loop:
            raise RuntimeError("AsyncCurlMulti is bound to a different event loop")
        check_transition(self._state, CLOSED)
        self._state = CLOSED
        self._closed = True
        for handle in (self._timer, self._kick_handle, self._reap_handle):
            if handle is not None:
                handle.cancel()
        self._timer = self._kick_handle = self._reap_handle = None
        ep, self._ep = self._ep, None
        if ep is not None:
            if loop_open:
                loop.remove_reader(ep.fileno())  # type: ignore[union-attr]  # loop_open: not None
            ep.close()
        elif loop_open and self._core is None:
            for fd, mask in self._pywatch.items():
                if mask & _POLL_IN:
                    loop.remove_reader(fd)  # type: ignore[union-attr]  # loop_open: not None
                if mask & _POLL_OUT:
                    loop.remove_writer(fd)  # type: ignore[union-attr]  # loop_open: not None
        self._pywatch.clear()
        self._core = None  # freed with the multi below
        self._stray.clear()
        futures, self._futures = self._futures, {}
        requests, self._requests = self._requests, {}
        self._touched = []
        try:
            self._multi.close()  # removes (and with close_handles closes) every handle
        finally:
            for fut in futures.values():
                fut.cancel()
            for state in requests.values():
                state._abandon()

    async def __aenter__(self) -> "AsyncCurlMulti":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        if self._closed:
            return "<curlmulti.AsyncCurlMulti closed>"
        return "<curlmulti.AsyncCurlMulti with %d transfers>" % len(self._futures)

    # -- streaming and the request protocol (see _stream.py, _request.py) -----

    def stream(self, curl: Curl, max_buffer: int = 1 << 20, upload: Any = None) -> "Stream":
        """Start ``curl`` and return a ``Stream``: ``await stream.head()`` for
        the response head, ``async for chunk in stream`` for the body.  At
        most about ``max_buffer`` bytes are held; a lagging consumer pauses
        the transfer.  ``upload`` is an optional (async) iterable of bytes for
        the request body."""
        return Stream(self, curl, max_buffer, upload)

    async def process(self, request: Any) -> Any:
        """Run a request object (``configure_handle``, ``has_update``,
        ``get_update``, ``completed``): returns the next interim update, or
        the final result of ``completed()``.  Call again to continue."""
        return await process(self, request)

    def abandon(self, request: Any) -> None:
        """Stop a request started with process() and drop its state."""
        state = self._requests.pop(request, None)
        if state is not None:
            state._abandon()

    # -- the driver ---------------------------------------------------------------

    def _check_loop(self) -> None:
        """RuntimeError unless called from the bound loop (or, while it is not
        running, from code outside any loop)."""
        loop = self._loop
        if loop is None:
            return
        running = asyncio._get_running_loop()
        if running is not loop and (running is not None or loop.is_running()):
            raise RuntimeError("AsyncCurlMulti is bound to a different event loop")

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not None:
            raise RuntimeError("AsyncCurlMulti is bound to a different event loop")
        _check_selector_loop(loop)
        ep: Union[_CoreFd, select.epoll]
        if self._core is not None:
            ep = _CoreFd(self._core.epfd)
            loop.add_reader(ep.fileno(), self._on_ready_native)
            self._ep = ep
        elif self._use_epoll:
            ep = _EPOLL()  # type: ignore[misc]  # _use_epoll: there is an epoll
            try:
                loop.add_reader(ep.fileno(), self._on_ready)
            except BaseException:
                ep.close()
                raise
            self._ep = ep
        check_transition(self._state, BOUND)
        self._state = BOUND
        self._loop = loop

    def _on_socket_epoll(self, what: int, fd: int, multi: CurlMulti, socketp: object) -> None:
        """M_SOCKETFUNCTION (epoll): bring our epoll set's entry for fd to ``what``."""
        if not self._in_action and not self._in_call:
            self._foreign()
        watch = self._pywatch
        old = watch.get(fd, 0)
        new = 0 if what == _POLL_REMOVE else what
        if new == old:
            return
        ep: select.epoll = self._ep  # type: ignore[assignment]  # the Python driver's set, made by _bind
        try:
            try:
                if not old:
                    ep.register(fd, _EV[new])
                elif new:
                    ep.modify(fd, _EV[new])
                else:
                    ep.unregister(fd)
            except FileExistsError:  # a descriptor we never saw leave
                ep.modify(fd, _EV[new])
            except FileNotFoundError:  # closed without POLL_REMOVE, number reused
                if new:
                    ep.register(fd, _EV[new])
        except Exception as exc:  # as in _on_socket_loop
            if not (isinstance(exc, OSError) and exc.errno == errno.EBADF and not new):
                if self._failure is None:
                    self._failure = exc
                return
        if new:
            watch[fd] = new
        else:
            del watch[fd]

    def _on_socket_loop(self, what: int, fd: int, multi: CurlMulti, socketp: object) -> None:
        """M_SOCKETFUNCTION (no epoll): bring the loop's watchers of fd to ``what``."""
        if not self._in_action and not self._in_call:
            self._foreign()
        watch = self._pywatch
        old = watch.get(fd, 0)
        new = 0 if what == _POLL_REMOVE else what
        if new == old:
            return
        loop: asyncio.AbstractEventLoop = self._loop  # type: ignore[assignment]  # bound: a socket is watched
        changed = old ^ new
        try:
            if changed & _POLL_IN:
                if new & _POLL_IN:
                    loop.add_reader(fd, self._action, fd, _CSELECT_IN)
                else:
                    loop.remove_reader(fd)
            if changed & _POLL_OUT:
                if new & _POLL_OUT:
                    loop.add_writer(fd, self._action, fd, _CSELECT_OUT)
                else:
                    loop.remove_writer(fd)
        except Exception as exc:
            # Not raised into libcurl: a failing multi callback would make it
            # fail every transfer for the multi's whole life.  Settled by the
            # caller of the libcurl function (see _settle).
            if self._failure is None:
                self._failure = exc
            return
        if new:
            watch[fd] = new
        else:
            del watch[fd]

    def _on_timer(self, timeout_ms: int) -> None:
        """M_TIMERFUNCTION: keep one loop handle for libcurl's timer."""
        if not self._in_action and not self._in_call:
            self._foreign()
        self._set_timer(timeout_ms)

    def _set_timer(self, timeout_ms: int) -> None:
        timer = self._timer
        if timeout_ms == 0 and self._timer_soon and timer is not None:
            return  # already due on the next loop iteration
        try:
            if timer is not None:
                timer.cancel()
                self._timer = None
            if timeout_ms < 0:
                return
            if timeout_ms == 0:
                # libcurl asks for a timer only once a transfer was added: bound
                self._timer = self._loop.call_soon(self._on_timeout)  # type: ignore[union-attr]
                self._timer_soon = True
            else:
                self._timer = self._loop.call_later(  # type: ignore[union-attr]  # as above: bound
                    timeout_ms / 1000.0, self._on_timeout)
                self._timer_soon = False
        except Exception as exc:  # as in _on_socket_loop
            if self._failure is None:
                self._failure = exc

    def _on_timeout(self) -> None:
        self._timer = None
        try:
            self._action(_SOCKET_TIMEOUT, 0)
        finally:
            if self._timer is None and not self._closed and (self._futures or self._stray):
                # libcurl does not repeat an unchanged timeout: if it was not
                # due yet by its clock, ask again rather than stall.
                try:
                    left = self._multi.timeout()
                except Exception as exc:
                    self._driver_failed(exc)
                    left = -1
                if left >= 0:
                    self._set_timer(max(left, 1))

    def _foreign(self) -> None:
        """Our socket or timer callback ran outside our own libcurl calls: a
        registered Curl was closed by its owner (or paused by it).  Look for
        orphans once the call has returned."""
        if self._reap_handle is None and not self._closed:
            loop = self._loop
            if loop is not None and not loop.is_closed():  # never raise into libcurl
                self._reap_handle = loop.call_soon(self._on_reap)

    def _on_reap(self) -> None:
        self._reap_handle = None
        if not self._closed:
            self._reap_orphans()

    def _kick(self) -> None:
        """Run libcurl's expired timers soon (after an unpause), without
        disturbing the timer libcurl asked for."""
        if self._kick_handle is None and not self._closed:
            # after an unpause of a registered transfer: bound
            self._kick_handle = self._loop.call_soon(self._on_kick)  # type: ignore[union-attr]

    def _on_kick(self) -> None:
        self._kick_handle = None
        if self._core is not None:
            self._run_native(_RUN_TIMER)
        else:
            self._action(_SOCKET_TIMEOUT, 0)

    def _on_ready(self) -> None:
        """Our epoll set is readable: serve every ready socket, then settle
        the batch once."""
        try:
            events = self._ep.poll(0)  # type: ignore[union-attr]  # the Python driver's epoll set
        except InterruptedError:
            return  # the loop calls again: the set is still readable
        except Exception as exc:
            self._driver_failed(exc)
            return
        watch = self._pywatch
        socket_action = self._multi.socket_action
        running = None
        self._in_action = True
        try:
            for fd, ev in events:
                want = watch.get(fd, 0)
                mask = 0
                if ev & _READABLE and want & _POLL_IN:
                    mask = _CSELECT_IN
                if ev & _WRITABLE and want & _POLL_OUT:
                    mask |= _CSELECT_OUT
                if mask:
                    running = socket_action(fd, mask)[1]
        except Exception as exc:
            self._in_action = False
            self._driver_failed(exc)
            return
        except BaseException:
            self._in_action = False
            self._drain(-1)
            raise
        self._in_action = False
        if self._failure is not None:
            self._settle()
            return
        if running is not None and (running < len(self._futures) + len(self._stray) or self._dirty):
            self._drain(running)
        if self._touched:
            self._poke_touched()

    def _action(self, fd: int, mask: int) -> None:
        """A socket is ready (or the timer expired): let libcurl work, then
        collect finished transfers."""
        self._in_action = True
        try:
            running = self._multi.socket_action(fd, mask)[1]
        except Exception as exc:
            self._in_action = False
            self._driver_failed(exc)
            return
        except BaseException:
            # KeyboardInterrupt/SystemExit from an easy callback: that transfer
            # gets it (see _transfer_error); it then leaves the loop, as from
            # any callback.
            self._in_action = False
            self._drain(-1)
            raise
        self._in_action = False
        if self._failure is not None:
            self._settle()
            return
        if running < len(self._futures) + len(self._stray) or self._dirty:
            self._drain(running)
        if self._touched:
            self._poke_touched()

    def _drain(self, running: int) -> None:
        """Read every completion message and settle those futures."""
        self._dirty = False
        multi = self._multi
        futures = self._futures
        try:
            _, ok, failed = multi.info_read()
        except BaseException as exc:
            self._driver_failed(exc)
            if not isinstance(exc, Exception):
                raise
            return
        pop = futures.pop
        remove = multi.remove_handle  # outside socket_action: no deferral to track
        in_call, self._in_call = self._in_call, True
        try:
            for curl in ok:
                fut = pop(curl, None)
                if fut is None:
                    self._stray_done(curl)
                    continue
                try:
                    remove(curl)
                except Exception as exc:
                    if not fut.done():
                        fut.set_exception(exc)
                    continue
                if not fut.done():
                    fut.set_result(curl)
            for curl, code, message in failed:
                fut = pop(curl, None)
                if fut is None:
                    self._stray_done(curl)
                    continue
                try:
                    remove(curl)
                except Exception:
                    pass  # the transfer's own error says more
                if not fut.done():
                    fut.set_exception(_transfer_error(curl, code, message))
        finally:
            self._in_call = in_call
        if self._failure is not None:
            self._loop.call_soon(self._settle)  # type: ignore[union-attr]  # after socket_action: bound
        if running < len(futures) + len(self._stray):
            self._reap_orphans()

    def _stray_done(self, curl: Curl) -> None:
        """A handle libcurl refused to remove has finished: it runs no more,
        so it leaves the count; try the removal again."""
        stray = self._stray
        if curl in stray:
            del stray[curl]
            try:
                self._multi.remove_handle(curl)
            except Exception:
                pass  # attached, idle, until aclose()

    def _remove(self, curl: Curl) -> None:
        """Remove the handle of a transfer that may still run.  If libcurl
        refuses, the handle stays attached and running: it is counted in
        _stray until its completion is read."""
        if self._in_action:
            self._dirty = True  # the removal runs when socket_action unwinds
        in_call, self._in_call = self._in_call, True
        core = self._core
        if core is not None:
            ours, core.ours = core.ours, 1
        try:
            self._multi.remove_handle(curl)
        except BaseException:
            if curl in self._multi:
                self._stray[curl] = None
            raise
        finally:
            self._in_call = in_call
            if core is not None:
                core.ours = ours
                if core.timer_gen != self._gen:
                    self._sync_timer()
        if self._failure is not None and not self._in_action:
            self._loop.call_soon(self._settle)  # type: ignore[union-attr]  # a registered transfer: bound

    def _settle(self) -> None:
        """Our socket or timer callback failed: the loop's watchers may no
        longer match libcurl's sockets, so fail every pending transfer."""
        exc = self._failure
        if exc is not None:
            self._failure = None
            self._driver_failed(exc)

    def _remove_quietly(self, curl: Curl) -> Optional[Exception]:
        try:
            self._remove(curl)
        except Exception as exc:
            return exc
        return None

    def _fail_transfer(self, curl: Curl, exc: BaseException) -> None:
        """End a registered transfer now with exc (e.g. pause() failed)."""
        fut = self._futures.pop(curl, None)
        if fut is None:
            return
        self._remove_quietly(curl)
        if not fut.done():
            fut.set_exception(exc)

    def _pause(self, curl: Curl, bitmask: int) -> None:
        """``curl.pause(bitmask)`` for _stream/_request: the socket and timer
        callbacks it runs are ours, not a sign of a foreign close."""
        in_call, self._in_call = self._in_call, True
        core = self._core
        if core is not None:
            ours, core.ours = core.ours, 1
        try:
            curl.pause(bitmask)
        finally:
            self._in_call = in_call
            if core is not None:
                core.ours = ours
                if core.timer_gen != self._gen:
                    self._sync_timer()

    def _reap_orphans(self) -> None:
        """Fail the futures of handles that left the multi behind our back
        (a Curl closed by its owner while registered)."""
        multi = self._multi
        stray = self._stray
        if stray:
            for curl in [c for c in stray if c not in multi]:
                del stray[curl]
        for curl in [c for c in self._futures if c not in multi]:
            fut = self._futures.pop(curl)
            if not fut.done():
                fut.set_exception(error(0, "the Curl object was closed while its transfer was registered"))

    def _cancelled(self, curl: Curl, fut: _Transfer) -> None:
        """A registered future was cancelled: remove its handle now."""
        if self._futures.get(curl) is not fut:
            return
        del self._futures[curl]
        try:
            self._remove(curl)
        except Exception as exc:
            if not getattr(curl, "closed", False):
                self._loop.call_exception_handler({  # type: ignore[union-attr]  # a registered transfer: bound
                    "message": "AsyncCurlMulti could not remove a cancelled transfer",
                    "exception": exc,
                })

    def _driver_failed(self, exc: BaseException) -> None:
        """socket_action()/info_read() raised: fail every pending future (with
        the exception as the cause) instead of leaving them hanging."""
        futures, self._futures = self._futures, {}
        self._dirty = False
        for curl, fut in futures.items():
            self._remove_quietly(curl)
            if not fut.done():
                if isinstance(exc, error):
                    err = error(*exc.args)
                else:
                    err = error(0, "the AsyncCurlMulti driver failed: %s: %s" % (type(exc).__name__, exc))
                err.__cause__ = exc
                fut.set_exception(err)
        if not futures and self._loop is not None:
            self._loop.call_exception_handler({
                "message": "AsyncCurlMulti driver failed with no transfer pending",
                "exception": exc,
            })

    # -- the native driver (the event core of _eventcore.py) -----------------------

    def _setup_native(self) -> None:
        """Install the event core: libcurl's socket and timer callbacks in C,
        its sockets in one epoll set the loop watches once (see _bind)."""
        rec = self._multi._rec
        core = _eventcore.install(rec)  # rec.core
        core.owner = weakref.ref(self)
        self._rec = rec
        self._core = core.c
        self._gen = self._core.timer_gen

    @property
    def _watch(self) -> Dict[int, int]:
        """The watched sockets, {fd: POLL_IN/POLL_OUT mask}, for introspection.
        The native driver keeps them in C.  (A property, not ``__getattr__``:
        a class with ``__getattr__`` gets none of CPython's specialised
        attribute loads, and every ``self.x`` of the driver paid for it.)"""
        if self._core is not None:
            return _eventcore.watched(self._rec)
        return self._pywatch

    def _sync_timer(self) -> None:
        """The core's deadline changed: bring the loop's one timer to it."""
        core = self._core
        if core is None:
            return
        self._gen = core.timer_gen
        ms = core.timeout_ms
        timer = self._timer
        if timer is not None:
            if ms == 0 and self._timer_soon:
                return  # already due on the next loop iteration
            timer.cancel()
            self._timer = None
        if ms < 0 or self._closed:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if ms == 0:
            self._timer = loop.call_soon(self._on_timeout_native)
            self._timer_soon = True
        else:
            self._timer = loop.call_later(ms / 1000.0, self._on_timeout_native)
            self._timer_soon = False

    def _on_timeout_native(self) -> None:
        self._timer = None
        self._run_native(_RUN_TIMER)

    def _on_ready_native(self) -> None:
        self._run_native(_RUN_SOCKETS)

    def _run_native(self, flags: int) -> None:
        """One call into the core, then the finished transfers' futures
        resolved in one batch."""
        if self._closed:
            return
        rec = self._rec
        run = _eventcore.run
        futures = self._futures
        pop = futures.pop
        more = True
        while more:
            self._in_action = True
            try:
                running, ok, failed, foreign, more = run(rec, flags)
            except Exception as exc:
                self._in_action = False
                self._sync_timer()
                self._driver_failed(exc)
                return
            except BaseException:
                # KeyboardInterrupt/SystemExit from an easy callback: the
                # transfers read meanwhile are settled first.
                self._in_action = False
                try:
                    self._run_native(0)
                except BaseException:
                    pass  # the first exception is the one to report
                raise
            self._in_action = False
            flags = 0
            for curl in ok:
                fut = pop(curl, None)
                if fut is None:
                    self._stray.pop(curl, None)
                    continue
                try:
                    fut.set_result(curl)
                except _InvalidStateError:
                    pass  # done by its owner meanwhile (set_result/set_exception)
            for curl, code, message in failed:
                fut = pop(curl, None)
                if fut is None:
                    self._stray.pop(curl, None)
                elif not fut.done():
                    fut.set_exception(_transfer_error(curl, code, message))
            if foreign:
                self._foreign()
            elif 0 <= running < len(futures) + len(self._stray):
                self._reap_orphans()
        if self._core is not None and self._core.timer_gen != self._gen:
            self._sync_timer()
        if self._touched:
            self._poke_touched()

    def _poke_touched(self) -> None:
        """Ask the requests whose callbacks ran for updates.  A request whose
        has_update() raised has already failed (see _RequestState._poke);
        KeyboardInterrupt/SystemExit leave after the whole batch."""
        touched, self._touched = self._touched, []
        escaped = None
        for state in touched:
            try:
                state._poke()
            except BaseException as exc:
                if escaped is None:
                    escaped = exc
        if escaped is not None:
            raise escaped

