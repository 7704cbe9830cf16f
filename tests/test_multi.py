"""CurlMulti: the pycurl multi interface (seed 001), method by method, and what
curlmulti adds (wait/poll/wakeup, callback exceptions raised, not printed).

Transfers run against the session servers of conftest.py; lifetimes that could
crash the interpreter are in test_multi_lifetimes.py (subprocesses), load and
the crawler example in test_multi_load.py."""

import gc
import io
import select
import sys
import threading
import time
import weakref

import pytest

import curlmulti as pycurl
from curlmulti import Curl, CurlMulti, error

IS_PYPY = sys.implementation.name == "pypy"
M_OPTIONS = sorted(name for name in dir(pycurl) if name.startswith("M_"))
M_INT_OPTIONS = [name for name in (
    "M_MAXCONNECTS", "M_MAX_HOST_CONNECTIONS", "M_MAX_TOTAL_CONNECTIONS", "M_PIPELINING",
    "M_MAX_CONCURRENT_STREAMS", "M_MAX_PIPELINE_LENGTH", "M_CONTENT_LENGTH_PENALTY_SIZE",
    "M_CHUNK_LENGTH_PENALTY_SIZE") if hasattr(pycurl, name)]


# ---------------------------------------------------------------- helpers

def collect():
    for _ in range(3):
        gc.collect()


def easy(url, **opts):
    """A Curl for url whose body goes to ``curl.body`` (a BytesIO)."""
    c = Curl()
    c.setopt(pycurl.URL, url)
    c.body = io.BytesIO()
    c.setopt(pycurl.WRITEFUNCTION, c.body.write)
    for name, value in opts.items():
        c.setopt(getattr(pycurl, name), value)
    return c


def drive(m, timeout=15.0):
    """The canonical perform()/select() loop until nothing runs."""
    deadline = time.monotonic() + timeout
    _, running = m.perform()
    while running:
        assert time.monotonic() < deadline, "the multi did not finish in %.0f s" % timeout
        if m.select(1.0) == 0:
            continue
        _, running = m.perform()


def drain(m):
    """Every message info_read has: (ok list, error list)."""
    ok, failed = [], []
    while True:
        queued, o, f = m.info_read()
        ok += o
        failed += f
        if not queued:
            return ok, failed


def run(m, curls, timeout=15.0):
    for c in curls:
        m.add_handle(c)
    drive(m, timeout)
    return drain(m)


@pytest.fixture
def multi():
    m = CurlMulti()
    yield m
    m.close()


# ---------------------------------------------------------------- construction, close

def test_constants_are_attributes_of_the_object():
    m = CurlMulti()
    assert M_OPTIONS
    for name in M_OPTIONS:
        assert getattr(m, name) == getattr(pycurl, name) == getattr(CurlMulti, name)
    for name in ("POLL_IN", "POLL_REMOVE", "SOCKET_TIMEOUT", "CSELECT_IN", "E_CALL_MULTI_PERFORM"):
        assert getattr(m, name) == getattr(pycurl, name)
    m.close()


def test_close_is_idempotent_and_closed_reports_it():
    m = CurlMulti()
    assert not m.closed
    m.close()
    assert m.closed
    m.close()
    assert m.closed
    assert "closed" in repr(m)


@pytest.mark.parametrize("call", [
    lambda m: m.perform(), lambda m: m.socket_action(pycurl.SOCKET_TIMEOUT, 0),
    lambda m: m.socket_all(), lambda m: m.add_handle(Curl()), lambda m: m.remove_handle(Curl()),
    lambda m: m.info_read(), lambda m: m.timeout(), lambda m: m.fdset(), lambda m: m.select(0.1),
    lambda m: m.setopt(pycurl.M_MAXCONNECTS, 1), lambda m: m.assign(3, "x"),
    lambda m: m.unassign(3), lambda m: m.wait(10), lambda m: m.poll(10), lambda m: m.wakeup(),
], ids=["perform", "socket_action", "socket_all", "add_handle", "remove_handle", "info_read",
        "timeout", "fdset", "select", "setopt", "assign", "unassign", "wait", "poll", "wakeup"])
def test_every_method_of_a_closed_multi_raises_error(call):
    m = CurlMulti()
    m.close()
    with pytest.raises(error, match="closed"):
        call(m)


def test_close_removes_handles_but_leaves_them_open_by_default(fast_server):
    m = CurlMulti()
    curls = [easy(fast_server("/get")) for _ in range(3)]
    for c in curls:
        m.add_handle(c)
    m.close()
    for c in curls:
        assert not c.closed
        assert c not in m
    ok, failed = run(CurlMulti(), curls)  # free to join another multi
    assert len(ok) == 3 and not failed


def test_close_handles_true_closes_them():
    m = CurlMulti(close_handles=True)
    curls = [Curl() for _ in range(3)]
    for c in curls:
        m.add_handle(c)
    m.close()
    assert all(c.closed for c in curls)


def test_handles_removed_individually_are_never_closed():
    m = CurlMulti(close_handles=True)
    c = Curl()
    m.add_handle(c)
    m.remove_handle(c)
    m.close()
    assert not c.closed
    c.close()


@pytest.mark.parametrize("close_handles", [False, True])
def test_context_manager(close_handles):
    c = Curl()
    with CurlMulti(close_handles=close_handles) as m:
        assert not m.closed
        m.add_handle(c)
    assert m.closed
    assert c.closed is close_handles
    assert c not in m
    c.close()


def test_context_manager_closes_on_exception():
    with pytest.raises(ZeroDivisionError):
        with CurlMulti() as m:
            1 / 0
    assert m.closed


