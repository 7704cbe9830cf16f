"""AsyncCurlMulti (seed 003): every method and error case, the event-driven
driver, callback and driver failures, cancellation, load and leaks.

The server is tests/test_async_httpd.py, run in a subprocess."""

import asyncio
import gc
import os
import platform
import random
import socket
import time
import uuid

import pytest

import curlmulti as pycurl
from curlmulti import AsyncCurlMulti
from test_async_httpd import Server, body_bytes

PYPY = platform.python_implementation() == "PyPy"

try:
    import uvloop
except ImportError:  # not built for PyPy
    uvloop = None


@pytest.fixture(scope="module")
def httpd():
    server = Server()
    yield server
    server.close()


@pytest.fixture(autouse=True, params=["epoll", "add_reader"])
def watchers(request, monkeypatch):
    """Every test runs with both ways of watching libcurl's sockets: our own
    epoll set (Linux) and one add_reader/add_writer per socket."""
    if request.param == "epoll" and not AsyncCurlMulti._use_epoll:
        pytest.skip("no select.epoll here")
    monkeypatch.setattr(AsyncCurlMulti, "_use_epoll", request.param == "epoll")
    return request.param


class _CountingEpoll(object):
    """Wraps a select.epoll to record changes (or to fail them)."""

    def __init__(self, ep, calls, fail=None):
        self.ep, self.calls, self.fail = ep, calls, fail

    def _change(self, name, fd, *args):
        self.calls.append((name, fd))
        if self.fail is not None:
            raise self.fail
        return getattr(self.ep, name)(fd, *args)

    def register(self, fd, mask):
        return self._change("register", fd, mask)

    def modify(self, fd, mask):
        return self._change("modify", fd, mask)

    def unregister(self, fd):
        return self._change("unregister", fd)

    def poll(self, timeout=-1):
        return self.ep.poll(timeout)

    def fileno(self):
        return self.ep.fileno()

    def close(self):
        self.ep.close()


def make(url, sink=None):
    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, url)
    curl.setopt(pycurl.WRITEFUNCTION, sink.append if sink is not None else (lambda data: None))
    return curl


def count_fds():
    return len(os.listdir("/proc/self/fd"))


def attached(curl, acm):
    """Is curl attached to acm's CurlMulti (libcurl-side)?"""
    return curl in acm._multi


# -- construction, loop binding -----------------------------------------------


def test_constructor_needs_no_running_loop(httpd):
    multi = AsyncCurlMulti()
    assert not multi.closed
    with pytest.raises(RuntimeError):
        multi.add_handle(make(httpd.url("/bytes/1")))  # no running loop
    asyncio.run(multi.aclose())
    assert multi.closed


def test_bound_to_the_first_loop(httpd):
    multi = AsyncCurlMulti()

    async def first():
        curl = await multi.perform(make(httpd.url("/bytes/10")))
        assert curl.getinfo(pycurl.RESPONSE_CODE) == 200

    async def second():
        with pytest.raises(RuntimeError, match="different event loop"):
            multi.add_handle(make(httpd.url("/bytes/10")))
        with pytest.raises(RuntimeError, match="different event loop"):
            await multi.perform(make(httpd.url("/bytes/10")))

    asyncio.run(first())
    asyncio.run(second())
    # The first loop is gone: aclose() from another loop may still release it.
    asyncio.run(multi.aclose())
    assert multi.closed


def test_remove_handle_and_futures_from_another_loop_are_refused(httpd):
    multi = AsyncCurlMulti()
    loop_a = asyncio.new_event_loop()
    try:
        curl = make(httpd.url("/delay/5000"))

        async def add():
            return multi.add_handle(curl)

        fut = loop_a.run_until_complete(add())

        async def other():
            with pytest.raises(RuntimeError, match="different event loop"):
                multi.remove_handle(curl)
            with pytest.raises(RuntimeError, match="different event loop"):
                multi.futures()
            with pytest.raises(RuntimeError, match="different event loop"):
                multi.futures([curl])

        asyncio.run(other())
        assert not fut.done() and attached(curl, multi)

        async def from_a_thread():  # while loop A runs, in another thread
            with pytest.raises(RuntimeError, match="different event loop"):
                await loop_a.run_in_executor(None, multi.futures)
            assert multi.futures() == (fut,)  # from the bound loop itself

        loop_a.run_until_complete(from_a_thread())
        # From plain code, with the bound loop not running: allowed.
        assert multi.futures() == (fut,)
        multi.remove_handle(curl)
        assert fut.cancelled() and not attached(curl, multi)
        loop_a.run_until_complete(multi.aclose())
    finally:
        loop_a.close()


def test_aclose_from_another_running_loop_is_refused(httpd):
    multi = AsyncCurlMulti()
    loop_a = asyncio.new_event_loop()
    try:
        loop_a.run_until_complete(multi.perform(make(httpd.url("/bytes/10"))))

        async def other():
            with pytest.raises(RuntimeError, match="different event loop"):
                await multi.aclose()

        asyncio.run(other())
        assert not multi.closed
        loop_a.run_until_complete(multi.aclose())
        assert multi.closed
    finally:
        loop_a.close()


