"""``curlmulti demo``: a local server with planted failures, crawled by the
same machinery as ``curlmulti fetch``.

The server (``python -m curlmulti._demo PORTFILE``, run as a child process
so that it does not share the crawler's CPU time slice) listens on
127.0.0.1 on three ports, three hosts as far as per-host limits go: ``a``
and ``b`` answer at once, ``slow`` takes 0.2 s per response.  Among the
URLs ``/item/N``, by N modulo 100:

* 7: 404 Not Found (a failure, not retried)
* 13: 500 Internal Server Error (a failure, not retried)
* 21: 429 Too Many Requests with ``Retry-After: 1`` the first time, then
  200 (recovered by a retry)
* 33: 503 the first time, then 200 (recovered)
* 41: the connection is reset the first time, then 200 (recovered)
* 57: a redirect to ``/final/N`` (followed)
* 99 (when N is a multiple of 3): always reset (a failure after retries)
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from typing import Iterator, List, Optional, Set, Tuple

_REASONS = {200: "OK", 302: "Found", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


def expected(count: int) -> Tuple[int, int]:
    """(ok, failed) that a crawl of URLs 0..count-1 should end with."""
    failed = 0
    for n in range(count):
        k = n % 100
        if k in (7, 13) or (k == 99 and n % 3 == 0):
            failed += 1
    return count - failed, failed


class _Conn(asyncio.Protocol):
    def __init__(self, server: "_Server", slow: bool) -> None:
        self.server = server
        self.slow = slow
        self.buf = b""
        self.transport: Optional[asyncio.Transport] = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP server's: a Transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._next()

    def _next(self) -> None:
        if self.busy or self.transport is None:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head, self.buf = self.buf[:end], self.buf[end + 4:]
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        path = parts[1] if len(parts) > 1 else "/"
        if self.slow:
            self.busy = True
            asyncio.get_event_loop().call_later(0.2, self._respond, path)
        else:
            self._respond(path)

    def _respond(self, path: str) -> None:
        self.busy = False
        t = self.transport
        if t is None or t.is_closing():
            return
        status, body = 200, b""
        headers: List[Tuple[str, str]] = []
        seen = self.server.seen
        if path.startswith("/item/"):
            try:
                n = int(path[6:])
            except ValueError:
                n = -1
            k = n % 100
            first = path not in seen
            seen.add(path)
            if k == 7:
                status = 404
            elif k == 13:
                status = 500
            elif k == 21 and first:
                status, headers = 429, [("Retry-After", "1")]
            elif k == 33 and first:
                status = 503
            elif (k == 41 and first) or (k == 99 and n % 3 == 0):
                sock = t.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                t.abort()
                self.transport = None
                return
            elif k == 57:
                status, headers = 302, [("Location", "/final/%d" % n)]
        if status == 200:
            body = (("item %s\n" % path) * 40).encode()
        out = ["HTTP/1.1 %d %s" % (status, _REASONS.get(status, "")), "Content-Length: %d" % len(body),
               "Content-Type: text/plain; charset=utf-8"]
        out += ["%s: %s" % h for h in headers]
        t.write(("\r\n".join(out) + "\r\n\r\n").encode() + body)
        self._next()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.transport = None


class _Server(object):
    def __init__(self) -> None:
        self.seen: Set[str] = set()


async def _serve(portfile: str) -> None:
    loop = asyncio.get_running_loop()
    state = _Server()
    ports: List[int] = []
    servers: List[asyncio.Server] = []
    for slow in (False, False, True):
        srv = await loop.create_server(lambda s=slow: _Conn(state, s),  # type: ignore[misc]
                                       "127.0.0.1", 0, backlog=1024)
        servers.append(srv)
        ports.append(srv.sockets[0].getsockname()[1])
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(" ".join(map(str, ports)))
    os.replace(tmp, portfile)
    # Stop when the parent goes away (stdin closes).
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    for srv in servers:
        srv.close()


def start_server(tmpdir: str) -> Tuple["subprocess.Popen[bytes]", List[int]]:
    """Start the server in a child process: (process, [port a, port b, port slow])."""
    portfile = os.path.join(tmpdir, "ports")
    proc = subprocess.Popen([sys.executable, "-m", "curlmulti._demo", portfile], stdin=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not os.path.exists(portfile):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the demo server did not start")
        time.sleep(0.02)
    with open(portfile) as f:
        ports = [int(p) for p in f.read().split()]
    return proc, ports


def demo_urls(ports: List[int], count: int) -> Iterator[str]:
    a, b, slow = ports
    for n in range(count):
        port = slow if n % 50 == 49 else (a if n % 2 else b)
        yield "http://127.0.0.1:%d/item/%d" % (port, n)


def run_demo(args: argparse.Namespace) -> int:
    import tempfile
    from ._cli import _finish, crawl
    if args.count < 1:
        from ._cli import UsageError
        raise UsageError("--count must be at least 1")
    with tempfile.TemporaryDirectory(prefix="curlmulti-demo-") as tmp:
        proc, ports = start_server(tmp)
        try:
            ok, failed = expected(args.count)
            sys.stderr.write("curlmulti demo: %d URLs on 127.0.0.1 (ports %s; the last one answers in 0.2 s), "
                             "--parallel %d --per-host %d; planted: 404s, 500s, resets, 429 Retry-After, "
                             "503s, redirects; %d should fail\n"
                             % (args.count, ", ".join(map(str, ports)), args.parallel, args.per_host, failed))
            stats, interrupted = asyncio.run(crawl(args, demo_urls(ports, args.count), args.count, desc="demo",
                                                   backoff=0.05))
        finally:
            proc.stdin.close()  # type: ignore[union-attr]  # stdin=PIPE: never None
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    status = _finish(stats, interrupted, args.count)
    if interrupted:
        return status
    if stats.ok == ok and stats.failed == failed:
        sys.stderr.write("as expected: %d ok, %d planted failures reported\n" % (ok, failed))
        return 0
    sys.stderr.write("NOT as expected: wanted %d ok and %d failed\n" % (ok, failed))
    return 1


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
