"""The native event core: CurlMulti.event_fileno()/event_timeout()/run_ready()
in plain loops, and AsyncCurlMulti on it (no Python per socket event), and
the completed() batch iterator on both drivers.

The server is tests/test_async_httpd.py, run in a subprocess."""

import asyncio
import os
import selectors
import sys

import pytest

from curlmulti import _callbacks

import curlmulti as pycurl
from curlmulti import AsyncCurlMulti
from test_async_httpd import Server, body_bytes

try:
    import curlmulti._eventcore as _eventcore
    NATIVE = _eventcore.AVAILABLE
except ImportError:  # pragma: no cover
    NATIVE = False

needs_core = pytest.mark.skipif(not NATIVE, reason="no native event core on this platform")


@pytest.fixture(scope="module")
def httpd():
    server = Server()
    yield server
    server.close()


def make(url, sink=None):
    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, url)
    curl.setopt(pycurl.WRITEFUNCTION, sink.append if sink is not None else (lambda data: None))
    return curl


def count_fds():
    return len(os.listdir("/proc/self/fd"))


def drive(multi, want, limit=2000):
    """A plain selectors loop over run_ready(): the finished transfers."""
    sel = selectors.DefaultSelector()
    sel.register(multi.event_fileno(), selectors.EVENT_READ)  # installed before the adds
    ok, failed = [], []
    try:
        for _ in range(limit):
            if len(ok) + len(failed) >= want:
                break
            ms = multi.event_timeout()
            sel.select(None if ms < 0 else ms / 1000.0)
            _, o, f = multi.run_ready()
            ok += o
            failed += f
    finally:
        sel.close()
    return ok, failed


# -- CurlMulti's public fast path ----------------------------------------------


@needs_core
def test_run_ready_in_a_selectors_loop(httpd):
    with pycurl.CurlMulti() as multi:
        multi.event_fileno()
        bodies = {}
        for i in range(40):
            chunks = []
            curl = make(httpd.url("/bytes/%d" % (1000 + i)), chunks)
            bodies[curl] = (1000 + i, chunks)
            multi.add_handle(curl)
        ok, failed = drive(multi, 40)
        assert failed == [] and sorted(ok, key=id) == sorted(bodies, key=id)
        for curl, (n, chunks) in bodies.items():
            assert b"".join(chunks) == body_bytes(n)
            assert curl not in multi  # already removed by run_ready()
            assert curl.getinfo(pycurl.RESPONSE_CODE) == 200
        assert multi.run_ready() == (0, [], [])
        assert multi.event_timeout() == -1  # idle: nothing to wait for


@needs_core
def test_run_ready_reports_failures_with_the_callback_exception(httpd):
    boom = ValueError("boom")

    def write(data):
        raise boom

    with pycurl.CurlMulti() as multi:
        multi.event_fileno()
        bad = make(httpd.url("/bytes/100"))
        bad.setopt(pycurl.WRITEFUNCTION, write)
        good = make(httpd.url("/bytes/100"))
        refused = make("http://127.0.0.1:1/")
        for curl in (bad, good, refused):
            multi.add_handle(curl)
        ok, failed = drive(multi, 3)
        assert ok == [good]
        codes = {curl: code for curl, code, _ in failed}
        assert codes[bad] == pycurl.E_WRITE_ERROR and bad.callback_error is boom
        assert codes[refused] == pycurl.E_COULDNT_CONNECT
        assert all(c not in multi for c in (bad, good, refused))


@needs_core
def test_a_curl_closed_by_its_write_callback_during_run_ready(httpd):
    with pycurl.CurlMulti() as multi:
        multi.event_fileno()
        closing = make(httpd.url("/bytes/300000"))

        def write(data):
            closing.close()  # deferred until run_ready's libcurl call returns

        closing.setopt(pycurl.WRITEFUNCTION, write)
        other = make(httpd.url("/bytes/10"))
        multi.add_handle(closing)
        multi.add_handle(other)
        ok, failed = drive(multi, 1)
        assert ok == [other] and failed == []
        assert closing.closed and closing not in multi
        assert multi.run_ready()[0] == 0


@needs_core
def test_event_core_and_python_socket_callbacks_exclude_each_other():
    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_SOCKETFUNCTION, lambda *a: None)
    with pytest.raises(pycurl.error, match="M_SOCKETFUNCTION"):
        multi.event_fileno()
    multi.setopt(pycurl.M_SOCKETFUNCTION, None)
    fd = multi.event_fileno()
    assert multi.event_fileno() == fd  # installed once
    with pytest.raises(pycurl.error, match="event core"):
        multi.setopt(pycurl.M_TIMERFUNCTION, lambda ms: None)
    multi.close()
    with pytest.raises(pycurl.error):
        multi.event_fileno()
    assert multi.event_timeout() == -1