class _NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop without add_reader, as a ProactorEventLoop."""

    def add_reader(self, fd, callback, *args):
        raise NotImplementedError


def test_non_selector_loop_is_refused(httpd):
    loop = _NoReaderLoop()
    try:
        async def main():
            multi = AsyncCurlMulti()
            with pytest.raises(RuntimeError, match="selector"):
                multi.add_handle(make(httpd.url("/bytes/1")))
            await multi.aclose()

        loop.run_until_complete(main())
    finally:
        loop.close()


# -- add_handle, perform, remove_handle, futures ------------------------------------


async def test_add_handle_resolves_to_the_same_curl(httpd):
    body = []
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/bytes/1000"), body)
        fut = multi.add_handle(curl)
        assert isinstance(fut, asyncio.Future)
        assert await fut is curl
        assert b"".join(body) == body_bytes(1000)
        assert curl.getinfo(pycurl.RESPONSE_CODE) == 200
        assert not attached(curl, multi)
        # A finished handle can be added again.
        body.clear()
        assert await multi.add_handle(curl) is curl
        assert b"".join(body) == body_bytes(1000)


async def test_perform(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/status/404"))
        assert await multi.perform(curl) is curl
        assert curl.getinfo(pycurl.RESPONSE_CODE) == 404


async def test_failure_raises_error(httpd):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens there
    async with AsyncCurlMulti() as multi:
        curl = make("http://127.0.0.1:%d/" % port)
        with pytest.raises(pycurl.error) as info:
            await multi.perform(curl)
        assert info.value.args[0] == pycurl.E_COULDNT_CONNECT
        assert isinstance(info.value.args[1], str)
        assert info.value.__cause__ is None


async def test_add_handle_errors(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/delay/200"))
        fut = multi.add_handle(curl)
        with pytest.raises(RuntimeError, match="already registered"):
            multi.add_handle(curl)
        with pytest.raises(TypeError):
            multi.add_handle(42)
        other = pycurl.CurlMulti()
        busy = make(httpd.url("/bytes/1"))
        other.add_handle(busy)
        with pytest.raises(pycurl.error):  # libcurl's side: attached elsewhere
            multi.add_handle(busy)
        assert multi.futures() == (fut,)
        other.close()
        await fut
    with pytest.raises(RuntimeError, match="closed"):
        multi.add_handle(make(httpd.url("/bytes/1")))


async def test_remove_handle_cancels_the_future(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/delay/5000"))
        fut = multi.add_handle(curl)
        await asyncio.sleep(0.05)
        multi.remove_handle(curl)
        assert fut.cancelled()
        assert not attached(curl, multi)
        assert multi.futures() == ()
        with pytest.raises(RuntimeError, match="not registered"):
            multi.remove_handle(curl)
        with pytest.raises(RuntimeError, match="not registered"):
            multi.remove_handle(make(httpd.url("/")))
        # A finished transfer is no longer registered.
        done = make(httpd.url("/bytes/5"))
        await multi.perform(done)
        with pytest.raises(RuntimeError, match="not registered"):
            multi.remove_handle(done)
        # The multi keeps working.
        assert await multi.perform(make(httpd.url("/bytes/5"))) is not None
        pending = make(httpd.url("/delay/5000"))
        multi.add_handle(pending)
    with pytest.raises(RuntimeError, match="closed"):
        multi.remove_handle(pending)


class _RefusingMulti(pycurl.CurlMulti):
    """A stand-in multi whose libcurl refuses to remove handles."""

    refuse = False

    def remove_handle(self, curl):
        if self.refuse:
            raise pycurl.error(pycurl.E_MULTI_BAD_EASY_HANDLE if hasattr(pycurl, "E_MULTI_BAD_EASY_HANDLE")
                               else 2, "refused by the stand-in")
        super().remove_handle(curl)


class _RefusingAsyncMulti(AsyncCurlMulti):
    _multi_class = _RefusingMulti


async def test_remove_handle_error_from_the_multi(httpd):
    async with _RefusingAsyncMulti() as multi:
        curl = make(httpd.url("/delay/5000"))
        fut = multi.add_handle(curl)
        multi._multi.refuse = True
        with pytest.raises(pycurl.error, match="refused"):
            multi.remove_handle(curl)
        assert fut.cancelled()  # no longer ours, whatever libcurl said
        multi._multi.refuse = False
        multi._multi.remove_handle(curl)


@pytest.mark.parametrize("how", ["remove_handle", "cancel", "driver failure"])
async def test_refused_removal_does_not_stall_later_transfers(httpd, how):
    # The refused handle stays attached and running, uncounted by the
    # futures: completions must still be noticed.
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda loop, ctx: reported.append(ctx))
    try:
        async with _RefusingAsyncMulti() as multi:
            curl = make(httpd.url("/delay/400"))
            fut = multi.add_handle(curl)
            await asyncio.sleep(0.05)
            multi._multi.refuse = True
            if how == "remove_handle":
                with pytest.raises(pycurl.error, match="refused"):
                    multi.remove_handle(curl)
                assert fut.cancelled()
            elif how == "cancel":
                fut.cancel()
                assert "could not remove" in reported[0]["message"]
            else:
                multi._driver_failed(RuntimeError("injected"))
                assert isinstance(fut.exception(), pycurl.error)
            multi._multi.refuse = False
            assert attached(curl, multi)  # libcurl kept it: it runs on
            for n in (10, 100000, 0):
                body = []
                done = await asyncio.wait_for(multi.perform(make(httpd.url("/bytes/%d" % n), body)), 2)
                assert done.getinfo(pycurl.RESPONSE_CODE) == 200 and b"".join(body) == body_bytes(n)
            both = [multi.add_handle(make(httpd.url("/delay/%d" % ms))) for ms in (50, 100)]
            await asyncio.wait_for(asyncio.gather(*both), 2)
            # Once it ends, the refused handle is removed after all.
            deadline = time.monotonic() + 3
            while attached(curl, multi) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert not attached(curl, multi) and multi._stray == {}
            assert await asyncio.wait_for(multi.perform(make(httpd.url("/bytes/10"))), 2)
    finally:
        loop.set_exception_handler(None)


async def test_remove_handle_of_a_closed_curl(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/delay/5000"))
        fut = multi.add_handle(curl)
        curl.close()  # detaches it from the CurlMulti behind our back
        multi.remove_handle(curl)  # accepted, as CurlMulti (and pycurl) accept it
        assert fut.cancelled()


async def test_closed_curl_fails_its_future(httpd):
    async with AsyncCurlMulti() as multi:
        closed = make(httpd.url("/delay/5000"))
        fut = multi.add_handle(closed)
        other = multi.add_handle(make(httpd.url("/delay/50")))
        await asyncio.sleep(0.01)
        closed.close()
        await other
        with pytest.raises(pycurl.error, match="closed"):
            await asyncio.wait_for(fut, 5)


@pytest.mark.parametrize("when", ["just added", "running", "running with a timeout"])
async def test_closed_curl_fails_its_future_with_nothing_else_running(httpd, when):
    # No other transfer brings a socket_action: the close itself is noticed
    # (removing the handle, libcurl calls our socket or timer callback).
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/delay/3000"))
        if when == "running with a timeout":
            curl.setopt(pycurl.TIMEOUT_MS, 5000)
        fut = multi.add_handle(curl)
        if when != "just added":
            await asyncio.sleep(0.1)
            assert multi._watch
        t0 = time.monotonic()
        curl.close()
        with pytest.raises(pycurl.error, match="closed"):
            await asyncio.wait_for(asyncio.shield(fut), 2)
        assert time.monotonic() - t0 < 0.5
        assert multi.futures() == () and multi._watch == {}
        assert await multi.perform(make(httpd.url("/bytes/10")))


async def test_only_foreign_libcurl_calls_look_for_closed_curls(httpd):
    # Our own add/remove/pause calls run the socket and timer callbacks too:
    # they must not cost a scan of every registered transfer.
    async with AsyncCurlMulti() as multi:
        foreign = []
        real = multi._foreign
        multi._foreign = lambda: (foreign.append(1), real())[1]
        await multi.perform(make(httpd.url("/bytes/1000")))
        fut = multi.add_handle(make(httpd.url("/delay/5000")))
        await asyncio.sleep(0.05)
        fut.cancel()
        curl = make(httpd.url("/delay/5000"))
        multi.add_handle(curl)
        await asyncio.sleep(0.05)
        multi.remove_handle(curl)
        async with multi.stream(make(httpd.url("/bytes/2000000")), max_buffer=16384) as stream:
            async for chunk in stream:
                await asyncio.sleep(0)
        assert stream.pauses > 0  # paused and resumed by us
        request = pycurl.HTTPRequest(httpd.url("/bytes/4000000"))
        while not isinstance(await multi.process(request), pycurl.HTTPResult):
            await asyncio.sleep(0.002)  # nobody waits: paused and resumed by us
        assert foreign == []
        curl = make(httpd.url("/delay/5000"))
        fut = multi.add_handle(curl)
        await asyncio.sleep(0.05)
        curl.close()
        assert foreign
        with pytest.raises(pycurl.error, match="closed"):
            await fut


async def test_futures_snapshot_semantics(httpd):
    async with AsyncCurlMulti() as multi:
        a, b, c = (make(httpd.url("/delay/%d" % ms)) for ms in (300, 5000, 5000))
        fa, fb, fc = multi.add_handle(a), multi.add_handle(b), multi.add_handle(c)
        snap = multi.futures()
        assert isinstance(snap, tuple)
        assert snap == (fa, fb, fc)  # order of addition
        assert multi.futures([c, a]) == (fc, fa)  # input order
        dup = multi.futures([b, b])
        assert len(dup) == 2 and dup[0] is fb and dup[1] is fb
        assert multi.futures(x for x in (a,)) == (fa,)  # any iterable
        assert multi.futures([]) == ()
        stranger = make(httpd.url("/"))
        with pytest.raises(KeyError):
            multi.futures([a, stranger])
        fb.cancel()  # cancelled: gone at once
        assert multi.futures() == (fa, fc)
        with pytest.raises(KeyError):
            multi.futures([b])
        await fa  # completed: gone
        assert multi.futures() == (fc,)
        with pytest.raises(KeyError):
            multi.futures([a])
        assert snap == (fa, fb, fc)  # earlier snapshots do not change
    assert multi.futures() == ()


# -- cancellation ---------------------------------------------------------------------


async def test_cancel_removes_the_handle_at_once(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/drip/100/1000/20"))
        fut = multi.add_handle(curl)
        await asyncio.sleep(0.05)
        assert attached(curl, multi)
        assert fut.cancel()
        assert not attached(curl, multi)  # no waiting for the next loop iteration
        assert multi.futures() == ()
        assert not fut.cancel()
        # The handle is free: it can run again right away.
        curl.setopt(pycurl.URL, httpd.url("/bytes/3"))
        assert await multi.perform(curl) is curl


async def test_cancelling_the_awaiting_task_removes_the_handle(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/delay/5000"))
        task = asyncio.ensure_future(multi.perform(curl))
        await asyncio.sleep(0.05)
        assert attached(curl, multi)
        task.cancel()
        assert not attached(curl, multi)
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_wait_for_timeout_removes_the_handle(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/delay/5000"))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(multi.perform(curl), 0.1)
        assert not attached(curl, multi)
        assert multi.futures() == ()


async def test_cancel_from_inside_a_callback(httpd):
    async with AsyncCurlMulti() as multi:
        holder = {}

        def write(data):
            holder["fut"].cancel()  # runs inside socket_action: the removal is deferred

        curl = make(httpd.url("/bytes/100000"))
        curl.setopt(pycurl.WRITEFUNCTION, write)
        other = make(httpd.url("/bytes/100000"))
        holder["fut"] = multi.add_handle(curl)
        fut_other = multi.add_handle(other)
        assert await fut_other is other
        assert holder["fut"].cancelled()
        assert not attached(curl, multi)
        assert await multi.perform(make(httpd.url("/bytes/10")))


async def test_random_cancellation_stress(httpd):
    rng = random.Random(4)
    async with AsyncCurlMulti() as multi:
        for round_ in range(6):
            curls = []
            for i in range(150):
                kind = rng.choice(["/bytes/%d" % rng.randint(0, 200000), "/delay/%d" % rng.randint(0, 80),
                                   "/drip/5/1000/%d" % rng.randint(1, 20), "/chunked/%d" % rng.randint(0, 50000)])
                curls.append(make(httpd.url(kind)))
            futs = [multi.add_handle(c) for c in curls]
            deadline = time.monotonic() + 0.3
            cancelled = set()
            while time.monotonic() < deadline:
                await asyncio.sleep(rng.random() * 0.02)
                if round_ == 5 and rng.random() < 0.2:
                    victims = range(len(futs))  # everything in flight
                else:
                    victims = rng.sample(range(len(futs)), rng.randint(0, 10))
                for i in victims:
                    if futs[i].cancel():
                        cancelled.add(i)
                        assert not attached(curls[i], multi)
            results = await asyncio.gather(*futs, return_exceptions=True)
            for i, (curl, res) in enumerate(zip(curls, results)):
                if i in cancelled:
                    assert isinstance(res, asyncio.CancelledError)
                else:
                    assert res is curl, res
                assert not attached(curl, multi)
            assert multi.futures() == ()
            assert not multi._watch or all(fd >= 0 for fd in multi._watch)
        # Still usable after all that.
        body = []
        await multi.perform(make(httpd.url("/bytes/5000"), body))
        assert b"".join(body) == body_bytes(5000)


# -- setopt, aclose, closed, close_handles ------------------------------------------


async def test_setopt(httpd):
    async with AsyncCurlMulti() as multi:
        multi.setopt(pycurl.M_MAXCONNECTS, 5)
        multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 2)
        owned = [pycurl.M_SOCKETFUNCTION, pycurl.M_TIMERFUNCTION]
        if hasattr(pycurl, "M_NOTIFYFUNCTION"):
            owned.append(pycurl.M_NOTIFYFUNCTION)
        for option in owned:
            with pytest.raises(ValueError):
                multi.setopt(option, lambda *a: None)
        with pytest.raises(TypeError):
            multi.setopt(pycurl.M_MAXCONNECTS, "many")
        # Options reach libcurl: two at a time per host.
        futs = [multi.add_handle(make(httpd.url("/delay/100"))) for _ in range(4)]
        t0 = time.monotonic()
        await asyncio.gather(*futs)
        assert time.monotonic() - t0 >= 0.19
    with pytest.raises(pycurl.error):
        multi.setopt(pycurl.M_MAXCONNECTS, 5)


async def test_aclose_while_transfers_run(httpd):
    loop = asyncio.get_running_loop()
    multi = AsyncCurlMulti()
    curls = [make(httpd.url("/drip/1000/100/10")) for _ in range(20)]
    futs = [multi.add_handle(c) for c in curls]
    await asyncio.sleep(0.2)
    assert multi._watch
    ep = multi._ep
    fds = [ep.fileno()] if ep is not None else list(multi._watch)
    await multi.aclose()
    assert multi.closed
    assert all(f.cancelled() for f in futs)
    assert multi.futures() == ()
    assert multi._timer is None and multi._watch == {} and multi._ep is None
    if ep is not None:
        assert ep.closed
    selector_map = loop._selector.get_map()
    assert not any(fd in selector_map for fd in fds)
    assert not any(attached(c, multi) for c in curls)
    assert not any(c.closed for c in curls)  # close_handles=False
    await multi.aclose()  # idempotent
    assert multi.closed


async def test_close_handles_is_forwarded(httpd):
    multi = AsyncCurlMulti(close_handles=True)
    curl = make(httpd.url("/delay/5000"))
    fut = multi.add_handle(curl)
    await asyncio.sleep(0.02)
    await multi.aclose()
    assert fut.cancelled()
    assert curl.closed


async def test_async_with(httpd):
    async with AsyncCurlMulti() as multi:
        assert isinstance(multi, AsyncCurlMulti)
        fut = multi.add_handle(make(httpd.url("/delay/5000")))
    assert multi.closed
    assert fut.cancelled()


# -- the driver: timers, sockets, idleness -------------------------------------------


async def test_timeout_ms_is_honoured(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/delay/3000"))
        curl.setopt(pycurl.TIMEOUT_MS, 300)
        t0 = time.monotonic()
        with pytest.raises(pycurl.error) as info:
            await multi.perform(curl)
        took = time.monotonic() - t0
        assert info.value.args[0] == pycurl.E_OPERATION_TIMEDOUT
        assert 0.25 <= took < 2.0


async def test_connect_timeout_on_a_silent_server(httpd):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/stall-head"))
        curl.setopt(pycurl.TIMEOUT_MS, 200)
        with pytest.raises(pycurl.error) as info:
            await multi.perform(curl)
        assert info.value.args[0] == pycurl.E_OPERATION_TIMEDOUT


class _SelectCounter(object):
    """Counts the loop's selector wake-ups."""

    def __init__(self, loop):
        self.selector = loop._selector
        self.real = self.selector.select
        self.calls = 0

    def __enter__(self):
        def select(timeout=None):
            self.calls += 1
            return self.real(timeout)
        self.selector.select = select
        return self

    def __exit__(self, *exc):
        del self.selector.select


