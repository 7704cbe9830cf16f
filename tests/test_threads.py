"""Two or more threads on one handle or one multi: every call is either
carried out or refused with ``error``, never a crash, a hang, a corrupted
multi or a freed handle reaching libcurl.

The races run in a subprocess of the same interpreter (tests/scenarios.py),
so a crash fails one test instead of ending the run; each scenario repeats
its race many times with a barrier lining the threads up, and checks the
state afterwards (the multi's call depth back to 0, no deferred work left,
every handle accounted for, close() working).  Run one by hand with
``PYTHONPATH=. python tests/test_threads.py SCENARIO URL``."""

import io
import sys
import threading
import time

SCENARIOS = {}
RUNNING = "is currently running"


def scenario(func):
    SCENARIOS[func.__name__] = func
    return func


def easy(pycurl, url):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, io.BytesIO().write)
    return c


def refused(pycurl, exc, *words):
    """exc is the error a refused call raises: pycurl's wording."""
    assert isinstance(exc, pycurl.error), repr(exc)
    assert exc.args[0] == 0 and all(w in exc.args[1] for w in words), exc.args


def paused(pycurl, c, bitmask):
    """pause() as a race allows it: done, refused, or libcurl's own answer
    for a handle with no transfer (E_BAD_FUNCTION_ARGUMENT)."""
    try:
        c.pause(bitmask)
    except pycurl.error as e:
        if e.args[0] != pycurl.E_BAD_FUNCTION_ARGUMENT:
            raise


def quiet(multi):
    rec = multi._rec
    assert rec.depth == 0 and rec.thread is None, (rec.depth, rec.thread)
    assert not rec.deferred, rec.deferred


# ---------------------------------------------------------------- scenarios (subprocess side)

@scenario
def close_races_perform(pycurl, url):
    """Curl.close() in one thread as perform() starts in another: either the
    close comes first (perform then refuses a closed handle) or it is
    refused (perform runs to the end)."""
    outcomes = {"closed first": 0, "close refused": 0}
    for i in range(300):
        c = easy(pycurl, url + "/bytes/%d" % (100 + i))
        barrier = threading.Barrier(2)
        result = []

        def run():
            barrier.wait()
            try:
                c.perform()
                result.append("done")
            except pycurl.error as e:
                result.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        barrier.wait()
        try:
            c.close()
            closed = True
        except pycurl.error as e:
            refused(pycurl, e, "close()", RUNNING)
            closed = False
        t.join(30)
        assert not t.is_alive()
        if closed and result[0] != "done":
            refused(pycurl, result[0], "perform()")
            outcomes["closed first"] += 1
        else:
            assert result == ["done"], result
            outcomes["close refused"] += closed is False
            c.close()
        assert c.closed
    print(outcomes)


@scenario
def setters_race_perform(pycurl, url):
    """setopt, unsetopt, setopt_string, reset, getinfo, errstr, pause and
    duphandle from a second thread while perform() starts."""
    calls = [
        lambda c: c.setopt(pycurl.VERBOSE, 0),
        lambda c: c.unsetopt(pycurl.HTTPHEADER),
        lambda c: c.setopt_string(pycurl.USERAGENT, "x"),
        lambda c: c.reset(),
        lambda c: c.getinfo(pycurl.RESPONSE_CODE),
        lambda c: c.getinfo(pycurl.EFFECTIVE_URL),
        lambda c: c.errstr(),
        lambda c: paused(pycurl, c, pycurl.PAUSE_CONT),
        lambda c: c.duphandle().close(),
    ]
    for i in range(400):
        c = easy(pycurl, url + "/bytes/200")
        barrier = threading.Barrier(2)
        errors = []

        def run():
            barrier.wait()
            try:
                c.perform()
            except pycurl.error as e:
                errors.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        barrier.wait()
        try:
            calls[i % len(calls)](c)
        except pycurl.error as e:
            refused(pycurl, e, RUNNING)
        t.join(30)
        assert not t.is_alive()
        for e in errors:  # reset() may have won the race: then perform has no URL
            assert e.args[0] != 0, e.args
        c.close()


@scenario
def pause_from_another_thread(pycurl, url):
    """pause() from a thread other than the one running perform(): refused
    while the transfer runs (libcurl would flush its pause buffer through
    the write callback in the wrong thread)."""
    for i in range(20):
        c = pycurl.Curl()
        c.setopt(pycurl.URL, url + "/bytes/2000000")
        started = threading.Event()
        done = threading.Event()

        def write(data):
            started.set()

        c.setopt(pycurl.WRITEFUNCTION, write)

        def run():
            try:
                c.perform()
            finally:
                done.set()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        assert started.wait(20)
        n = 0
        while not done.is_set():
            try:
                paused(pycurl, c, pycurl.PAUSE_ALL if n % 2 else pycurl.PAUSE_CONT)
            except pycurl.error as e:
                refused(pycurl, e, "pause()", "another thread")
            n += 1
        t.join(30)
        paused(pycurl, c, pycurl.PAUSE_CONT)  # its own thread, idle: allowed
        c.close()