@pytest.mark.parametrize("where", ["timer", "write"])
def test_close_from_inside_a_callback_raises_error(fast_server, where):
    m = CurlMulti()
    seen = []

    def attempt(*args):
        if not seen:
            try:
                m.close()
            except error as e:
                seen.append(e)
            else:
                seen.append(None)

    c = easy(fast_server("/get"))
    if where == "timer":
        m.setopt(pycurl.M_TIMERFUNCTION, attempt)
    else:
        c.setopt(pycurl.WRITEFUNCTION, attempt)
    ok, failed = run(m, [c])
    assert len(seen) == 1 and isinstance(seen[0], error)
    assert "running" in str(seen[0])
    assert not m.closed and ok == [c]
    m.close()
    assert m.closed


def test_close_from_a_callback_that_lets_the_error_escape(fast_server):
    m = CurlMulti()
    m.setopt(pycurl.M_TIMERFUNCTION, lambda ms: m.close())
    with pytest.raises(error) as info:
        m.add_handle(easy(fast_server("/get")))
    assert isinstance(info.value.__cause__, error)
    assert not m.closed
    m.close()


# ---------------------------------------------------------------- add_handle / remove_handle

def test_add_handle_keeps_the_curl_alive(fast_server):
    m = CurlMulti()
    c = easy(fast_server("/bytes/100"))
    ref = weakref.ref(c)
    m.add_handle(c)
    del c
    collect()
    assert ref() is not None
    drive(m)
    ok, failed = drain(m)
    assert ok == [ref()] and not failed
    assert len(ok[0].body.getvalue()) == 100
    m.remove_handle(ok[0])
    del ok
    collect()
    assert ref() is None
    m.close()


def test_remove_handle_releases_the_curl(multi):
    c = Curl()
    ref = weakref.ref(c)
    multi.add_handle(c)
    assert c in multi
    multi.remove_handle(c)
    assert c not in multi
    del c
    collect()
    assert ref() is None


def test_close_releases_the_curls():
    m = CurlMulti()
    refs = []
    for _ in range(5):
        c = Curl()
        refs.append(weakref.ref(c))
        m.add_handle(c)
    del c
    m.close()
    collect()
    assert all(r() is None for r in refs)


def test_a_curl_does_not_keep_its_multi_alive():
    m = CurlMulti()
    c = Curl()
    m.add_handle(c)
    ref = weakref.ref(m)
    del m
    collect()
    assert ref() is None
    # The dropped multi detached it.
    m2 = CurlMulti()
    m2.add_handle(c)
    m2.close()
    c.close()


@pytest.mark.skipif(IS_PYPY, reason="CPython frees by reference count")
def test_a_dropped_multi_is_freed_at_once_and_detaches_its_handles(fast_server):
    m = CurlMulti()
    m.setopt(pycurl.M_TIMERFUNCTION, lambda ms: None)
    m.setopt(pycurl.M_SOCKETFUNCTION, lambda *a: None)
    c = easy(fast_server("/get"))
    m.add_handle(c)
    m.perform()
    ref = weakref.ref(m)
    gc.disable()
    try:
        del m
        assert ref() is None                 # no cycle through libcurl's callback data
        assert run(CurlMulti(), [c])[0] == [c]
    finally:
        gc.enable()


def test_a_handle_of_a_dropped_multi_joins_another_once_it_is_collected(fast_server):
    # A dropped multi that waits for the collector (a cycle here, and always
    # on PyPy) still holds its handles: add_handle() refuses them (it never
    # runs the collector itself) until the collector has freed the multi.
    m = CurlMulti()
    m.cycle = m
    c = easy(fast_server("/get"))
    m.add_handle(c)
    del m
    other = CurlMulti()
    with pytest.raises(error, match="another CurlMulti"):
        other.add_handle(c)
    for _ in range(3):
        gc.collect()
    assert run(other, [c])[0] == [c]


def test_add_twice_raises_error(multi):
    c = Curl()
    multi.add_handle(c)
    with pytest.raises(error, match="already attached to this"):
        multi.add_handle(c)
    assert c in multi


def test_add_to_two_multis_raises_error(multi):
    c = Curl()
    multi.add_handle(c)
    other = CurlMulti()
    with pytest.raises(error, match="another"):
        other.add_handle(c)
    assert c not in other
    with pytest.raises(error, match="not attached"):
        other.remove_handle(c)
    multi.remove_handle(c)
    other.add_handle(c)
    other.close()


def test_add_closed_handle_raises_error(multi):
    c = Curl()
    c.close()
    with pytest.raises(error, match="closed"):
        multi.add_handle(c)
    assert c not in multi


@pytest.mark.parametrize("value", [None, 1, "x", object()])
def test_add_and_remove_take_only_curls(multi, value):
    with pytest.raises(TypeError):
        multi.add_handle(value)
    with pytest.raises(TypeError):
        multi.remove_handle(value)


def test_remove_a_handle_that_is_not_attached_raises_error(multi):
    with pytest.raises(error, match="not attached"):
        multi.remove_handle(Curl())


def test_remove_a_closed_handle_is_accepted_as_pycurl_does(multi):
    c = Curl()
    multi.add_handle(c)
    c.close()  # detaches first
    assert c not in multi
    multi.remove_handle(c)
    never_added = Curl()
    never_added.close()
    multi.remove_handle(never_added)


def test_easy_perform_of_an_attached_handle_raises_error(multi):
    c = Curl()
    multi.add_handle(c)
    with pytest.raises(error, match="attached"):
        c.perform()


def test_readd_after_remove_runs_again(fast_server, multi):
    c = easy(fast_server("/bytes/10"))
    for _ in range(3):
        c.body.seek(0)
        c.body.truncate()
        ok, failed = run(multi, [c])
        assert ok == [c] and c.body.getvalue() == bytes(range(10))
        multi.remove_handle(c)


