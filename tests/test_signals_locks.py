"""Ctrl-C that lands while a lock is taken leaves nothing held.

On CPython and PyPy a pending signal's handler runs right after a C call
returns, so a ``KeyboardInterrupt`` can be raised in the instant after a
call took a lock or changed a state, before the Python code that would
release or finish it, and the call's result is lost with it.  This happens
above all when the call had to wait (another thread held the lock) and the
signal arrived during the wait.  Each call that returns with something held
is wrapped: its handler asks C whether the call took it, and undoes or
finishes the work (``cm_multi_reclaim``, ``cm_easy_reclaim``,
``cm_multi_add_abandon``).

Two kinds of test:

- in this process, the exception injected deterministically right after
  each such C call returns (the module's alias of the C function wrapped):
  the handle's state, the locks and what the call read must come out right;
- in a subprocess of the same interpreter, real SIGINTs at varied moments
  while another thread holds the lock the call waits for (``ROUNDS`` per
  mode); after each, every lock must be free for other threads and the
  states of Python and C must agree.  Run one by hand with
  ``python tests/test_signals_locks.py MODE``."""

import os
import platform
import signal
import sys
import tempfile
import threading
import time

ROUNDS = 40
MODES = ("add", "remove", "swap", "add-multi-lock", "remove-multi-lock")
JOIN_S = 10.0  # a lock left held shows as a thread still waiting after this
LOST_S = 3.0  # a signal not raised after this is lost


def in_thread(func):
    """Run func in another thread; False if it is still blocked after JOIN_S."""
    box = []

    def run():
        func()
        box.append(True)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(JOIN_S)
    return bool(box)


def locks_free(m, c):
    """Both locks can be taken and given back by another thread."""
    def take():
        for lock in (m._rec.lock, c._rec.own_lock):
            lock.acquire()
            lock.release()
    return in_thread(take)


def consistent(m, c):
    """Python's state of c and C's agree; the multi is not marked busy."""
    rec = c._rec
    attached = c in m
    problems = []
    if m._rec.depth != 0:
        problems.append("multi depth %d" % m._rec.depth)
    if attached != (rec.state == "attached"):
        problems.append("in the multi: %s, state %s" % (attached, rec.state))
    if rec.gate.idle != (1 if rec.state == "idle" else 0):
        problems.append("C idle %d, state %s" % (rec.gate.idle, rec.state))
    if (rec.lock is m._rec.lock) != attached:
        problems.append("lock of an %s handle" % ("attached" if attached else "idle"))
    return problems


def fetch_through(pycurl, m, c):
    """A whole transfer of a local file through m: the multi still works."""
    body = []
    c.setopt(pycurl.WRITEFUNCTION, body.append)
    if c not in m:
        m.add_handle(c)
    while True:
        _, running = m.perform()
        if not running:
            break
        m.select(1.0)
    _, ok, failed = m.info_read()
    m.remove_handle(c)
    assert ok == [c] and not failed, failed
    return b"".join(body)


# ---------------------------------------------------------------- real signals (subprocess)

def main(mode):
    import curlmulti as pycurl
    signal.signal(signal.SIGINT, signal.default_int_handler)  # see test_signals.main
    fd, path = tempfile.mkstemp()
    os.write(fd, b"x" * 1000)
    os.close(fd)
    url = "file://" + path
    m = pycurl.CurlMulti()
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, len)
    attached_first = mode.startswith("remove")
    main_thread = threading.get_ident()
    interrupted = resent = 0
    for i in range(ROUNDS):
        # the base state of the round
        if attached_first and c not in m:
            m.add_handle(c)
        elif not attached_first and c in m:
            m.remove_handle(c)
        lock = m._rec.lock if mode.endswith("multi-lock") else c._rec.own_lock
        delay_s = 0.001 * (1 + i % 10)  # time for the main thread to block in the call
        held = threading.Event()
        calling = threading.Event()
        fired = threading.Event()

        def holder():
            lock.acquire()
            held.set()
            fired.wait(JOIN_S)  # released once the signal is sent: it lands in the wait
            lock.release()

        def fire():
            calling.wait()
            time.sleep(delay_s)
            signal.pthread_kill(main_thread, signal.SIGINT)
            fired.set()

        th = threading.Thread(target=holder, daemon=True)
        th.start()
        held.wait()
        try:  # a KeyboardInterrupt may come from here on
            threading.Thread(target=fire, daemon=True).start()
            calling.set()
            if mode.startswith("add"):
                m.add_handle(c)
            elif mode.startswith("remove"):
                m.remove_handle(c)
            else:
                c.setopt(pycurl.WRITEFUNCTION, len if i % 2 else bytes)
            # Not raised in the call: it must come all the same.  PyPy
            # 7.3.11 loses about one signal in 300 that lands as a
            # GIL-releasing call returns, with no library involved (a loop
            # of cffi calls to usleep() shows it): sent again there.
            for _ in range(3):
                threading.Event().wait(LOST_S)
                resent += 1
                signal.pthread_kill(main_thread, signal.SIGINT)
            raise AssertionError("round %d: the SIGINT was lost" % i)
        except KeyboardInterrupt:
            interrupted += 1
        th.join(JOIN_S)
        assert not th.is_alive()
        problems = consistent(m, c)
        assert not problems, (mode, i, problems)
        assert locks_free(m, c), (mode, i, "a lock is still held")
    c.setopt(pycurl.WRITEFUNCTION, len)
    body = fetch_through(pycurl, m, c)
    assert body == b"x" * 1000
    m.close()
    c.close()
    os.unlink(path)
    print(interrupted, resent)


