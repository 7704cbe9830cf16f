"""The Konnect-style request protocol (seed 004): AsyncCurlMulti.process()
with configure_handle / has_update / get_update / completed, and
HTTPRequest built on it."""

import asyncio
import hashlib

import pytest

import curlmulti as pycurl
from curlmulti import AsyncCurlMulti, HTTPRequest, HTTPResult, ResponseHead
from test_async_httpd import Server, body_bytes


@pytest.fixture(scope="module")
def httpd():
    server = Server()
    yield server
    server.close()


async def collect(multi, request):
    """Every value process() returns, up to and including the final one."""
    items = []
    while True:
        item = await multi.process(request)
        items.append(item)
        if isinstance(item, HTTPResult):
            return items


# -- HTTPRequest ----------------------------------------------------------------------


async def test_http_request_head_chunks_result(httpd):
    async with AsyncCurlMulti() as multi:
        request = HTTPRequest(httpd.url("/bytes/500000"))
        items = await collect(multi, request)
        head, body, result = items[0], items[1:-1], items[-1]
        assert isinstance(head, ResponseHead) and head.status == 200
        assert head.get("Content-Length") == "500000"
        assert body and all(isinstance(b, bytes) and b for b in body)
        assert b"".join(body) == body_bytes(500000)
        assert isinstance(result, HTTPResult)
        assert result.status == 200 and result.body_size == 500000
        assert result.url == httpd.url("/bytes/500000") and result.head is head
        assert result.total_time > 0
        assert request not in multi._requests


async def test_http_request_methods_headers_body(httpd):
    async with AsyncCurlMulti() as multi:
        items = await collect(multi, HTTPRequest(httpd.url("/echo"), method="POST", body=b"hello"))
        assert b"".join(i for i in items if isinstance(i, bytes)) == \
            b"5 " + hashlib.sha1(b"hello").hexdigest().encode()
        items = await collect(multi, HTTPRequest(httpd.url("/headers"), method="PUT",
                                                 headers={"X-Test": "yes"}, body=b"x"))
        text = b"".join(i for i in items if isinstance(i, bytes))
        assert text.startswith(b"PUT /headers") and b"X-Test: yes" in text
        items = await collect(multi, HTTPRequest(httpd.url("/bytes/10"), method="HEAD"))
        assert items[0].status == 200 and items[-1].body_size == 0
        items = await collect(multi, HTTPRequest(httpd.url("/status/404")))
        assert items[-1].status == 404
        items = await collect(multi, HTTPRequest(httpd.url("/redirect/20"),
                                                 options={pycurl.FOLLOWLOCATION: 1}))
        assert items[0].status == 200 and items[-1].body_size == 20
        assert items[-1].url == httpd.url("/bytes/20")


async def test_http_request_updates_arrive_before_the_end(httpd):
    async with AsyncCurlMulti() as multi:
        request = HTTPRequest(httpd.url("/drip/5/100/50"))
        loop = asyncio.get_running_loop()
        times = []
        while True:
            item = await multi.process(request)
            times.append((loop.time(), type(item).__name__))
            if isinstance(item, HTTPResult):
                break
        chunks = [t for t, kind in times if kind == "bytes"]
        assert len(chunks) >= 3  # interim updates as the drips arrive
        assert chunks[-1] - chunks[0] >= 0.1


async def test_failure_raises_and_skips_completed(httpd):
    class Req(HTTPRequest):
        def completed(self, info):
            raise AssertionError("completed() must not run for a failed transfer")

    async with AsyncCurlMulti() as multi:
        with pytest.raises(pycurl.error) as info:
            await collect(multi, Req(httpd.url("/garbage")))
        assert info.value.args[0] != 0
        request = Req(httpd.url("/stall-head"), options={pycurl.TIMEOUT_MS: 200})
        with pytest.raises(pycurl.error) as info:
            await collect(multi, request)
        assert info.value.args[0] == pycurl.E_OPERATION_TIMEDOUT
        assert multi._requests == {}


# -- the protocol itself ------------------------------------------------------------


class LineRequest(object):
    """Yields an update per 100-byte record of the body, then a summary."""

    def __init__(self, url):
        self.url = url
        self.buf = b""
        self.lines = []
        self.calls = []

    def configure_handle(self, handle):
        self.calls.append("configure")
        handle.setopt(pycurl.URL, self.url)
        handle.setopt(pycurl.WRITEFUNCTION, self.on_data)

    def on_data(self, data):
        self.buf += data
        while len(self.buf) >= 100:
            self.lines.append(self.buf[:100])
            self.buf = self.buf[100:]

    def has_update(self):
        return bool(self.lines)

    def get_update(self):
        self.lines.pop(0)
        return "record"

    def completed(self, info):
        self.calls.append("completed")
        return ("done", info.getinfo(pycurl.RESPONSE_CODE))


