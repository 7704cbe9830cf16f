"""The crawl cell: the same crawler written with curlmulti.crawl and with
aiohttp, run with the same limits on the same URLs.

The job: ``n`` distinct URLs (``?i=N`` appended to the cell's path), spread
round-robin over ``--hosts`` loopback addresses (127.0.0.1, 127.0.0.2, ...:
distinct hosts as far as per-host limits go), read lazily from a generator;
at most ``concurrency`` transfers at once and ``concurrency / hosts`` per
host; a 30 s total and 10 s connect timeout, redirects followed (at most
10), compression offered, a cookie jar, up to 2 retries of a transient
failure with jittered exponential backoff; every body read into memory and
every status checked.  Results are consumed as they complete.

    python client_crawl.py --lib curlmulti|aiohttp --url URL --requests N --concurrency C ...
"""

import asyncio
import random
from urllib.parse import urlsplit, urlunsplit

import bench_common


def extra(p):
    p.add_argument("--lib", choices=("curlmulti", "aiohttp"), required=True)
    p.add_argument("--hosts", type=int, default=4)


args = bench_common.parse_args(extra)
CLIENT = "crawl-" + args.lib
RETRIES = 2
TRANSIENT_STATUSES = (408, 429, 502, 503, 504)


def hosts_of(url, count):
    parts = urlsplit(url)
    out = []
    for i in range(count):
        netloc = "127.0.0.%d:%d" % (i + 1, parts.port)
        out.append(urlunsplit((parts.scheme, netloc, parts.path, "", "")))
    return out


def urls(url, n):
    bases = hosts_of(url, args.hosts)
    k = len(bases)
    for i in range(n):
        yield "%s?i=%d" % (bases[i % k], i)


if args.lib == "curlmulti":
    try:
        import curlmulti
        from curlmulti.crawl import Session
    except Exception as e:
        bench_common.unavailable(CLIENT, "import curlmulti.crawl failed: %s: %s" % (type(e).__name__, e))
    VERSIONS = {"curlmulti": curlmulti.__version__}

    class Driver(object):
        def __init__(self):
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.session = None

        def batch(self, url, n, conc):
            return self.loop.run_until_complete(asyncio.wait_for(self._batch(url, n, conc), args.max_seconds))

        async def _batch(self, url, n, conc):
            if self.session is None:
                self.session = Session(limit=args.concurrency, per_host=max(1, args.concurrency // args.hosts),
                                       timeout=30, connect_timeout=10, retries=RETRIES, max_redirects=10)
            ok = errors = nbytes = 0
            async for r in self.session.as_completed(urls(url, n)):
                if r.ok:
                    ok += 1
                    nbytes += len(r.content)
                else:
                    errors += 1
            return ok, errors, nbytes

        def close(self):
            if self.session is not None:
                self.loop.run_until_complete(self.session.aclose())
            self.loop.close()

else:
    try:
        import aiohttp
    except Exception as e:
        bench_common.unavailable(CLIENT, "import aiohttp failed: %s: %s" % (type(e).__name__, e))
    VERSIONS = {"aiohttp": aiohttp.__version__}

    class Driver(object):
        def __init__(self):
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.session = None

        def batch(self, url, n, conc):
            return self.loop.run_until_complete(asyncio.wait_for(self._batch(url, n, conc), args.max_seconds))

        async def _fetch(self, url):
            """(status, body) after retries, or (None, b"") if the transfer failed."""
            for attempt in range(RETRIES + 1):
                try:
                    async with self.session.get(url, max_redirects=10) as resp:
                        body = await resp.read()
                        if resp.status not in TRANSIENT_STATUSES or attempt == RETRIES:
                            return resp.status, body
                except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                    if attempt == RETRIES:
                        return None, b""
                await asyncio.sleep(random.uniform(0, 0.5 * 2 ** attempt))
            return None, b""

        async def _batch(self, url, n, conc):
            if self.session is None:
                connector = aiohttp.TCPConnector(limit=args.concurrency,
                                                 limit_per_host=max(1, args.concurrency // args.hosts))
                self.session = aiohttp.ClientSession(
                    connector=connector, trust_env=False,
                    timeout=aiohttp.ClientTimeout(total=30, sock_connect=10))
            counts = [0, 0, 0]  # ok, errors, bytes
            results = asyncio.Queue()
            source = urls(url, n)
            fetch = self._fetch

            async def worker():
                # a worker per slot pulls the next URL lazily and hands each
                # result to the consumer as it completes
                for u in source:
                    results.put_nowait(await fetch(u))
                results.put_nowait(None)

            workers = [asyncio.ensure_future(worker()) for _ in range(min(conc, n))]
            done_workers = 0
            while done_workers < len(workers):
                item = await results.get()
                if item is None:
                    done_workers += 1
                    continue
                status, body = item
                if status is not None and 200 <= status < 300:
                    counts[0] += 1
                    counts[2] += len(body)
                else:
                    counts[1] += 1
            await asyncio.gather(*workers)
            return counts[0], counts[1], counts[2]

        def close(self):
            if self.session is not None:
                self.loop.run_until_complete(self.session.close())
            self.loop.close()


driver = Driver()
bench_common.main(args, driver.batch, CLIENT, VERSIONS, driver.close)
