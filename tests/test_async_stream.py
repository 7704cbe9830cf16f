"""Streaming with AsyncCurlMulti.stream(): the response head, the body as an
async iterator with a bounded buffer (WRITEFUNC_PAUSE / pause(PAUSE_CONT)),
and request bodies from async iterables (READFUNC_PAUSE)."""

import asyncio
import gc
import hashlib
import platform
import time

import pytest

import curlmulti as pycurl
from curlmulti import AsyncCurlMulti, ResponseHead, Stream
from test_async_httpd import Server, body_bytes

PYPY = platform.python_implementation() == "PyPy"


@pytest.fixture(scope="module")
def httpd():
    server = Server()
    yield server
    server.close()


def make(url):
    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, url)
    return curl


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


@pytest.mark.parametrize("route", ["bytes", "chunked"])
async def test_head_then_body(httpd, route):
    async with AsyncCurlMulti() as multi:
        async with multi.stream(make(httpd.url("/%s/300000" % route))) as stream:
            assert isinstance(stream, Stream)
            head = await stream.head()
            assert isinstance(head, ResponseHead)
            assert head.status == 200 and head.reason == "OK" and head.http_version == "1.1"
            assert stream.status == 200
            if route == "bytes":
                assert head.get("content-length") == "300000"
            else:
                assert head.get("Transfer-Encoding") == "chunked"
            assert head.get("x-missing") is None and head.get_all("content-type") == ["application/octet-stream"]
            chunks = [chunk async for chunk in stream]
            assert all(isinstance(c, bytes) and c for c in chunks)
            assert b"".join(chunks) == body_bytes(300000)
            assert await stream.future is stream.curl
            assert await stream.head() is head


async def test_read_and_empty_bodies(httpd):
    async with AsyncCurlMulti() as multi:
        stream = multi.stream(make(httpd.url("/bytes/5000")))
        assert await stream.read() == body_bytes(5000)
        stream = multi.stream(make(httpd.url("/status/204")))
        assert (await stream.head()).status == 204
        assert await stream.read() == b""
        curl = make(httpd.url("/bytes/5000"))
        curl.setopt(pycurl.NOBODY, 1)
        stream = multi.stream(curl)
        assert (await stream.head()).get("Content-Length") == "5000"
        assert [c async for c in stream] == []


