"""Streaming transfers for ``AsyncCurlMulti``: a response body read as an
async iterator, a request body written from an async iterable, both with
bounded buffers.

Pure Python over ``Curl``/``AsyncCurlMulti`` (no ``lib``/``ffi``).

Back-pressure follows libcurl's pause protocol:

* Download: the write callback appends each chunk to a buffer.  Once the
  buffer holds ``max_buffer`` bytes it returns ``WRITEFUNC_PAUSE``: libcurl
  keeps that chunk, stops reading the socket (and drops its watcher, so the
  loop does not spin) and delivers the *same* chunk again on unpause, so the
  callback does not keep it.  When the consumer has drained the buffer to half,
  it calls ``curl.pause()`` from the loop (never from a callback) to clear the
  receive pause -- libcurl may deliver the held chunk from inside that call --
  and kicks the multi with ``socket_action(SOCKET_TIMEOUT, 0)`` on the next
  loop iteration.
* Upload: a task pumps the async iterable into a buffer of at most about
  ``max_buffer`` bytes.  The read callback hands out what is there and returns
  ``READFUNC_PAUSE`` when the buffer is empty; the pump clears the send pause
  when it adds data (or reaches the end).  An exception raised by the
  iterable is raised in the read callback, so the transfer fails with
  ``error`` whose ``__cause__`` is that exception.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any, Deque, Iterable, List, Optional, Tuple, Union

from ._constants import CONSTANTS
from ._driver import Port

if TYPE_CHECKING:
    from ._async import AsyncCurlMulti
    from ._easy import Curl

# What an upload's source may yield: bytes-like, or str (sent as UTF-8).
_Chunk = Union[bytes, bytearray, memoryview, str]

_WRITEFUNC_PAUSE = CONSTANTS["WRITEFUNC_PAUSE"]
_READFUNC_PAUSE = CONSTANTS["READFUNC_PAUSE"]
_PAUSE_CONT = CONSTANTS["PAUSE_CONT"]
_PAUSE_RECV = CONSTANTS["PAUSE_RECV"]
_PAUSE_SEND = CONSTANTS["PAUSE_SEND"]
_WRITEFUNCTION = CONSTANTS["WRITEFUNCTION"]
_HEADERFUNCTION = CONSTANTS["HEADERFUNCTION"]
_READFUNCTION = CONSTANTS["READFUNCTION"]
_SUPPRESS_CONNECT_HEADERS = CONSTANTS.get("SUPPRESS_CONNECT_HEADERS")

# A header block with one of these statuses may be followed by another one
# (a followed redirect, an authentication retry): it is the final head only
# if body data or the end of the transfer comes next.
_MAYBE_NOT_FINAL = frozenset([301, 302, 303, 305, 307, 308, 401, 407])


class ResponseHead(object):
    """The status line and headers of a response.

    ``status`` (int or None for non-HTTP), ``reason`` and ``http_version``
    (str such as ``"1.1"`` or ``"2"``), ``headers``: a list of
    ``(name, value)`` str pairs in order of arrival (decoded as latin-1)."""

    __slots__ = ("status", "reason", "http_version", "headers")

    def __init__(self, status: Optional[int] = None, reason: str = "", http_version: str = "",
                 headers: Iterable[Tuple[str, str]] = ()) -> None:
        self.status = status
        self.reason = reason
        self.http_version = http_version
        self.headers = list(headers)

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of header ``name`` (case-insensitive)."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default

    def get_all(self, name: str) -> List[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def __repr__(self) -> str:
        return "<ResponseHead %s %s, %d headers>" % (self.status, self.reason, len(self.headers))


def parse_head(lines: List[bytes]) -> ResponseHead:
    """A ResponseHead from one block of raw header lines (bytes)."""
    status: Optional[int] = None
    reason, version = "", ""
    start = 0
    if lines:
        first = lines[0].decode("latin-1").rstrip("\r\n")
        if first.startswith("HTTP/"):
            start = 1
            parts = first.split(" ", 2)
            version = parts[0][5:]
            try:
                status = int(parts[1])
            except (IndexError, ValueError):
                status = None
            reason = parts[2].strip() if len(parts) > 2 else ""
    return ResponseHead(status, reason, version, header_pairs(lines[start:]))


def header_pairs(lines: Iterable[bytes]) -> List[Tuple[str, str]]:
    """(name, value) of raw header lines (bytes), folded lines joined."""
    pairs: List[Tuple[str, str]] = []
    for raw in lines:
        line = raw.decode("latin-1").rstrip("\r\n")
        if line[:1] in (" ", "\t") and pairs:  # obsolete line folding
            name, value = pairs[-1]
            pairs[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return pairs


class HeadParser(object):
    """Follows the header callback: ``feed(line)`` returns the ResponseHead
    once a block is known to be the final one; ``settle()`` gives the best
    head when body data arrives or the transfer ends."""

    __slots__ = ("lines", "candidate")

    def __init__(self) -> None:
        self.lines: List[bytes] = []
        self.candidate: Optional[ResponseHead] = None

    def feed(self, line: bytes) -> Optional[ResponseHead]:
        if line != b"\r\n" and line != b"\n":
            self.lines.append(line)
            return None
        lines, self.lines = self.lines, []
        if not lines:
            return None
        head = parse_head(lines)
        status = head.status
        if status is not None and status < 200:
            return None  # 100 Continue, 103 Early Hints: another block follows
        if status is None or status in _MAYBE_NOT_FINAL:
            self.candidate = head
            return None
        return head

    def settle(self) -> ResponseHead:
        if self.lines:  # a block without its blank line (non-HTTP protocols)
            head = parse_head(self.lines)
            self.lines = []
            if head.headers or head.status is not None or self.candidate is None:
                self.candidate = head
        return self.candidate if self.candidate is not None else ResponseHead()


def _as_view(chunk: _Chunk) -> memoryview:
    if isinstance(chunk, str):
        chunk = chunk.encode("utf-8")
    view = memoryview(chunk)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class Stream(object):
    """A running transfer whose response is read as it arrives.

    Made by ``AsyncCurlMulti.stream(curl, max_buffer, upload)``, which
    starts ``curl`` and installs the header, write (and read) callbacks on
    it (if the start is refused, ``curl`` is left as it was)::

        async with multi.stream(curl) as stream:
            head = await stream.head()          # ResponseHead
            async for chunk in stream:          # bytes, as they arrive
                ...

    Leaving the ``async with`` block (or ``aclose()``) before the end cancels
    the transfer.  ``future`` is the transfer's future (from add_handle);
    ``pauses`` counts how often a lagging consumer paused the transfer, and
    ``send_pauses`` how often the upload waited for its source."""

    def __init__(self, multi: AsyncCurlMulti, curl: Curl, max_buffer: int = 1 << 20, upload: Any = None) -> None:
        if not isinstance(max_buffer, int) or max_buffer < 1:
            raise ValueError("max_buffer must be a positive int")
        if upload is not None:
            _Upload.check(upload)
        self.curl = curl
        self.pauses = 0
        self.send_pauses = 0
        self._port = port = Port(multi)
        self._limit = max_buffer
        self._low = max_buffer // 2
        self._chunks: Deque[bytes] = collections.deque()
        self._size = 0
        self._recv_paused = False
        self._send_paused = False
        self._waiter: Optional[asyncio.Future[None]] = None  # the consumer, waiting for body data or the end
        self._head: Optional[ResponseHead] = None
        self._head_waiter: Optional[asyncio.Future[None]] = None
        self._parser = HeadParser()
        self._ended = False
        self._upload: Optional[_Upload] = None
        # Added first, so that a refused add (already registered, attached
        # elsewhere, no running loop, closed) leaves the handle and whatever
        # transfer it runs untouched.  libcurl calls none of the handle's
        # callbacks before the next socket_action, so ours are in time.
        self.future = fut = port.start(curl)
        self._loop = port.loop
        try:
            curl.setopt(_HEADERFUNCTION, self._on_header)
            curl.setopt(_WRITEFUNCTION, self._on_write)
            if _SUPPRESS_CONNECT_HEADERS is not None:
                curl.setopt(_SUPPRESS_CONNECT_HEADERS, 1)  # proxy CONNECT heads are not the response
            if upload is not None:
                self._upload = _Upload(self, upload, max_buffer)
        except BaseException:
            fut.cancel()  # removes the handle
            raise
        fut.add_done_callback(self._on_done)
        if self._upload is not None:
            self._upload.start(self._loop)

    # -- libcurl callbacks (inside socket_action or pause) ----------------------

    def _on_header(self, line: bytes) -> None:
        if self._head is None:
            head = self._parser.feed(line)
            if head is not None:
                self._set_head(head)

    def _on_write(self, data: bytes) -> Optional[int]:
        if self._size >= self._limit:
            self._recv_paused = True
            self.pauses += 1
            return _WRITEFUNC_PAUSE  # libcurl keeps data and delivers it again
        if self._head is None:
            self._set_head(self._parser.settle())
        self._chunks.append(data)
        self._size += len(data)
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)
        return None

    def _set_head(self, head: ResponseHead) -> None:
        self._head = head
        w = self._head_waiter
        if w is not None:
            self._head_waiter = None
            if not w.done():
                w.set_result(None)

    def _on_done(self, fut: asyncio.Future[Curl]) -> None:
        if self._upload is not None:
            self._upload.stop()
        self._finish()
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    def _finish(self) -> None:
        """The transfer is over: settle the head (or fail it)."""
        if self._ended:
            return
        self._ended = True
        if self._head is None:
            fut = self.future
            if fut.cancelled() or fut.exception() is not None:
                if self._parser.candidate is None and not self._parser.lines:
                    w = self._head_waiter
                    if w is not None:
                        self._head_waiter = None
                        if not w.done():
                            w.set_result(None)
                    return  # head() raises the transfer's error
            self._set_head(self._parser.settle())

    # -- the consumer -------------------------------------------------------------

    async def head(self) -> ResponseHead:
        """The final response head; raises the transfer's error if it ended
        before one arrived."""
        while self._head is None:
            if self.future.done():
                self._finish()
                if self._head is None:
                    self._raise_failure()
                break
            w = self._head_waiter = self._loop.create_future()
            await w
        return self._head  # type: ignore[return-value]  # set, or _raise_failure() raised

    @property
    def status(self) -> Optional[int]:
        """The response status, once the head has arrived (else None)."""
        return self._head.status if self._head is not None else None

    def __aiter__(self) -> "Stream":
        return self

    async def __anext__(self) -> bytes:
        chunks = self._chunks
        while not chunks:
            if self.future.done():
                self._raise_failure()
                raise StopAsyncIteration
            if self._recv_paused:
                self._resume(True)
                continue
            w = self._waiter = self._loop.create_future()
            try:
                await w
            finally:
                if self._waiter is w:
                    self._waiter = None
        data = chunks.popleft()
        self._size -= len(data)
        if self._recv_paused and self._size <= self._low:
            self._resume(True)
        return data

    async def read(self) -> bytes:
        """The rest of the body as bytes (unbounded: it is all kept)."""
        parts: List[bytes] = []
        async for chunk in self:
            parts.append(chunk)
        return b"".join(parts)

    def _raise_failure(self) -> None:
        exc = self.future.exception()  # CancelledError if the transfer was cancelled
        if exc is not None:
            raise exc

    def _resume(self, recv: bool) -> None:
        """Clear our pause of one direction (from the loop, not a callback)."""
        if recv:
            self._recv_paused = False
        else:
            self._send_paused = False
        if self.future.done():
            return
        mask = (_PAUSE_RECV if self._recv_paused else 0) | (_PAUSE_SEND if self._send_paused else 0)
        self._port.resume(self.curl, mask or _PAUSE_CONT)

    async def aclose(self) -> None:
        """Cancel the transfer if it is still running; drop what is buffered."""
        self._chunks.clear()
        self._size = 0
        if not self.future.done():
            try:
                self._port.stop(self.curl)
            except RuntimeError:
                pass  # finished or the multi closed meanwhile
        if self._upload is not None:
            self._upload.stop()

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "done" if self.future.done() else "running"
        return "<curlmulti.Stream %s, %d bytes buffered>" % (state, self._size)


class _Upload(object):
    """The request body of a Stream, pumped from an (async) iterable."""

    @staticmethod
    def check(source: object) -> None:
        if not (hasattr(source, "__aiter__") or hasattr(source, "__iter__")) or isinstance(source, (bytes, str)):
            raise TypeError("upload must be an iterable or async iterable of bytes")

    def __init__(self, stream: Stream, source: Any, limit: int) -> None:
        self.check(source)
        self._stream = stream
        self._source = source  # an iterable or async iterable of _Chunk
        self._limit = limit
        self._low = limit // 2
        self._chunks: Deque[memoryview] = collections.deque()
        self._offset = 0
        self._size = 0
        self._eof = False
        self._exc: Optional[BaseException] = None
        self._space: Optional[asyncio.Future[None]] = None
        self._task: Optional[asyncio.Task[None]] = None
        stream.curl.setopt(_READFUNCTION, self._on_read)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._task = loop.create_task(self._pump())

    def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()

    def _on_read(self, n: int) -> Union[bytes, memoryview, int]:
        exc = self._exc
        if exc is not None:
            self._exc = None
            raise exc  # fails the transfer with exc as __cause__
        chunks = self._chunks
        if not chunks:
            if self._eof:
                return b""
            stream = self._stream
            stream._send_paused = True
            stream.send_pauses += 1
            return _READFUNC_PAUSE
        data = chunks[0]
        off = self._offset
        end = off + n
        if end >= len(data):
            chunks.popleft()
            self._offset = 0
            piece = data[off:] if off else data
        else:
            piece = data[off:end]
            self._offset = end
        self._size -= len(piece)
        space = self._space
        if space is not None and self._size <= self._low:
            self._space = None
            if not space.done():
                space.set_result(None)
        return piece

    async def _pump(self) -> None:
        source = self._source
        try:
            if hasattr(source, "__aiter__"):
                async for chunk in source:
                    await self._put(chunk)
            else:
                for chunk in source:
                    await self._put(chunk)
            self._eof = True
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._exc = exc
        if self._stream._send_paused:
            self._stream._resume(False)

    async def _put(self, chunk: _Chunk) -> None:
        view = _as_view(chunk)
        if not len(view):
            return  # an empty read would end the upload
        self._chunks.append(view)
        self._size += len(view)
        stream = self._stream
        if stream._send_paused:
            stream._resume(False)
        while self._size >= self._limit:
            space = self._space = stream._loop.create_future()
            await space