async def test_custom_request_interim_updates_then_final(httpd):
    async with AsyncCurlMulti() as multi:
        request = LineRequest(httpd.url("/drip/6/100/30"))
        results = []
        while True:
            item = await multi.process(request)
            results.append(item)
            if isinstance(item, tuple):
                break
        assert results[-1] == ("done", 200)
        assert results[:-1] == ["record"] * 6
        assert request.calls == ["configure", "completed"]


class ProgressRequest(object):
    """Updates from a progress callback; the body goes to a C sink."""

    def __init__(self, url):
        self.url = url
        self.sink = pycurl.Buffer()
        self.pending = None

    def configure_handle(self, handle):
        handle.setopt(pycurl.URL, self.url)
        handle.setopt(pycurl.WRITEDATA, self.sink)  # C path: no Python per chunk
        handle.setopt(pycurl.NOPROGRESS, 0)
        handle.setopt(pycurl.XFERINFOFUNCTION, self.progress)

    def progress(self, dltotal, dlnow, ultotal, ulnow):
        if dlnow:
            self.pending = dlnow

    def has_update(self):
        return self.pending is not None

    def get_update(self):
        value, self.pending = self.pending, None
        return value

    def completed(self, info):
        return ("done", len(self.sink))


async def test_custom_request_with_a_sink_and_progress_updates(httpd):
    async with AsyncCurlMulti() as multi:
        request = ProgressRequest(httpd.url("/drip/5/1000/40"))
        values = []
        while True:
            item = await multi.process(request)
            if isinstance(item, tuple):
                break
            values.append(item)
        assert item == ("done", 5000)
        assert values and values == sorted(values) and values[-1] <= 5000


async def test_info_handle_is_only_valid_in_completed(httpd):
    kept = []

    class Req(HTTPRequest):
        def completed(self, info):
            kept.append(info)
            return super().completed(info)

    async with AsyncCurlMulti() as multi:
        await collect(multi, Req(httpd.url("/bytes/3")))
        with pytest.raises(RuntimeError):
            kept[0].getinfo(pycurl.RESPONSE_CODE)


async def test_lagging_consumer_pauses_the_transfer(httpd):
    size = 32 << 20
    async with AsyncCurlMulti() as multi:
        request = HTTPRequest(httpd.url("/bytes/%d" % size))
        biggest = 0
        total = 0
        while True:
            item = await multi.process(request)
            if isinstance(item, HTTPResult):
                break
            if isinstance(item, bytes):
                total += len(item)
                biggest = max(biggest, len(item))
                await asyncio.sleep(0.005)  # busy elsewhere: the loop runs, nobody waits
        assert total == size
        # Paused while nobody waited: an update never holds more than what
        # one socket_action brought in (libcurl reads up to ~1.6 MB a go and
        # may run the transfer twice in one call); unpaused it would grow to
        # whatever arrived during the consumer's sleep (8+ MB here).
        assert biggest <= 4 << 20, biggest


async def test_cancelling_process_abandons_the_request(httpd):
    async with AsyncCurlMulti() as multi:
        request = HTTPRequest(httpd.url("/drip/100/10/20"))
        assert isinstance(await multi.process(request), ResponseHead)
        task = asyncio.ensure_future(collect(multi, request))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert multi._requests == {} and multi.futures() == ()
        # Calling process() again starts a new transfer.
        request2 = HTTPRequest(httpd.url("/bytes/100"))
        assert (await collect(multi, request2))[-1].body_size == 100


async def test_abandon_between_calls(httpd):
    async with AsyncCurlMulti() as multi:
        request = HTTPRequest(httpd.url("/bytes/%d" % (32 << 20)))
        await multi.process(request)
        await multi.process(request)
        assert multi.futures() != ()
        multi.abandon(request)
        assert multi.futures() == () and multi._requests == {}
        multi.abandon(request)  # no-op


async def test_concurrent_process_of_one_request_is_refused(httpd):
    async with AsyncCurlMulti() as multi:
        request = HTTPRequest(httpd.url("/delay/200"))
        first = asyncio.ensure_future(multi.process(request))
        await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError, match="already waiting"):
            await multi.process(request)
        assert isinstance(await first, ResponseHead)
        await collect(multi, request)


async def test_many_requests_at_once(httpd):
    async with AsyncCurlMulti() as multi:
        requests = [HTTPRequest(httpd.url("/bytes/%d" % (i * 31))) for i in range(500)]
        results = await asyncio.gather(*[collect(multi, r) for r in requests])
        for i, items in enumerate(results):
            assert b"".join(x for x in items if isinstance(x, bytes)) == body_bytes(i * 31)
            assert items[-1].status == 200


