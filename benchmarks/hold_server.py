"""The "slow" endpoint for the memory cell: an HTTP/1.1 server on 127.0.0.1
that holds every GET /hold?n=N until N requests are waiting at once, keeps
them all for a moment longer, then answers them all (1 KiB bodies).  So the
client really has N transfers in flight together, whatever its speed.

GET /stats reports the size of each released batch, so the runner can check
that all N were held at once; a batch that never fills is released after
--max-wait seconds (and shows up smaller in /stats).

    python hold_server.py --port P [--hold-ms 300] [--max-wait 120]
"""

import argparse
import asyncio
import json
import resource
import signal
from urllib.parse import parse_qs, urlsplit

BODY = b"x" * 1024


class State(object):
    def __init__(self, hold_s, max_wait):
        self.hold_s = hold_s
        self.max_wait = max_wait
        self.pending = []          # (transport, keep_alive)
        self.target = None
        self.release_handle = None
        self.timeout_handle = None
        self.batches = []
        self.open_connections = 0
        self.max_open_connections = 0

    def add(self, transport, n, keep_alive):
        loop = asyncio.get_running_loop()
        self.pending.append((transport, keep_alive))
        self.target = n
        if self.timeout_handle is None:
            self.timeout_handle = loop.call_later(self.max_wait, self.release)
        if len(self.pending) >= n and self.release_handle is None:
            self.release_handle = loop.call_later(self.hold_s, self.release)

    def release(self):
        for h in (self.release_handle, self.timeout_handle):
            if h is not None:
                h.cancel()
        self.release_handle = self.timeout_handle = None
        pending, self.pending = self.pending, []
        self.batches.append(len(pending))
        del self.batches[:-50]
        for transport, keep_alive in pending:
            if transport.is_closing():
                continue
            transport.write(response(200, BODY, keep_alive))
            if not keep_alive:
                transport.close()


def response(code, body, keep_alive, ctype=b"application/octet-stream"):
    reason = b"OK" if code == 200 else b"Not Found"
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        code, reason, ctype, len(body), b"" if keep_alive else b"Connection: close\r\n")
    return head + body


class Handler(asyncio.Protocol):
    def __init__(self, state):
        self.state = state
        self.buf = b""

    def connection_made(self, transport):
        self.transport = transport
        s = self.state
        s.open_connections += 1
        s.max_open_connections = max(s.max_open_connections, s.open_connections)

    def connection_lost(self, exc):
        self.state.open_connections -= 1

    def data_received(self, data):
        self.buf += data
        if len(self.buf) > 65536:
            self.transport.close()
            return
        while b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ", 2)
            except ValueError:
                self.transport.close()
                return
            headers = b"\r\n".join(lines[1:]).lower()
            keep_alive = version == b"HTTP/1.1" and b"connection: close" not in headers
            parts = urlsplit(target.decode("latin-1"))
            q = parse_qs(parts.query)
            if parts.path == "/hold":
                n = max(1, min(int(q.get("n", ["1"])[0]), 1000000))
                self.state.add(self.transport, n, keep_alive)
            elif parts.path == "/stats":
                s = self.state
                body = json.dumps({"batches": s.batches, "pending": len(s.pending),
                                   "open_connections": s.open_connections,
                                   "max_open_connections": s.max_open_connections}).encode()
                self.transport.write(response(200, body, keep_alive, b"application/json"))
            elif parts.path == "/reset":
                s = self.state
                s.batches = []
                s.max_open_connections = s.open_connections
                self.transport.write(response(200, b"ok", keep_alive, b"text/plain"))
            else:
                self.transport.write(response(404, b"not found", keep_alive, b"text/plain"))
            if not keep_alive:
                return


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--hold-ms", type=float, default=300.0)
    p.add_argument("--max-wait", type=float, default=120.0)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    state = State(a.hold_ms / 1000.0, a.max_wait)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Handler(state), "127.0.0.1", a.port, backlog=16384,
                                      reuse_address=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    print("hold server on 127.0.0.1:%d" % a.port, flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
