"""CurlMulti's notifications (libcurl 8.17+): notify_enable/notify_disable,
M_NOTIFYFUNCTION and the M_NOTIFY_* constants, against the session servers.

They exist only in a build against a libcurl that has them: Debian 12's 7.88
and bookworm-backports' 8.14 do not, and there the names are absent (the
first test).  ``CURLMULTI_LIBCURL=8.23 bash scripts/test.sh tests/test_notify.py``
runs the rest against the libcurl 8.23 of pycurl's wheel
(scripts/libcurl823.sh)."""

import re
import time

import pytest

import curlmulti as pycurl
from curlmulti import Curl, CurlMulti, error
from test_multi import drive  # the canonical perform()/select() loop

NAMES = ("M_NOTIFYFUNCTION", "M_NOTIFY_INFO_READ", "M_NOTIFY_EASY_DONE")
BUILT = pycurl.COMPILE_LIBCURL_VERSION_NUM
HAS_NOTIFY = hasattr(CurlMulti, "notify_enable")
needs_notify = pytest.mark.skipif(
    not HAS_NOTIFY,
    reason="built against libcurl %d.%d.%d, which has no multi notifications (8.17+); "
           "CURLMULTI_LIBCURL=8.23 bash scripts/test.sh tests/test_notify.py runs them"
           % (BUILT >> 16, (BUILT >> 8) & 255, BUILT & 255))


def test_names_follow_the_build():
    has = BUILT >= 0x081100
    assert HAS_NOTIFY == has
    assert hasattr(CurlMulti, "notify_disable") == has
    assert hasattr(CurlMulti(), "notify_enable") == has
    for name in NAMES:
        assert hasattr(pycurl, name) == has, name
        assert hasattr(CurlMulti, name) == has, name
        assert (name in pycurl.__all__) == has, name
    if has:
        assert (pycurl.M_NOTIFY_INFO_READ, pycurl.M_NOTIFY_EASY_DONE) == (0, 1)
        assert pycurl.M_NOTIFYFUNCTION == 20018


# ---------------------------------------------------------------- helpers

def easy(url):
    c = Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    return c


def drain(m):
    ok, failed = [], []
    while True:
        queued, o, f = m.info_read()
        ok += o
        failed += [c for c, _, _ in f]
        if not queued:
            return ok, failed


class Recorder:
    """An M_NOTIFYFUNCTION that records (notification, curl)."""

    def __init__(self):
        self.seen = []

    def __call__(self, notification, curl):
        self.seen.append((notification, curl))
        return "ignored"  # libcurl's callback is void: any value is fine


@pytest.fixture
def multi():
    m = CurlMulti()
    yield m
    m.close()


@pytest.fixture
def curls():
    made = []

    def make(url):
        made.append(easy(url))
        return made[-1]

    yield make
    for c in made:
        c.close()


# ---------------------------------------------------------------- behaviour

@needs_notify
def test_info_read_notification(multi, curls, httpbin):
    rec = Recorder()
    multi.setopt(pycurl.M_NOTIFYFUNCTION, rec)
    multi.notify_enable(pycurl.M_NOTIFY_INFO_READ)
    c = curls(httpbin("/bytes/10"))
    multi.add_handle(c)
    drive(multi)
    # libcurl's internal handle stands behind INFO_READ: no Curl.
    assert rec.seen == [(pycurl.M_NOTIFY_INFO_READ, None)]
    assert drain(multi) == ([c], [])
    # The queue emptied, the next finished transfer notifies again.
    c2 = curls(httpbin("/bytes/20"))
    multi.add_handle(c2)
    drive(multi)
    assert rec.seen == [(pycurl.M_NOTIFY_INFO_READ, None)] * 2
    assert drain(multi) == ([c2], [])


@needs_notify
def test_easy_done_names_the_curl(multi, curls, httpbin, refused_port):
    rec = Recorder()
    multi.setopt(pycurl.M_NOTIFYFUNCTION, rec)
    multi.notify_enable(pycurl.M_NOTIFY_EASY_DONE)
    good = [curls(httpbin("/bytes/%d" % n)) for n in (1, 2, 3)]
    bad = curls(refused_port + "/")
    for c in good + [bad]:
        multi.add_handle(c)
    drive(multi)
    assert {n for n, _ in rec.seen} == {pycurl.M_NOTIFY_EASY_DONE}
    # Once per transfer, failed ones too, each with its own Curl object.
    done = [c for _, c in rec.seen]
    assert sorted(map(id, done)) == sorted(map(id, good + [bad]))
    ok, failed = drain(multi)
    assert sorted(map(id, ok)) == sorted(map(id, good))
    assert failed == [bad]