# ---------------------------------------------------------------- perform, socket_action, socket_all

def test_perform_returns_status_and_running(fast_server, multi):
    assert multi.perform() == (0, 0)
    multi.add_handle(easy(fast_server("/get")))
    status, running = multi.perform()
    assert status == 0 and running in (0, 1)
    drive(multi)
    assert multi.perform() == (0, 0)


def test_socket_action_and_socket_all(multi):
    assert multi.socket_action(pycurl.SOCKET_TIMEOUT, 0) == (0, 0)
    assert multi.socket_action(12345, pycurl.CSELECT_IN) == (0, 0)  # unknown socket: ignored
    assert multi.socket_all() == (0, 0)


@pytest.mark.parametrize("args, exc", [
    (("x", 0), TypeError), ((1.5, 0), TypeError), ((None, 0), TypeError), ((0, "x"), TypeError),
    ((1 << 40, 0), ValueError), ((0, 1 << 40), ValueError),
])
def test_socket_action_bad_arguments(multi, args, exc):
    with pytest.raises(exc):
        multi.socket_action(*args)
    assert multi.perform() == (0, 0)  # still usable


def test_perform_raises_on_libcurl_errors(multi):
    # A libcurl call from inside its own callback: CURLM_RECURSIVE_API_CALL.
    codes = []

    def timer(ms):
        try:
            multi.perform()
        except error as e:
            codes.append(e.args[0])

    multi.setopt(pycurl.M_TIMERFUNCTION, timer)
    multi.add_handle(Curl())
    assert codes == [pycurl.E_MULTI_RECURSIVE_API_CALL]


# ---------------------------------------------------------------- setopt

@pytest.mark.parametrize("name", M_INT_OPTIONS)
def test_int_options_take_ints_and_bools(multi, name):
    option = getattr(pycurl, name)
    multi.setopt(option, 1)
    multi.setopt(option, True)
    multi.setopt(option, 0)
    multi.setopt(getattr(multi, name), 2)


@pytest.mark.parametrize("name", M_INT_OPTIONS)
@pytest.mark.parametrize("value", ["1", 1.0, None, [1], object()])
def test_int_options_reject_other_types(multi, name, value):
    with pytest.raises(TypeError):
        multi.setopt(getattr(pycurl, name), value)


def test_int_option_out_of_range(multi):
    # As Curl.setopt: OverflowError past the C long (or curl_off_t) range.
    for big in (1 << 80, 1 << 63, -(1 << 63) - 1):
        with pytest.raises(OverflowError):
            multi.setopt(pycurl.M_MAXCONNECTS, big)
    multi.setopt(pycurl.M_MAXCONNECTS, (1 << 63) - 1)


@pytest.mark.parametrize("name", ["M_PIPELINING_SITE_BL", "M_PIPELINING_SERVER_BL"])
def test_blocklist_options_take_lists_of_str(multi, name):
    if not hasattr(pycurl, name):
        pytest.skip("not in this libcurl")
    option = getattr(pycurl, name)
    multi.setopt(option, ["example.com", b"example.org:8080"])
    multi.setopt(option, ())
    multi.setopt(option, None)
    with pytest.raises(TypeError):
        multi.setopt(option, [1])
    with pytest.raises(TypeError):
        multi.setopt(option, "example.com")
    for bad in (["a\0b"], [b"example.com", b"a\0"]):   # as Curl.setopt: not cut at the NUL
        with pytest.raises(ValueError):
            multi.setopt(option, bad)


@pytest.mark.parametrize("name", ["M_SOCKETFUNCTION", "M_TIMERFUNCTION"])
def test_function_options_take_callables(multi, name):
    option = getattr(pycurl, name)
    multi.setopt(option, lambda *a: None)
    multi.setopt(option, None)
    for bad in (1, "f", object()):
        with pytest.raises(TypeError):
            multi.setopt(option, bad)


@pytest.mark.parametrize("name", ["M_SOCKETDATA", "M_TIMERDATA"])
def test_data_options_are_reserved(multi, name):
    with pytest.raises(TypeError, match="reserved"):
        multi.setopt(getattr(pycurl, name), multi)


def test_unsupported_function_option(multi):
    if not hasattr(pycurl, "M_PUSHFUNCTION"):
        pytest.skip("no M_PUSHFUNCTION")
    with pytest.raises(TypeError):
        multi.setopt(pycurl.M_PUSHFUNCTION, lambda *a: 0)


@pytest.mark.parametrize("option", [99, 9999, 10099, 1 << 40, -1])
def test_unknown_options_raise_error(multi, option):
    with pytest.raises(error) as info:
        multi.setopt(option, 1)
    assert info.value.args[0] == pycurl.E_MULTI_UNKNOWN_OPTION


def test_option_must_be_an_int(multi):
    with pytest.raises(TypeError):
        multi.setopt("M_MAXCONNECTS", 1)


def test_setopt_inside_a_callback_is_refused_by_libcurl(multi):
    seen = []

    def timer(ms):
        try:
            multi.setopt(pycurl.M_MAXCONNECTS, 3)
        except error as e:
            seen.append(e.args[0])

    multi.setopt(pycurl.M_TIMERFUNCTION, timer)
    multi.add_handle(Curl())
    assert seen == [pycurl.E_MULTI_RECURSIVE_API_CALL]


def _parallel(m, url, n):
    curls = [easy(url) for _ in range(n)]
    t0 = time.monotonic()
    ok, failed = run(m, curls)
    assert len(ok) == n and not failed
    for c in curls:
        m.remove_handle(c)
    return time.monotonic() - t0


