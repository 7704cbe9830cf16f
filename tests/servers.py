"""Local HTTP servers for the tests, all on 127.0.0.1, all in daemon threads.

Three kinds:

* ``HttpbinServer``: the httpbin app under waitress (HTTP/1.1 keep-alive,
  poll(), a 4096-deep listen queue, no connection cap, 64 worker threads).
* ``FastServer``: a small asyncio HTTP/1.1 server for load tests: keep-alive,
  pipelining, ``Expect: 100-continue``, chunked request bodies.  Routes:
  ``/bytes/N``, ``/status/N``, ``/delay/SECONDS``, ``/echo``, ``/headers``, ``/get``.
* Raw-socket fault servers (``ResetServer``, ``TruncatingServer``,
  ``StallingServer``, ``GarbageServer``, ``SlowBodyServer``, ``BigBodyServer``)
  and ``RefusedPort``.  Each reads the request, misbehaves in one documented
  way chosen by the path, and records what it saw in ``.requests``.

Every server is bounded in time (socket timeouts, capped delays), binds only
to loopback, and ``stop()`` is quick and idempotent even with stalled
connections open.  Bodies of ``/bytes/N`` (FastServer) and of BigBodyServer
follow one pattern: the byte at offset i is ``i % 256`` (see ``pattern``).
"""

import asyncio
import http
import json
import select
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
BACKLOG = 4096
IO_TIMEOUT = 10.0       # a fault server gives up on a silent client after this
MAX_STALL = 60.0        # the longest any server holds a connection on purpose
MAX_DELAY = 60.0        # cap on /delay/N

_PATTERN = bytes(range(256)) * 256          # 64 KiB, starts at a multiple of 256


def pattern(offset, size):
    """The ``size`` bytes at ``offset`` of the pattern body (byte i is i % 256)."""
    start = offset % 256
    out = bytearray()
    while len(out) < size:
        take = min(size - len(out), len(_PATTERN) - start)
        out += _PATTERN[start:start + take]
        start = 0
    return bytes(out)


class ServerURL(str):
    """A server's base URL, ``"http://127.0.0.1:PORT"``, that also knows its server.

    ``url("/get")`` and ``url.url + "/get"`` both give a full URL; ``.port`` and
    ``.server`` (the server object, for its counters) are there too.
    """

    def __new__(cls, url, server=None):
        self = super().__new__(cls, url.rstrip("/"))
        self.server = server
        return self

    @property
    def url(self):
        return str(self)

    @property
    def host(self):
        return urlsplit(self).hostname

    @property
    def port(self):
        return urlsplit(self).port

    def __call__(self, path=""):
        if path and not path.startswith("/"):
            path = "/" + path
        return str(self) + path


def _reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(status, headers):
    lines = ["HTTP/1.1 %d %s" % (status, _reason(status))]
    lines += ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _query(path):
    """(path without query, {name: last value})"""
    parts = urlsplit(path)
    return parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}


def loop_fds(loop, owner):
    """{descriptor: what it is} for an asyncio selector loop: its selector's
    (epoll) and its self-pipe's (a socketpair that wakes it from other threads)."""
    fds = {}
    if loop is None or loop.is_closed():
        return fds
    fileno = getattr(getattr(loop, "_selector", None), "fileno", None)
    if fileno is not None and fileno() >= 0:
        fds[fileno()] = "%s: event loop selector" % owner
    for attr, end in (("_ssock", "read"), ("_csock", "write")):
        sock = getattr(loop, attr, None)
        if sock is not None and sock.fileno() >= 0:
            fds[sock.fileno()] = "%s: event loop self-pipe, %s end" % (owner, end)
    return fds


# ---------------------------------------------------------------- httpbin