async def test_idle_multi_wakes_the_loop_zero_times(httpd):
    loop = asyncio.get_running_loop()
    async with AsyncCurlMulti() as multi:
        await multi.perform(make(httpd.url("/bytes/100")))  # an idle connection stays cached
        await asyncio.sleep(0.05)
        assert multi._timer is None and multi._kick_handle is None
        with _SelectCounter(loop) as idle:
            await asyncio.sleep(0.5)
        # The sleep itself costs one or two selects: nothing else may run.
        assert idle.calls <= 2, idle.calls
        # The counter can see a poller: a 10 ms tick shows up ~50 times.
        async def poll():
            while True:
                await asyncio.sleep(0.01)
        task = asyncio.ensure_future(poll())
        with _SelectCounter(loop) as busy:
            await asyncio.sleep(0.5)
        task.cancel()
        assert busy.calls > 20


async def test_stalled_transfer_does_not_spin(httpd):
    loop = asyncio.get_running_loop()
    async with AsyncCurlMulti() as multi:
        actions = []
        real = multi._multi.socket_action

        def counting(fd, mask):
            actions.append(fd)
            return real(fd, mask)

        multi._multi.socket_action = counting
        curl = make(httpd.url("/stall"))
        fut = multi.add_handle(curl)
        await asyncio.sleep(0.2)
        del actions[:]
        with _SelectCounter(loop) as counter:
            await asyncio.sleep(0.5)
        assert not fut.done()
        assert len(actions) <= 2 and counter.calls <= 3, (actions, counter.calls)
        fut.cancel()


