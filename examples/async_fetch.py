"""Fetch URLs concurrently with AsyncCurlMulti -- pycurl code, as written for
pycurl's AsyncCurlMulti (``import curlmulti as pycurl``).

    python examples/async_fetch.py [URL ...]

With no URL it starts a local server and fetches from it.
"""

import asyncio
import io
import sys
import time

import curlmulti as pycurl


async def fetch_all(urls, timeout_ms=10000):
    async with pycurl.AsyncCurlMulti() as multi:
        curls = []
        for url in urls:
            curl = pycurl.Curl()
            curl.setopt(pycurl.URL, url)
            curl.setopt(pycurl.TIMEOUT_MS, timeout_ms)
            curl.body = io.BytesIO()  # a Curl takes attributes, as in pycurl
            curl.setopt(pycurl.WRITEFUNCTION, curl.body.write)
            multi.add_handle(curl)
            curls.append(curl)
        # One future per transfer, in order of addition; failures come back
        # as pycurl.error instances instead of raising.
        results = await asyncio.gather(*multi.futures(), return_exceptions=True)
    for curl, result in zip(curls, results):
        url = curl.getinfo(pycurl.EFFECTIVE_URL)
        if isinstance(result, pycurl.error):
            print("%-45s failed: %s" % (url, result.args[1]))
        else:
            print("%-45s %d, %d bytes" % (url, curl.getinfo(pycurl.RESPONSE_CODE),
                                          len(curl.body.getvalue())))
        curl.close()


def main():
    urls = sys.argv[1:]
    if not urls:
        import async_local_server
        base = async_local_server.start()
        urls = ["%s/bytes/%d" % (base, 1000 * i) for i in range(1, 21)] + [base + "/missing"]
    t0 = time.monotonic()
    asyncio.run(fetch_all(urls))
    print("%d transfers in %.2f s" % (len(urls), time.monotonic() - t0))


if __name__ == "__main__":
    main()
