"""The request protocol: await multi.process(request) returns interim updates
(the response head, then body chunks as they arrive), then the final result.

    python examples/async_request.py [URL ...]

With no URL it starts a local server whose responses trickle in.
"""

import asyncio
import sys

import curlmulti as pycurl
from curlmulti import HTTPRequest, HTTPResult, ResponseHead


async def show(multi, url):
    request = HTTPRequest(url, headers={"Accept": "*/*"})
    while True:
        item = await multi.process(request)  # call again to continue the transfer
        if isinstance(item, ResponseHead):
            print("[%s] head: %s %s" % (url, item.status, item.reason))
        elif isinstance(item, bytes):
            print("[%s] %d bytes: %r" % (url, len(item), item[:30]))
        else:
            assert isinstance(item, HTTPResult)
            print("[%s] done: status %d, %d bytes in %.3f s" % (url, item.status, item.body_size, item.total_time))
            return item


class CountLines(object):
    """A request class of one's own: an update per completed line."""

    def __init__(self, url):
        self.url = url
        self.partial = b""
        self.lines = []

    def configure_handle(self, handle):
        handle.setopt(pycurl.URL, self.url)
        handle.setopt(pycurl.WRITEFUNCTION, self.on_data)

    def on_data(self, data):
        *lines, self.partial = (self.partial + data).split(b"\n")
        self.lines.extend(lines)

    def has_update(self):
        return bool(self.lines)

    def get_update(self):
        lines, self.lines = self.lines, []
        return lines

    def completed(self, info):
        return "finished with status %d" % info.getinfo(pycurl.RESPONSE_CODE)


async def main(urls, lines_url):
    async with pycurl.AsyncCurlMulti() as multi:
        await asyncio.gather(*[show(multi, url) for url in urls])
        if lines_url:
            request = CountLines(lines_url)
            while True:
                update = await multi.process(request)
                if isinstance(update, str):
                    print("lines:", update)
                    break
                print("lines: got", [line.decode() for line in update])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1:], None))
    else:
        import async_local_server
        base = async_local_server.start()
        asyncio.run(main([base + "/slow/5", base + "/bytes/100000"], base + "/slow/8"))