@pytest.mark.usefixtures("python_driver")  # internals of the Python driver
async def test_watchers_are_not_re_registered(httpd):
    loop = asyncio.get_running_loop()
    async with AsyncCurlMulti() as multi:
        await multi.perform(make(httpd.url("/bytes/1")))  # binds the loop
        calls = []
        if multi._ep is not None:
            multi._ep = _CountingEpoll(multi._ep, calls)
        else:
            for name in ("add_reader", "add_writer", "remove_reader", "remove_writer"):
                real = getattr(loop, name)
                setattr(loop, name, lambda fd, *a, _n=name, _r=real: (calls.append((_n, fd)), _r(fd, *a))[1])
        try:
            a, b = socket.socketpair()
            fd = a.fileno()
            try:
                # Repeating the registered mask is a no-op.
                multi._on_socket(pycurl.POLL_IN, fd, None, None)
                multi._on_socket(pycurl.POLL_IN, fd, None, None)
                assert len(calls) == 1
                multi._on_socket(pycurl.POLL_INOUT, fd, None, None)
                multi._on_socket(pycurl.POLL_INOUT, fd, None, None)
                assert len(calls) == 2  # one change: writable too
                multi._on_socket(pycurl.POLL_REMOVE, fd, None, None)
                multi._on_socket(pycurl.POLL_REMOVE, fd, None, None)
                assert multi._watch == {}
                assert len(calls) in (3, 4)  # epoll: unregister; loop: remove reader and writer
                assert fd not in loop._selector.get_map()
            finally:
                a.close()
                b.close()
            # A transfer on a cached connection: watched once, unwatched once.
            del calls[:]
            await multi.perform(make(httpd.url("/bytes/1000000")))
            assert len(calls) <= 3, calls
        finally:
            for name in ("add_reader", "add_writer", "remove_reader", "remove_writer"):
                loop.__dict__.pop(name, None)


