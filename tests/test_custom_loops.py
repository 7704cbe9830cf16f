"""CurlMulti's event core from event loops other than asyncio's own driver:
trio (``trio.lowlevel.wait_readable``) and anyio (``anyio.wait_readable``, on
its asyncio and trio backends), each waiting for ``event_fileno()`` or
``event_timeout()`` and then calling ``run_ready()`` once, as docs/async.md
shows.  What AsyncCurlMulti's tests check of its driver is checked here of
such a loop: every transfer accounted for once, failures with their code, a
cancelled wait leaves no handle attached, and an idle transfer does not make
the loop spin.

The server is tests/test_async_httpd.py, run in a subprocess."""

import math

import pytest

import curlmulti as pycurl
from curlmulti import _eventcore
from test_async_httpd import Server, body_bytes

trio = pytest.importorskip("trio")
anyio = pytest.importorskip("anyio")

pytestmark = pytest.mark.skipif(not _eventcore.AVAILABLE, reason="no native event core on this platform")


@pytest.fixture(scope="module")
def httpd():
    server = Server()
    yield server
    server.close()


def new_curl(url):
    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, url)
    sink = pycurl.Buffer()
    curl.setopt(pycurl.WRITEDATA, sink)
    return curl, sink


class Loop(object):
    """One wait primitive (trio's or anyio's) driving a CurlMulti over
    run_ready(); counts its wake-ups."""

    def __init__(self, multi, wait_readable, move_on_after):
        self.multi = multi
        self.fd = multi.event_fileno()  # before the first add_handle()
        self.wait_readable = wait_readable
        self.move_on_after = move_on_after
        self.wakeups = 0

    async def run(self, want):
        """Until want transfers have finished: (ok, failed)."""
        ok, failed = [], []
        while len(ok) + len(failed) < want:
            ms = self.multi.event_timeout()
            with self.move_on_after(math.inf if ms < 0 else ms / 1000.0):
                await self.wait_readable(self.fd)
            self.wakeups += 1
            _, o, f = self.multi.run_ready()
            ok += o
            failed += f
        return ok, failed


def trio_loop(multi):
    return Loop(multi, trio.lowlevel.wait_readable, trio.move_on_after)


def anyio_loop(multi):
    return Loop(multi, anyio.wait_readable, anyio.move_on_after)


def fetch_many(httpd, refused_url, make_loop, run):
    """40 transfers of distinct sizes and one that cannot connect, in one
    multi driven by the loop: every one finished once, the bodies right."""
    multi = pycurl.CurlMulti()
    try:
        loop = make_loop(multi)
        curls = {}
        for i in range(40):
            curl, sink = new_curl(httpd.url("/bytes/%d" % (500 + 37 * i)))
            curls[curl] = (500 + 37 * i, sink)
            multi.add_handle(curl)
        refused, _ = new_curl(refused_url)
        multi.add_handle(refused)
        ok, failed = run(loop, 41)
        assert sorted(ok, key=id) == sorted(curls, key=id)
        for curl, (n, sink) in curls.items():
            assert sink.getvalue() == body_bytes(n)
            assert curl.getinfo(pycurl.RESPONSE_CODE) == 200
            assert curl not in multi
        assert len(failed) == 1
        curl, code, message = failed[0]
        assert curl is refused and code == pycurl.E_COULDNT_CONNECT and message
        assert multi.run_ready() == (0, [], [])
        assert multi.event_timeout() == -1
        return loop
    finally:
        multi.close()


def test_trio_loop_runs_every_transfer_once(httpd, refused_port):
    def run(loop, want):
        return trio.run(loop.run, want)
    fetch_many(httpd, refused_port("/"), trio_loop, run)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_loop_runs_every_transfer_once(httpd, refused_port, backend):
    def run(loop, want):
        return anyio.run(loop.run, want, backend=backend)
    fetch_many(httpd, refused_port("/"), anyio_loop, run)


def test_trio_cancelled_wait_leaves_nothing_attached(httpd):
    """A trio cancel scope that expires while the transfers wait: the loop
    is cancelled in wait_readable(), close() detaches what is left, and the
    handles run again in a new multi."""
    curls = [new_curl(httpd.url("/delay/5000"))[0] for _ in range(3)]
    multi = pycurl.CurlMulti()
    loop = trio_loop(multi)
    for curl in curls:
        multi.add_handle(curl)

    async def main():
        with trio.move_on_after(0.2) as scope:
            await loop.run(len(curls))
        return scope.cancelled_caught

    try:
        assert trio.run(main) is True
        assert all(curl in multi for curl in curls)  # still running: the loop was cancelled
    finally:
        multi.close()
    assert not any(curl in multi for curl in curls)
    # The handles are idle and usable again.
    again = pycurl.CurlMulti()
    try:
        loop = trio_loop(again)
        for curl in curls:
            curl.setopt(pycurl.URL, httpd.url("/bytes/10"))
            curl.setopt(pycurl.WRITEDATA, pycurl.Buffer())
            again.add_handle(curl)
        ok, failed = trio.run(loop.run, len(curls))
        assert failed == [] and sorted(ok, key=id) == sorted(curls, key=id)
    finally:
        again.close()


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_stalled_transfer_does_not_make_the_loop_spin(httpd, backend):
    """A transfer whose server never answers: the loop sleeps in its wait
    (on the epoll set, with libcurl's own timeout, if any) instead of waking
    up over and over."""
    multi = pycurl.CurlMulti()
    try:
        loop = trio_loop(multi) if backend == "trio" else anyio_loop(multi)
        curl, _ = new_curl(httpd.url("/stall-head"))
        multi.add_handle(curl)

        async def main():
            with anyio.move_on_after(0.5):
                await loop.run(1)

        anyio.run(main, backend=backend)
        # Connect, send the request, then nothing: a handful of wake-ups.  A
        # loop that spins (an fd always readable, a timeout of 0) makes
        # thousands in 0.5 s.
        assert loop.wakeups <= 10, loop.wakeups
        assert curl in multi
    finally:
        multi.close()
