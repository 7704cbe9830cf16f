"""Side-by-side scenarios of the asyncio driver, pycurl 7.49's
``AsyncCurlMulti`` (see driver.py)."""

import asyncio


def _easy(pycurl, url, sink):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, sink.append)
    return c


def scenario_transfers(pycurl, o, servers):
    from pycurl.async_multi import AsyncCurlMulti

    o["same-class"] = AsyncCurlMulti is pycurl.AsyncCurlMulti

    async def main():
        sinks = [[], [], []]
        paths = ("/bytes/10", "/bytes/50000", "/status/404")
        async with AsyncCurlMulti() as multi:
            handles = [_easy(pycurl, servers["fast"] + p, s) for p, s in zip(paths, sinks)]
            results = await asyncio.gather(*(multi.perform(c) for c in handles))
            o["results-are-the-handles"] = [r is c for r, c in zip(results, handles)]
            o["codes"] = [c.getinfo(pycurl.RESPONSE_CODE) for c in handles]
            o["sizes"] = [sum(map(len, s)) for s in sinks]
            bad = _easy(pycurl, "http://127.0.0.1:1/", [])
            try:
                await multi.perform(bad)
                o["refused"] = "no error"
            except pycurl.error as e:
                o["refused"] = e
            fut = multi.add_handle(_easy(pycurl, servers["fast"] + "/bytes/5", []))
            o["add_handle-returns-a-future"] = isinstance(fut, asyncio.Future)
            await fut
            o.call("setopt-socketfunction", multi.setopt, pycurl.M_SOCKETFUNCTION, lambda *a: None)
            o["closed-inside"] = multi.closed
        o["closed-after"] = multi.closed
        for c in handles:
            c.close()

    asyncio.run(main())


def scenario_callback_error(pycurl, o, servers):
    from pycurl.async_multi import AsyncCurlMulti

    async def main():
        async with AsyncCurlMulti() as multi:
            c = pycurl.Curl()
            c.setopt(pycurl.URL, servers["fast"] + "/bytes/100")

            def write(data):
                raise ValueError("boom")

            c.setopt(pycurl.WRITEFUNCTION, write)
            try:
                await multi.perform(c)
                o["error"] = "no error"
            except BaseException as e:
                o["error"] = e
            c.close()

    asyncio.run(main())
