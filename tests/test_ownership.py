"""The owner records (curlmulti/_owner.py): what each C object's owner
guarantees, checked from the outside.

* dropping the last reference frees a handle at once on CPython (no cycle
  through the object, so reference counting frees it, as pycurl does);
* no library call runs the cyclic collector;
* a second ``__init__`` of any class that owns C memory changes nothing, so
  libcurl never writes into freed memory;
* the explicit states: what each allows, and what it refuses."""

import gc
import io
import os
import platform
import weakref

import pytest

import curlmulti as pycurl
from curlmulti import Buffer, Curl, CurlMulti, CurlShare, FileSink, error

CPYTHON = platform.python_implementation() == "CPython"
needs_refcounts = pytest.mark.skipif(not CPYTHON, reason="PyPy frees objects at its collections")


class NoCollection(object):
    """gc disabled, and a record of every collection that runs anyway
    (only an explicit gc.collect() can)."""

    def __enter__(self):
        self.runs = []
        self.was_enabled = gc.isenabled()
        gc.disable()
        if hasattr(gc, "callbacks"):  # not on PyPy: there only gc is disabled
            gc.callbacks.append(self._seen)
        return self

    def _seen(self, phase, info):
        if phase == "start":
            self.runs.append(info)

    def __exit__(self, *exc):
        if hasattr(gc, "callbacks"):
            gc.callbacks.remove(self._seen)
        if self.was_enabled:
            gc.enable()


def easy(url):
    c = Curl()
    c.setopt(c.URL, url)
    c.setopt(c.WRITEFUNCTION, io.BytesIO().write)
    return c


def drive(m):
    _, running = m.perform()
    while running:
        m.select(1.0)
        _, running = m.perform()


# ---------------------------------------------------------------- freed by reference counting

@needs_refcounts
def test_a_dropped_curl_is_freed_at_once(fast_server):
    with NoCollection():
        c = easy(fast_server("/get"))
        c.setopt(c.HEADERFUNCTION, lambda line: None)
        c.setopt(c.HTTPHEADER, ["X-A: 1"])
        c.perform()
        ref = weakref.ref(c)
        rec = weakref.ref(c._rec)
        del c
        assert ref() is None and rec() is None


@needs_refcounts
def test_a_curl_that_went_through_a_multi_is_freed_at_once(fast_server):
    with NoCollection():
        m = CurlMulti()
        c = easy(fast_server("/get"))
        m.add_handle(c)
        drive(m)
        assert m.info_read()[1] == [c]
        m.remove_handle(c)
        ref = weakref.ref(c)
        del c
        assert ref() is None
        m.close()


@needs_refcounts
def test_a_dropped_multi_is_freed_at_once_and_detaches_its_handles(fast_server):
    with NoCollection() as seen:
        m = CurlMulti()
        curls = [easy(fast_server("/get")) for _ in range(3)]
        for c in curls:
            m.add_handle(c)
        m.perform()
        ref = weakref.ref(m)
        del m
        assert ref() is None
        assert all(c.multi() is None for c in curls)
        for c in curls:
            c.perform()         # usable alone again
            c.close()
        assert seen.runs == []


@needs_refcounts
def test_a_dropped_share_is_freed_once_its_last_user_lets_go(fast_server):
    with NoCollection():
        s = CurlShare()
        s.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_COOKIE)
        c = easy(fast_server("/get"))
        c.setopt(c.SHARE, s)
        ref = weakref.ref(s)
        del s
        assert ref() is not None        # the Curl uses it
        c.perform()
        del c
        assert ref() is None


def test_no_library_call_runs_the_collector(fast_server):
    """add_handle() of a handle of a dropped multi, setopt() of what libcurl
    cannot take while attached, close(): none of them collects."""
    with NoCollection() as seen:
        m = CurlMulti()
        m.cycle = m                         # waits for the collector
        c = easy(fast_server("/get"))
        m.add_handle(c)
        del m
        other = CurlMulti()
        with pytest.raises(error, match="another CurlMulti"):
            other.add_handle(c)
        with pytest.raises(error, match="attached"):
            c.setopt(c.HTTPPOST, [("a", "b")])
        with pytest.raises(error, match="attached"):
            c.reset()
        other.close()
        assert seen.runs == []
    for _ in range(3):
        gc.collect()
    assert c.multi() is None
    c.close()


# ---------------------------------------------------------------- a second __init__

@pytest.mark.parametrize("make", ["buffer", "filesink"])
def test_second_init_of_a_sink_changes_nothing(fast_server, make, tmp_path):
    """Re-running __init__ used to swap in a new C sink and free the one
    libcurl was writing into."""
    f = open(str(tmp_path / "body"), "wb")
    sink = Buffer() if make == "buffer" else FileSink(f)
    before = sink._sink
    c = Curl()
    c.setopt(c.URL, fast_server("/bytes/100000"))
    c.setopt(c.WRITEDATA, sink)
    m = CurlMulti()
    m.add_handle(c)
    m.perform()
    if make == "buffer":
        sink.__init__()
    else:
        sink.__init__(io.BytesIO())     # another file: ignored all the same
    assert sink._sink is before
    drive(m)
    assert m.info_read()[1] == [c]
    m.close()
    c.close()
    if make == "buffer":
        assert len(sink.getvalue()) == 100000
    else:
        f.close()
        assert os.path.getsize(str(tmp_path / "body")) == 100000


@pytest.mark.parametrize("cls", [Curl, CurlMulti, CurlShare, Buffer])
def test_second_init_keeps_the_record(cls):
    obj = cls()
    rec = obj._rec
    obj.__init__()
    assert obj._rec is rec
    obj.close()


