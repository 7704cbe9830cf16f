"""Servers with the faults a crawler meets, for test_crawl.py and test_cli.py.

``CrawlServer`` (a ``servers.RawServer``: one thread per connection,
keep-alive) serves:

  /ok/NAME             200, body "ok NAME"
  /once/429/NAME       429 with ``Retry-After: ?after=1`` the first time, then 200
  /once/503/NAME       503 (no Retry-After) the first time, then 200
  /once/reset/NAME     RST with no reply the first time, then 200
  /always/reset        RST with no reply, every time
  /redirect/N          302 to /redirect/N-1 (with ``X-Hop: N`` and a cookie
                       ``hop=N``); /redirect/0 answers 200 with ``X-Final: yes``
  /loop                302 to itself
  /relative            302 to ``../target/café x?q=é 1`` as raw UTF-8 bytes
                       (relative, a space and non-ASCII in the Location)
  /target/...          200, the body is the request target exactly as received
  /cookie/set          200 with ``Set-Cookie: crawl=yes``; /cookie/get echoes
                       the Cookie header
  /charset/NAME        200, "café" encoded in charset NAME, declared in Content-Type

``.times[path]`` lists the monotonic times at which each path was
requested.

``GateServer`` holds every request until ``release()``: ``.waiting`` is the
number held now, ``.max_waiting`` the most held at once, and
``wait_for(n)`` blocks (on a condition) until n requests are held.
"""

import collections
import threading
import time

from servers import RawServer, _head


class CrawlServer(RawServer):
    name = "crawl"

    def __init__(self, *a, **kw):
        RawServer.__init__(self, *a, **kw)
        self.times = collections.defaultdict(list)
        self._seen = set()
        self._seen_lock = threading.Lock()

    def _first(self, path):
        with self._seen_lock:
            first = path not in self._seen
            self._seen.add(path)
        return first

    def handle(self, conn, req):
        path = req.path
        self.times[path].append(time.monotonic())
        status, headers, body = 200, [], b""
        if path.startswith("/ok/"):
            body = b"ok " + path[4:].encode()
        elif path.startswith("/once/"):
            kind = path.split("/")[2]
            if self._first(path):
                if kind == "reset":
                    self._close(conn, reset=True)
                    return False
                status = int(kind)
                if status == 429:
                    headers.append(("Retry-After", req.args.get("after", "1")))
            body = b"ok"
        elif path == "/always/reset":
            self._close(conn, reset=True)
            return False
        elif path.startswith("/redirect/"):
            n = int(path.split("/")[2])
            if n > 0:
                status = 302
                headers += [("Location", "/redirect/%d" % (n - 1)), ("X-Hop", str(n)),
                            ("Set-Cookie", "hop=%d; Path=/" % n)]
            else:
                headers.append(("X-Final", "yes"))
                body = b"final"
        elif path == "/loop":
            status, headers = 302, [("Location", "/loop")]
        elif path == "/relative":
            # latin-1 text whose bytes are the UTF-8 of "café x?q=é 1" (_head encodes latin-1)
            location = "../target/caf\u00e9 x?q=\u00e9 1".encode("utf-8").decode("latin-1")
            status, headers = 302, [("Location", location)]
        elif path.startswith("/target/"):
            body = req.target.encode("latin-1")
        elif path == "/cookie/set":
            headers.append(("Set-Cookie", "crawl=yes; Path=/"))
        elif path == "/cookie/get":
            body = req.headers.get("cookie", "").encode()
        elif path.startswith("/charset/"):
            charset = path.split("/")[2]
            headers.append(("Content-Type", "text/plain; charset=%s" % charset))
            body = "café".encode(charset)
        else:
            status = 404
        conn.sendall(_head(status, headers + [("Content-Length", str(len(body)))]) + body)
        return True


class GateServer(RawServer):
    name = "gate"

    def __init__(self, *a, **kw):
        RawServer.__init__(self, *a, **kw)
        self.waiting = 0
        self.max_waiting = 0
        self._cond = threading.Condition()
        self._open = False

    def handle(self, conn, req):
        with self._cond:
            self.waiting += 1
            self.max_waiting = max(self.max_waiting, self.waiting)
            self._cond.notify_all()
            while not self._open and not self.stopping.is_set():
                self._cond.wait(1.0)
            self.waiting -= 1
        body = b"slow"
        conn.sendall(_head(200, [("Content-Length", str(len(body)))]) + body)
        return True

    def wait_for(self, n, timeout=30.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.waiting < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("only %d requests arrived, wanted %d" % (self.waiting, n))
                self._cond.wait(left)

    def release(self):
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def stop(self):
        self.release()
        RawServer.stop(self)


def serve(server):
    """A fixture body: start ``server``, protect its descriptors (see
    fdguard.py), yield it, stop it."""
    from fdguard import GUARD, fail
    server.start()
    owned = server.owned_fds()
    GUARD.protect_all(owned)
    try:
        yield server
    finally:
        problems = GUARD.release(owned)
        server.stop()
        if problems:
            fail(problems, "when stopping %s" % type(server).__name__)