def test_max_host_connections_serialises_transfers(fast_server):
    server = fast_server.server
    m = CurlMulti()
    before = server.connections
    elapsed = _parallel(m, fast_server("/delay/0.15"), 4)
    assert server.connections - before == 4 and elapsed < 0.55   # in parallel
    m.close()

    m = CurlMulti()
    m.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 1)
    before = server.connections
    elapsed = _parallel(m, fast_server("/delay/0.15"), 4)
    assert server.connections - before == 1        # one connection, reused
    assert elapsed >= 0.55                           # one request after the other
    m.close()


def test_max_total_connections_limits_parallelism(fast_server):
    server = fast_server.server
    m = CurlMulti()
    m.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, 2)
    before = server.connections
    elapsed = _parallel(m, fast_server("/delay/0.15"), 6)
    assert server.connections - before == 2
    assert elapsed >= 0.4
    m.close()


@pytest.mark.parametrize("maxconnects, expected", [(None, 4), (1, 7)])
def test_maxconnects_limits_the_connection_cache(fast_server, maxconnects, expected):
    server = fast_server.server
    m = CurlMulti()
    if maxconnects is not None:
        m.setopt(pycurl.M_MAXCONNECTS, maxconnects)
    before = server.connections
    _parallel(m, fast_server("/delay/0.05"), 4)    # four connections
    _parallel(m, fast_server("/delay/0.05"), 4)    # reuses what the cache kept
    assert server.connections - before == expected
    m.close()


# ---------------------------------------------------------------- fdset, select, timeout

def test_fdset_timeout_and_select_without_handles(multi):
    assert multi.fdset() == ([], [], [])
    assert multi.timeout() == -1
    t0 = time.monotonic()
    assert multi.select(0.2) == 0
    assert time.monotonic() - t0 >= 0.15


def test_fdset_and_select_with_a_stalled_transfer(stalling_server, multi):
    c = easy(stalling_server("/"))
    multi.add_handle(c)
    assert multi.timeout() == 0                     # run now
    for _ in range(20):
        multi.perform()
        r, w, x = multi.fdset()
        if r:
            break
        multi.select(0.05)
    assert len(r) == 1 and isinstance(r[0], int) and r[0] > 2 and w == [] and x == []
    for _ in range(50):                             # until libcurl's own timers are quiet
        multi.perform()
        timeout = multi.timeout()
        assert isinstance(timeout, int)
        if timeout == -1 or timeout > 300:
            break
        multi.select(0.1)
    t0 = time.monotonic()
    assert multi.select(0.2) == 0                  # nothing arrives
    assert 0.15 <= time.monotonic() - t0 < 2


def test_select_returns_when_data_arrives(fast_server, multi):
    multi.add_handle(easy(fast_server("/delay/0.2")))
    multi.perform()
    t0 = time.monotonic()
    n = 0
    while n == 0 and time.monotonic() - t0 < 5:
        n = multi.select(5.0)
        multi.perform()
    assert n >= 1
    assert time.monotonic() - t0 < 2


def test_select_returns_1_when_libcurls_timer_expires(fast_server, multi):
    # Ask for a timer in the future and nothing on the sockets: select()
    # must come back when the timer expires, with 1, so the loop performs.
    c = easy(fast_server("/delay/5"), TIMEOUT_MS=300)
    multi.add_handle(c)
    multi.perform()
    t0 = time.monotonic()
    results = []
    while not results or results[-1] == 0:
        results.append(multi.select(3.0))
        assert time.monotonic() - t0 < 2.5, results
    assert results[-1] == 1
    drive(multi)
    ok, failed = drain(multi)
    assert failed[0][1] == pycurl.E_OPERATION_TIMEDOUT


@pytest.mark.parametrize("value, exc", [("1", TypeError), (None, TypeError), (-1, ValueError),
                                        (float("nan"), ValueError), (True, TypeError)])
def test_select_bad_timeouts(multi, value, exc):
    with pytest.raises(exc):
        multi.select(value)


def test_select_accepts_int_and_float(multi):
    assert multi.select(0) == 0
    assert multi.select(0.01) == 0


# ---------------------------------------------------------------- info_read

def test_info_read_lists_successes_and_failures(fast_server, refused_port, multi):
    good = easy(fast_server("/bytes/5"))
    bad = easy(refused_port("/"))
    assert multi.info_read() == (0, [], [])
    ok, failed = run(multi, [good, bad])
    assert ok == [good]
    assert len(failed) == 1
    curl, code, message = failed[0]
    assert curl is bad and code == pycurl.E_COULDNT_CONNECT
    assert isinstance(message, str) and message
    assert multi.info_read() == (0, [], [])    # each message once


def test_info_read_max_objects(fast_server, multi):
    curls = [easy(fast_server("/bytes/1")) for _ in range(3)]
    for c in curls:
        multi.add_handle(c)
    drive(multi)
    queued, ok, failed = multi.info_read(1)
    assert (queued, len(ok), failed) == (2, 1, [])
    queued, ok2, _ = multi.info_read(5)
    assert queued == 0 and len(ok2) == 2
    assert set(ok + ok2) == set(curls)


@pytest.mark.parametrize("value, exc", [(0, error), (-3, error), ("1", TypeError), (1.0, TypeError)])
def test_info_read_bad_max(multi, value, exc):
    with pytest.raises(exc):
        multi.info_read(value)


def test_info_read_message_uses_surrogateescape(multi):
    c = easy("http://127.0.0.1:1/")
    c.setopt(pycurl.INTERFACE, b"if!\xff\xfe")
    ok, failed = run(multi, [c])
    (_, code, message), = failed
    assert code == pycurl.E_INTERFACE_FAILED
    assert "\udcff\udcfe" in message
    assert message.encode("utf-8", "surrogateescape").count(b"\xff\xfe") == 1


