"""A Konnect-style request protocol on ``AsyncCurlMulti``.

A request object has four methods::

    configure_handle(handle)   # set options with handle.setopt(...), before the transfer
    has_update() -> bool       # is an interim result ready?
    get_update()               # take it (None: nothing after all)
    completed(info)            # the transfer ended well: build the final result
                               # (info.getinfo()/getinfo_raw())

``await multi.process(request)`` starts the transfer on the first call and
returns the next interim update, or at the end the value of ``completed()``;
call it again with the same request to continue.  A failed transfer raises
``error`` (``completed()`` is not called).

How it runs on the driver (pure Python, no ``lib``/``ffi``):

* ``configure_handle`` gets a ``ConfigHandle``: ``setopt`` forwards to a
  ``Curl`` made for the request, wrapping each Python data callback (write,
  header, read, progress, debug) in a small function that marks the request
  as touched.  After each ``socket_action`` the driver asks ``has_update()``
  of the touched requests only, so the cost does not grow with the number of
  requests in flight.
* If an update is ready while a ``process()`` call waits, that call wakes up
  and returns it.  If nobody waits (the caller is busy with the previous
  update), the transfer is paused (``PAUSE_ALL``) until the next
  ``process()`` call, so a slow consumer bounds the request's buffering.
* Cancelling a waiting ``process()`` call abandons the request: its transfer
  is removed at once.  ``multi.abandon(request)`` does the same between calls.
* ``has_update()`` raising when the driver asks it fails that request's
  transfer as an exception in one of its callbacks would: with ``error``
  whose ``__cause__`` is the exception (KeyboardInterrupt and SystemExit as
  themselves, then they leave the loop).  The ``process()`` call raises it;
  the other requests of the batch are still asked.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any, Callable, Deque, Mapping, Optional, Protocol, Sequence, Tuple, Union

from ._constants import CONSTANTS
from ._driver import Port
from ._easy import Curl
from ._errors import error
from ._sinks import _Sink
from ._stream import HeadParser, ResponseHead

if TYPE_CHECKING:
    from ._async import AsyncCurlMulti

_PAUSE_ALL = CONSTANTS["PAUSE_ALL"]
_PAUSE_CONT = CONSTANTS["PAUSE_CONT"]
_E_ABORTED_BY_CALLBACK = CONSTANTS["E_ABORTED_BY_CALLBACK"]

# Options whose Python callable may produce an update.
_WRAPPED = frozenset(CONSTANTS[n] for n in (
    "WRITEFUNCTION", "HEADERFUNCTION", "READFUNCTION", "XFERINFOFUNCTION",
    "PROGRESSFUNCTION", "DEBUGFUNCTION") if n in CONSTANTS)
# File-object options -> (the function option, the file method used).
_FILE_OPTIONS = {
    CONSTANTS["WRITEDATA"]: (CONSTANTS["WRITEFUNCTION"], "write"),
    CONSTANTS["HEADERDATA"]: (CONSTANTS["HEADERFUNCTION"], "write"),
    CONSTANTS["READDATA"]: (CONSTANTS["READFUNCTION"], "read"),
}


class _Request(Protocol):
    """A request object, as the driver uses it (see the module docstring)."""

    def configure_handle(self, handle: ConfigHandle) -> object: ...

    def has_update(self) -> object: ...

    def get_update(self) -> Any: ...

    def completed(self, info: InfoHandle) -> Any: ...


class ConfigHandle(object):
    """What ``configure_handle()`` receives: the option-setting part of the
    request's ``Curl``."""

    __slots__ = ("_curl", "_state")

    def __init__(self, curl: Curl, state: _RequestState) -> None:
        self._curl = curl
        self._state = state

    def setopt(self, option: int, value: Any) -> None:
        """``Curl.setopt``; Python data callbacks are observed by the driver."""
        if option in _FILE_OPTIONS and not isinstance(value, _Sink):
            func_option, method = _FILE_OPTIONS[option]
            func = getattr(value, method, None)
            if callable(func):
                option, value = func_option, func
        if option in _WRAPPED and callable(value) and not isinstance(getattr(value, "__self__", None), _Sink):
            value = self._state.wrap(value)
        self._curl.setopt(option, value)

    def setopt_string(self, option: int, value: str) -> None:
        self._curl.setopt_string(option, value)

    def unsetopt(self, option: int) -> None:
        self._curl.unsetopt(option)