# -- callbacks and driver failures ----------------------------------------------------


class Boom(Exception):
    pass


def _raiser(*args):
    raise Boom("from a callback")


@pytest.mark.parametrize("option", ["WRITEFUNCTION", "HEADERFUNCTION", "XFERINFOFUNCTION",
                                    "PROGRESSFUNCTION", "DEBUGFUNCTION", "SOCKOPTFUNCTION",
                                    "OPENSOCKETFUNCTION", "READFUNCTION", "SEEKFUNCTION"])
async def test_callback_exception_fails_only_that_transfer(httpd, option):
    async with AsyncCurlMulti() as multi:
        curl = make(httpd.url("/bytes/100000"))
        if option in ("XFERINFOFUNCTION", "PROGRESSFUNCTION"):
            curl.setopt(pycurl.NOPROGRESS, 0)
        if option == "DEBUGFUNCTION":
            curl.setopt(pycurl.VERBOSE, 1)
        if option in ("READFUNCTION", "SEEKFUNCTION"):
            curl.setopt(pycurl.URL, httpd.url("/redirect/10"))
            curl.setopt(pycurl.FOLLOWLOCATION, 1)
            curl.setopt(pycurl.POST, 1)
            curl.setopt(pycurl.POSTFIELDSIZE, 5)
            curl.setopt(pycurl.POSTREDIR, pycurl.REDIR_POST_ALL)
            if option == "SEEKFUNCTION":
                curl.setopt(pycurl.READFUNCTION, lambda n: b"abcde")
        curl.setopt(getattr(pycurl, option), _raiser)
        good = make(httpd.url("/bytes/100000"))
        fut, fut_good = multi.add_handle(curl), multi.add_handle(good)
        with pytest.raises(pycurl.error) as info:
            await fut
        assert isinstance(info.value.__cause__, Boom)
        assert info.value.__cause__ is curl.callback_error
        assert await fut_good is good