def test_a_transfer_can_be_read_after_failure(fast_server, multi):
    c = easy(fast_server("/status/404"), FAILONERROR=1)
    ok, failed = run(multi, [c])
    assert failed[0][:2] == (c, pycurl.E_HTTP_RETURNED_ERROR)
    assert "404" in failed[0][2]
    assert c.getinfo(pycurl.RESPONSE_CODE) == 404


# ---------------------------------------------------------------- socket callback, assign

class SocketLoop(object):
    """A socket_action loop over ``selectors``, driven by M_SOCKETFUNCTION and
    M_TIMERFUNCTION, that records what the callbacks saw."""

    def __init__(self, m, assign=None, result=0):
        import selectors
        self.m = m
        self.result = result
        self.sel = selectors.DefaultSelector()
        self.deadline = None
        self.events = []          # (what, fd, socketp)
        self.timers = []
        self.assign = assign
        m.setopt(pycurl.M_SOCKETFUNCTION, self.on_socket)
        m.setopt(pycurl.M_TIMERFUNCTION, self.on_timer)

    def on_socket(self, what, fd, multi, socketp):
        import selectors
        assert multi is self.m
        self.events.append((what, fd, socketp))
        if what == pycurl.POLL_REMOVE:
            self.sel.unregister(fd)
            return self.result
        mask = (selectors.EVENT_READ if what & pycurl.POLL_IN else 0) | \
               (selectors.EVENT_WRITE if what & pycurl.POLL_OUT else 0)
        if fd not in self.sel.get_map():
            self.sel.register(fd, mask)
            if self.assign is not None:
                multi.assign(fd, self.assign(fd))
        else:
            self.sel.modify(fd, mask)
        return self.result

    def on_timer(self, ms):
        self.timers.append(ms)
        self.deadline = None if ms < 0 else time.monotonic() + ms / 1000.0
        return self.result

    def run(self, timeout=15.0):
        import selectors
        end = time.monotonic() + timeout
        running = 1
        while running:
            assert time.monotonic() < end, "socket loop did not finish"
            wait = 1.0 if self.deadline is None else max(0.0, self.deadline - time.monotonic())
            ready = self.sel.select(wait) if self.sel.get_map() else time.sleep(wait) or []
            if not ready:
                self.deadline = None
                _, running = self.m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
            for key, mask in ready:
                ev = (pycurl.CSELECT_IN if mask & selectors.EVENT_READ else 0) | \
                     (pycurl.CSELECT_OUT if mask & selectors.EVENT_WRITE else 0)
                _, running = self.m.socket_action(key.fd, ev)
        return drain(self.m)


class Tag(object):
    def __init__(self, fd):
        self.fd = fd


def test_socket_callback_receives_the_assigned_object(fast_server, multi):
    loop = SocketLoop(multi, assign=Tag)
    for _ in range(3):
        multi.add_handle(easy(fast_server("/bytes/1000")))
    ok, failed = loop.run()
    assert len(ok) == 3 and not failed
    assert loop.timers and all(isinstance(t, int) for t in loop.timers)
    seen = {}
    for what, fd, socketp in loop.events:
        assert what in (pycurl.POLL_IN, pycurl.POLL_OUT, pycurl.POLL_INOUT, pycurl.POLL_REMOVE)
        if fd in seen:
            assert isinstance(socketp, Tag) and socketp.fd == fd   # set by assign()
        else:
            assert socketp is None                                # first callback: nothing yet
        seen[fd] = what
        if what == pycurl.POLL_REMOVE:
            del seen[fd]
    assert not multi._rec.assigned                                   # released at POLL_REMOVE


def test_assigned_objects_are_released_on_poll_remove(fast_server, multi):
    refs = []

    def make(fd):
        t = Tag(fd)
        refs.append(weakref.ref(t))
        return t

    loop = SocketLoop(multi, assign=make)
    multi.setopt(pycurl.M_MAXCONNECTS, 0)           # no cache: sockets close, POLL_REMOVE comes
    curls = [easy(fast_server("/get"), FORBID_REUSE=1) for _ in range(2)]
    for c in curls:
        multi.add_handle(c)
    ok, failed = loop.run()
    assert len(ok) == 2
    assert any(e[0] == pycurl.POLL_REMOVE for e in loop.events)
    del loop.events[:]
    collect()
    assert refs and all(r() is None for r in refs)


def test_assigned_objects_are_released_on_unassign_and_close(stalling_server):
    m = CurlMulti()
    refs = []
    fds = []

    def on_socket(what, fd, multi, socketp):
        if what != pycurl.POLL_REMOVE and socketp is None:
            t = Tag(fd)
            refs.append(weakref.ref(t))
            fds.append(fd)
            multi.assign(fd, t)

    m.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
    for _ in range(2):
        m.add_handle(easy(stalling_server("/")))
    for _ in range(50):
        m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        if len(fds) == 2:
            break
        time.sleep(0.02)
    assert len(fds) == 2 and all(r() is not None for r in refs)
    m.unassign(fds[0])
    collect()
    assert refs[0]() is None and refs[1]() is not None
    m.assign(fds[1], None)                      # None clears too
    collect()
    assert refs[1]() is None
    t = Tag(fds[0])
    ref = weakref.ref(t)
    m.assign(fds[0], t)
    m.assign(fds[0], t)                         # replacing keeps one reference
    del t
    collect()
    assert ref() is not None
    m.close()
    collect()
    assert ref() is None


