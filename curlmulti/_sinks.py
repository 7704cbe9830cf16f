"""Sinks: response bodies received by C code, with no Python call per chunk.

``Curl.setopt(WRITEDATA, sink)`` (or ``WRITEFUNCTION, sink.write``) with a
``Buffer`` or a ``FileSink`` installs libcurl's write callback in C, so a
64 MiB body is received at libcurl's own speed.  Both also work as ordinary
file-like objects from Python."""

import os
from typing import Any, Optional

from ._curl import ffi, lib
from ._owner import Owned


class _Sink(Owned):
    """The C sink (``struct cm_sink``) is the record: owned by this object
    alone (``ffi.gc``), and by every Curl it is installed on (they hold the
    sink object).  Set once: a second ``__init__`` does nothing, so libcurl
    never writes into a freed sink."""

    _fd = -1

    def __init__(self) -> None:
        if self._rec is not None:
            return
        p = lib.cm_sink_new(self._fd)
        if p == ffi.NULL:
            raise MemoryError("cannot allocate a sink")
        self._sink = self._rec = ffi.gc(p, lib.cm_sink_free)

    def close(self) -> None:
        """Nothing to do: the memory goes with the last reference."""

    def write(self, data: Any) -> int:
        """Append bytes (from Python); returns the number written."""
        n = len(data)
        if n and lib.cm_sink_write(ffi.from_buffer(data), 1, n, self._sink) != n:
            raise self._failure()
        return n

    def _failure(self) -> OSError:
        err = self._sink.err
        return OSError(err, os.strerror(err)) if err else OSError("sink failed")

    @property
    def error(self) -> Optional[OSError]:
        """The OSError that stopped the sink (a transfer then fails with
        E_WRITE_ERROR), or None."""
        return self._failure() if self._sink.err else None


class Buffer(_Sink):
    """A growing in-memory body.  ``getvalue()`` returns it as bytes."""

    def getvalue(self) -> bytes:
        s = self._sink
        cap = s.len
        while True:  # a transfer in another thread may be appending meanwhile
            out = ffi.new("char[]", cap) if cap else ffi.NULL
            n = lib.cm_sink_copy(s, out, cap)
            if n <= cap:
                return ffi.unpack(out, n) if n else b""
            cap = n

    def take(self) -> memoryview:
        """The body as a read-only memoryview, without copying, leaving the
        buffer empty.  When the view is freed its memory goes back to the
        buffer, so the next body is received into pages already mapped.  On
        CPython that is when the last reference goes; on PyPy when the
        collector frees the view, so there ``clear()`` reuses memory sooner."""
        sizes = ffi.new("size_t[2]")
        sink = self._sink
        p = lib.cm_sink_take(sink, sizes)
        if p == ffi.NULL:
            return memoryview(b"")
        capacity = sizes[1]

        def recycle(block: Any) -> None:
            lib.cm_sink_recycle(sink, block, capacity)

        # size= tells PyPy's collector how much memory the view holds.
        block = ffi.gc(p, recycle, size=capacity)
        return memoryview(ffi.buffer(block, sizes[0])).toreadonly()

    def __len__(self) -> int:
        n: int = self._sink.len
        return n

    def clear(self) -> None:
        """Empty the buffer (its memory is kept for the next body)."""
        lib.cm_sink_clear(self._sink)


class FileSink(_Sink):
    """Writes a body straight to a file descriptor with write(2).

    ``file`` is a descriptor or an object with ``fileno()``; a Python file
    object is flushed first, and must not be written to from Python while a
    transfer writes to it."""

    def __init__(self, file: Any) -> None:
        if self._rec is not None:
            return  # already set up: as in pycurl's classes, a second __init__ does nothing
        if isinstance(file, int):
            fd = file
        else:
            fileno = getattr(file, "fileno", None)
            if not callable(fileno):
                raise TypeError("FileSink takes a file descriptor or an object with fileno(), not %s"
                                % type(file).__name__)
            flush = getattr(file, "flush", None)
            if flush is not None:
                flush()
            fd = fileno()
        if not isinstance(fd, int) or fd < 0:
            raise ValueError("FileSink needs a valid file descriptor")
        self._fd = fd
        self._file = file  # keep the descriptor's owner alive
        _Sink.__init__(self)