def test_second_init_of_a_closed_object_does_not_revive_it():
    c = Curl()
    c.close()
    c.__init__()
    assert c.closed
    with pytest.raises(error):
        c.setopt(c.URL, "http://127.0.0.1/")


# ---------------------------------------------------------------- states

def test_states_of_a_curl(fast_server):
    c = easy(fast_server("/get"))
    rec = c._rec
    assert rec.state == "idle"
    seen = []
    c.setopt(c.WRITEFUNCTION, lambda data: seen.append(rec.state))
    c.perform()
    assert seen and set(seen) == {"performing"} and rec.state == "idle"
    m = CurlMulti()
    m.add_handle(c)
    assert rec.state == "attached" and rec.lock is m._rec.lock
    m.remove_handle(c)
    assert rec.state == "idle" and rec.lock is rec.own_lock
    m.add_handle(c)
    c.close()
    assert rec.state == "closed" and c.closed and c not in m
    m.close()


def test_the_c_idle_flag_follows_the_states(fast_server):
    # The fast paths of setopt/getinfo run only while the C side says idle;
    # in every other state they fall back to the checks under the lock.
    c = easy(fast_server("/get"))
    rec = c._rec
    assert rec.gate.idle == 1
    seen = []

    def write(data):
        seen.append(rec.gate.idle)
        with pytest.raises(error, match="perform"):
            c.setopt(c.URL, fast_server("/other"))  # refused from the transfer's callback
        seen.append(c.getinfo(c.RESPONSE_CODE))  # allowed there

    c.setopt(c.WRITEFUNCTION, write)
    c.perform()
    assert seen[:2] == [0, 200] and rec.gate.idle == 1
    m = CurlMulti()
    m.add_handle(c)
    assert rec.gate.idle == 0
    c.setopt(c.URL, fast_server("/get"))  # attached, the multi idle: allowed, under its lock
    assert c.getinfo(c.RESPONSE_CODE) == 200
    m.remove_handle(c)
    assert rec.gate.idle == 1
    m.add_handle(c)
    c.close()
    assert rec.gate.idle == 0
    with pytest.raises(error):
        c.setopt(c.URL, fast_server("/get"))
    with pytest.raises(error):
        c.getinfo(c.RESPONSE_CODE)
    m.close()


def test_a_curl_closed_from_a_multi_callback_is_closing_until_the_call_returns(fast_server):
    m = CurlMulti()
    c = Curl()
    c.setopt(c.URL, fast_server("/bytes/300000"))
    states = []

    def write(data):
        if not c.closed:
            c.close()
            states.append(c._rec.state)
        return None

    c.setopt(c.WRITEFUNCTION, write)
    m.add_handle(c)
    drive(m)
    assert states == ["closing"]
    assert c._rec.state == "closed" and c.closed and c not in m
    m.close()


def test_refusals_name_the_call_and_the_reason(fast_server):
    c = easy(fast_server("/get"))
    m = CurlMulti()
    m.add_handle(c)
    with pytest.raises(error) as ei:
        c.perform()
    assert ei.value.args == (0, "cannot invoke perform() - the Curl object is attached to a CurlMulti")
    with pytest.raises(error, match="already attached to this CurlMulti"):
        m.add_handle(c)
    m.close()
    c.close()
    with pytest.raises(error) as ei:
        c.setopt(c.URL, "x")
    assert ei.value.args == (0, "cannot invoke setopt() - no curl handle (the Curl object is closed)")
    with pytest.raises(error) as ei:
        m.add_handle(Curl())
    assert ei.value.args[1] == "cannot add/remove handle - multi-stack is closed"  # pycurl's words


def test_bad_option_values_name_the_option():
    c = Curl()
    with pytest.raises(TypeError) as ei:
        c.setopt(c.URL, 5)
    assert str(ei.value) == "URL takes str or bytes, not int"
    with pytest.raises(TypeError, match="^TIMEOUT_MS takes an int, not str$"):
        c.setopt(c.TIMEOUT_MS, "5")
    with pytest.raises(ValueError, match="^USERAGENT: value contains a NUL byte$"):
        c.setopt(c.USERAGENT, "a\0b")
    with pytest.raises(TypeError, match="^WRITEFUNCTION takes a callable, not int$"):
        c.setopt(c.WRITEFUNCTION, 3)
    c.close()


def test_opensocket_may_not_hand_over_a_descriptor_it_still_owns(fast_server):
    """The guard against two owners of one descriptor: only a socket object
    (duplicated for libcurl) or SOCKET_BAD."""
    r, w = os.pipe()
    try:
        c = easy(fast_server("/get"))
        c.setopt(c.OPENSOCKETFUNCTION, lambda purpose, address: r)
        with pytest.raises(error) as ei:
            c.perform()
        assert isinstance(ei.value.__cause__, TypeError)
        c.close()
        os.fstat(r)                     # still open: libcurl never got it
    finally:
        os.close(r)
        os.close(w)


def test_an_uninitialised_curl_reads_as_closed():
    c = Curl.__new__(Curl)
    assert c.closed
    for call in (lambda: c.setopt(c.URL, "http://127.0.0.1/"), lambda: c.getinfo(c.RESPONSE_CODE),
                 c.perform, c.errstr, lambda: c.pause(0)):
        with pytest.raises(error, match="closed"):
            call()
    c.close()                           # nothing to do
    m = CurlMulti()
    with pytest.raises(error, match="closed"):
        m.add_handle(c)
    m.close()
