"""A small, fast HTTP/1.1 server for the AsyncCurlMulti tests (no tests here).

It runs in a subprocess (``python tests/test_async_httpd.py``, which prints its
port), so the process under test measures only its own descriptors and memory
and the server gets a CPU of its own.  Built on asyncio protocols with
keep-alive and flow control; it takes thousands of concurrent connections.

Routes (``n`` a byte count, ``ms`` milliseconds):

    /bytes/n            n bytes (``0123456789`` repeated), Content-Length,
                        generated on the fly with back-pressure (any size)
    /together/key/k/n   as /bytes/n, but held until k requests for the same key
                        have arrived, so that k responses start together
    /chunked/n          the same body, chunked transfer encoding
    /drip/k/size/ms     k chunks of ``size`` bytes, one every ms (chunked)
    /delay/ms           "ok" after ms
    /status/code        that status, empty body
    /redirect/n         302 to /bytes/n
    /echo               reads the request body (Content-Length or chunked)
                        and answers ``<length> <sha1>``
    /headers            the request headers, as received
    /stall              status and headers, 10 bytes of a 1 MiB body, silence
    /stall-head         reads the request, never answers
    /reset              headers, 64 KiB of a 1 MiB body, then a TCP reset
    /garbage            bytes that are not HTTP, then close
    /close              status line and headers promise 100 bytes, 10 arrive, close
"""

import asyncio
import hashlib
import os
import socket
import struct
import subprocess
import sys

PATTERN = b"0123456789" * 6554  # 65540 bytes, a multiple of 10
BLOCK = len(PATTERN)