def test_keyboard_interrupt_in_a_callback_travels_as_itself(httpd):
    loop = asyncio.new_event_loop()
    multi = AsyncCurlMulti()
    try:
        def write(data):
            raise KeyboardInterrupt

        curl = make(httpd.url("/bytes/10"))
        curl.setopt(pycurl.WRITEFUNCTION, write)

        async def main():
            futs.append(multi.add_handle(curl))
            futs.append(multi.add_handle(make(httpd.url("/delay/100"))))
            await asyncio.sleep(5)

        futs = []
        with pytest.raises(KeyboardInterrupt):  # out of the loop, as from any callback
            loop.run_until_complete(main())
        assert isinstance(futs[0].exception(), KeyboardInterrupt)
        assert not futs[1].done()  # the other transfer is not failed by it
        assert loop.run_until_complete(futs[1]) is not None
        loop.run_until_complete(multi.aclose())
    finally:
        loop.close()


@pytest.mark.usefixtures("python_driver")  # internals of the Python driver
async def test_socket_action_failure_fails_pending_futures(httpd):
    async with AsyncCurlMulti() as multi:
        futs = [multi.add_handle(make(httpd.url("/delay/300"))) for _ in range(5)]
        await asyncio.sleep(0.05)
        real = multi._multi.socket_action
        boom = pycurl.error(pycurl.E_MULTI_INTERNAL_ERROR if hasattr(pycurl, "E_MULTI_INTERNAL_ERROR") else 4,
                            "injected")

        def failing(fd, mask):
            raise boom

        multi._multi.socket_action = failing
        results = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), 5)
        for res in results:
            assert isinstance(res, pycurl.error) and res.__cause__ is boom
        assert multi.futures() == ()
        multi._multi.socket_action = real
        assert await multi.perform(make(httpd.url("/bytes/10")))  # usable again