def test_assign_keeps_a_strong_reference(stalling_server, multi):
    fds = []
    multi.setopt(pycurl.M_SOCKETFUNCTION,
                 lambda what, fd, m, sp: fds.append(fd) if sp is None else None)
    multi.add_handle(easy(stalling_server("/")))
    for _ in range(50):
        multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        if fds:
            break
        time.sleep(0.02)
    obj = Tag(fds[0])
    ref = weakref.ref(obj)
    multi.assign(fds[0], obj)
    del obj
    collect()
    assert ref() is not None


def test_assign_unknown_socket_raises_error(multi):
    with pytest.raises(error) as info:
        multi.assign(1000, object())
    assert info.value.args[0] == pycurl.E_MULTI_BAD_SOCKET
    with pytest.raises(error):
        multi.unassign(1000)
    assert not multi._rec.assigned


@pytest.mark.parametrize("fd, exc", [("3", TypeError), (3.0, TypeError), (None, TypeError),
                                     (1 << 40, ValueError)])
def test_assign_bad_socket_types(multi, fd, exc):
    with pytest.raises(exc):
        multi.assign(fd, object())
    with pytest.raises(exc):
        multi.unassign(fd)


# ---------------------------------------------------------------- wait, poll, wakeup

def test_wait_returns_at_once_without_sockets(multi):
    t0 = time.monotonic()
    assert multi.wait(1000) == 0
    assert time.monotonic() - t0 < 0.5


def test_poll_sleeps_without_sockets(multi):
    t0 = time.monotonic()
    assert multi.poll(200) == 0
    assert time.monotonic() - t0 >= 0.15


def test_wakeup_from_another_thread_ends_poll_early(multi):
    timer = threading.Timer(0.1, multi.wakeup)
    timer.start()
    t0 = time.monotonic()
    multi.poll(5000)
    elapsed = time.monotonic() - t0
    timer.join()
    assert elapsed < 2.0


def test_wait_and_poll_with_a_transfer(fast_server, multi):
    c = easy(fast_server("/delay/0.1"))
    multi.add_handle(c)
    _, running = multi.perform()
    end = time.monotonic() + 5
    while running and time.monotonic() < end:
        multi.wait(500)
        _, running = multi.perform()
    assert drain(multi)[0] == [c]


@pytest.mark.parametrize("value, exc", [("1", TypeError), (0.5, TypeError), (-1, ValueError),
                                        (None, TypeError), (True, TypeError)])
def test_wait_poll_bad_timeouts(multi, value, exc):
    with pytest.raises(exc):
        multi.wait(value)
    with pytest.raises(exc):
        multi.poll(value)


@pytest.mark.parametrize("wait", ["poll", "select"])
def test_close_while_another_thread_polls_wakes_it(wait):
    """close() from another thread wakes the wait, lets it return, then
    frees the multi: the waiting thread never sees a freed handle."""
    m = CurlMulti()
    started = threading.Event()
    results = []

    def poller():
        started.set()
        t0 = time.monotonic()
        try:
            results.append(m.poll(30000) if wait == "poll" else m.select(30.0))
        except error as e:            # close() came first
            results.append(e)
        results.append(time.monotonic() - t0)

    t = threading.Thread(target=poller)
    t.start()
    assert started.wait(10)
    # Whether or not the poll has begun yet, close() either runs first (the
    # poll then raises: closed) or wakes it and waits for it.
    m.close()
    t.join(20)
    assert not t.is_alive()
    assert m.closed
    assert results[1] < 20           # woken (or refused), not timed out
    assert results[0] == 0 or "closed" in str(results[0])
    with pytest.raises(error):
        m.wakeup()


# ---------------------------------------------------------------- callback exceptions

class Boom(Exception):
    pass


def test_socket_callback_exception_is_raised_from_socket_action(fast_server, multi, capfd):
    def on_socket(what, fd, m, sp):
        raise Boom("socket")

    multi.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
    c = easy(fast_server("/get"))
    multi.add_handle(c)
    with pytest.raises(error) as info:
        for _ in range(100):
            multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
            time.sleep(0.01)
    assert isinstance(info.value.__cause__, Boom)
    assert info.value.args[0] == pycurl.E_MULTI_ABORTED_BY_CALLBACK
    assert "Boom" in info.value.args[1]
    # libcurl is not told (a -1 from there corrupts libcurl 7.88's multi):
    # the transfer goes on, and completes once the multi is driven again.
    multi.setopt(pycurl.M_SOCKETFUNCTION, None)
    drive(multi)
    ok, failed = drain(multi)
    assert ok == [c] and not failed
    out, err = capfd.readouterr()
    assert err == ""


@pytest.mark.parametrize("how", ["raise", "return -1"])
def test_failing_socket_callback_leaves_the_multi_sound(fast_server, multi, how):
    """Two transfers, a socket callback that fails once, then a
    socket_action loop: with libcurl 7.88 a -1 from the socket callback
    made this crash."""
    calls = []
    watched = {}

    def on_socket(what, fd, m, sp):
        calls.append(what)
        if what == pycurl.POLL_REMOVE:
            watched.pop(fd, None)
        else:
            watched[fd] = what
        if len(calls) == 1:
            if how == "raise":
                raise Boom("socket")
            return -1

    multi.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
    curls = [easy(fast_server("/bytes/1000")) for _ in range(2)]
    for c in curls:
        multi.add_handle(c)
    failures = []

    def act(fd, mask):
        try:
            return multi.socket_action(fd, mask)[1]
        except error as e:
            failures.append(e)
            return 1

    running = act(pycurl.SOCKET_TIMEOUT, 0)
    deadline = time.monotonic() + 20
    while running and time.monotonic() < deadline:
        poller = select.poll()
        for fd, what in watched.items():
            poller.register(fd, (select.POLLIN if what & pycurl.POLL_IN else 0)
                            | (select.POLLOUT if what & pycurl.POLL_OUT else 0))
        ready = poller.poll(50)
        for fd, ev in ready:
            running = act(fd, (pycurl.CSELECT_IN if ev & select.POLLIN else 0)
                          | (pycurl.CSELECT_OUT if ev & select.POLLOUT else 0))
        if not ready:
            running = act(pycurl.SOCKET_TIMEOUT, 0)
    assert len(failures) == 1
    cause = failures[0].__cause__
    assert isinstance(cause, Boom) if how == "raise" else "returned -1" in str(cause)
    ok, failed = drain(multi)
    assert sorted(map(id, ok)) == sorted(map(id, curls)) and not failed


