"""CurlMulti lifetimes: every order of dropping, closing and collecting a multi
and its handles, callbacks that close or remove their own handle, cycles.

Each scenario runs in a subprocess of the same interpreter (``-X dev`` on
CPython), so a crash is a failed test and not a dead test run; it must exit 0,
print ``OK``, and write nothing to stderr (no "Exception ignored", no
ResourceWarning, no traceback from a finalizer).  Run one by hand with
``PYTHONPATH=. python tests/test_multi_lifetimes.py SCENARIO URL`` (URL: a
fast_server); the subprocesses import the same curlmulti as the test run."""

import gc
import io
import itertools
import os
import sys
import time
import warnings
import weakref

SCENARIOS = {}


def scenario(func):
    SCENARIOS[func.__name__] = func
    return func


# ---------------------------------------------------------------- helpers (subprocess side)

def collect():
    for _ in range(5):
        gc.collect()


def easy(pycurl, url, sink=None):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, (sink or io.BytesIO()).write)
    return c


def drive(m, seconds=15.0, select=True):
    end = time.monotonic() + seconds
    _, running = m.perform()
    while running:
        assert time.monotonic() < end, "the multi did not finish"
        if select and m.select(1.0) == 0:
            continue
        _, running = m.perform()


def spin(m, seconds):
    """perform()/select() for a while, transfers left in flight."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        m.perform()
        m.select(0.02)


def drain(m):
    ok, failed = [], []
    while True:
        q, o, f = m.info_read()
        ok += o
        failed += f
        if not q:
            return ok, failed


def all_dead(refs):
    collect()
    alive = [r() for r in refs if r() is not None]
    assert not alive, "still alive: %r" % (alive[:5],)


# ---------------------------------------------------------------- scenarios

@scenario
def drop_multi_with_attached_handles_in_flight(pycurl, url):
    m = pycurl.CurlMulti()
    curls = [easy(pycurl, url + "/delay/0.3") for _ in range(20)]
    for c in curls:
        m.add_handle(c)
    spin(m, 0.1)
    ref = weakref.ref(m)
    del m
    all_dead([ref])
    # The handles were detached: they run again elsewhere.
    m2 = pycurl.CurlMulti()
    for c in curls:
        assert not c.closed
        m2.add_handle(c)
    drive(m2)
    assert len(drain(m2)[0]) == 20
    m2.close()


@scenario
def drop_everything_with_callbacks_in_flight(pycurl, url):
    refs = []
    for close_handles in (False, True):
        m = pycurl.CurlMulti(close_handles=close_handles)
        m.setopt(pycurl.M_SOCKETFUNCTION, lambda *a: None)
        m.setopt(pycurl.M_TIMERFUNCTION, lambda ms: None)
        for i in range(30):
            c = easy(pycurl, url + ("/delay/0.5" if i % 2 else "/bytes/100000"))
            c.setopt(pycurl.HEADERFUNCTION, lambda h: None)
            c.setopt(pycurl.XFERINFOFUNCTION, lambda *a: 0)
            c.setopt(pycurl.NOPROGRESS, 0)
            m.add_handle(c)
            refs.append(weakref.ref(c))
        del c
        spin(m, 0.1)
        refs.append(weakref.ref(m))
        del m
    all_dead(refs)


@scenario
def drop_multi_with_close_handles_closes_them(pycurl, url):
    m = pycurl.CurlMulti(close_handles=True)
    curls = [easy(pycurl, url + "/delay/0.3") for _ in range(5)]
    for c in curls:
        m.add_handle(c)
    spin(m, 0.05)
    del m
    collect()
    assert all(c.closed for c in curls)


@scenario
def close_easy_while_attached(pycurl, url):
    m = pycurl.CurlMulti()
    idle = easy(pycurl, url + "/get")
    m.add_handle(idle)
    idle.close()
    assert idle.closed and idle not in m
    curls = [easy(pycurl, url + "/delay/0.3") for _ in range(6)]
    for c in curls:
        m.add_handle(c)
    spin(m, 0.1)
    for c in curls[::2]:
        c.close()                              # mid-transfer, between perform() calls
        assert c not in m
    drive(m)
    ok, failed = drain(m)
    assert sorted(map(id, ok)) == sorted(map(id, curls[1::2])) and not failed
    m.close()


@scenario
def close_in_every_order(pycurl, url):
    for order in itertools.permutations(["multi", "a", "b"]):
        for close_handles in (False, True):
            m = pycurl.CurlMulti(close_handles=close_handles)
            objs = {"multi": m, "a": easy(pycurl, url + "/delay/0.3"),
                    "b": easy(pycurl, url + "/bytes/1000")}
            m.add_handle(objs["a"])
            m.add_handle(objs["b"])
            spin(m, 0.05)
            for name in order:
                objs[name].close()
            for name in order:
                objs[name].close()               # and again: idempotent
            assert m.closed and objs["a"].closed and objs["b"].closed


@scenario
def drop_in_every_order(pycurl, url):
    for order in itertools.permutations(["multi", "a", "b"]):
        objs = {"multi": pycurl.CurlMulti(), "a": easy(pycurl, url + "/delay/0.3"),
                "b": easy(pycurl, url + "/bytes/1000")}
        objs["multi"].add_handle(objs["a"])
        objs["multi"].add_handle(objs["b"])
        spin(objs["multi"], 0.05)
        refs = [weakref.ref(o) for o in objs.values()]
        for name in order:
            del objs[name]
            collect()
        all_dead(refs)


@scenario
def cycles_through_callbacks(pycurl, url):
    """handle -> callback -> multi -> handle, and multi -> callback -> handle."""
    refs = []
    for close_handles in (False, True):
        m = pycurl.CurlMulti(close_handles=close_handles)
        curls = []
        for i in range(10):
            c = pycurl.Curl()
            c.setopt(pycurl.URL, url + "/bytes/50000")
            c.setopt(pycurl.WRITEFUNCTION, lambda d, m=m, c=c: (m, c) and None)
            c.setopt(pycurl.HEADERFUNCTION, lambda h, curls=curls: None)
            c.multi = m                        # attribute cycle too
            m.add_handle(c)
            curls.append(c)
        m.curls = curls
        m.setopt(pycurl.M_TIMERFUNCTION, lambda ms, m=m, curls=curls: None)
        m.setopt(pycurl.M_SOCKETFUNCTION, lambda *a, curls=curls: None)
        spin(m, 0.05)
        refs += [weakref.ref(m)] + [weakref.ref(c) for c in curls]
        del m, c, curls
    all_dead(refs)


@scenario
def cycles_after_completion(pycurl, url):
    refs = []
    m = pycurl.CurlMulti()
    for i in range(10):
        c = easy(pycurl, url + "/get")
        c.setopt(pycurl.WRITEFUNCTION, lambda d, m=m: None)
        m.add_handle(c)
        refs.append(weakref.ref(c))
    del c
    drive(m)
    assert len(drain(m)[0]) == 10
    refs.append(weakref.ref(m))
    del m
    all_dead(refs)


@scenario
def write_callback_closes_its_own_handle(pycurl, url):
    m = pycurl.CurlMulti()
    closers = []
    for i in range(10):
        c = pycurl.Curl()
        c.setopt(pycurl.URL, url + "/bytes/300000")
        c.setopt(pycurl.WRITEFUNCTION, lambda d, c=c: c.close())
        m.add_handle(c)
        closers.append(c)
    others = [easy(pycurl, url + "/bytes/1000") for _ in range(5)]
    for c in others:
        m.add_handle(c)
    drive(m)
    ok, failed = drain(m)
    assert len(ok) == 5 and not failed
    assert all(c.closed and c not in m for c in closers)
    refs = [weakref.ref(c) for c in closers]
    del closers, c
    all_dead(refs)
    m.close()


@scenario
def write_callback_removes_its_own_handle(pycurl, url):
    m = pycurl.CurlMulti()
    curls = []
    for i in range(10):
        c = pycurl.Curl()
        c.setopt(pycurl.URL, url + "/bytes/300000")
        c.setopt(pycurl.WRITEFUNCTION, lambda d, c=c: m.remove_handle(c) if c in m else None)
        m.add_handle(c)
        curls.append(c)
    drive(m)
    assert drain(m) == ([], [])
    assert all(c not in m and not c.closed for c in curls)
    # Each one is whole: again with a sane write callback.
    for c in curls:
        c.setopt(pycurl.WRITEFUNCTION, lambda d: None)
        m.add_handle(c)
    drive(m)
    assert len(drain(m)[0]) == 10
    m.close()


@scenario
def callback_closes_and_removes_other_handles(pycurl, url):
    m = pycurl.CurlMulti()
    victims = [easy(pycurl, url + "/delay/0.5") for _ in range(10)]

    def write(data):
        for i, v in enumerate(victims):
            if i % 2:
                v.close()
            elif v in m:
                m.remove_handle(v)
            v.close()                      # remove, then close: both deferred

    killer = easy(pycurl, url + "/bytes/10")
    killer.setopt(pycurl.WRITEFUNCTION, write)
    for c in victims + [killer]:
        m.add_handle(c)
    drive(m)
    assert drain(m) == ([killer], [])
    assert all(v.closed for v in victims)
    m.close()


@scenario
def socket_callback_removes_and_closes_handles(pycurl, url):
    import selectors
    sel = selectors.DefaultSelector()
    m = pycurl.CurlMulti()
    curls = [easy(pycurl, url + "/delay/0.3") for _ in range(8)]
    state = {"deadline": None}

    def on_socket(what, fd, multi, sp):
        if what == pycurl.POLL_REMOVE:
            sel.unregister(fd)
            return
        if fd not in sel.get_map():
            sel.register(fd, selectors.EVENT_READ | selectors.EVENT_WRITE)
        for i, c in enumerate(curls):
            if c in multi and i % 2:
                multi.remove_handle(c) if i % 4 == 1 else c.close()

    def on_timer(ms):
        state["deadline"] = None if ms < 0 else time.monotonic() + ms / 1000.0

    m.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
    m.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    for c in curls:
        m.add_handle(c)
    running, end = 1, time.monotonic() + 10
    while running:
        assert time.monotonic() < end
        d = state["deadline"]
        ready = sel.select(0.5 if d is None else max(0, d - time.monotonic())) if sel.get_map() else []
        if not ready:
            _, running = m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        for key, _ in ready:
            _, running = m.socket_action(key.fd, 0)
    ok, failed = drain(m)
    assert len(ok) == 4 and not failed
    assert not sel.get_map()
    m.close()


@scenario
def callbacks_close_the_handle_being_removed(pycurl, url):
    """The socket and timer callbacks that a removal runs close that very
    handle (or remove it again): libcurl is still inside the removal."""
    for how in ("remove_handle", "close", "deferred", "multi.close"):
        m = pycurl.CurlMulti()
        curls = [easy(pycurl, url + "/delay/0.5") for _ in range(4)]
        state = {"on": False}

        def grab(*args):
            if state["on"]:
                for c in curls:
                    if c in m:
                        m.remove_handle(c)
                    c.close()

        m.setopt(pycurl.M_SOCKETFUNCTION, grab)
        m.setopt(pycurl.M_TIMERFUNCTION, lambda ms: grab())
        for c in curls:
            if how == "multi.close":
                # close() runs no multi callbacks; the easy ones still come.
                c.setopt(pycurl.CLOSESOCKETFUNCTION,
                         lambda fd, c=c: (os.close(fd), c.close()) and 0)
            m.add_handle(c)
        for _ in range(10):
            if how == "multi.close":
                m.perform()                    # connected: removal closes sockets
                m.select(0.01)
            else:
                m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
                time.sleep(0.01)
        state["on"] = True
        if how == "remove_handle":
            m.remove_handle(curls[0])
        elif how == "close":
            curls[1].close()
        elif how == "deferred":
            killer = easy(pycurl, url + "/bytes/10")
            killer.setopt(pycurl.WRITEFUNCTION, lambda d: curls[2].close())
            state["on"] = False
            m.add_handle(killer)
            state["on"] = True
            drive(m)
        else:
            m.close()
        assert all(c.closed for c in curls) and not any(c in m for c in curls), how
        m.close()


@scenario
def timer_callback_closes_handles(pycurl, url):
    m = pycurl.CurlMulti()
    curls = [easy(pycurl, url + "/delay/0.2") for _ in range(4)]

    def on_timer(ms):
        for c in curls[:2]:
            if c in m:
                c.close()

    m.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    for c in curls:
        m.add_handle(c)                    # the timer callback runs inside add_handle
    assert curls[0].closed and curls[0] not in m and curls[1].closed
    drive(m)
    assert len(drain(m)[0]) == 2
    m.close()


@scenario
def callbacks_try_to_close_the_multi(pycurl, url):
    m = pycurl.CurlMulti()
    errors = []

    def attempt(*args):
        try:
            m.close()
        except pycurl.error as e:
            errors.append(e)

    m.setopt(pycurl.M_TIMERFUNCTION, attempt)
    c = easy(pycurl, url + "/bytes/100")
    c.setopt(pycurl.WRITEFUNCTION, attempt)
    m.add_handle(c)
    drive(m)
    assert drain(m) == ([c], []) and errors and not m.closed
    m.close()


@scenario
def closesocket_callback_outlives_its_handle(pycurl, url):
    closed = []

    def close_socket(fd):
        closed.append(fd)
        os.close(fd)
        return 0

    for how in ("close", "drop", "multi-first"):
        m = pycurl.CurlMulti()
        curls = []
        for _ in range(3):
            c = easy(pycurl, url + "/get")
            c.setopt(pycurl.CLOSESOCKETFUNCTION, close_socket)
            m.add_handle(c)
            curls.append(c)
        drive(m)
        assert len(drain(m)[0]) == 3
        if how == "multi-first":
            m.close()
        for c in curls:
            if how != "multi-first":
                m.remove_handle(c)
            c.close() if how != "drop" else None
        del curls, c
        collect()
        # The connections sit in the multi's cache; closing it calls
        # close_socket through each Curl's closer, not a freed handle.
        n = len(closed)
        m.close()
        assert len(closed) == n + (3 if how != "multi-first" else 0)
    assert len(closed) == 9


@scenario
def gc_inside_callbacks(pycurl, url):
    """Garbage multis and handles collected while another multi runs callbacks."""
    def garbage():
        g = pycurl.CurlMulti()
        for _ in range(3):
            c = easy(pycurl, url + "/delay/1")
            c.setopt(pycurl.WRITEFUNCTION, lambda d, g=g: None)
            g.add_handle(c)
        g.perform()
        g.self = g

    m = pycurl.CurlMulti()
    m.setopt(pycurl.M_TIMERFUNCTION, lambda ms: gc.collect())

    def write(data):
        garbage()
        gc.collect()

    curls = [easy(pycurl, url + "/bytes/100000") for _ in range(5)]
    for c in curls:
        c.setopt(pycurl.WRITEFUNCTION, write)
        m.add_handle(c)
        garbage()
    drive(m)
    assert len(drain(m)[0]) == 5
    m.close()
    collect()


@scenario
def a_thousand_handles_then_drop(pycurl, url):
    m = pycurl.CurlMulti()
    refs = []
    for i in range(1000):
        c = easy(pycurl, url + "/bytes/10")
        m.add_handle(c)
        refs.append(weakref.ref(c))
    del c
    spin(m, 0.3)
    refs.append(weakref.ref(m))
    del m
    all_dead(refs)


@scenario
def exceptions_everywhere_then_drop(pycurl, url):
    refs = []
    for where in ("socket", "timer", "write", "closesocket"):
        m = pycurl.CurlMulti()

        def boom(*a):
            raise RuntimeError(where)

        if where == "socket":
            m.setopt(pycurl.M_SOCKETFUNCTION, boom)
        if where == "timer":
            m.setopt(pycurl.M_TIMERFUNCTION, lambda ms: boom() if ms > 0 else None)
        for _ in range(3):
            c = easy(pycurl, url + "/bytes/1000")
            if where == "write":
                c.setopt(pycurl.WRITEFUNCTION, boom)
            if where == "closesocket":
                c.setopt(pycurl.CLOSESOCKETFUNCTION, boom)
            m.add_handle(c)
            refs.append(weakref.ref(c))
        try:
            for _ in range(20):
                m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
                m.perform()
                m.select(0.02)
        except pycurl.error as e:
            assert isinstance(e.__cause__, RuntimeError)
        refs.append(weakref.ref(m))
        del m, c
    all_dead(refs)


@scenario
def dup_and_reset_attached_handles(pycurl, url):
    m = pycurl.CurlMulti()
    c = easy(pycurl, url + "/delay/0.2")
    m.add_handle(c)
    m.perform()
    d = c.duphandle()
    assert d not in m
    m.add_handle(d)
    drive(m)
    assert len(drain(m)[0]) == 2
    m.remove_handle(c)
    c.reset()
    c.setopt(pycurl.URL, url + "/get")
    c.setopt(pycurl.WRITEFUNCTION, lambda x: None)
    m.add_handle(c)
    drive(m)
    assert drain(m)[0] == [c]
    m.close()
    c.close()
    d.close()


@scenario
def info_read_after_close_of_a_finished_handle(pycurl, url):
    m = pycurl.CurlMulti()
    curls = [easy(pycurl, url + "/get") for _ in range(5)]
    for c in curls:
        m.add_handle(c)
    drive(m)
    curls[0].close()                       # its DONE message goes with it
    m.remove_handle(curls[1])
    ok, failed = drain(m)
    assert sorted(map(id, ok)) == sorted(map(id, curls[2:])) and not failed
    m.close()


@scenario
def left_alive_at_interpreter_exit(pycurl, url):
    """Multis with handles in flight, callbacks, assigned objects and cycles
    still referenced when the interpreter exits: the finalizers run late."""
    import builtins
    keep = builtins.__dict__.setdefault("_curlmulti_keep", [])
    for close_handles in (False, True):
        m = pycurl.CurlMulti(close_handles=close_handles)
        m.setopt(pycurl.M_SOCKETFUNCTION,
                 lambda what, fd, multi, sp:
                 multi.assign(fd, [multi]) if sp is None and what != pycurl.POLL_REMOVE else None)
        m.setopt(pycurl.M_TIMERFUNCTION, lambda ms, m=m: None)
        for i in range(5):
            c = easy(pycurl, url + "/delay/2")
            c.setopt(pycurl.CLOSESOCKETFUNCTION, lambda fd: os.close(fd))
            c.multi = m
            m.add_handle(c)
        for _ in range(10):
            m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
            time.sleep(0.01)
        keep.append(m)
        keep.append(c)


def _upload_in_flight(pycurl, url, m, body, out, **options):
    """A Curl posting body to /echo, attached to m and driven until part of
    the body is sent."""
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url + "/echo")
    for name, value in options.items():
        c.setopt(getattr(pycurl, name), value)
    c.setopt(pycurl.WRITEFUNCTION, out.write)
    m.add_handle(c)
    end = time.monotonic() + 15
    while c.getinfo(pycurl.SIZE_UPLOAD_T) == 0:
        assert time.monotonic() < end, "the upload did not start"
        m.perform()
        m.select(0.01)
    assert c.getinfo(pycurl.SIZE_UPLOAD_T) < len(body), "the upload is not in flight"
    return c


def _replace_mid_upload(pycurl, url, change):
    body = bytes(range(256)) * (128 << 10)           # 32 MiB, large enough to be mmap'ed
    m = pycurl.CurlMulti()
    out = io.BytesIO()
    c = _upload_in_flight(pycurl, url, m, body, out, POSTFIELDS=body,
                          HTTPHEADER=["Content-Type: application/x-test", "X-Pad: " + "a" * 200])
    change(c)
    collect()
    junk = [bytes([66]) * (1 << 20) for _ in range(48)]   # reuses freed memory
    drive(m)
    assert drain(m) == ([c], [])
    assert c.getinfo(pycurl.RESPONSE_CODE) == 200
    assert out.getvalue() == body, "the body in flight changed"
    del junk
    # The next transfer sends what was set meanwhile.
    m.remove_handle(c)
    out.seek(0)
    out.truncate()
    m.add_handle(c)
    drive(m)
    assert drain(m) == ([c], [])
    m.close()
    c.close()
    return out.getvalue()


@scenario
def postfields_and_slist_replaced_mid_upload(pycurl, url):
    def change(c):
        c.setopt(pycurl.POSTFIELDS, b"x=1")
        c.setopt(pycurl.HTTPHEADER, ["X-B: 1"])
    assert _replace_mid_upload(pycurl, url, change) == b"x=1"


@scenario
def postfields_and_slist_unset_mid_upload(pycurl, url):
    def change(c):
        c.unsetopt(pycurl.POSTFIELDS)
        c.setopt(pycurl.HTTPHEADER, None)
        c.unsetopt(pycurl.POSTFIELDS)  # (setopt(POSTFIELDS, None) is a TypeError, as in pycurl)
        c.setopt(pycurl.POSTFIELDS, b"")
    assert _replace_mid_upload(pycurl, url, change) == b""


@scenario
def reset_and_httppost_refused_while_attached(pycurl, url):
    """libcurl's reset frees the state of a transfer in flight, and a form set
    mid-transfer would change the body being sent: both are refused while the
    handle is attached, and work again once it is removed."""
    warnings.simplefilter("ignore", DeprecationWarning)  # HTTPPOST, deprecated as in pycurl
    part = bytes(range(256)) * (64 << 10)            # 16 MiB
    m = pycurl.CurlMulti()
    out = io.BytesIO()
    c = _upload_in_flight(pycurl, url, m, part, out,
                          HTTPPOST=[("f", (pycurl.FORM_BUFFER, "f.bin", pycurl.FORM_BUFFERPTR, part))])
    for attempt in (c.reset, lambda: c.setopt(pycurl.HTTPPOST, [("g", "x")]),
                    lambda: c.unsetopt(pycurl.HTTPPOST), lambda: c.setopt(pycurl.HTTPPOST, None)):
        try:
            attempt()
        except pycurl.error as e:
            assert e.args[0] == 0 and "attached to a CurlMulti" in e.args[1], e.args
        else:
            raise AssertionError("not refused while attached")
    collect()
    drive(m)
    assert drain(m) == ([c], [])
    assert part in out.getvalue() and b'name="f"' in out.getvalue()
    m.remove_handle(c)
    c.setopt(pycurl.HTTPPOST, [("g", "x")])
    c.reset()
    m.close()
    c.close()


@scenario
def copy_and_pickle_refused(pycurl, url):
    import copy
    import pickle
    import tempfile
    m = pycurl.CurlMulti()
    c = easy(pycurl, url + "/get")
    m.add_handle(c)
    with tempfile.TemporaryFile() as f:
        objects = [c, m, pycurl.Curl(), pycurl.CurlMulti(), pycurl.Buffer(), pycurl.FileSink(f)]
        for obj in objects:
            for attempt in (copy.copy, copy.deepcopy, pickle.dumps,
                            lambda o: pickle.dumps(o, protocol=0), lambda o: o.__reduce_ex__(2)):
                try:
                    attempt(obj)
                except TypeError:
                    pass
                else:
                    raise AssertionError("%r was copied or pickled" % (obj,))
        drive(m)
        assert drain(m) == ([c], [])
        for obj in objects:
            if hasattr(obj, "close"):
                obj.close()
        del objects
        collect()


@scenario
def second_init_does_nothing(pycurl, url):
    """As in pycurl, calling __init__ again keeps the handle (it used to
    replace it under libcurl's feet)."""
    m = pycurl.CurlMulti()
    c = easy(pycurl, url + "/get")
    m.add_handle(c)
    c.__init__()
    m.__init__()
    m.__init__(close_handles=True)
    collect()
    assert c in m and c.multi() is m
    drive(m)
    assert drain(m) == ([c], [])
    c.close()
    c.__init__()
    assert c.closed
    m.close()
    m.__init__()
    assert m.closed
    c = easy(pycurl, url + "/get")
    c.perform()
    c.__init__()
    c.perform()
    c.close()


# ---------------------------------------------------------------- the tests (pytest side)

try:
    import pytest
except ImportError:  # the subprocess side needs no pytest
    pytest = None

if pytest is not None and __name__ != "__main__":
    import scenarios

    @pytest.mark.parametrize("name", sorted(SCENARIOS))
    def test_lifetime(fast_server, name):
        scenarios.check(__file__, name, fast_server.url)


if __name__ == "__main__":
    import curlmulti
    func = SCENARIOS[sys.argv[1]]
    func(curlmulti, sys.argv[2].rstrip("/"))
    collect()
    print("OK " + sys.argv[1])
    sys.stdout.flush()