class HttpbinServer:
    """httpbin (``from httpbin import app``) served by waitress.

    waitress, not werkzeug's development server: werkzeug (2.1 and later)
    answers every request with ``Connection: close``, so it can't test
    connection reuse, and starting a thread per connection is slow on PyPy.
    waitress keeps connections alive, multiplexes them with poll() (no
    FD_SETSIZE limit) and runs the app on a pool of ``threads`` workers; so
    many concurrent ``/delay/N`` requests queue behind the pool: use
    ``fast_server`` for those.
    """

    def __init__(self, host=LOOPBACK, port=0, threads=64):
        import logging

        from httpbin import app
        from waitress.server import create_server

        logging.getLogger("waitress").setLevel(logging.ERROR)   # "Task queue depth is N"
        self._server = create_server(
            app, host=host, port=port, threads=threads, backlog=BACKLOG,
            connection_limit=100000, asyncore_use_poll=True, channel_timeout=120,
            asyncore_loop_timeout=1, ident="httpbin-test")
        self.port = int(self._server.effective_port)
        self.url = ServerURL("http://%s:%d" % (host, self.port), self)
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._server.run, name="httpbin-server",
                                        daemon=True)
        self._thread.start()
        return self

    def owned_fds(self):
        """{descriptor: what it is}: the listening socket and waitress's
        trigger, a pipe (both ends) whose read end is polled through a dup."""
        fds = {}
        sock = getattr(self._server, "socket", None)
        if sock is not None and sock.fileno() >= 0:
            fds[sock.fileno()] = "httpbin: waitress listening socket"
        trigger = self._server.trigger
        ends = list(getattr(trigger, "_fds", ()))
        for fd, end in zip(ends, ("read", "write")):
            fds[fd] = "httpbin: waitress trigger pipe, %s end" % end
        polled = getattr(trigger, "_fileno", None)
        if isinstance(polled, int) and polled >= 0 and polled not in fds:
            fds[polled] = "httpbin: waitress trigger pipe, polled dup of the read end"
        return fds

    def _close_all(self):                       # runs in the server's thread
        for channel in list(self._server._map.values()):
            if channel is not self._server.trigger:
                channel.close()
        try:
            self._server.trigger.close()        # the map is empty: run() returns
        except OSError:
            self._server._map.pop(self._server.trigger._fileno, None)  # its pipe is gone already

    def stop(self):
        if self._thread is not None:
            try:
                self._server.trigger.pull_trigger(self._close_all)
            except OSError:
                # Seen once in CI: the trigger pipe was already closed (EBADF),
                # so the server thread cannot be woken.  Its loop polls every
                # asyncore_loop_timeout (1 s): empty the map from here and it
                # returns.  (Who closed the descriptor is not known yet.)
                self._close_all()
            self._thread.join(5)
            self._thread = None
            self._server.task_dispatcher.shutdown(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------- fast asyncio server

class FastServer:
    """A small asyncio HTTP/1.1 server with keep-alive, in its own thread.

    ``.connections`` counts accepted connections and ``.requests`` requests
    answered, so tests can check connection reuse.
    """

    IDLE_TIMEOUT = 120.0

    def __init__(self, host=LOOPBACK):
        self.host = host
        self.port = None
        self.url = None
        self.connections = 0
        self.requests = 0
        self._loop = None
        self._server = None
        self._transports = set()
        self._listener = None
        self._thread = None
        self._ready = threading.Event()
        self._error = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name="fast-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError("fast server did not start: %r" % (self._error,))
        return self

    def _run(self):
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        transports = self._transports = set()
        client = self._client

        class Protocol(asyncio.StreamReaderProtocol):
            def connection_made(self, transport):
                transports.add(transport)
                self._saved_transport = transport
                super().connection_made(transport)

            def connection_lost(self, exc):
                transports.discard(self._saved_transport)
                super().connection_lost(exc)

        def factory():
            return Protocol(asyncio.StreamReader(limit=1 << 20), client)

        try:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, 0))
            self._server = loop.run_until_complete(
                loop.create_server(factory, sock=listener, backlog=BACKLOG))
            self._listener = listener
            self.port = listener.getsockname()[1]
            self.url = ServerURL("http://%s:%d" % (self.host, self.port), self)
        except BaseException as e:      # pragma: no cover - reported by start()
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            # Stop accepting, then let connections already accepted get their
            # transports before the server closes: a transport set up after
            # Server.close() fails half-way and leaks its socket until GC.
            loop.remove_reader(listener.fileno())
            for _ in range(3):
                loop.run_until_complete(asyncio.sleep(0.01))
            self._server.close()
            for t in list(transports):
                t.abort()
            tasks = asyncio.all_tasks(loop)
            for t in tasks:
                t.cancel()
            loop.run_until_complete(asyncio.wait(tasks, timeout=5) if tasks else asyncio.sleep(0))
            loop.run_until_complete(asyncio.sleep(0))      # let the aborts close their sockets
            loop.close()

    def owned_fds(self):
        """{descriptor: what it is}: the listening socket and the event loop's."""
        fds = loop_fds(self._loop, "fast server")
        if self._listener is not None and self._listener.fileno() >= 0:
            fds[self._listener.fileno()] = "fast server: listening socket"
        return fds

    def stop(self):
        if self._thread is not None:
            if self._loop.is_running():
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def _client(self, reader, writer):
        self.connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                asyncio.CancelledError, ConnectionError, ValueError):
            pass                        # CancelledError: the server is stopping
        finally:
            writer.close()

    async def _one(self, reader, writer):
        """Serve one request; False when the connection is to be closed."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.IDLE_TIMEOUT)
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        h = {k.lower(): v for k, v in headers}
        conn = h.get("connection", "").lower()
        keep = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
        if h.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in h.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":   # trailers
                        pass
                    break
                body += await reader.readexactly(size)
                await reader.readexactly(2)
            body = bytes(body)
        else:
            body = await reader.readexactly(int(h.get("content-length", 0) or 0))

        path, args = _query(target)
        parts = path.strip("/").split("/")
        status, ctype, payload, stream = 200, "application/json", b"", 0
        try:
            if parts[0] == "bytes" and len(parts) == 2:
                ctype, stream = "application/octet-stream", int(parts[1])
            elif parts[0] == "status" and len(parts) == 2:
                status, ctype = int(parts[1]), "text/plain"
            elif parts[0] == "delay" and len(parts) == 2:
                delay = min(float(parts[1]), MAX_DELAY)
                await asyncio.sleep(delay)
                payload = json.dumps({"delay": delay}).encode()
            elif path == "/echo":
                ctype, payload = h.get("content-type", "application/octet-stream"), body
            elif path == "/headers":
                payload = json.dumps({"headers": dict(headers)}).encode()
            elif path == "/get":
                payload = json.dumps({"args": args, "headers": dict(headers), "method": method,
                                      "url": "http://%s:%d%s" % (self.host, self.port, target)}).encode()
            else:
                status, ctype, payload = 404, "text/plain", b"not found\n"
        except ValueError:
            status, ctype, payload, stream = 400, "text/plain", b"bad request\n", 0

        length = stream or len(payload)
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        out = [("Content-Type", ctype), ("Connection", "keep-alive" if keep else "close")]
        if status not in (204, 304) and not 100 <= status < 200:
            out.append(("Content-Length", str(length)))
        self.requests += 1
        if no_body:
            writer.write(_head(status, out))
        elif stream:
            writer.write(_head(status, out))
            sent = 0
            while sent < stream:
                n = min(stream - sent, len(_PATTERN))
                writer.write(_PATTERN[:n])      # stream offset stays a multiple of 256
                sent += n
                await writer.drain()
        else:
            writer.write(_head(status, out) + payload)
        await writer.drain()
        return keep


# ---------------------------------------------------------------- raw-socket servers

class Request:
    def __init__(self, method, target, version, headers, body):
        self.method, self.target, self.version = method, target, version
        self.headers = headers                  # {lower-case name: value}
        self.body = body
        self.path, self.args = _query(target)

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.target)


def read_request(conn):
    """Read one HTTP/1.x request from a blocking socket; None on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            raise ValueError("request head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    length = int(headers.get("content-length", 0) or 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(method, target, version, headers, rest[:length])


class RawServer:
    """A thread that accepts on 127.0.0.1 and hands each connection, in its
    own daemon thread, to ``handle(conn, request)``.  ``handle`` returns True
    to keep the connection for another request.

    ``stop()`` wakes the accept loop through a socketpair (no polling), shuts
    down every open connection, and joins the threads.
    """

    name = "raw"

    def __init__(self, host=LOOPBACK):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(BACKLOG)
        self.host = host
        self.port = self._listener.getsockname()[1]
        self.url = ServerURL("http://%s:%d" % (host, self.port), self)
        self.requests = []
        self.connections = 0
        self.stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._conns = set()
        self._threads = set()
        self._lock = threading.Lock()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._accept_loop, name=self.name + "-server",
                                        daemon=True)
        self._thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        while not self.stopping.is_set():
            ready, _, _ = select.select([self._listener, self._wake_r], [], [])
            if self._wake_r in ready or self.stopping.is_set():
                break
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(IO_TIMEOUT)
            t = threading.Thread(target=self._serve, args=(conn,), name=self.name + "-conn",
                                 daemon=True)
            with self._lock:
                self.connections += 1
                self._conns.add(conn)
                self._threads.add(t)
            t.start()

    def _serve(self, conn):
        try:
            while not self.stopping.is_set():
                req = read_request(conn)
                if req is None:
                    break
                self.requests.append(req)
                if not self.handle(conn, req):
                    break
        except (OSError, ValueError):
            pass
        finally:
            self._close(conn)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _close(self, conn, reset=False):
        with self._lock:
            self._conns.discard(conn)
        try:
            if reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            conn.close()
        except OSError:
            pass

    def close_cleanly(self, conn):
        """FIN, not RST: stop writing, drain what the client still sends, close."""
        try:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(1.0)
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def hold(self, seconds):
        """Wait up to ``seconds`` (capped), returning early when the server stops."""
        self.stopping.wait(min(seconds, MAX_STALL))

    def handle(self, conn, req):
        raise NotImplementedError

    def owned_fds(self):
        """{descriptor: what it is}: the listening socket and the wake-up socketpair."""
        socks = ((self._listener, "listening socket"), (self._wake_r, "wake-up socketpair, read end"),
                 (self._wake_w, "wake-up socketpair, write end"))
        return {s.fileno(): "%s server: %s" % (self.name, what)
                for s, what in socks if s.fileno() >= 0}

    def stop(self):
        if self.stopping.is_set():
            return
        self.stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(5)
        self._listener.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()