@needs_notify
def test_both_and_disable(multi, curls, httpbin):
    rec = Recorder()
    multi.setopt(pycurl.M_NOTIFYFUNCTION, rec)
    multi.notify_enable(pycurl.M_NOTIFY_INFO_READ, pycurl.M_NOTIFY_EASY_DONE)
    c = curls(httpbin("/bytes/10"))
    multi.add_handle(c)
    drive(multi)
    assert sorted(rec.seen, key=lambda e: e[0]) == [(pycurl.M_NOTIFY_INFO_READ, None),
                                                    (pycurl.M_NOTIFY_EASY_DONE, c)]
    assert drain(multi) == ([c], [])
    multi.remove_handle(c)

    multi.notify_disable(pycurl.M_NOTIFY_EASY_DONE)
    del rec.seen[:]
    c2 = curls(httpbin("/bytes/11"))
    multi.add_handle(c2)
    drive(multi)
    assert rec.seen == [(pycurl.M_NOTIFY_INFO_READ, None)]
    assert drain(multi) == ([c2], [])
    multi.remove_handle(c2)

    multi.notify_disable(pycurl.M_NOTIFY_INFO_READ, pycurl.M_NOTIFY_EASY_DONE)  # twice is fine
    del rec.seen[:]
    c3 = curls(httpbin("/bytes/12"))
    multi.add_handle(c3)
    drive(multi)
    assert rec.seen == []
    assert drain(multi) == ([c3], [])


@needs_notify
def test_enabled_without_a_callback_and_unset(multi, curls, httpbin):
    multi.notify_enable(pycurl.M_NOTIFY_INFO_READ, pycurl.M_NOTIFY_EASY_DONE)
    c = curls(httpbin("/bytes/10"))
    multi.add_handle(c)
    drive(multi)
    assert drain(multi) == ([c], [])
    rec = Recorder()
    multi.setopt(pycurl.M_NOTIFYFUNCTION, rec)
    multi.setopt(pycurl.M_NOTIFYFUNCTION, None)
    c2 = curls(httpbin("/bytes/10"))
    multi.add_handle(c2)
    drive(multi)
    assert rec.seen == []
    assert drain(multi) == ([c2], [])


@needs_notify
def test_bad_arguments(multi):
    with pytest.raises(TypeError, match="notify_enable"):
        multi.notify_enable()
    with pytest.raises(TypeError, match="notify_disable"):
        multi.notify_disable()
    for bad in ("0", None, 1.0, True):
        with pytest.raises(TypeError, match="M_NOTIFY_"):
            multi.notify_enable(bad)
    for method in (multi.notify_enable, multi.notify_disable):
        for value in (99, -1, 1 << 40):
            with pytest.raises(error, match=re.escape("(%d): Unknown option: %d is not an M_NOTIFY_* value"
                                                      % (value, value))) as info:
                method(value)
            assert info.value.args[0] == pycurl.E_MULTI_UNKNOWN_OPTION
    with pytest.raises(TypeError, match="M_NOTIFYFUNCTION takes a callable"):
        multi.setopt(pycurl.M_NOTIFYFUNCTION, 5)


@needs_notify
def test_left_to_right_without_rollback(multi, curls, httpbin):
    rec = Recorder()
    multi.setopt(pycurl.M_NOTIFYFUNCTION, rec)
    with pytest.raises(error, match="notify_enable\\(7\\)"):
        multi.notify_enable(pycurl.M_NOTIFY_EASY_DONE, 7, pycurl.M_NOTIFY_INFO_READ)
    c = curls(httpbin("/bytes/10"))
    multi.add_handle(c)
    drive(multi)
    # The one before the bad value is enabled, the one after is not.
    assert rec.seen == [(pycurl.M_NOTIFY_EASY_DONE, c)]
    assert drain(multi) == ([c], [])


@needs_notify
def test_closed_multi():
    m = CurlMulti()
    m.close()
    with pytest.raises(error, match="closed"):
        m.notify_enable(pycurl.M_NOTIFY_INFO_READ)
    with pytest.raises(error, match="closed"):
        m.notify_disable(pycurl.M_NOTIFY_INFO_READ)