def test_timer_callback_exception_is_raised_from_perform(fast_server, multi, capfd):
    calls = []

    def on_timer(ms):
        calls.append(ms)
        if len(calls) == 2:
            raise Boom("timer")

    multi.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    c = easy(fast_server("/get"))
    multi.add_handle(c)
    with pytest.raises(error) as info:
        drive(multi)
    assert isinstance(info.value.__cause__, Boom)
    assert info.value.args[0] == pycurl.E_MULTI_ABORTED_BY_CALLBACK
    # libcurl is not told (a -1 from there can crash libcurl 7.88's
    # curl_multi_perform): the transfer goes on and completes.
    multi.setopt(pycurl.M_TIMERFUNCTION, None)
    drive(multi)
    ok, failed = drain(multi)
    assert ok == [c] and not failed
    multi.remove_handle(c)
    c2 = easy(fast_server("/get"))
    assert run(multi, [c2]) == ([c2], [])
    assert capfd.readouterr()[1] == ""


def test_timer_callback_exception_in_add_handle_leaves_it_detached(fast_server, multi, capfd):
    def on_timer(ms):
        raise Boom("add")

    multi.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    c = easy(fast_server("/get"))
    with pytest.raises(error) as info:
        multi.add_handle(c)
    assert isinstance(info.value.__cause__, Boom)
    assert c not in multi
    multi.setopt(pycurl.M_TIMERFUNCTION, None)
    other = easy(fast_server("/get"))
    assert run(multi, [c, other]) == ([c, other], [])  # nothing broken
    assert capfd.readouterr()[1] == ""


def test_timer_callback_returning_minus_1_in_add_handle(fast_server, multi):
    multi.setopt(pycurl.M_TIMERFUNCTION, lambda ms: -1)
    c = easy(fast_server("/get"))
    with pytest.raises(error) as info:
        multi.add_handle(c)
    assert info.value.args[0] == pycurl.E_MULTI_ABORTED_BY_CALLBACK
    # (the -1 of the timer call made by the undoing remove is the cause)
    assert info.value.__cause__ is None or "returned -1" in str(info.value.__cause__)
    assert c not in multi
    multi.setopt(pycurl.M_TIMERFUNCTION, None)
    assert run(multi, [c]) == ([c], [])


def test_timer_callback_returning_minus_1_is_raised(fast_server, multi):
    """-1 asks libcurl to abort every transfer, which can crash libcurl
    7.88's curl_multi_perform: curlmulti raises it from the call instead,
    and the transfers go on."""
    state = {"fail": False}
    multi.setopt(pycurl.M_TIMERFUNCTION, lambda ms: -1 if state["fail"] else 0)
    curls = [easy(fast_server("/delay/0.2")) for _ in range(2)]
    for c in curls:
        multi.add_handle(c)
    state["fail"] = True
    with pytest.raises(error) as info:
        drive(multi)
    assert info.value.args[0] == pycurl.E_MULTI_ABORTED_BY_CALLBACK
    assert "returned -1" in str(info.value.__cause__)
    state["fail"] = False
    drive(multi)
    ok, failed = drain(multi)
    assert sorted(map(id, ok)) == sorted(map(id, curls)) and not failed


def test_socket_callback_returning_minus_1_is_raised(fast_server, multi):
    """-1 asks libcurl to abort every transfer, which corrupts libcurl
    7.88's multi: curlmulti raises it from the call instead, and the
    transfers go on (for the caller to remove or close)."""
    multi.setopt(pycurl.M_SOCKETFUNCTION, lambda what, fd, m, sp: -1)
    c = easy(fast_server("/get"))
    multi.add_handle(c)
    with pytest.raises(error) as info:
        for _ in range(100):
            multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
            time.sleep(0.01)
    assert info.value.args[0] == pycurl.E_MULTI_ABORTED_BY_CALLBACK
    assert "returned -1" in str(info.value.__cause__)
    multi.setopt(pycurl.M_SOCKETFUNCTION, None)
    drive(multi)
    assert drain(multi) == ([c], [])


@pytest.mark.parametrize("result", [None, 0, 1, 2, True, "x", 1 << 100, -2])
def test_other_callback_results_mean_ok(fast_server, multi, result, capfd):
    loop = SocketLoop(multi, result=result)
    c = easy(fast_server("/get"))
    multi.add_handle(c)
    assert loop.run() == ([c], [])
    assert loop.events and loop.timers
    assert capfd.readouterr()[1] == ""


def test_easy_callback_exception_reaches_info_read(fast_server, multi, capfd):
    def write(data):
        raise Boom("write")

    bad = easy(fast_server("/bytes/100"))
    bad.setopt(pycurl.WRITEFUNCTION, write)
    good = easy(fast_server("/bytes/100"))
    ok, failed = run(multi, [bad, good])
    assert ok == [good]
    (curl, code, message), = failed
    assert curl is bad and code == pycurl.E_WRITE_ERROR and message
    assert isinstance(bad.callback_error, Boom)
    assert capfd.readouterr()[1] == ""
    # Re-adding clears it.
    multi.remove_handle(bad)
    bad.setopt(pycurl.WRITEFUNCTION, lambda d: None)
    assert run(multi, [bad]) == ([bad], [])
    assert bad.callback_error is None


