"""One pycurl-style client for both bindings.

    python client_pycurl.py --module curlmulti --driver multi --url ... --requests N --concurrency C
    python client_pycurl.py --module pycurl    --driver async ...

The module is imported as ``pycurl`` either way, so curlmulti and pycurl run
exactly the same Python code below.  Easy handles are reused (one per slot),
so libcurl keeps its connections alive; every body is written into a fresh
``io.BytesIO`` through ``WRITEFUNCTION`` (or, with ``--sink buffer``, into
curlmulti's C ``Buffer``) and every status code is checked.

Drivers:
  multi  the classic ``CurlMulti`` loop: perform(), info_read(), select().
  async  ``AsyncCurlMulti`` on asyncio: one coroutine per slot awaiting
         ``multi.perform(curl)``.
"""

import time
from io import BytesIO

import bench_common


def extra(p):
    p.add_argument("--module", choices=("curlmulti", "pycurl"), required=True)
    p.add_argument("--driver", choices=("multi", "async"), required=True)
    p.add_argument("--sink", choices=("bytesio", "buffer"), default="bytesio",
                   help="buffer: one curlmulti.Buffer per handle, set once and cleared after "
                        "each body (curlmulti only)")
    p.add_argument("--async-driver", choices=("native", "python"), default=None,
                   help="curlmulti's AsyncCurlMulti driver (CURLMULTI_ASYNC_DRIVER): the native "
                        "event core or the pure-Python driver")


args = bench_common.parse_args(extra)
CLIENT = "%s-%s" % (args.module, args.driver) + ("-buffer" if args.sink == "buffer" else "")
if args.async_driver is not None:
    import os
    os.environ["CURLMULTI_ASYNC_DRIVER"] = args.async_driver  # read when curlmulti is imported
    if args.async_driver == "python":
        CLIENT += "-pydriver"
try:
    if args.module == "curlmulti":
        import curlmulti as pycurl
    else:
        import pycurl
except Exception as e:
    bench_common.unavailable(CLIENT, "import %s failed: %s: %s" % (args.module, type(e).__name__, e))
BUFFER = args.sink == "buffer"
if BUFFER and not hasattr(pycurl, "Buffer"):
    bench_common.unavailable(CLIENT, "%s has no Buffer" % args.module)


class Body(object):
    """Where one handle's bodies go.  bytesio (both bindings): a fresh
    io.BytesIO per request through WRITEFUNCTION.  buffer (curlmulti): one
    curlmulti.Buffer per handle, installed once as WRITEDATA; libcurl writes
    each body into it from C (sized from Content-Length), and clear() keeps
    the memory for the next body."""

    __slots__ = ("sink",)

    def __init__(self, curl):
        if BUFFER:
            self.sink = pycurl.Buffer()
            curl.setopt(pycurl.WRITEDATA, self.sink)

    def start(self, curl):
        if not BUFFER:
            self.sink = BytesIO()
            curl.setopt(pycurl.WRITEFUNCTION, self.sink.write)

    def finish(self):
        """The size of the body received (and let go of it)."""
        if not BUFFER:
            n = self.sink.tell()
            self.sink = None
            return n
        n = len(self.sink)
        self.sink.clear()
        return n


def new_handle():
    c = pycurl.Curl()
    c.setopt(pycurl.PROXY, "")          # never a proxy from the environment
    c.setopt(pycurl.NOSIGNAL, 1)
    c.body = Body(c)
    return c


class MultiLoop(object):
    def __init__(self):
        self.m = pycurl.CurlMulti()
        self.handles = []

    def batch(self, url, n, conc):
        m = self.m
        while len(self.handles) < conc:
            self.handles.append(new_handle())
        free = self.handles[:conc]
        started = done = ok = errors = nbytes = 0
        t0 = time.perf_counter()
        while done < n:
            while started < n and free:
                c = free.pop()
                c.setopt(pycurl.URL, url)
                c.body.start(c)
                m.add_handle(c)
                started += 1
            while True:
                ret, running = m.perform()
                if ret != pycurl.E_CALL_MULTI_PERFORM:
                    break
            finished = 0
            while True:
                queued, ok_list, err_list = m.info_read()
                for c in ok_list:
                    m.remove_handle(c)
                    size = c.body.finish()
                    if c.getinfo(pycurl.RESPONSE_CODE) == 200:
                        ok += 1
                        nbytes += size
                    else:
                        errors += 1
                    free.append(c)
                for c, errno, errmsg in err_list:
                    m.remove_handle(c)
                    errors += 1
                    c.body.finish()
                    free.append(c)
                finished += len(ok_list) + len(err_list)
                if queued == 0:
                    break
            done += finished
            if finished and started < n:
                continue        # start the next transfers before waiting
            if done < n:
                m.select(1.0)
                bench_common.check_deadline(t0, args.max_seconds)
        return ok, errors, nbytes

    def close(self):
        self.m.close()
        for c in self.handles:
            c.close()


class AsyncDriver(object):
    def __init__(self):
        import asyncio
        self.asyncio = asyncio
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.m = None
        self.handles = []

    def batch(self, url, n, conc):
        return self.loop.run_until_complete(
            self.asyncio.wait_for(self._batch(url, n, conc), args.max_seconds))

    async def _batch(self, url, n, conc):
        if self.m is None:
            self.m = pycurl.AsyncCurlMulti()
        m = self.m
        while len(self.handles) < conc:
            self.handles.append(new_handle())
        counts = [0, 0, 0, 0]  # started, ok, errors, bytes

        async def worker(c):
            while counts[0] < n:
                counts[0] += 1
                c.setopt(pycurl.URL, url)
                c.body.start(c)
                try:
                    await m.perform(c)
                except pycurl.error:
                    counts[2] += 1
                    c.body.finish()
                    continue
                size = c.body.finish()
                if c.getinfo(pycurl.RESPONSE_CODE) == 200:
                    counts[1] += 1
                    counts[3] += size
                else:
                    counts[2] += 1

        await self.asyncio.gather(*[worker(c) for c in self.handles[:min(conc, n)]])
        return counts[1], counts[2], counts[3]

    def close(self):
        if self.m is not None:
            self.loop.run_until_complete(self.m.aclose())
        for c in self.handles:
            c.close()
        self.loop.close()


for name in ("Curl", "CurlMulti") + (("AsyncCurlMulti",) if args.driver == "async" else ()):
    if not hasattr(pycurl, name):
        bench_common.unavailable(CLIENT, "%s has no %s" % (args.module, name))
driver = MultiLoop() if args.driver == "multi" else AsyncDriver()
bench_common.main(args, driver.batch, CLIENT, {args.module: getattr(pycurl, "version", "?")}, driver.close)
