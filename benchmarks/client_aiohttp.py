"""aiohttp client: one ClientSession, a TCPConnector limited to the
concurrency, one coroutine per slot; every body read into memory with
``await response.read()`` and every status checked."""

import asyncio

import bench_common

args = bench_common.parse_args()
CLIENT = "aiohttp"
try:
    import aiohttp
except Exception as e:
    bench_common.unavailable(CLIENT, "import aiohttp failed: %s: %s" % (type(e).__name__, e))


class Driver(object):
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.session = None

    def batch(self, url, n, conc):
        return self.loop.run_until_complete(asyncio.wait_for(self._batch(url, n, conc), args.max_seconds))

    async def _batch(self, url, n, conc):
        if self.session is None:
            connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=args.concurrency)
            self.session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                 timeout=aiohttp.ClientTimeout(total=None))
        session = self.session
        counts = [0, 0, 0, 0]  # started, ok, errors, bytes

        async def worker():
            while counts[0] < n:
                counts[0] += 1
                try:
                    async with session.get(url) as resp:
                        body = await resp.read()
                        status = resp.status
                except aiohttp.ClientError:
                    counts[2] += 1
                    continue
                if status == 200:
                    counts[1] += 1
                    counts[3] += len(body)
                else:
                    counts[2] += 1

        await asyncio.gather(*[worker() for _ in range(min(conc, n))])
        return counts[1], counts[2], counts[3]

    def close(self):
        if self.session is not None:
            self.loop.run_until_complete(self.session.close())
        self.loop.close()


driver = Driver()
bench_common.main(args, driver.batch, CLIENT, {"aiohttp": aiohttp.__version__}, driver.close)