# ---------------------------------------------------------------- the tests (pytest side)

try:
    import pytest
except ImportError:
    pytest = None

if pytest is not None and __name__ != "__main__":
    import curlmulti
    from curlmulti import Curl, CurlMulti, _easy, _eventcore, _multi
    from test_signals import child_output

    @pytest.mark.timeout(120)
    @pytest.mark.parametrize("mode", MODES)
    def test_sigint_during_a_contended_lock_leaves_nothing_held(mode):
        interrupted, resent = map(int, child_output(__file__, mode).split())
        assert interrupted == ROUNDS  # every round's signal raised, in the call or after it
        if platform.python_implementation() == "CPython":
            assert resent == 0  # no signal lost

    @pytest.fixture
    def interrupt_after(monkeypatch):
        """interrupt_after(module, name): the next call of that module's C
        function alias runs, then raises KeyboardInterrupt as it returns, as a
        pending SIGINT does; returns the list its result is appended to.
        With busy_first=True the call before it says "not now" (CM_MBUSY), so
        that the slow path makes the interrupted call."""
        def arm(module, name, busy_first=False):
            real = getattr(module, name)
            results = []
            busy = [busy_first]

            def wrapped(*args):
                if busy[0]:
                    busy[0] = False
                    return curlmulti._curl.lib.CM_MBUSY
                monkeypatch.setattr(module, name, real)
                results.append(real(*args))
                raise KeyboardInterrupt

            monkeypatch.setattr(module, name, wrapped)
            return results
        return arm

    @pytest.fixture
    def core_multi():
        """A CurlMulti on the native event core, and a selector on its descriptor."""
        import selectors
        if not _eventcore.AVAILABLE:
            pytest.skip("the event core needs epoll")
        m = CurlMulti()
        sel = selectors.DefaultSelector()
        sel.register(m.event_fileno(), selectors.EVENT_READ)
        yield m, sel
        sel.close()
        m.close()

    def easy(url):
        c = Curl()
        c.setopt(c.URL, url)
        c.setopt(c.WRITEFUNCTION, len)
        return c

    def finished(m):
        """Drive m until no transfer runs."""
        while m.perform()[1]:
            m.select(1.0)

    def test_add_handle_interrupted_as_its_first_half_returns(fast_server, interrupt_after):
        m, c = CurlMulti(), easy(fast_server("/get"))
        got = interrupt_after(_multi, "_madd_begin")
        with pytest.raises(KeyboardInterrupt):
            m.add_handle(c)
        assert got == [0]  # it had taken the locks and marked the multi
        assert c not in m and not consistent(m, c) and locks_free(m, c)
        m.add_handle(c)
        finished(m)
        assert m.info_read()[1] == [c]
        m.close()

    def test_add_handle_interrupted_in_its_slow_path(fast_server, interrupt_after):
        m, c = CurlMulti(), easy(fast_server("/get"))
        got = interrupt_after(_multi, "_madd_begin", busy_first=True)
        with pytest.raises(KeyboardInterrupt):
            m.add_handle(c)
        assert got == [0]
        assert c not in m and not consistent(m, c) and locks_free(m, c)
        m.add_handle(c)
        finished(m)
        assert m.info_read()[1] == [c]
        m.close()

    def test_add_handle_interrupted_as_libcurl_returns(fast_server, interrupt_after):
        # The timer callback fails during curl_multi_add_handle: the add
        # must still be undone, and the next add of another handle unharmed.
        m, a, b = CurlMulti(), easy(fast_server("/get")), easy(fast_server("/get"))
        calls = []

        def timer(ms):
            calls.append(ms)
            if len(calls) == 1:
                raise ValueError("first timer call fails")

        m.setopt(curlmulti.M_TIMERFUNCTION, timer)
        got = interrupt_after(_multi, "_madd_finish")
        with pytest.raises(KeyboardInterrupt):
            m.add_handle(a)
        assert got == [0] and calls
        assert a not in m and not consistent(m, a) and locks_free(m, a)
        with pytest.raises(curlmulti.error) as info:  # the stored exception, at the next call
            m.add_handle(b)
        assert isinstance(info.value.__cause__, ValueError)
        m.add_handle(b)
        assert b in m and not consistent(m, b)
        m.close()

    def test_remove_handle_interrupted_as_it_returns(fast_server, interrupt_after):
        m, c = CurlMulti(), easy(fast_server("/get"))
        m.add_handle(c)
        got = interrupt_after(_multi, "_mremove")
        with pytest.raises(KeyboardInterrupt):
            m.remove_handle(c)
        assert got == [0]  # removed in C, with the lock handed to Python
        assert c not in m and c._rec.state == "idle"
        assert not consistent(m, c) and locks_free(m, c)
        c.perform()  # idle for real: usable alone
        assert c.getinfo(c.RESPONSE_CODE) == 200
        m.add_handle(c)
        m.remove_handle(c)
        m.close()

    def test_the_multis_lock_interrupted_as_it_is_taken(fast_server, interrupt_after):
        m, c = CurlMulti(), easy(fast_server("/get"))
        m.add_handle(c)
        got = interrupt_after(_multi, "_mlock")
        with pytest.raises(KeyboardInterrupt):
            c.setopt(c.HTTPHEADER, ["X-A: 1"])  # attached: under the multi's lock
        assert got == [0]
        assert not consistent(m, c) and locks_free(m, c)
        c.setopt(c.HTTPHEADER, ["X-A: 1"])
        m.close()

    @pytest.mark.parametrize("option", ["WRITEFUNCTION", "HTTPHEADER"])
    def test_a_curls_own_lock_interrupted_as_it_is_taken(fast_server, interrupt_after, option):
        m, c = CurlMulti(), easy(fast_server("/get"))
        value = bytes if option == "WRITEFUNCTION" else ["X-A: 1"]  # the swap's fast path, the slow path
        got = interrupt_after(_easy, "_easy_lock")
        with pytest.raises(KeyboardInterrupt):
            c.setopt(getattr(c, option), value)
        assert got == [0]
        assert not consistent(m, c) and locks_free(m, c)
        c.setopt(getattr(c, option), value)
        m.close()

    def test_info_read_interrupted_as_it_returns_loses_no_message(fast_server, interrupt_after):
        m = CurlMulti()
        handles = [easy(fast_server("/get")) for _ in range(3)]
        for c in handles:
            m.add_handle(c)
        finished(m)
        got = interrupt_after(_multi, "_minfo")
        with pytest.raises(KeyboardInterrupt):
            m.info_read()
        assert got == [3]
        assert locks_free(m, handles[0])
        m.remove_handle(handles[2])  # removed since: not reported
        queued, ok, failed = m.info_read(1)  # what the interrupted call read, one at a time
        assert queued == 1 and len(ok) == 1 and not failed
        queued, ok2, failed = m.info_read()
        assert queued == 1 and len(ok2) == 1 and not failed
        assert sorted(map(id, ok + ok2)) == sorted(map(id, handles[:2]))
        assert m.info_read() == (0, [], [])
        m.close()

    def test_info_read_keeps_nothing_for_a_closed_multi(fast_server, interrupt_after):
        m, c = CurlMulti(), easy(fast_server("/get"))
        m.add_handle(c)
        finished(m)
        interrupt_after(_multi, "_minfo")
        with pytest.raises(KeyboardInterrupt):
            m.info_read()
        m.close()
        with pytest.raises(curlmulti.error, match="closed"):
            m.info_read()

    def test_run_ready_interrupted_as_it_returns_loses_no_transfer(fast_server, interrupt_after, core_multi):
        m, sel = core_multi
        handles = [easy(fast_server("/get")) for _ in range(3)]
        for c in handles:
            m.add_handle(c)
        done = []
        interrupted = False
        while len(done) < 3:
            sel.select(1.0)
            if interrupted:
                _, ok, failed = m.run_ready()
            else:
                got = interrupt_after(_eventcore, "_run")
                with pytest.raises(KeyboardInterrupt):
                    m.run_ready()
                assert locks_free(m, handles[0])
                if not got[-1]:
                    continue  # nothing had finished yet: again
                interrupted = True
                # removed from libcurl by the run: unlinked for Python too
                assert len([c for c in handles if c not in m]) == got[-1]
                ok, failed = [], []
            assert not failed
            done.extend(ok)
        assert sorted(map(id, done)) == sorted(map(id, handles)) and not any(c in m for c in handles)

    def test_run_ready_interrupted_in_its_slow_path(fast_server, interrupt_after, core_multi):
        m, sel = core_multi
        c = easy(fast_server("/get"))
        m.add_handle(c)
        done = []
        while not done:
            sel.select(1.0)
            got = interrupt_after(_eventcore, "_run", busy_first=True)
            with pytest.raises(KeyboardInterrupt):
                m.run_ready()
            assert locks_free(m, c)
            if got[-1]:
                assert c not in m and not consistent(m, c)
                _, done, failed = m.run_ready()  # given now
                assert not failed
        assert done == [c]

    def once(monkeypatch, owner, name, replacement):
        """owner.name is replacement(real, *args) for one call, then real again."""
        real = getattr(owner, name)

        def wrapped(*args, **kwargs):
            monkeypatch.setattr(owner, name, real)
            return replacement(real, *args, **kwargs)

        monkeypatch.setattr(owner, name, wrapped)

    def raise_interrupt(real, *args, **kwargs):
        raise KeyboardInterrupt

    def busy(real, *args):
        return curlmulti._curl.lib.CM_MBUSY

    def run_until(m, sel, want, interrupts=None, c=None):
        """run_ready() until want transfers are reported or none runs.  With
        interrupts (a list), a KeyboardInterrupt from a call is counted there
        and the loop goes on (with c, once both locks are seen to be free)."""
        done = []
        while len(done) < want:
            sel.select(1.0)
            try:
                running, ok, failed = m.run_ready()
            except KeyboardInterrupt:
                if interrupts is None:
                    raise
                interrupts.append(True)
                assert c is None or locks_free(m, c)
                continue
            assert not failed
            done += ok
            if not running and len(done) < want:
                break
        return done

    def test_run_ready_interrupted_before_its_slow_path_runs(fast_server, monkeypatch, core_multi):
        """The slow path's lock.acquire() hands a level over, then the
        exception comes before the run: that level is not taken for the
        run's, and the last run's arrays (which name c) are not read again."""
        m, sel = core_multi
        c = easy(fast_server("/get"))
        m.add_handle(c)
        assert run_until(m, sel, 1) == [c]
        m.add_handle(c)  # again: the previous run's arrays still name it
        once(monkeypatch, _eventcore, "_run", busy)
        once(monkeypatch, _multi._MultiRecord, "long_call", raise_interrupt)
        with pytest.raises(KeyboardInterrupt):
            m.run_ready()
        assert locks_free(m, c)
        assert c in m and not consistent(m, c)  # still attached, still running
        assert run_until(m, sel, 1) == [c]
        assert c not in m

    def test_run_ready_interrupted_while_it_maps_its_batch(fast_server, monkeypatch, core_multi):
        """The exception lands after a finished transfer is reported and
        before it is unlinked: the batch is finished and given by the next
        call, each transfer once, none left attached."""
        m, sel = core_multi
        handles = [easy(fast_server("/get")) for _ in range(3)]
        for c in handles:
            m.add_handle(c)
        once(monkeypatch, _multi._MultiRecord, "unlink", raise_interrupt)
        interrupts = []
        done = run_until(m, sel, 3, interrupts, handles[0])
        assert interrupts
        assert sorted(map(id, done)) == sorted(map(id, handles))
        for c in handles:
            assert c not in m and not consistent(m, c)

    def test_run_ready_keeps_its_first_batches_when_a_later_run_raises(fast_server, monkeypatch, core_multi):
        """run_ready() loops while a run says there may be more (here after
        every transfer: one per run); an exception as a later run returns
        must not lose what the earlier ones read."""
        m, sel = core_multi
        monkeypatch.setattr(_eventcore, "_CAP", 1)
        handles = [easy(fast_server("/get")) for _ in range(3)]
        for c in handles:
            m.add_handle(c)
        real = _eventcore._run
        interrupted = []

        def second_run(g, c, flags, *args):
            n = real(g, c, flags, *args)
            if flags == 0 and not interrupted:  # a later run of the same run_ready()
                interrupted.append(n)
                raise KeyboardInterrupt
            return n

        monkeypatch.setattr(_eventcore, "_run", second_run)
        done = run_until(m, sel, 3, [], handles[0])
        assert interrupted
        assert sorted(map(id, done)) == sorted(map(id, handles))
        assert not any(c in m for c in handles)

    def test_run_ready_interrupted_in_an_unlinks_last_step(fast_server, monkeypatch, core_multi):
        """The exception lands in unlink() just before the handle's gate is
        made idle (PyPy can raise it there): the gate is made idle by the
        handler, so the handle is whole again."""
        m, sel = core_multi
        handles = [easy(fast_server("/get")) for _ in range(2)]
        for c in handles:
            m.add_handle(c)
        once(monkeypatch, _multi, "_easy_detached", raise_interrupt)
        interrupts = []
        done = run_until(m, sel, 2, interrupts)
        assert interrupts
        assert sorted(map(id, done)) == sorted(map(id, handles))
        for c in handles:
            assert c not in m and not consistent(m, c)
            m.add_handle(c)  # usable again
        assert sorted(map(id, run_until(m, sel, 2))) == sorted(map(id, handles))

    def test_info_read_interrupted_in_its_slow_path_loses_no_message(fast_server, monkeypatch, interrupt_after):
        m = CurlMulti()
        handles = [easy(fast_server("/get")) for _ in range(3)]
        for c in handles:
            m.add_handle(c)
        finished(m)
        once(monkeypatch, _multi, "_minfo", busy)
        got = interrupt_after(_multi, "_info_drain")
        with pytest.raises(KeyboardInterrupt):
            m.info_read()
        assert got == [3]
        assert locks_free(m, handles[0])
        queued, ok, failed = m.info_read()
        assert sorted(map(id, ok)) == sorted(map(id, handles)) and not failed
        assert m.info_read() == (0, [], [])
        m.close()

    def test_info_read_interrupted_between_two_drains_loses_no_message(fast_server, monkeypatch):
        """More finished than one drain takes: the exception lands as the
        second drain returns; both drains' messages are given next time."""
        monkeypatch.setattr(_multi, "_DRAIN_CAP", 2)
        m = CurlMulti()
        handles = [easy(fast_server("/get")) for _ in range(5)]
        for c in handles:
            m.add_handle(c)
        finished(m)
        got = []

        def interrupted(real, *args):
            got.append(real(*args))
            raise KeyboardInterrupt

        once(monkeypatch, _multi, "_info_drain", interrupted)
        with pytest.raises(KeyboardInterrupt):
            m.info_read()
        assert got == [2]  # the second drain's two (the first two came from _minfo)
        assert locks_free(m, handles[0])
        reported = []
        while True:
            queued, ok, failed = m.info_read()
            assert not failed
            if not ok and not queued:
                break
            reported += ok
        assert sorted(map(id, reported)) == sorted(map(id, handles))
        m.close()

    def test_a_second_add_interrupted_leaves_the_first_attached(fast_server, interrupt_after):
        """add_handle() of a Curl already attached here, interrupted as its
        first half returns: the existing attachment is not undone."""
        m, c = CurlMulti(), easy(fast_server("/get"))
        m.add_handle(c)
        got = interrupt_after(_multi, "_madd_begin")
        with pytest.raises(KeyboardInterrupt):
            m.add_handle(c)
        assert got == [0]
        assert c in m and not consistent(m, c) and locks_free(m, c)
        finished(m)
        assert m.info_read()[1] == [c]
        m.close()


if __name__ == "__main__":
    main(sys.argv[1])