@needs_notify
def test_exception_reaches_the_caller(multi, curls, httpbin):
    calls = []

    def boom(notification, curl):
        calls.append(curl)
        raise ValueError("notify %d" % notification)

    multi.setopt(pycurl.M_NOTIFYFUNCTION, boom)
    multi.notify_enable(pycurl.M_NOTIFY_EASY_DONE)
    cs = [curls(httpbin("/bytes/%d" % n)) for n in (5, 6)]
    for c in cs:
        multi.add_handle(c)
    raised = []
    deadline = time.monotonic() + 15
    running = True
    while running:
        assert time.monotonic() < deadline
        try:
            _, running = multi.perform()
        except error as exc:
            raised.append(exc)
            running = True
        if running:
            multi.select(1.0)
    assert raised, "no call raised what the notify callback raised"
    for exc in raised:
        assert isinstance(exc.__cause__, ValueError)
        assert str(exc.__cause__) == "notify %d" % pycurl.M_NOTIFY_EASY_DONE
        assert "ValueError" in exc.args[1]
    # Each notification ran the callback once; the transfers were not aborted.
    assert sorted(map(id, calls)) == sorted(map(id, cs))
    ok, failed = drain(multi)
    assert sorted(map(id, ok)) == sorted(map(id, cs)) and failed == []


@needs_notify
def test_info_read_inside_the_callback(multi, curls, httpbin):
    got = []

    def on_notify(notification, curl):
        assert notification == pycurl.M_NOTIFY_INFO_READ and curl is None
        queued, ok, failed = multi.info_read()
        got.append((queued, ok, failed))

    multi.setopt(pycurl.M_NOTIFYFUNCTION, on_notify)
    multi.notify_enable(pycurl.M_NOTIFY_INFO_READ)
    cs = [curls(httpbin("/bytes/%d" % n)) for n in (7, 8, 9)]
    for c in cs:
        multi.add_handle(c)
    drive(multi)
    assert got
    finished = [c for _, ok, _ in got for c in ok]
    assert sorted(map(id, finished)) == sorted(map(id, cs))
    assert all(failed == [] for _, _, failed in got)
    assert multi.info_read() == (0, [], [])


@needs_notify
def test_changes_from_inside_the_callback(multi, curls, httpbin):
    """remove_handle() and setopt(M_NOTIFYFUNCTION, None) from the callback:
    the removal is carried out when perform() returns, and the callback is
    not called again (libcurl itself is not told until the next setopt, so
    that it can finish dispatching)."""
    seen = []

    def on_done(notification, curl):
        seen.append(curl)
        multi.remove_handle(curl)
        multi.setopt(pycurl.M_NOTIFYFUNCTION, None)

    multi.setopt(pycurl.M_NOTIFYFUNCTION, on_done)
    multi.notify_enable(pycurl.M_NOTIFY_EASY_DONE)
    cs = [curls(httpbin("/bytes/%d" % n)) for n in (1, 2, 3, 4)]
    for c in cs:
        multi.add_handle(c)
    drive(multi)
    assert len(seen) == 1 and seen[0] in cs
    assert seen[0] not in multi
    assert all(c in multi for c in cs if c is not seen[0])
    # Set again from outside: installed anew.
    rec = Recorder()
    multi.setopt(pycurl.M_NOTIFYFUNCTION, rec)
    c = curls(httpbin("/bytes/10"))
    multi.add_handle(c)
    drive(multi)
    assert rec.seen == [(pycurl.M_NOTIFY_EASY_DONE, c)]


@needs_notify
def test_callback_replaced_and_multi_closed(curls, httpbin):
    m = CurlMulti()
    first, second = Recorder(), Recorder()
    m.setopt(pycurl.M_NOTIFYFUNCTION, first)
    m.setopt(pycurl.M_NOTIFYFUNCTION, second)
    m.notify_enable(pycurl.M_NOTIFY_EASY_DONE)
    c = curls(httpbin("/bytes/10"))
    m.add_handle(c)
    drive(m)
    assert first.seen == [] and second.seen == [(pycurl.M_NOTIFY_EASY_DONE, c)]
    m.close()  # with a connection in the cache: no callback during the cleanup
    assert second.seen == [(pycurl.M_NOTIFY_EASY_DONE, c)]


@needs_notify
def test_event_core_dispatches_notifications(curls, httpbin):
    import select
    m = CurlMulti()
    try:
        try:
            fd = m.event_fileno()
        except NotImplementedError:
            pytest.skip("no native event core on this platform")
        rec = Recorder()
        m.setopt(pycurl.M_NOTIFYFUNCTION, rec)
        m.notify_enable(pycurl.M_NOTIFY_EASY_DONE)
        c = curls(httpbin("/bytes/10"))
        m.add_handle(c)
        ok = []
        deadline = time.monotonic() + 15
        while not ok:
            assert time.monotonic() < deadline
            timeout = m.event_timeout()
            select.select([fd], [], [], 1.0 if timeout < 0 else min(timeout / 1000.0, 1.0))
            _, o, f = m.run_ready()
            assert f == []
            ok += o
        assert ok == [c]
        assert rec.seen == [(pycurl.M_NOTIFY_EASY_DONE, c)]
    finally:
        m.close()