class ResetServer(RawServer):
    """Answers 200 with ``Content-Length: 1048576``, sends ``?sent=1024`` body
    bytes, waits ``?delay=0.1`` s so they arrive, then resets the connection
    (SO_LINGER 0: RST, not FIN).  Path ``/before-headers``: reset right after
    reading the request, with no reply at all."""

    name = "reset"
    LENGTH = 1 << 20

    def handle(self, conn, req):
        if req.path != "/before-headers":
            sent = int(req.args.get("sent", 1024))
            conn.sendall(_head(200, [("Content-Type", "application/octet-stream"),
                                     ("Content-Length", str(self.LENGTH))]) + pattern(0, sent))
            self.hold(float(req.args.get("delay", 0.1)))
        self._close(conn, reset=True)
        return False


class TruncatingServer(RawServer):
    """Answers 200 with ``Content-Length: ?length=1000`` but sends only
    ``?sent=500`` bytes of it, then closes cleanly (FIN).  Path ``/empty``:
    closes cleanly without any reply."""

    name = "truncating"

    def handle(self, conn, req):
        if req.path != "/empty":
            length = int(req.args.get("length", 1000))
            sent = int(req.args.get("sent", length // 2))
            conn.sendall(_head(200, [("Content-Type", "application/octet-stream"),
                                     ("Content-Length", str(length))]) + pattern(0, sent))
        self.close_cleanly(conn)
        return False


class StallingServer(RawServer):
    """Reads the request and never answers, holding the connection until the
    server stops (at most ``?seconds=60``).  Path ``/after-headers``: sends the
    headers of a 200 with ``Content-Length: 1000`` and then stalls."""

    name = "stalling"

    def handle(self, conn, req):
        if req.path == "/after-headers":
            conn.sendall(_head(200, [("Content-Type", "application/octet-stream"),
                                     ("Content-Length", "1000")]))
        self.hold(float(req.args.get("seconds", MAX_STALL)))
        return False


class GarbageServer(RawServer):
    """Reads the request and replies with bytes that are not HTTP, then closes."""

    name = "garbage"
    GARBAGE = b"\x00\xff\xfeSSH-2.0-this is not HTTP at all\r\n\x16\x03\x01\x02\x00" * 4 + b"\r\n\r\n"

    def handle(self, conn, req):
        conn.sendall(self.GARBAGE)
        self.close_cleanly(conn)
        return False


class SlowBodyServer(RawServer):
    """Answers 200 with ``Content-Length: ?bytes=20`` and drips the body, one
    ``?chunk=1``-byte piece every ``?interval=0.05`` s (pattern bytes), then
    keeps the connection alive.  The whole drip is capped at 60 s."""

    name = "slow-body"

    def handle(self, conn, req):
        total = int(req.args.get("bytes", 20))
        chunk = max(1, int(req.args.get("chunk", 1)))
        interval = float(req.args.get("interval", 0.05))
        conn.sendall(_head(200, [("Content-Type", "application/octet-stream"),
                                 ("Content-Length", str(total))]))
        deadline = time.monotonic() + MAX_STALL
        sent = 0
        while sent < total:
            n = min(chunk, total - sent)
            conn.sendall(pattern(sent, n))
            sent += n
            if sent < total:
                self.stopping.wait(interval)
                if self.stopping.is_set() or time.monotonic() > deadline:
                    return False
        return True


class BigBodyServer(RawServer):
    """``/bytes/N``: a body of N bytes (pattern bytes, made on the fly: nothing
    is held in memory), with ``Content-Length``.  Honours ``Range: bytes=A-``
    and ``bytes=A-B`` with a 206, and HEAD.  Keep-alive."""

    name = "big-body"

    def handle(self, conn, req):
        parts = req.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "bytes" or not parts[1].isdigit():
            conn.sendall(_head(404, [("Content-Length", "0")]))
            return True
        size = int(parts[1])
        start, end, status = 0, size, 200
        headers = [("Content-Type", "application/octet-stream")]
        rng = req.headers.get("range", "")
        if rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[6:].partition("-")
            if a.isdigit():
                start = int(a)
                end = min(size, int(b) + 1) if b.isdigit() else size
                if start >= size:
                    conn.sendall(_head(416, [("Content-Range", "bytes */%d" % size),
                                             ("Content-Length", "0")]))
                    return True
                status = 206
                headers.append(("Content-Range", "bytes %d-%d/%d" % (start, end - 1, size)))
        headers.append(("Content-Length", str(end - start)))
        headers.append(("Accept-Ranges", "bytes"))
        conn.sendall(_head(status, headers))
        if req.method == "HEAD":
            return True
        pos = start
        first = 256 - start % 256 if start % 256 else 0
        if first:
            n = min(first, end - pos)
            conn.sendall(pattern(pos, n))
            pos += n
        view = memoryview(_PATTERN)
        while pos < end:                        # pos is a multiple of 256 here
            if self.stopping.is_set():
                return False
            n = min(len(_PATTERN), end - pos)
            conn.sendall(view[:n])
            pos += n
        return True

    def __call__(self, size):
        return self.url("/bytes/%d" % size)


class RefusedPort:
    """A port on 127.0.0.1 with nothing listening: a bound socket that never
    calls listen(), so the port stays reserved and connecting is refused."""

    def __init__(self, host=LOOPBACK):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self.port = self._sock.getsockname()[1]
        self.url = ServerURL("http://%s:%d" % (host, self.port), self)

    def start(self):
        return self

    def owned_fds(self):
        """{descriptor: what it is}: the bound socket that keeps the port."""
        fd = self._sock.fileno()
        return {fd: "refused port: bound socket"} if fd >= 0 else {}

    def stop(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