class InfoHandle(object):
    """What ``completed()`` receives: ``getinfo``/``getinfo_raw`` of the
    finished transfer, valid during that call only."""

    __slots__ = ("_curl",)

    def __init__(self, curl: Optional[Curl]) -> None:
        self._curl = curl

    def _handle(self) -> Curl:
        curl = self._curl
        if curl is None:
            raise RuntimeError("the InfoHandle is only valid during completed()")
        return curl

    def getinfo(self, info: int) -> Any:
        return self._handle().getinfo(info)

    def getinfo_raw(self, info: int) -> Any:
        return self._handle().getinfo_raw(info)


def _request_error(exc: BaseException, method: str) -> BaseException:
    """What a transfer fails with when a request method the driver called
    raised exc."""
    if not isinstance(exc, Exception):
        return exc  # KeyboardInterrupt, SystemExit travel as themselves
    err = error(_E_ABORTED_BY_CALLBACK, "%s() raised %s: %s" % (method, type(exc).__name__, exc))
    err.__cause__ = exc
    return err


class _RequestState(object):
    """A request in flight on one AsyncCurlMulti."""

    __slots__ = ("port", "request", "curl", "future", "waiter", "touched", "paused")

    def __init__(self, multi: AsyncCurlMulti, request: _Request) -> None:
        self.port = Port(multi)
        self.request = request
        self.curl = Curl()
        self.future: Optional[asyncio.Future[Curl]] = None  # set by process() once started
        self.waiter: Optional[asyncio.Future[None]] = None  # the process() call waiting for an update or the end
        self.touched = False  # queued with the driver (Port.touched)
        self.paused = False   # paused by us because nobody was waiting

    def wrap(self, func: Callable[..., object]) -> Callable[..., object]:
        state = self

        def observed(*args: Any) -> object:
            if not state.touched:
                state.touched = True
                state.port.touched(state)
            return func(*args)

        observed.__wrapped__ = func  # type: ignore[attr-defined]  # a function attribute, as functools.wraps sets
        return observed

    def _poke(self) -> None:
        """Called by the driver after callbacks of this request ran."""
        self.touched = False
        fut = self.future
        if fut is None or fut.done():
            return  # the done callback wakes the waiter
        try:
            ready = self.request.has_update()
        except BaseException as exc:
            self.port.fail(self.curl, _request_error(exc, "has_update"))
            if not isinstance(exc, Exception):
                raise
            return
        if not ready:
            return
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)
        elif not self.paused:
            self.paused = True
            try:
                self.port.pause(self.curl, _PAUSE_ALL)
            except Exception as exc:
                self.port.fail(self.curl, exc)

    def _on_done(self, fut: asyncio.Future[Curl]) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    def resume(self) -> None:
        self.paused = False
        if self.future.done():  # type: ignore[union-attr]  # paused: started
            return
        self.port.resume(self.curl, _PAUSE_CONT)

    def finish(self) -> Any:
        """The transfer ended and no update is left: the final result."""
        curl = self.curl
        try:
            # CancelledError if it was cancelled; finished: it was started
            exc = self.future.exception()  # type: ignore[union-attr]
            if exc is not None:
                raise exc
            info = InfoHandle(curl)
            try:
                return self.request.completed(info)
            finally:
                info._curl = None
        finally:
            curl.close()

    def _abandon(self) -> None:
        fut = self.future
        if fut is not None and not fut.done():
            try:
                self.port.stop(self.curl)
            except RuntimeError:
                pass  # already gone (the multi is closing)
        elif fut is not None and not fut.cancelled():
            fut.exception()  # nobody will ask for the outcome: no "never retrieved" warning
        w = self.waiter
        if w is not None:
            self.waiter = None
            w.cancel()
        self.curl.close()


async def process(multi: AsyncCurlMulti, request: Any) -> Any:
    """AsyncCurlMulti.process(): see the module docstring."""
    port = Port(multi)
    requests = port.requests
    state: Optional[_RequestState] = requests.get(request)
    if state is None:
        if port.closed:
            raise RuntimeError("AsyncCurlMulti is closed")
        state = _RequestState(multi, request)
        try:
            request.configure_handle(ConfigHandle(state.curl, state))
            state.future = port.start(state.curl)
        except BaseException:
            state.curl.close()
            raise
        state.future.add_done_callback(state._on_done)
        requests[request] = state
    elif state.waiter is not None:
        raise RuntimeError("process() is already waiting for this request")
    elif state.paused:
        state.resume()
    try:
        while True:
            if request.has_update():
                update = request.get_update()
                if update is not None:
                    return update
            if state.future.done():  # type: ignore[union-attr]  # started above or by an earlier call
                break
            w = state.waiter = port.loop.create_future()
            try:
                await w
            finally:
                if state.waiter is w:
                    state.waiter = None
    except BaseException:
        if requests.get(request) is state:
            del requests[request]
        state._abandon()
        raise
    if requests.get(request) is state:
        del requests[request]
    return state.finish()