@needs_core
def test_the_core_comes_before_the_handles(httpd):
    with pycurl.CurlMulti() as multi:
        multi.add_handle(make(httpd.url("/bytes/10")))
        with pytest.raises(pycurl.error, match="before the first add_handle"):
            multi.event_fileno()


def test_run_ready_needs_the_core():
    with pycurl.CurlMulti() as multi:
        with pytest.raises(pycurl.error, match="event_fileno"):
            multi.run_ready()


@needs_core
def test_the_core_releases_its_descriptors(httpd):
    before = count_fds()
    for _ in range(20):
        multi = pycurl.CurlMulti()
        multi.event_fileno()
        multi.add_handle(make(httpd.url("/bytes/10")))
        drive(multi, 1)
        multi.close()
    dropped = pycurl.CurlMulti()
    dropped.event_fileno()
    del dropped  # the finalizer tears it down (CPython: at once)
    if sys.implementation.name == "cpython":
        assert count_fds() == before


# -- AsyncCurlMulti on the core ---------------------------------------------------


class _Profiler(object):
    """Counts calls of Python functions by name (sys.setprofile)."""

    def __init__(self, names):
        self.names = names
        self.calls = dict.fromkeys(names, 0)

    def __call__(self, frame, event, arg):
        if event == "call":
            name = frame.f_code.co_name
            if name in self.calls:
                self.calls[name] += 1

    def __enter__(self):
        sys.setprofile(self)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)


_TRAMPOLINES = ("cm_socket_cb", "cm_timer_cb", "cm_write_cb", "_on_socket_epoll", "_on_timer",
                "_run_native", "_on_ready", "_body")


def _body(data):
    """A write callback the profiler can name (on CPython libcurl calls it
    from a C trampoline, with no Python frame of the library's)."""
    return None


def make_named(url):
    curl = make(url)
    curl.setopt(pycurl.WRITEFUNCTION, _body)
    return curl


@needs_core
async def test_no_python_runs_per_socket_event(httpd, monkeypatch):
    """The native driver: libcurl's socket and timer callbacks never enter
    Python, and Python runs once per wake-up, not once per event."""
    monkeypatch.setattr(AsyncCurlMulti, "_use_native", True)
    monkeypatch.setattr(AsyncCurlMulti, "_use_epoll", True)
    async with AsyncCurlMulti() as multi:
        assert multi._core is not None
        await multi.perform(make(httpd.url("/bytes/10")))  # binds the loop, warms up
        core = multi._core
        sockets, events = core.socket_calls, core.socket_calls + core.timer_calls
        with _Profiler(_TRAMPOLINES) as prof:
            # a delayed answer: every socket must be watched for it (a fast one
            # may be read in the call that sent the request)
            await asyncio.gather(*[multi.add_handle(make_named(httpd.url("/delay/20")))
                                   for _ in range(50)])
        sockets = core.socket_calls - sockets
        events = core.socket_calls + core.timer_calls - events
        calls = prof.calls
    assert sockets >= 50, (sockets, events)  # libcurl did call them: 50 new connections watched
    assert calls["cm_socket_cb"] == 0 and calls["cm_timer_cb"] == 0
    assert calls["_on_socket_epoll"] == 0 and calls["_on_timer"] == 0
    assert calls["_body"] >= 50  # the profiler sees Python called from libcurl: the bodies' callback
    if _callbacks.C_WRITE:
        assert calls["cm_write_cb"] == 0  # CPython: called from the C trampoline
    assert 0 < calls["_run_native"] < events, (calls, events)


async def test_the_python_driver_runs_python_per_socket_event(httpd, monkeypatch):
    """The counterpart of the test above on the fallback: the profiler does
    see libcurl's socket and timer callbacks when they are Python."""
    monkeypatch.setattr(AsyncCurlMulti, "_use_native", False)
    async with AsyncCurlMulti() as multi:
        assert multi._core is None
        await multi.perform(make(httpd.url("/bytes/10")))
        with _Profiler(_TRAMPOLINES) as prof:
            # a delayed answer: every socket must be watched for it (a fast one
            # may be read in the call that sent the request)
            await asyncio.gather(*[multi.add_handle(make(httpd.url("/delay/20")))
                                   for _ in range(50)])
    assert prof.calls["cm_socket_cb"] >= 50 and prof.calls["cm_timer_cb"] >= 1, prof.calls