async def test_aclose_ends_waiting_process_calls(httpd):
    multi = AsyncCurlMulti()
    request = HTTPRequest(httpd.url("/stall"))
    await multi.process(request)  # the head
    await multi.process(request)  # the first bytes
    task = asyncio.ensure_future(multi.process(request))
    await asyncio.sleep(0.05)
    await multi.aclose()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(RuntimeError, match="closed"):
        await multi.process(HTTPRequest(httpd.url("/bytes/1")))


async def test_configure_handle_failure_propagates(httpd):
    class Bad(HTTPRequest):
        def configure_handle(self, handle):
            raise ValueError("bad configuration")

    async with AsyncCurlMulti() as multi:
        with pytest.raises(ValueError):
            await multi.process(Bad(httpd.url("/")))
        assert multi._requests == {} and multi.futures() == ()


async def test_callback_exception_in_a_request(httpd):
    class Boom(Exception):
        pass

    class Req(HTTPRequest):
        def _on_body(self, data):
            raise Boom()

    async with AsyncCurlMulti() as multi:
        with pytest.raises(pycurl.error) as info:
            await collect(multi, Req(httpd.url("/bytes/100")))
        assert isinstance(info.value.__cause__, Boom)


class _QuietRequest(object):
    """A request with no updates whose has_update() raises ``exc`` on call
    number ``at`` (only then with ``once``, else from then on)."""

    def __init__(self, url, exc, at=2, once=False):
        self.url, self.exc, self.at, self.once = url, exc, at, once
        self.calls = 0
        self.completed_called = False

    def configure_handle(self, handle):
        handle.setopt(pycurl.URL, self.url)
        handle.setopt(pycurl.WRITEFUNCTION, lambda data: None)

    def has_update(self):
        self.calls += 1
        if self.calls == self.at or (self.calls > self.at and not self.once):
            raise self.exc
        return False

    def get_update(self):
        return None

    def completed(self, info):
        self.completed_called = True
        return info.getinfo(pycurl.RESPONSE_CODE)


async def test_has_update_raising_in_the_driver_fails_that_request(httpd):
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda loop, ctx: reported.append(ctx))
    try:
        async with AsyncCurlMulti() as multi:
            goods = [HTTPRequest(httpd.url("/drip/5/100/20")) for _ in range(3)]
            tasks = [asyncio.ensure_future(collect(multi, r)) for r in goods]
            # Raising from the driver's call on: process() raises it itself.
            t0 = loop.time()
            with pytest.raises(ZeroDivisionError):
                await asyncio.wait_for(multi.process(_QuietRequest(httpd.url("/stall"), ZeroDivisionError())), 2)
            # Raising in the driver's call only: error caused by it, at the end.
            once = _QuietRequest(httpd.url("/stall"), ValueError("once"), once=True)
            with pytest.raises(pycurl.error) as info:
                await asyncio.wait_for(multi.process(once), 2)
            assert isinstance(info.value.__cause__, ValueError)
            assert info.value.args[0] == pycurl.E_ABORTED_BY_CALLBACK
            assert not once.completed_called
            assert loop.time() - t0 < 1.5
            assert multi._requests.keys() <= set(goods)
            # The other requests were not disturbed, and the driver works on.
            for items in await asyncio.wait_for(asyncio.gather(*tasks), 5):
                assert items[-1].status == 200 and items[-1].body_size == 500
            assert (await collect(multi, HTTPRequest(httpd.url("/bytes/1000"))))[-1].body_size == 1000
            assert multi.futures() == () and multi._requests == {}
        assert reported == []
    finally:
        loop.set_exception_handler(None)


def test_keyboard_interrupt_in_has_update_travels_as_itself(httpd):
    loop = asyncio.new_event_loop()
    multi = AsyncCurlMulti()
    try:
        bad = _QuietRequest(httpd.url("/stall"), KeyboardInterrupt(), once=True)
        good = HTTPRequest(httpd.url("/drip/5/100/20"))
        tasks = []

        async def main():
            tasks.append(asyncio.ensure_future(multi.process(bad)))
            tasks.append(asyncio.ensure_future(collect(multi, good)))
            await asyncio.sleep(5)

        runner = loop.create_task(main())
        with pytest.raises(KeyboardInterrupt):  # out of the loop, as from any callback
            loop.run_until_complete(runner)
        assert bad.calls == 2
        assert isinstance(multi._requests[bad].future.exception(), KeyboardInterrupt)
        # The transfer failed with it; the process() call raises it (and
        # leaves the loop again, as a task does with KeyboardInterrupt).
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(tasks[0])
        items = loop.run_until_complete(asyncio.wait_for(tasks[1], 5))
        assert items[-1].status == 200 and items[-1].body_size == 500
        runner.cancel()
        loop.run_until_complete(asyncio.gather(runner, return_exceptions=True))
        loop.run_until_complete(multi.aclose())
    finally:
        loop.close()
