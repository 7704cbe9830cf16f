"""Stream a large download and an upload with AsyncCurlMulti.stream():
memory stays bounded whatever the size, because a lagging consumer pauses
the transfer (and a lagging producer pauses the upload).

    python examples/async_stream.py [URL]

With no URL it starts a local server, downloads 256 MiB from it and uploads
32 MiB generated on the fly.
"""

import asyncio
import hashlib
import sys
import time

import curlmulti as pycurl


async def download(multi, url):
    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, url)
    digest = hashlib.sha1()
    size = 0
    t0 = time.monotonic()
    async with multi.stream(curl, max_buffer=1 << 20) as stream:
        head = await stream.head()
        print("download: %s %s, Content-Length %s" % (head.status, head.reason, head.get("Content-Length")))
        async for chunk in stream:  # at most ~1 MiB is ever buffered
            digest.update(chunk)
            size += len(chunk)
    print("download: %d bytes in %.2f s, sha1 %s, paused %d times"
          % (size, time.monotonic() - t0, digest.hexdigest()[:12], stream.pauses))


async def upload(multi, url, total):
    async def produce():
        block = b"u" * 65536
        for i in range(total // len(block)):
            if i % 64 == 0:
                await asyncio.sleep(0.001)  # a producer with its own pace
            yield block

    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, url)
    curl.setopt(pycurl.POST, 1)  # no size given: sent chunked
    async with multi.stream(curl, upload=produce(), max_buffer=256 * 1024) as stream:
        reply = await stream.read()
    print("upload: %d bytes sent, server says %s (the transfer waited for data %d times)"
          % (total, reply.decode().strip(), stream.send_pauses))


async def main(url, base):
    async with pycurl.AsyncCurlMulti() as multi:
        await download(multi, url)
        if base:
            await upload(multi, base + "/echo", 32 << 20)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1], None))
    else:
        import async_local_server
        base = async_local_server.start()
        asyncio.run(main(base + "/bytes/%d" % (256 << 20), base))