class HTTPResult(object):
    """The final result of an ``HTTPRequest``: ``status``, ``head`` (the
    ResponseHead), ``url`` (effective URL), ``body_size`` and ``total_time``
    (seconds)."""

    __slots__ = ("status", "head", "url", "body_size", "total_time")

    def __init__(self, status: int, head: ResponseHead, url: str, body_size: int, total_time: float) -> None:
        self.status = status
        self.head = head
        self.url = url
        self.body_size = body_size
        self.total_time = total_time

    def __repr__(self) -> str:
        return "<HTTPResult %s %s, %d body bytes>" % (self.status, self.url, self.body_size)


class HTTPRequest(object):
    """An HTTP request for ``AsyncCurlMulti.process()``.

    Updates, in order: the ``ResponseHead`` (once the final header block has
    arrived), then ``bytes`` body chunks (what arrived since the previous
    call, joined); the last ``process()`` returns an ``HTTPResult``::

        request = HTTPRequest(url)
        while True:
            item = await multi.process(request)
            if isinstance(item, ResponseHead): ...
            elif isinstance(item, bytes): ...
            else: break   # HTTPResult

    ``method``, ``headers`` (a dict or a list of pairs), ``body`` (bytes) and
    ``options`` (a dict of extra ``setopt`` options) shape the request."""

    def __init__(self, url: str, method: str = "GET",
                 headers: Union[Mapping[str, str], Sequence[Tuple[str, str]], None] = None,
                 body: Optional[bytes] = None, options: Optional[Mapping[int, Any]] = None) -> None:
        self.url = url
        self.method = method.upper()
        self.headers = headers
        self.body = body
        self.options = options
        self._parser = HeadParser()
        self._head: Optional[ResponseHead] = None
        self._head_pending = False
        self._chunks: Deque[bytes] = collections.deque()
        self._body_size = 0

    def configure_handle(self, handle: ConfigHandle) -> None:
        handle.setopt(CONSTANTS["URL"], self.url)
        method = self.method
        if method == "HEAD":
            handle.setopt(CONSTANTS["NOBODY"], 1)
        elif self.body is not None:
            handle.setopt(CONSTANTS["POSTFIELDS"], self.body)
            if method != "POST":
                handle.setopt(CONSTANTS["CUSTOMREQUEST"], method)
        elif method != "GET":
            handle.setopt(CONSTANTS["CUSTOMREQUEST"], method)
        headers = self.headers
        if headers:
            items = headers.items() if hasattr(headers, "items") else headers
            handle.setopt(CONSTANTS["HTTPHEADER"], ["%s: %s" % (k, v) for k, v in items])
        if "SUPPRESS_CONNECT_HEADERS" in CONSTANTS:
            handle.setopt(CONSTANTS["SUPPRESS_CONNECT_HEADERS"], 1)
        for option, value in (self.options or {}).items():
            handle.setopt(option, value)
        handle.setopt(CONSTANTS["HEADERFUNCTION"], self._on_header)
        handle.setopt(CONSTANTS["WRITEFUNCTION"], self._on_body)

    def _on_header(self, line: bytes) -> None:
        if self._head is None:
            head = self._parser.feed(line)
            if head is not None:
                self._head = head
                self._head_pending = True

    def _on_body(self, data: bytes) -> None:
        if self._head is None:
            self._head = self._parser.settle()
            self._head_pending = True
        self._chunks.append(data)
        self._body_size += len(data)

    def has_update(self) -> bool:
        return self._head_pending or bool(self._chunks)

    def get_update(self) -> Union[ResponseHead, bytes, None]:
        if self._head_pending:
            self._head_pending = False
            return self._head
        chunks = self._chunks
        if not chunks:
            return None
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        return data

    def completed(self, info: InfoHandle) -> HTTPResult:
        head = self._head if self._head is not None else self._parser.settle()
        return HTTPResult(info.getinfo(CONSTANTS["RESPONSE_CODE"]), head,
                          info.getinfo(CONSTANTS["EFFECTIVE_URL"]), self._body_size,
                          info.getinfo(CONSTANTS["TOTAL_TIME"]))