@pytest.mark.usefixtures("python_driver")  # internals of the Python driver
async def test_exception_in_the_socket_callback_fails_pending_futures(httpd):
    loop = asyncio.get_running_loop()
    async with AsyncCurlMulti() as multi:
        await multi.perform(make(httpd.url("/bytes/1")))  # binds the loop
        injected = OSError("injected watcher failure")
        real_ep = multi._ep
        if real_ep is not None:
            multi._ep = _CountingEpoll(real_ep, [], fail=injected)
        else:
            def broken_add_reader(fd, *args):
                raise injected
            loop.add_reader = broken_add_reader
        try:
            fut = multi.add_handle(make(httpd.url("/delay/100")))
            with pytest.raises(pycurl.error) as info:
                await asyncio.wait_for(fut, 5)
            assert info.value.__cause__ is injected
        finally:
            loop.__dict__.pop("add_reader", None)
            if real_ep is not None:
                multi._ep = real_ep
        # libcurl was never told: the multi is still usable.
        assert await multi.perform(make(httpd.url("/bytes/10")))


async def test_driver_failure_with_nothing_pending_is_reported(httpd):
    loop = asyncio.get_running_loop()
    seen = []
    loop.set_exception_handler(lambda loop, ctx: seen.append(ctx))
    try:
        async with AsyncCurlMulti() as multi:
            multi._loop = loop
            multi._driver_failed(RuntimeError("lost"))
        assert seen and "driver failed" in seen[0]["message"]
    finally:
        loop.set_exception_handler(None)


# -- fault servers --------------------------------------------------------------------


async def test_server_that_stalls(httpd):
    async with AsyncCurlMulti() as multi:
        body = []
        curl = make(httpd.url("/stall"), body)
        curl.setopt(pycurl.TIMEOUT_MS, 500)
        t0 = time.monotonic()
        with pytest.raises(pycurl.error) as info:
            await multi.perform(curl)
        assert info.value.args[0] == pycurl.E_OPERATION_TIMEDOUT
        assert 0.45 < time.monotonic() - t0 < 3
        assert b"".join(body) == b"x" * 10
        # and one that stops before its status line
        curl = make(httpd.url("/stall-head"))
        curl.setopt(pycurl.LOW_SPEED_LIMIT, 1)
        curl.setopt(pycurl.LOW_SPEED_TIME, 1)
        with pytest.raises(pycurl.error) as info:
            await multi.perform(curl)
        assert info.value.args[0] == pycurl.E_OPERATION_TIMEDOUT


async def test_server_that_resets_mid_body(httpd):
    async with AsyncCurlMulti() as multi:
        body = []
        with pytest.raises(pycurl.error) as info:
            await multi.perform(make(httpd.url("/reset"), body))
        assert info.value.args[0] in (pycurl.E_RECV_ERROR, pycurl.E_PARTIAL_FILE, pycurl.E_GOT_NOTHING)
        assert 0 < len(b"".join(body)) < (1 << 20)
        assert await multi.perform(make(httpd.url("/bytes/10")))


async def test_server_that_sends_garbage(httpd):
    async with AsyncCurlMulti() as multi:
        with pytest.raises(pycurl.error):
            await multi.perform(make(httpd.url("/garbage")))


async def test_server_that_closes_early(httpd):
    async with AsyncCurlMulti() as multi:
        with pytest.raises(pycurl.error) as info:
            await multi.perform(make(httpd.url("/close")))
        assert info.value.args[0] == pycurl.E_PARTIAL_FILE


# -- load, fairness, leaks ----------------------------------------------------------


async def test_two_thousand_concurrent_transfers(httpd):
    fd_base = count_fds()
    async with AsyncCurlMulti() as multi:
        peak = [0]

        async def sample():
            while True:
                peak[0] = max(peak[0], len(multi._watch))
                await asyncio.sleep(0.02)

        sampler = asyncio.ensure_future(sample())
        bodies = [[] for _ in range(2000)]
        curls = [make(httpd.url("/delay/300" if i % 2 else "/bytes/%d" % (i * 7)), bodies[i])
                 for i in range(2000)]
        t0 = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*[multi.add_handle(c) for c in curls]), 60)
        took = time.monotonic() - t0
        sampler.cancel()
        assert results == curls
        for i, body in enumerate(bodies):
            assert b"".join(body) == (b"ok" if i % 2 else body_bytes(i * 7))
        assert peak[0] >= 900, peak  # the delayed half was in flight at once
        assert took < 30
    gc.collect()
    assert count_fds() <= fd_base


async def test_fair_progress_of_paced_transfers(httpd):
    # 1000 transfers, each 10 chunks 20 ms apart: with no starvation every
    # one takes about 200 ms and they all end together.
    async with AsyncCurlMulti() as multi:
        ends = {}
        t0 = time.monotonic()
        curls = [make(httpd.url("/drip/10/100/20")) for _ in range(1000)]
        futs = [multi.add_handle(c) for c in curls]
        for i, fut in enumerate(futs):
            fut.add_done_callback(lambda f, i=i: ends.setdefault(i, time.monotonic() - t0))
        await asyncio.wait_for(asyncio.gather(*futs), 60)
        spans = sorted(ends.values())
        assert spans[0] >= 0.18
        assert spans[-1] - spans[0] < 3.0, (spans[0], spans[-1])  # starved ones would trail far behind


