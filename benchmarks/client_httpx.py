"""httpx client: one AsyncClient (HTTP/1.1) whose pool holds as many
connections as the concurrency, one coroutine per slot; every body read
into memory (``response.content``) and every status checked."""

import asyncio

import bench_common

args = bench_common.parse_args()
CLIENT = "httpx"
try:
    import httpx
except Exception as e:
    bench_common.unavailable(CLIENT, "import httpx failed: %s: %s" % (type(e).__name__, e))


class Driver(object):
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.client = None

    def batch(self, url, n, conc):
        return self.loop.run_until_complete(asyncio.wait_for(self._batch(url, n, conc), args.max_seconds))

    async def _batch(self, url, n, conc):
        if self.client is None:
            limits = httpx.Limits(max_connections=args.concurrency,
                                  max_keepalive_connections=args.concurrency)
            self.client = httpx.AsyncClient(http1=True, http2=False, limits=limits, trust_env=False,
                                            timeout=httpx.Timeout(None))
        client = self.client
        counts = [0, 0, 0, 0]  # started, ok, errors, bytes

        async def worker():
            while counts[0] < n:
                counts[0] += 1
                try:
                    resp = await client.get(url)
                except httpx.HTTPError:
                    counts[2] += 1
                    continue
                if resp.status_code == 200:
                    counts[1] += 1
                    counts[3] += len(resp.content)
                else:
                    counts[2] += 1

        await asyncio.gather(*[worker() for _ in range(min(conc, n))])
        return counts[1], counts[2], counts[3]

    def close(self):
        if self.client is not None:
            self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


driver = Driver()
bench_common.main(args, driver.batch, CLIENT, {"httpx": httpx.__version__}, driver.close)