@scenario
def multi_driven_while_another_thread_adds_removes_closes(pycurl, url):
    """One thread drives a CurlMulti with perform()/select(); another adds,
    removes and closes handles.  Each call of the second thread is either
    done or refused; the multi stays consistent."""
    m = pycurl.CurlMulti()
    stop = threading.Event()
    finished = []
    driver_errors = []

    def drive():
        try:
            while not stop.is_set():
                try:
                    m.perform()
                    _, ok, failed = m.info_read()
                except pycurl.error as e:
                    refused(pycurl, e, RUNNING)
                    continue
                finished.extend(ok)
                finished.extend(c for c, _, _ in failed)
                m.select(0.01)
        except BaseException as e:  # reported below
            driver_errors.append(e)

    t = threading.Thread(target=drive, daemon=True)
    t.start()
    added, refusals = [], 0
    deadline = time.monotonic() + 8
    i = 0
    while time.monotonic() < deadline and i < 3000:
        i += 1
        c = easy(pycurl, url + "/bytes/%d" % (i % 500))
        try:
            m.add_handle(c)
            added.append(c)
        except pycurl.error as e:
            refused(pycurl, e, RUNNING)
            refusals += 1
            c.close()
            continue
        victim = added[i % len(added)]
        try:
            if i % 3 == 0:
                victim.close()
            elif i % 3 == 1:
                m.remove_handle(victim)
            else:
                victim.getinfo(pycurl.RESPONSE_CODE)
        except pycurl.error as e:
            if "not attached" in e.args[1] or "closed" in e.args[1]:
                refused(pycurl, e)             # removed or closed by an earlier turn
            else:
                refused(pycurl, e, RUNNING)
                refusals += 1
    stop.set()
    t.join(30)
    assert not t.is_alive() and not driver_errors, driver_errors
    quiet(m)
    for c in added:
        assert c.closed or c.multi() in (m, None)
    m.close()
    assert all(c.multi() is None for c in added if not c.closed)
    print("added", len(added), "refused", refusals, "finished", len(finished))


@scenario
def close_races_waits(pycurl, url):
    """CurlMulti.close() from another thread while poll()/wait()/select()
    runs: the wait is woken (poll, select) or ends on its own (wait), then
    the multi is freed; no call ever sees a freed handle."""
    for i in range(150):
        m = pycurl.CurlMulti()
        c = easy(pycurl, url + "/delay/5")
        m.add_handle(c)
        m.perform()
        barrier = threading.Barrier(2)
        outcome = []
        kind = ("poll", "select", "wait")[i % 3]

        def waiter():
            barrier.wait()
            try:
                if kind == "poll":
                    outcome.append(m.poll(10000))
                elif kind == "select":
                    outcome.append(m.select(10.0))
                else:
                    outcome.append(m.wait(100))
            except pycurl.error as e:
                outcome.append(e)

        t = threading.Thread(target=waiter, daemon=True)
        t.start()
        barrier.wait()
        m.close()
        t.join(30)
        assert not t.is_alive()
        r = outcome[0]
        if isinstance(r, pycurl.error):
            refused(pycurl, r, "closed")   # close() came first: never E_MULTI_BAD_HANDLE
        else:
            assert isinstance(r, int)
        assert m.closed and c.multi() is None
        c.close()


@scenario
def add_handle_from_two_threads_during_select(pycurl, url):
    """A crawler's pattern: a driver thread in a select() loop, producers in
    other threads adding handles: the adds wake the select and go through."""
    m = pycurl.CurlMulti()
    stop = threading.Event()
    waiting = threading.Event()
    done = []
    driver_errors = []

    def drive():
        try:
            drive_until_stopped()
        except BaseException as e:  # reported below
            driver_errors.append(e)
            raise

    def drive_until_stopped():
        while not stop.is_set() or m._rec.handles:
            waiting.clear()
            m.perform()
            while True:
                _, ok, failed = m.info_read()
                for c in ok + [f[0] for f in failed]:
                    m.remove_handle(c)
                    done.append(c)
                if not ok and not failed:
                    break
            waiting.set()           # adds are welcome now: they wake the select
            m.select(1.0)

    t = threading.Thread(target=drive, daemon=True)
    t.start()
    added = []
    lock = threading.Lock()

    def produce(n):
        try:
            produce_n(n)
        except BaseException as e:  # reported below
            driver_errors.append(e)
            raise

    def produce_n(n):
        for i in range(n):
            c = easy(pycurl, url + "/bytes/%d" % i)
            while True:
                try:
                    m.add_handle(c)
                    break
                except pycurl.error as e:   # only while perform() runs: again once it is done
                    refused(pycurl, e, RUNNING)
                    waiting.wait(5)
            with lock:
                added.append(c)

    producers = [threading.Thread(target=produce, args=(150,), daemon=True) for _ in range(2)]
    for p in producers:
        p.start()
    for p in producers:
        p.join(60)
        assert not p.is_alive(), "a producer is stuck"
    stopped_at = len(added)
    stop.set()
    t.join(60)
    assert not t.is_alive() and not driver_errors, driver_errors
    assert len(added) == 300, (len(added), stopped_at)
    missing = set(map(id, added)) - set(map(id, done))
    assert not missing and len(done) == 300, (len(done), len(missing),
                                              [c.multi() for c in added if id(c) in missing][:3])
    quiet(m)
    m.close()


# ---------------------------------------------------------------- the tests (pytest side)

try:
    import pytest
except ImportError:  # the subprocess side needs no pytest
    pytest = None

if pytest is not None and __name__ != "__main__":
    import scenarios

    @pytest.mark.timeout(180)
    @pytest.mark.parametrize("name", sorted(SCENARIOS))
    def test_thread_race(fast_server, name):
        scenarios.check(__file__, name, fast_server.url)


if __name__ == "__main__":
    import curlmulti
    SCENARIOS[sys.argv[1]](curlmulti, sys.argv[2].rstrip("/"))
    print("OK " + sys.argv[1])
    sys.stdout.flush()