async def test_fair_progress_of_bulk_transfers(httpd):
    # 30 bodies of 8 MiB start together.  libcurl reads a large batch per
    # socket_action (and re-runs transfers with data pending on every call),
    # so the guarantee of the driver is per loop iteration: every ready socket
    # is served in the iteration in which it is ready.  So by the end of the
    # iteration in which the first transfer completes, all have data.
    size, n = 8 << 20, 30
    loop = asyncio.get_running_loop()
    async with AsyncCurlMulti() as multi:
        got = [0] * n
        snapshot = []

        def writer(i):
            def write(data):
                got[i] += len(data)
                if got[i] == size and not snapshot:
                    loop.call_soon(lambda: snapshot.append(list(got)))
            return write

        futs = []
        key = uuid.uuid4().hex  # not id(multi): a later multi may get the same address
        for i in range(n):
            curl = make(httpd.url("/together/bulk%s/%d/%d" % (key, n, size)))
            curl.setopt(pycurl.WRITEFUNCTION, writer(i))
            futs.append(multi.add_handle(curl))
        await asyncio.gather(*futs)
        assert min(snapshot[0]) > 0, snapshot
        assert got == [size] * n


async def test_no_fd_leak_after_aclose(httpd):
    async def run():
        multi = AsyncCurlMulti()
        curls = [make(httpd.url("/delay/%d" % (i % 50))) for i in range(300)]
        futs = [multi.add_handle(c) for c in curls]
        await asyncio.gather(*futs[:150])
        await multi.aclose()  # the rest are in flight
        for c in curls:
            c.close()

    await run()  # warm up libcurl's one-time descriptors
    gc.collect()
    before = count_fds()
    for _ in range(3):
        await run()
    gc.collect()
    assert count_fds() == before


# -- uvloop ---------------------------------------------------------------------------


async def _uvloop_scenario(url):
    loop = asyncio.get_running_loop()
    async with AsyncCurlMulti() as multi:
        bodies = [[] for _ in range(300)]
        curls = [make(url("/bytes/%d" % (i * 100)), bodies[i]) for i in range(300)]
        assert await asyncio.gather(*[multi.add_handle(c) for c in curls]) == curls
        assert all(b"".join(b) == body_bytes(i * 100) for i, b in enumerate(bodies))
        slow = make(url("/delay/5000"))
        fut = multi.add_handle(slow)
        await asyncio.sleep(0.02)
        fut.cancel()
        assert not attached(slow, multi)
        timed = make(url("/delay/3000"))
        timed.setopt(pycurl.TIMEOUT_MS, 200)
        with pytest.raises(pycurl.error):
            await multi.perform(timed)
        # idle: no socket_action at all
        actions = []
        real = multi._multi.socket_action
        multi._multi.socket_action = lambda fd, mask: (actions.append(fd), real(fd, mask))[1]
        await asyncio.sleep(0.3)
        assert actions == [] and multi._timer is None
        async with multi.stream(make(url("/bytes/3000000")), max_buffer=65536) as stream:
            data = []
            async for chunk in stream:
                data.append(chunk)
                await asyncio.sleep(0)
        assert b"".join(data) == body_bytes(3000000)
        assert stream.pauses > 0
    return type(loop).__module__


@pytest.mark.skipif(uvloop is None, reason="uvloop is not installed (PyPy)")
def test_uvloop(httpd):
    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(_uvloop_scenario(httpd.url)).startswith("uvloop")
    finally:
        loop.close()


def test_default_loop_scenario(httpd):
    assert asyncio.run(_uvloop_scenario(httpd.url)).startswith("asyncio")


# -- seed 003's examples, unchanged (with a local URL) -------------------------------


def test_seed_examples(httpd, capfd):
    import curlmulti as pycurl  # noqa: F811 -- as the examples are written
    URL = httpd.url("/status/200")
    urls = [httpd.url("/bytes/0?n=%d" % n) for n in (1, 2, 3)]  # empty bodies: stdout stays clean

    async def example():
        async with pycurl.AsyncCurlMulti() as multi:
            curl = pycurl.Curl()
            curl.setopt(pycurl.URL, URL)
            await multi.perform(curl)
            print(curl.getinfo(pycurl.RESPONSE_CODE))

    async def batch_example():
        async with pycurl.AsyncCurlMulti() as multi:
            for url in urls:
                curl = pycurl.Curl()
                curl.setopt(pycurl.URL, url)
                multi.add_handle(curl)
            results = await asyncio.gather(*multi.futures())
        return results

    asyncio.run(example())
    results = asyncio.run(batch_example())
    assert [c.getinfo(pycurl.EFFECTIVE_URL) for c in results] == urls
    assert "200" in capfd.readouterr().out