def body_bytes(n):
    """What /bytes/n sends (for checking in tests)."""
    out = (PATTERN * (n // len(PATTERN) + 1))[:n]
    return out


class _Conn(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.buf = bytearray()
        self.transport = None
        self.busy = False          # a response is being produced
        self.can_write = None      # future while the transport is paused
        self.body = None           # request body being collected: [remaining, chunks, chunked]
        self.head = None

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc):
        self.transport = None
        w = self.can_write
        if w is not None and not w.done():
            w.set_result(None)

    def pause_writing(self):
        self.can_write = asyncio.get_event_loop().create_future()

    def resume_writing(self):
        w, self.can_write = self.can_write, None
        if w is not None and not w.done():
            w.set_result(None)

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self.process()

    # -- parsing -------------------------------------------------------------

    def process(self):
        while not self.busy and self.transport is not None:
            if self.body is not None:
                if not self.collect_body():
                    return
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            raw = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[:end + 4]
            lines = raw.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            self.head = (method, target, headers, lines)
            if headers.get("expect", "").lower() == "100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if "content-length" in headers:
                self.body = [int(headers["content-length"]), [], False, False]
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                self.body = [0, [], True, False]
            else:
                self.body = [0, [], False, False]

    def collect_body(self):
        """Consume request-body bytes from buf; True when the body is complete
        (the request is then dispatched)."""
        st = self.body  # [remaining or None, parts, chunked, crlf-to-skip]
        buf = self.buf
        while True:
            if st[0]:
                take = min(st[0], len(buf))
                if not take:
                    return False
                st[1].append(bytes(buf[:take]))
                del buf[:take]
                st[0] -= take
                if st[0]:
                    return False
                if not st[2]:
                    break
                st[3] = True
            if not st[2]:
                break
            if st[3]:  # the CRLF after a chunk
                if len(buf) < 2:
                    return False
                del buf[:2]
                st[3] = False
            nl = buf.find(b"\r\n")
            if nl < 0:
                return False
            size = int(bytes(buf[:nl]).split(b";")[0], 16)
            if size == 0:  # "0" CRLF CRLF: no trailers expected
                if len(buf) < nl + 4:
                    return False
                del buf[:nl + 4]
                break
            del buf[:nl + 2]
            st[0] = size
        body = b"".join(st[1])
        self.body = None
        self.busy = True
        asyncio.ensure_future(self.respond(self.head, body))
        return True

    # -- responses -------------------------------------------------------------

    async def write(self, data):
        t = self.transport
        if t is None:
            raise ConnectionError("gone")
        t.write(data)
        w = self.can_write
        if w is not None:
            await w
            if self.transport is None:
                raise ConnectionError("gone")

    def send_head(self, status, headers, reason=None):
        reason = reason or {200: "OK", 302: "Found", 404: "Not Found"}.get(status, "Status")
        out = ["HTTP/1.1 %d %s" % (status, reason)]
        out += ["%s: %s" % kv for kv in headers]
        if self.transport is None:
            raise ConnectionError("gone")
        self.transport.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))

    async def respond(self, head, body):
        method, target, headers, lines = head
        parts = target.split("?")[0].strip("/").split("/")
        route, args = parts[0], parts[1:]
        try:
            keep = await self.route(route, args, method, headers, lines, body)
        except ConnectionError:
            return
        except Exception as exc:  # a bug in the server: show it, close the connection
            sys.stderr.write("httpd: %r\n" % (exc,))
            keep = False
        if self.transport is None:
            return
        if not keep or headers.get("connection", "").lower() == "close":
            self.transport.close()
            return
        self.busy = False
        if self.buf:
            self.process()

    async def route(self, route, args, method, headers, lines, body):
        t = self.transport
        if route == "together":
            key, k = args[0], int(args[1])
            gate = self.server.gates.get(key)
            if gate is None:
                gate = self.server.gates[key] = [0, asyncio.get_running_loop().create_future()]
            gate[0] += 1
            if gate[0] >= k and not gate[1].done():  # a key reused: the gate stays open
                gate[1].set_result(None)
            await gate[1]
            route, args = "bytes", args[2:]
        if route == "bytes" or route == "chunked":
            n = int(args[0])
            chunked = route == "chunked"
            self.send_head(200, [("Content-Type", "application/octet-stream"),
                                 ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(n))])
            if method == "HEAD":
                return True
            sent = 0
            while sent < n:
                k = min(BLOCK, n - sent)
                block = PATTERN[:k]  # sent is a multiple of BLOCK, itself a multiple of 10
                if chunked:
                    await self.write(b"%x\r\n" % k + block + b"\r\n")
                else:
                    await self.write(block)
                sent += k
                if not sent % (BLOCK * 4):
                    await asyncio.sleep(0)  # fair to the other connections
            if chunked:
                await self.write(b"0\r\n\r\n")
            return True
        if route == "drip":
            k, size, ms = int(args[0]), int(args[1]), int(args[2])
            self.send_head(200, [("Transfer-Encoding", "chunked")])
            for _ in range(k):
                await asyncio.sleep(ms / 1000.0)
                await self.write(b"%x\r\n" % size + b"x" * size + b"\r\n")
            await self.write(b"0\r\n\r\n")
            return True
        if route == "delay":
            await asyncio.sleep(int(args[0]) / 1000.0)
            self.send_head(200, [("Content-Length", "2")])
            t.write(b"ok")
            return True
        if route == "status":
            self.send_head(int(args[0]), [("Content-Length", "0")])
            return True
        if route == "redirect":
            self.send_head(302, [("Location", "/bytes/%s" % args[0]), ("Content-Length", "9")])
            t.write(b"redirect!")
            return True
        if route == "echo":
            text = b"%d %s" % (len(body), hashlib.sha1(body).hexdigest().encode())
            self.send_head(200, [("Content-Length", str(len(text)))])
            t.write(text)
            return True
        if route == "headers":
            text = "\r\n".join(lines).encode("latin-1")
            self.send_head(200, [("Content-Length", str(len(text)))])
            t.write(text)
            return True
        if route == "stall":
            self.send_head(200, [("Content-Length", str(1 << 20))])
            t.write(b"x" * 10)
            await asyncio.sleep(3600)
        if route == "stall-head":
            await asyncio.sleep(3600)
        if route == "reset":
            self.send_head(200, [("Content-Length", str(1 << 20))])
            await self.write(b"x" * (1 << 16))
            await asyncio.sleep(0.05)
            sock = t.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            t.abort()
            return False
        if route == "garbage":
            t.write(b"\x00\xff\x13garbage that is not HTTP at all\r\n\r\n" + os.urandom(64))
            return False
        if route == "close":
            self.send_head(200, [("Content-Length", "100")])
            t.write(b"x" * 10)
            return False
        self.send_head(404, [("Content-Length", "0")])
        return True


class _Server(object):
    def __init__(self):
        self.gates = {}  # /together/key -> [arrived, future]


async def _serve(port_out):
    loop = asyncio.get_running_loop()
    server = _Server()
    srv = await loop.create_server(lambda: _Conn(server), "127.0.0.1", 0, backlog=4096, reuse_address=True)
    port = srv.sockets[0].getsockname()[1]
    port_out.write("%d\n" % port)
    port_out.flush()
    # Stop when the parent goes away (stdin reaches EOF).
    stop = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.done() or stop.set_result(None))
    await stop
    srv.close()


def main():
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    asyncio.run(_serve(sys.stdout))


class Server(object):
    """The server subprocess; ``url(path)`` builds a URL for it."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the test HTTP server did not start")
        self.port = int(line)
        self.base = "http://127.0.0.1:%d" % self.port

    def url(self, path="/"):
        return self.base + path

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


if __name__ == "__main__":
    main()
