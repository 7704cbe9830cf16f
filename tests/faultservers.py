"""One multiplexing fault server for many concurrent transfers (test_faults.py).

``FaultServer`` runs one asyncio loop in one thread with three listeners on
127.0.0.1, all serving the same paths:

* ``.url``: plain HTTP;
* ``.tls_url``: HTTPS with a certificate for 127.0.0.1 signed by ``.ca_file``
  (a CA made by ``trustme``);
* ``.wrong_host_url``: HTTPS with a certificate signed by ``.ca_file`` but
  issued for another host name;
* ``.untrusted_url``: HTTPS with a certificate for 127.0.0.1 signed by
  another CA, which the client does not trust;

and ``.refused_url``, a port with nothing listening.  Good paths (keep-alive;
every body follows ``servers.pattern``):

  /ok/N            200, Content-Length N
  /chunked/N       200, chunked, in chunks of up to 16 KiB
  /gzip/N          200, Content-Encoding: gzip of N pattern bytes
  /redirect/N      302 to /ok/N

Fault paths, one misbehaviour each:

  /reset-before    reads the request, then RST (SO_LINGER 0), no reply
  /reset-mid-body  headers (Content-Length 1 MiB), 16 KiB of body, then RST
  /close-no-reply  reads the request, closes cleanly (FIN) with no reply
  /truncated       Content-Length 1000, 500 bytes, then FIN
  /chunk-cut       chunked: a chunk of 1000 announced, 200 bytes sent, FIN
  /never           reads the request and never answers
  /trickle         Content-Length 100, then one body byte per second
  /bad-status      an invalid status line ("HTTP/1.1 2OO OK")
  /garbage         bytes that are not HTTP at all, then FIN
  /big-headers     a 1 MiB block of response headers
  /redirect-loop   302 to itself, keep-alive
  /gzip-garbage    Content-Encoding: gzip over bytes that are not gzip

Bounded in time: a connection is held at most ``MAX_HOLD`` seconds, and
``stop()`` aborts every connection and joins the thread.  ``.open`` is the
number of connections whose sockets are still open in this process, and
``wait_idle()`` waits (on a condition, no polling) until it is 0.
"""

import asyncio
import gzip
import os
import shutil
import socket
import ssl
import struct
import tempfile
import threading

from servers import LOOPBACK, ServerURL, loop_fds, pattern

MAX_HOLD = 30.0                 # the longest any connection is held on purpose
MAX_HEAD = 64 * 1024            # a request head larger than this is refused
CHUNK = 16 * 1024
RESET_AFTER = 0.05              # /reset-mid-body: how long the 16 KiB get to arrive first
BIG_HEADERS = b"".join(b"X-Pad-%04d: %s\r\n" % (i, b"a" * 1000) for i in range(1024))
GARBAGE = b"\x00\xff\xfeSSH-2.0-not HTTP\r\n\x16\x03\x01\x02\x00" * 8 + b"\r\n\r\n"
NOT_GZIP = b"this is not gzip data, whatever the header says " * 20

FAULT_PATHS = ("/reset-before", "/reset-mid-body", "/close-no-reply", "/truncated", "/chunk-cut",
               "/never", "/trickle", "/bad-status", "/garbage", "/big-headers",
               "/redirect-loop", "/gzip-garbage")