@needs_core
async def test_native_driver_is_idle_without_transfers(httpd, monkeypatch):
    monkeypatch.setattr(AsyncCurlMulti, "_use_native", True)
    monkeypatch.setattr(AsyncCurlMulti, "_use_epoll", True)
    async with AsyncCurlMulti() as multi:
        await multi.perform(make(httpd.url("/bytes/10")))
        await asyncio.sleep(0)
        core = multi._core
        actions = core.actions
        runs = []
        real = multi._run_native
        multi._run_native = lambda flags: (runs.append(flags), real(flags))[1]
        await asyncio.sleep(0.3)
        assert runs == [] and core.actions == actions and multi._timer is None
        assert multi._watch == {} or all(fd >= 0 for fd in multi._watch)


@needs_core
async def test_native_driver_watches_one_descriptor(httpd, monkeypatch):
    monkeypatch.setattr(AsyncCurlMulti, "_use_native", True)
    monkeypatch.setattr(AsyncCurlMulti, "_use_epoll", True)
    loop = asyncio.get_running_loop()
    before = set(loop._selector.get_map())
    async with AsyncCurlMulti() as multi:
        futs = [multi.add_handle(make(httpd.url("/drip/1000/100/10"))) for _ in range(10)]
        await asyncio.sleep(0.2)
        assert len(multi._watch) >= 10  # libcurl's sockets, in the core's epoll set
        added = set(loop._selector.get_map()) - before
        assert added == {multi._ep.fileno()}
        for fut in futs:
            fut.cancel()
        await asyncio.sleep(0.05)
        assert multi._watch == {} or len(multi._watch) < 10
    assert set(loop._selector.get_map()) == before


# -- completed(): the batch iterator, on both drivers -------------------------------


@pytest.fixture(params=["native", "python"])
def driver(request, monkeypatch):
    if request.param == "native" and not NATIVE:
        pytest.skip("no native event core here")
    monkeypatch.setattr(AsyncCurlMulti, "_use_native", request.param == "native")
    return request.param


async def test_completed_yields_every_transfer_once(httpd, driver):
    async with AsyncCurlMulti() as multi:
        curls = [make(httpd.url("/bytes/%d" % n)) for n in range(1, 31)]
        failing = make("http://127.0.0.1:1/")
        for curl in curls + [failing]:
            multi.add_handle(curl)
        seen = {}
        late = make(httpd.url("/bytes/5"))
        async for curl, exc in multi.completed():
            assert curl not in seen
            seen[curl] = exc
            if late not in seen and len(seen) == 1:
                multi.add_handle(late)  # added while iterating: included
        assert set(seen) == set(curls + [failing, late])
        assert all(seen[c] is None for c in curls + [late])
        assert isinstance(seen[failing], pycurl.error)
        assert seen[failing].args[0] == pycurl.E_COULDNT_CONNECT
        assert multi.futures() == ()


async def test_completed_leaves_out_cancelled_transfers(httpd, driver):
    async with AsyncCurlMulti() as multi:
        slow = multi.add_handle(make(httpd.url("/delay/5000")))
        quick = make(httpd.url("/bytes/10"))
        multi.add_handle(quick)
        got = []
        async for curl, exc in multi.completed():
            got.append((curl, exc))
            slow.cancel()
        assert got == [(quick, None)]


async def test_completed_with_nothing_registered_ends_at_once(driver):
    async with AsyncCurlMulti() as multi:
        assert [item async for item in multi.completed()] == []


@needs_core
async def test_a_failing_epoll_set_fails_pending_futures(httpd, monkeypatch):
    """The native counterpart of the driver-failure tests: the core's epoll
    descriptor replaced behind its back (epoll_ctl and epoll_wait then fail
    with EINVAL) fails the pending transfers with ``error``."""
    monkeypatch.setattr(AsyncCurlMulti, "_use_native", True)
    monkeypatch.setattr(AsyncCurlMulti, "_use_epoll", True)
    async with AsyncCurlMulti() as multi:
        await multi.perform(make(httpd.url("/bytes/1")))  # binds the loop
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            os.dup2(null, multi._ep.fileno())  # the core closes it with the multi
        finally:
            os.close(null)
        fut = multi.add_handle(make(httpd.url("/delay/100")))
        with pytest.raises(pycurl.error, match="epoll"):
            await asyncio.wait_for(fut, 5)
        assert multi.futures() == ()