async def test_redirects(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/redirect/1234"))
        curl.setopt(pycurl.FOLLOWLOCATION, 1)
        stream = multi.stream(curl)
        head = await stream.head()
        assert head.status == 200  # the final response, not the 302
        assert await stream.read() == body_bytes(1234)
        stream = multi.stream(make(httpd.url("/redirect/1234")))  # not followed
        head = await stream.head()
        assert head.status == 302 and head.get("location") == "/bytes/1234"
        assert await stream.read() == b"redirect!"


async def test_head_interim_responses_are_skipped(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/echo"))
        curl.setopt(pycurl.POSTFIELDS, b"x" * 2000)
        curl.setopt(pycurl.HTTPHEADER, ["Expect: 100-continue"])
        stream = multi.stream(curl)
        assert (await stream.head()).status == 200  # not 100 Continue
        assert await stream.read() == b"2000 " + hashlib.sha1(b"x" * 2000).hexdigest().encode()


async def test_slow_consumer_pauses_the_transfer(httpd):
    size = 4 << 20
    async with AsyncCurlMulti() as multi:
        async with multi.stream(make(httpd.url("/bytes/%d" % size)), max_buffer=64 * 1024) as stream:
            data = []
            peak = 0
            async for chunk in stream:
                data.append(chunk)
                peak = max(peak, stream._size)
                if len(data) % 8 == 0:
                    await asyncio.sleep(0.001)
            assert b"".join(data) == body_bytes(size)  # nothing lost or repeated across pauses
            assert stream.pauses > 5
            assert peak <= 64 * 1024 + (1 << 16)  # the limit plus at most one chunk
        # The multi still works afterwards.
        assert await multi.stream(make(httpd.url("/bytes/10"))).read() == body_bytes(10)


async def test_paused_stream_does_not_spin_the_loop(httpd):
    async with AsyncCurlMulti() as multi:
        stream = multi.stream(make(httpd.url("/bytes/%d" % (64 << 20))), max_buffer=100000)
        await stream.head()
        await asyncio.sleep(0.2)  # nobody reads: the transfer pauses
        assert stream.pauses >= 1
        actions = []
        real = multi._multi.socket_action
        multi._multi.socket_action = lambda fd, mask: (actions.append(fd), real(fd, mask))[1]
        await asyncio.sleep(0.3)
        assert len(actions) <= 2, actions  # paused: libcurl dropped the watcher
        assert stream._size < 100000 + (1 << 16)
        await stream.aclose()


@pytest.mark.timeout(120)
async def test_one_gib_body_with_flat_memory(httpd):
    size = 1 << 30
    async with AsyncCurlMulti() as multi:
        # warm up, then measure from here
        await multi.stream(make(httpd.url("/bytes/%d" % (32 << 20)))).read()
        gc.collect()
        base = rss_mib()
        peak = base
        t0 = time.monotonic()
        got = 0
        n = 0
        async with multi.stream(make(httpd.url("/bytes/%d" % size)), max_buffer=1 << 20) as stream:
            async for chunk in stream:
                got += len(chunk)
                n += 1
                if n % 64 == 0:
                    await asyncio.sleep(0.0005)  # a slow-ish consumer
                if n % 2048 == 0:
                    peak = max(peak, rss_mib())
        took = time.monotonic() - t0
        assert got == size
        assert stream.pauses > 10
        assert took < 60
        # flat: the body never accumulates (PyPy's collector keeps more garbage around)
        assert peak - base < (96 if PYPY else 32), (base, peak)


async def test_reset_mid_body(httpd):
    async with AsyncCurlMulti() as multi:
        stream = multi.stream(make(httpd.url("/reset")))
        head = await stream.head()
        assert head.status == 200
        got = 0
        with pytest.raises(pycurl.error) as info:
            async for chunk in stream:
                got += len(chunk)
        assert 0 < got < (1 << 20)  # what arrived before the reset is delivered first
        assert info.value.args[0] in (pycurl.E_RECV_ERROR, pycurl.E_PARTIAL_FILE)


async def test_head_of_a_failed_transfer_raises(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/stall-head"))
        curl.setopt(pycurl.TIMEOUT_MS, 200)
        stream = multi.stream(curl)
        with pytest.raises(pycurl.error) as info:
            await stream.head()
        assert info.value.args[0] == pycurl.E_OPERATION_TIMEDOUT
        with pytest.raises(pycurl.error):
            await stream.read()
        stream = multi.stream(make(httpd.url("/garbage")))
        with pytest.raises(pycurl.error):
            await stream.read()


async def test_stalled_stream_with_timeout(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/stall"))
        curl.setopt(pycurl.TIMEOUT_MS, 300)
        stream = multi.stream(curl)
        assert (await stream.head()).status == 200
        assert await stream.__anext__() == b"x" * 10
        with pytest.raises(pycurl.error) as info:
            await stream.__anext__()
        assert info.value.args[0] == pycurl.E_OPERATION_TIMEDOUT


async def test_leaving_early_cancels_the_transfer(httpd):
    async with AsyncCurlMulti() as multi:
        async with multi.stream(make(httpd.url("/bytes/%d" % (64 << 20))), max_buffer=65536) as stream:
            async for chunk in stream:
                break
        assert stream.future.cancelled()
        assert stream.curl not in multi._multi
        assert multi.futures() == ()
        with pytest.raises(asyncio.CancelledError):
            await stream.__anext__()
        assert await multi.stream(make(httpd.url("/bytes/10"))).read() == body_bytes(10)


async def test_cancelling_the_consumer_task(httpd):
    async with AsyncCurlMulti() as multi:
        stream = multi.stream(make(httpd.url("/drip/100/10/20")))

        async def consume():
            async for chunk in stream:
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not stream.future.done()  # the transfer belongs to the stream
        await stream.aclose()
        assert stream.future.cancelled()


async def test_many_concurrent_streams(httpd):
    async with AsyncCurlMulti() as multi:
        async def one(i):
            async with multi.stream(make(httpd.url("/bytes/%d" % (i * 997))), max_buffer=8192) as stream:
                return await stream.read()

        bodies = await asyncio.gather(*[one(i) for i in range(300)])
        assert all(b == body_bytes(i * 997) for i, b in enumerate(bodies))


async def test_aclose_of_the_multi_ends_streams(httpd):
    multi = AsyncCurlMulti()
    stream = multi.stream(make(httpd.url("/bytes/%d" % (64 << 20))), max_buffer=65536)
    await stream.head()
    await multi.aclose()
    assert stream.future.cancelled()
    with pytest.raises(asyncio.CancelledError):
        async for chunk in stream:
            pass


def test_max_buffer_is_checked():
    multi = AsyncCurlMulti()
    with pytest.raises(ValueError):
        multi.stream(pycurl.Curl(), max_buffer=0)
    asyncio.run(multi.aclose())


def _own_callbacks(url):
    """A Curl whose header and write callbacks collect into two lists."""
    curl = make(url)
    head, body = [], []
    curl.setopt(pycurl.HEADERFUNCTION, head.append)
    curl.setopt(pycurl.WRITEFUNCTION, body.append)
    return curl, head, body


async def test_refused_stream_leaves_the_handle_untouched(httpd):
    async with AsyncCurlMulti() as multi:
        # Already registered: its running transfer keeps its callbacks.
        curl, head, body = _own_callbacks(httpd.url("/drip/5/100/50"))
        fut = multi.add_handle(curl)
        with pytest.raises(RuntimeError, match="already registered"):
            multi.stream(curl)
        with pytest.raises(RuntimeError, match="already registered"):
            multi.stream(curl, upload=[b"x"])
        assert await fut is curl
        assert head and b"".join(body) == b"x" * 500
        # Attached to another CurlMulti: refused by it, the handle untouched.
        other = pycurl.CurlMulti()
        curl, head, body = _own_callbacks(httpd.url("/bytes/1000"))
        other.add_handle(curl)
        with pytest.raises(pycurl.error):
            multi.stream(curl)
        assert multi.futures() == ()
        while other.perform()[1]:
            other.select(1.0)
        assert head and b"".join(body) == body_bytes(1000)
        other.close()
    # After aclose().
    curl, head, body = _own_callbacks(httpd.url("/bytes/1000"))
    with pytest.raises(RuntimeError, match="closed"):
        multi.stream(curl)
    curl.perform()
    assert head and b"".join(body) == body_bytes(1000)


def test_stream_without_a_running_loop_leaves_the_handle_untouched(httpd):
    multi = AsyncCurlMulti()
    curl, head, body = _own_callbacks(httpd.url("/bytes/1000"))
    with pytest.raises(RuntimeError):
        multi.stream(curl)
    curl.perform()
    assert head and b"".join(body) == body_bytes(1000)
    asyncio.run(multi.aclose())


# -- uploads -------------------------------------------------------------------------


def _expect(data):
    return b"%d %s" % (len(data), hashlib.sha1(data).hexdigest().encode())


async def test_upload_from_an_async_generator(httpd):
    parts = [bytes([65 + i % 26]) * (1000 + i * 37) for i in range(200)]

    async def source():
        for i, part in enumerate(parts):
            if i % 20 == 0:
                await asyncio.sleep(0.005)  # a slow producer: the transfer waits paused
            yield part

    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/echo"))
        curl.setopt(pycurl.POST, 1)  # no size: chunked
        async with multi.stream(curl, upload=source(), max_buffer=16384) as stream:
            assert await stream.read() == _expect(b"".join(parts))
            assert stream.send_pauses > 0


async def test_upload_with_known_size_and_sync_iterable(httpd):
    data = body_bytes(300000)
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/echo"))
        curl.setopt(pycurl.UPLOAD, 1)
        curl.setopt(pycurl.INFILESIZE_LARGE, len(data))
        chunks = [data[i:i + 7000] for i in range(0, len(data), 7000)] + [b"", bytearray(), memoryview(b"")]
        stream = multi.stream(curl, upload=iter(chunks))
        assert await stream.read() == _expect(data)


async def test_large_upload_keeps_the_buffer_bounded(httpd):
    block = b"u" * 65536
    total = 64 << 20
    async with AsyncCurlMulti() as multi:
        peak = [0]
        holder = {}

        async def source():
            for _ in range(total // len(block)):
                upload = holder.get("upload")
                if upload is not None:
                    peak[0] = max(peak[0], upload._size)
                yield block

        curl = make(httpd.url("/echo"))
        curl.setopt(pycurl.POST, 1)
        curl.setopt(pycurl.POSTFIELDSIZE_LARGE, total)
        stream = multi.stream(curl, upload=source(), max_buffer=256 * 1024)
        holder["upload"] = stream._upload
        expected = hashlib.sha1()
        for _ in range(total // len(block)):
            expected.update(block)
        assert await stream.read() == b"%d %s" % (total, expected.hexdigest().encode())
        assert peak[0] <= 256 * 1024 + len(block)


async def test_upload_source_failure_fails_the_transfer(httpd):
    class Broken(Exception):
        pass

    async def source():
        yield b"some data"
        await asyncio.sleep(0.05)
        raise Broken("the producer failed")

    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/echo"))
        curl.setopt(pycurl.POST, 1)
        stream = multi.stream(curl, upload=source())
        with pytest.raises(pycurl.error) as info:
            await stream.read()
        assert isinstance(info.value.__cause__, Broken)
        assert stream.curl.callback_error is info.value.__cause__
        assert await multi.stream(make(httpd.url("/bytes/10"))).read() == body_bytes(10)


async def test_upload_rejects_bytes_as_the_source(httpd):
    async with AsyncCurlMulti() as multi:
        with pytest.raises(TypeError):
            multi.stream(make(httpd.url("/echo")), upload=b"not an iterable of chunks")


async def test_upload_cancelled_mid_way_stops_the_pump(httpd):
    produced = []

    async def source():
        while True:
            produced.append(1)
            yield b"z" * 65536

    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/echo"))
        curl.setopt(pycurl.POST, 1)
        stream = multi.stream(curl, upload=source(), max_buffer=65536)
        await asyncio.sleep(0.2)
        await stream.aclose()
        await asyncio.sleep(0.05)
        count = len(produced)
        await asyncio.sleep(0.1)
        assert len(produced) == count  # the pump task is gone
        assert stream._upload._task.done()