def _head(status, reason, headers):
    lines = [b"HTTP/1.1 %d %s" % (status, reason)]
    lines += [b"%s: %s" % (k, v if isinstance(v, bytes) else str(v).encode()) for k, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class _Connection(asyncio.Protocol):
    """One client connection: parses requests (GET or with a Content-Length
    body) and answers them in order until a fault takes the connection over."""

    def __init__(self, server):
        self.server = server
        self.transport = None
        self.buf = b""
        self.busy = False           # a fault owns the connection: ignore the client
        self.timer = None

    # -- asyncio.Protocol

    def connection_made(self, transport):
        self.transport = transport
        self.server._opened(self)
        self.timer = self.server._loop.call_later(MAX_HOLD, self.abort)

    def data_received(self, data):
        if self.busy:
            return
        self.buf += data
        while not self.busy and not self.transport.is_closing():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.abort()
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            try:
                _method, target, _version = head[0].split(" ", 2)
            except ValueError:
                self.abort()
                return
            self.server.requests += 1
            self.respond(target.split("?", 1)[0])

    def eof_received(self):
        return False                # close our end too

    def connection_lost(self, exc):
        self.busy = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        # The transport closes its socket after this method returns.
        self.server._loop.call_soon(self.server._closed, self)

    # -- ways to end

    def abort(self):
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def reset(self):
        """RST, not FIN: SO_LINGER with a zero timeout, then close."""
        self.busy = True
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.abort()

    def finish(self, data=b""):
        """Send data, then close cleanly (FIN once the data is out)."""
        self.busy = True
        if data:
            self.transport.write(data)
        self.transport.close()

    # -- the paths

    def respond(self, path):
        t = self.transport
        parts = path.strip("/").split("/")
        n = int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else None
        if parts[0] == "ok" and n is not None:
            t.write(_head(200, b"OK", [(b"Content-Length", n)]) + pattern(0, n))
        elif parts[0] == "chunked" and n is not None:
            out = [_head(200, b"OK", [(b"Transfer-Encoding", b"chunked")])]
            for start in range(0, n, CHUNK):
                piece = pattern(start, min(CHUNK, n - start))
                out += [b"%x\r\n" % len(piece), piece, b"\r\n"]
            out.append(b"0\r\n\r\n")
            t.write(b"".join(out))
        elif parts[0] == "gzip" and n is not None:
            body = self.server._gzipped(n)
            t.write(_head(200, b"OK", [(b"Content-Encoding", b"gzip"),
                                       (b"Content-Length", len(body))]) + body)
        elif parts[0] == "redirect" and n is not None:
            t.write(_head(302, b"Found", [(b"Location", b"/ok/%d" % n), (b"Content-Length", 0)]))
        elif path == "/reset-before":
            self.reset()
        elif path == "/reset-mid-body":
            self.busy = True
            t.write(_head(200, b"OK", [(b"Content-Length", 1 << 20)]) + pattern(0, CHUNK))
            self.server._loop.call_later(RESET_AFTER, self.reset)
        elif path == "/close-no-reply":
            self.finish()
        elif path == "/truncated":
            self.finish(_head(200, b"OK", [(b"Content-Length", 1000)]) + pattern(0, 500))
        elif path == "/chunk-cut":
            self.finish(_head(200, b"OK", [(b"Transfer-Encoding", b"chunked")])
                        + b"3e8\r\n" + pattern(0, 200))
        elif path == "/never":
            self.busy = True            # held until the client goes, MAX_HOLD or stop()
        elif path == "/trickle":
            self.busy = True
            t.write(_head(200, b"OK", [(b"Content-Length", 100)]))
            self.trickle(0)
        elif path == "/bad-status":
            self.finish(b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n")
        elif path == "/garbage":
            self.finish(GARBAGE)
        elif path == "/big-headers":
            self.finish(b"HTTP/1.1 200 OK\r\n" + BIG_HEADERS + b"Content-Length: 0\r\n\r\n")
        elif path == "/redirect-loop":
            t.write(_head(302, b"Found", [(b"Location", b"/redirect-loop"), (b"Content-Length", 0)]))
        elif path == "/gzip-garbage":
            t.write(_head(200, b"OK", [(b"Content-Encoding", b"gzip"),
                                       (b"Content-Length", len(NOT_GZIP))]) + NOT_GZIP)
        else:
            t.write(_head(404, b"Not Found", [(b"Content-Length", 0)]))

    def trickle(self, sent):
        if self.transport.is_closing() or sent >= 100:
            return
        self.transport.write(pattern(sent, 1))
        self.server._loop.call_later(1.0, self.trickle, sent + 1)


class FaultServer:
    """See the module docstring.  ``start()`` returns self; ``stop()`` is
    idempotent."""

    def __init__(self, host=LOOPBACK):
        import trustme

        self.host = host
        self.requests = 0
        self.connections = 0
        self.open = 0
        self.handshake_errors = 0
        self._idle = threading.Condition()
        self._conns = set()
        self._gz = {}
        self._loop = None
        self._thread = None
        self._servers = []
        self._error = None
        self._ready = threading.Event()

        self._dir = tempfile.mkdtemp(prefix="faultserver-")
        ca, other = trustme.CA(), trustme.CA()
        self.ca_file = os.path.join(self._dir, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self._contexts = [None, self._context(ca.issue_cert(host)),
                          self._context(ca.issue_cert("wrong-host.invalid")),
                          self._context(other.issue_cert(host))]

        self._listeners = [self._listen(host) for _ in self._contexts]
        ports = [s.getsockname()[1] for s in self._listeners]
        self.url = ServerURL("http://%s:%d" % (host, ports[0]), self)
        self.tls_url = ServerURL("https://%s:%d" % (host, ports[1]), self)
        self.wrong_host_url = ServerURL("https://%s:%d" % (host, ports[2]), self)
        self.untrusted_url = ServerURL("https://%s:%d" % (host, ports[3]), self)
        # bound, never listening: connecting is refused
        self._refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refused.bind((host, 0))
        self.refused_url = ServerURL("http://%s:%d" % (host, self._refused.getsockname()[1]), self)

    @staticmethod
    def _context(cert):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        return ctx

    @staticmethod
    def _listen(host):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        s.listen(4096)
        s.setblocking(False)
        return s

    def _gzipped(self, n):
        body = self._gz.get(n)
        if body is None:
            body = self._gz[n] = gzip.compress(pattern(0, n), 1)
        return body

    # -- connection bookkeeping (in the loop's thread)

    def _opened(self, conn):
        self._conns.add(conn)
        with self._idle:
            self.connections += 1
            self.open += 1

    def _closed(self, conn):
        self._conns.discard(conn)
        with self._idle:
            self.open -= 1
            if self.open == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout=10.0):
        """True once no connection is open (their sockets closed), False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self.open == 0, timeout)

    def _exception(self, loop, context):
        # A client that rejects our certificate aborts the handshake: counted,
        # not printed.  Anything else is a defect of this server: printed.
        exc = context.get("exception")
        if isinstance(exc, (ssl.SSLError, ConnectionError)):
            self.handshake_errors += 1
        else:
            loop.default_exception_handler(context)

    # -- life cycle

    def start(self):
        self._thread = threading.Thread(target=self._run, name="fault-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError("fault server did not start: %r" % (self._error,))
        return self

    def _run(self):
        loop = self._loop = asyncio.new_event_loop()
        loop.set_exception_handler(self._exception)
        factory = lambda: _Connection(self)     # noqa: E731
        try:
            for sock, ctx in zip(self._listeners, self._contexts):
                self._servers.append(loop.run_until_complete(
                    loop.create_server(factory, sock=sock, ssl=ctx, backlog=4096)))
        except BaseException as e:              # pragma: no cover - reported by start()
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            for server in self._servers:
                server.close()
            for conn in list(self._conns):
                conn.abort()
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(asyncio.sleep(0))   # the aborts close their sockets
            loop.close()

    def stop(self):
        if self._thread is not None:
            if self._loop.is_running():
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._thread = None
            self._refused.close()
            shutil.rmtree(self._dir, ignore_errors=True)

    def owned_fds(self):
        """{descriptor: what it is} for the descriptors this server owns."""
        fds = {}
        names = ("listener (http)", "listener (https)", "listener (https, wrong host)",
                 "listener (https, untrusted CA)")
        for sock, name in zip(self._listeners, names):
            if sock.fileno() >= 0:
                fds[sock.fileno()] = "fault server %s" % name
        if self._refused.fileno() >= 0:
            fds[self._refused.fileno()] = "fault server refused-port socket"
        fds.update(loop_fds(self._loop, "fault server"))
        return fds

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