def test_easy_callback_exception_that_does_not_stop_the_transfer_is_still_reported(fast_server, multi):
    def debug(kind, data):
        raise Boom("debug")

    c = easy(fast_server("/get"), VERBOSE=1)
    c.setopt(pycurl.DEBUGFUNCTION, debug)
    ok, failed = run(multi, [c])
    assert failed and failed[0][0] is c
    assert isinstance(c.callback_error, Boom)


def test_keyboard_interrupt_in_an_easy_callback_is_raised_from_perform(fast_server, multi):
    def write(data):
        raise KeyboardInterrupt

    c = easy(fast_server("/bytes/100"))
    c.setopt(pycurl.WRITEFUNCTION, write)
    multi.add_handle(c)
    with pytest.raises(KeyboardInterrupt):
        drive(multi)
    drive(multi)
    assert drain(multi)[1][0][0] is c


def test_keyboard_interrupt_in_the_timer_callback_is_raised_as_itself(fast_server, multi):
    def on_timer(ms):
        raise KeyboardInterrupt

    multi.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    with pytest.raises(KeyboardInterrupt):
        multi.add_handle(easy(fast_server("/get")))


def test_callback_signatures(fast_server, multi):
    seen = []
    loop = SocketLoop(multi)
    multi.setopt(pycurl.M_SOCKETFUNCTION, lambda *args: seen.append(("s",) + args) or loop.on_socket(*args))
    multi.setopt(pycurl.M_TIMERFUNCTION, lambda *args: seen.append(("t",) + args) or loop.on_timer(*args))
    multi.add_handle(easy(fast_server("/get")))
    assert len(loop.run()[0]) == 1
    timers = [s for s in seen if s[0] == "t"]
    sockets = [s for s in seen if s[0] == "s"]
    assert timers and all(len(t) == 2 and isinstance(t[1], int) for t in timers)
    assert sockets and all(len(s) == 5 and s[3] is multi for s in sockets)


# ---------------------------------------------------------------- removing / closing from callbacks

def test_write_callback_removes_its_own_handle(fast_server, multi):
    c = easy(fast_server("/bytes/200000"))
    other = easy(fast_server("/bytes/1000"))

    def write(data):
        if c in multi:
            multi.remove_handle(c)
        return None

    c.setopt(pycurl.WRITEFUNCTION, write)
    ok, failed = run(multi, [c, other])
    assert ok == [other] and not failed
    assert c not in multi and not c.closed
    # Still a good handle: it runs again, alone.
    c.setopt(pycurl.WRITEFUNCTION, lambda d: None)
    c.perform()


def test_write_callback_closes_its_own_handle(fast_server, multi):
    c = easy(fast_server("/bytes/200000"))
    other = easy(fast_server("/bytes/1000"))
    calls = []

    def write(data):
        calls.append(len(data))
        c.close()
        assert c.closed

    c.setopt(pycurl.WRITEFUNCTION, write)
    ok, failed = run(multi, [c, other])
    assert ok == [other] and not failed
    assert c.closed and c not in multi
    assert calls


def test_write_callback_closes_another_handle(fast_server, multi):
    victims = [easy(fast_server("/delay/1")) for _ in range(3)]
    killer = easy(fast_server("/bytes/10"))

    def write(data):
        for v in victims:
            v.close()

    killer.setopt(pycurl.WRITEFUNCTION, write)
    t0 = time.monotonic()
    ok, failed = run(multi, victims + [killer])
    assert ok == [killer] and not failed
    assert all(v.closed for v in victims) and time.monotonic() - t0 < 0.9
    assert len(multi._rec.handles) == 1


def test_socket_callback_removes_handles(fast_server, multi):
    curls = [easy(fast_server("/delay/0.5")) for _ in range(4)]
    removed = []

    def on_socket(what, fd, m, sp):
        for c in curls:
            if c in m:
                m.remove_handle(c)
                removed.append(c)

    multi.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
    for c in curls:
        multi.add_handle(c)
    for _ in range(20):
        multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        if removed:
            break
        time.sleep(0.01)
    assert removed
    assert all(c not in multi for c in removed)
    assert not multi._rec.deferred


def test_failing_timer_callback_with_a_handle_closed_in_the_same_call(fast_server, multi):
    """The timer callback raises inside perform() while a write callback of
    the same call closes a handle: with libcurl 7.88 a -1 from the timer
    callback there crashed curl_multi_perform (found by the properties)."""
    curls = [easy(fast_server("/bytes/0")) for _ in range(2)]
    calls = []
    state = {"in_perform": False, "raised": False}

    def on_timer(ms):
        # How often libcurl calls it differs (8.x calls it less often than
        # 7.88): close and raise in the first call made inside perform().
        calls.append(ms)
        if state["in_perform"] and not state["raised"]:
            state["raised"] = True
            curls[0].close()
            raise Boom("timer")

    def write(data):
        curls[0].close()

    for c in curls:
        c.setopt(c.WRITEFUNCTION, write)
    multi.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    raised = []
    for c in curls:
        try:
            multi.add_handle(c)
        except error as e:
            raised.append(e)
    state["in_perform"] = True
    for _ in range(200):
        try:
            _, running = multi.perform()
        except error as e:
            raised.append(e)
            continue
        drain(multi)
        if not running:
            break
        multi.select(0.05)
    assert raised and all(isinstance(e.__cause__, Boom) or "closed" in str(e) for e in raised)
    assert curls[0].closed
