"""curlmulti demo: many concurrent transfers against a local server.

Starts a small HTTP/1.1 server on 127.0.0.1 (standard library only, in a
thread), then fetches ~50 URLs from it concurrently, twice:

1. with ``CurlMulti`` and the classic pycurl loop: ``perform()`` until it
   stops asking to be called again, ``info_read()`` for finished transfers,
   ``select()`` to wait for the sockets;
2. with ``AsyncCurlMulti``: one ``await multi.perform(curl)`` per URL, all
   gathered with ``asyncio.gather``.

Each URL's status, size and time are printed, then a summary.  Among the URLs
are two 404s and one port where nothing listens, to show how failures look.
The bodies are checked; the exit status is 0 only if every result is the one
expected.  It is pycurl code: ``--module pycurl`` runs it on pycurl itself.

    python examples/demo.py [--count 50] [--quiet] [--module curlmulti|pycurl]
"""

import argparse
import asyncio
import importlib
import io
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

pycurl = None           # the module under demonstration: curlmulti (or pycurl)


# ---------------------------------------------------------------- the local server

def item_body(n):
    """What /item/n returns: n-dependent size, recognisable content."""
    size = 1000 * (n % 10 + 1) if n % 7 else 256 * 1024
    line = ("item %d " % n).encode()
    return (line * (size // len(line) + 1))[:size]


def item_delay(n):
    return 0.05 + (n % 5) * 0.03                 # 50 to 170 ms: a slow backend


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"                # keep-alive
    server_version = "demo-server"

    def do_GET(self):
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            parts = self.path.strip("/").split("/")
            if len(parts) == 2 and parts[0] == "item" and parts[1].isdigit():
                n = int(parts[1])
                time.sleep(item_delay(n))
                status, body = 200, item_body(n)
            else:
                status, body = 404, b"no such item\n"
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def log_message(self, format, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256                     # 50 connects at once: no SYN drops

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        self.url = "http://127.0.0.1:%d" % self.server_address[1]

    def __enter__(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def make_urls(base, count, refused_port):
    """count URLs: items, two missing pages and a port with nothing listening."""
    urls = [(base + "/item/%d" % n, 200, item_body(n)) for n in range(count - 3)]
    urls.insert(count // 3, (base + "/missing/1", 404, None))
    urls.insert(2 * count // 3, (base + "/missing/2", 404, None))
    urls.append(("http://127.0.0.1:%d/item/0" % refused_port, "error", None))
    return urls


# ---------------------------------------------------------------- one transfer

def make_curl(url, buf):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEDATA, buf)
    c.setopt(pycurl.CONNECTTIMEOUT, 5)
    c.setopt(pycurl.TIMEOUT, 30)
    return c


class Result:
    def __init__(self, url, curl, buf, error=None):
        self.url, self.error = url, error
        self.body = buf.getvalue()
        self.status = curl.getinfo(pycurl.RESPONSE_CODE)
        self.seconds = curl.getinfo(pycurl.TOTAL_TIME)

    def line(self):
        what = "ERR" if self.error else "%3d" % self.status
        line = "  %s %8d B %7.3f s  %s" % (what, len(self.body), self.seconds, self.url)
        return line + ("  (error %d: %s)" % self.error if self.error else "")


# ---------------------------------------------------------------- 1. CurlMulti

def fetch_with_multi(urls):
    """The classic pycurl loop: perform(), info_read(), select()."""
    m = pycurl.CurlMulti()
    pending = {}                                # Curl -> (url, buffer)
    for url in urls:
        buf = io.BytesIO()
        c = make_curl(url, buf)
        pending[c] = (url, buf)
        m.add_handle(c)

    results = {}
    while pending:
        while True:
            ret, running = m.perform()
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            queued, ok_list, err_list = m.info_read()
            for c in ok_list:
                url, buf = pending.pop(c)
                results[url] = Result(url, c, buf)
            for c, errno, errmsg in err_list:
                url, buf = pending.pop(c)
                results[url] = Result(url, c, buf, (errno, errmsg))
            for c in ok_list + [e[0] for e in err_list]:
                m.remove_handle(c)
                c.close()
            if queued == 0:
                break
        if pending:
            m.select(1.0)
    m.close()
    return [results[url] for url in urls]


# ---------------------------------------------------------------- 2. AsyncCurlMulti

async def fetch_with_async(urls):
    """One coroutine per URL, each awaiting multi.perform(curl)."""
    async with pycurl.AsyncCurlMulti() as multi:

        async def fetch(url):
            buf = io.BytesIO()
            c = make_curl(url, buf)
            try:
                await multi.perform(c)
                return Result(url, c, buf)
            except pycurl.error as e:
                return Result(url, c, buf, (e.args[0], e.args[1]))
            finally:
                c.close()

        return await asyncio.gather(*(fetch(url) for url in urls))


# ---------------------------------------------------------------- report

def report(title, expected, results, elapsed, server, quiet):
    print("\n%s" % title)
    wrong = []
    for (url, status, body), r in zip(expected, results):
        if not quiet:
            print(r.line())
        if status == "error":
            good = r.error is not None and r.error[0] == pycurl.E_COULDNT_CONNECT
        else:
            good = r.error is None and r.status == status and (body is None or r.body == body)
        if not good:
            wrong.append(r)
    ok = sum(1 for r in results if not r.error and r.status == 200)
    missing = sum(1 for r in results if not r.error and r.status == 404)
    failed = sum(1 for r in results if r.error)
    received = sum(len(r.body) for r in results)
    serial = sum(r.seconds for r in results)
    print("  %d transfers in %.3f s: %d ok, %d not found (404), %d failed; %.1f KiB received"
          % (len(results), elapsed, ok, missing, failed, received / 1024))
    print("  the transfers' own times add up to %.2f s (%.0fx overlap); the server saw up to "
          "%d requests at once" % (serial, serial / elapsed if elapsed else 0, server.max_in_flight))
    for r in wrong:
        print("  UNEXPECTED: " + r.line().strip())
    print("  %s" % ("as expected" if not wrong else "%d unexpected results" % len(wrong)))
    server.max_in_flight = 0
    return not wrong


def main(argv=None):
    global pycurl
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50, help="URLs to fetch (default 50)")
    ap.add_argument("--quiet", action="store_true", help="summaries only")
    ap.add_argument("--module", default="curlmulti", help="curlmulti (default) or pycurl")
    args = ap.parse_args(argv)
    pycurl = importlib.import_module(args.module)
    print("%s %s, %s" % (args.module, getattr(pycurl, "__version__", ""), pycurl.version))

    refused = socket.socket()                   # bound, never listening: refused
    refused.bind(("127.0.0.1", 0))
    with Server() as server, refused:
        print("local server: %s (stdlib ThreadingHTTPServer, 50-170 ms per item)" % server.url)
        expected = make_urls(server.url, max(args.count, 4), refused.getsockname()[1])
        urls = [u for u, _, _ in expected]

        t0 = time.monotonic()
        results = fetch_with_multi(urls)
        good = report("1. CurlMulti: perform() / info_read() / select()", expected, results,
                      time.monotonic() - t0, server, args.quiet)

        t0 = time.monotonic()
        results = asyncio.run(fetch_with_async(urls))
        good &= report("2. AsyncCurlMulti: await multi.perform(curl), asyncio.gather", expected,
                       results, time.monotonic() - t0, server, args.quiet)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
