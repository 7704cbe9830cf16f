"""The fast calls of CPython (curlmulti/_decl/fastcall.c): the hot C calls
built as builtins that keep the GIL.

They must give the same answers as the cffi functions they stand in for
(the rest of the suite runs through them on CPython), and they must never
wait for a handle's mutex while holding the GIL: the thread holding the
mutex may need the GIL to let go of it.  Each check of that runs in a child
process, so that a deadlock fails the test instead of hanging the suite."""

import os
import platform
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from curlmulti import _easy

CPYTHON = platform.python_implementation() == "CPython"
WITH_GIL = CPYTHON and not sysconfig.get_config_var("Py_GIL_DISABLED")

NAMES = {"setopt_str", "setopt_long", "getinfo_long", "easy_lock", "easy_unlock", "add_begin",
         "add_abandon", "add_finish", "remove", "multi_unlock", "info"}


def test_the_builtins_are_used_where_they_are_built():
    if WITH_GIL:
        assert set(_easy.FASTCALL) == NAMES
        assert _easy._fast_setopt_str is _easy.FASTCALL["setopt_str"]
        assert type(_easy._fast_setopt_str).__name__ == "builtin_function_or_method"
    else:
        assert _easy.FASTCALL == {}
        assert type(_easy._fast_setopt_str).__name__ != "builtin_function_or_method"


@pytest.mark.skipif(not WITH_GIL, reason="built on CPython with the GIL only")
@pytest.mark.parametrize("args, error", [
    ((), TypeError),
    ((0, 1, 2), ValueError),           # address 0
    (("x", 1, 2), TypeError),          # an address must be an int
    ((1, 2, "x"), TypeError),          # so must the value
    ((1, 2, 1 << 70), OverflowError),  # and fit a C long
])
def test_bad_arguments_raise(args, error):
    with pytest.raises(error):
        _easy.FASTCALL["setopt_long"](*args)


@pytest.mark.skipif(not WITH_GIL, reason="built on CPython with the GIL only")
def test_setopt_str_takes_bytes_only():
    c = _easy.Curl()
    with pytest.raises(TypeError, match="bytes"):
        _easy.FASTCALL["setopt_str"](c._rec.gk, 10002, "http://x/")
    c.close()


# The child: a thread holds the handle's mutex (its own lock, a recursive C
# mutex) and runs Python while another thread makes the call under test.  The
# caller must wait for the mutex with the GIL released, or the holder can
# never run again to release it.
CHILD = textwrap.dedent("""
    import sys, threading
    import curlmulti as pycurl

    op = sys.argv[1]
    c = pycurl.Curl()
    c.setopt(pycurl.URL, "http://127.0.0.1:9/")
    c.setopt(pycurl.WRITEFUNCTION, [].append)
    m = pycurl.CurlMulti()
    if op == "remove_handle":
        m.add_handle(c)
    lock = c._rec.own_lock
    holding, started = threading.Event(), threading.Event()
    order = []

    def holder():
        lock.acquire()
        holding.set()
        started.wait()
        for _ in range(200):      # Python, needing the GIL, with the mutex held
            sum(range(2000))
        order.append("released")
        lock.release()

    def caller():
        started.set()
        if op == "setopt_str":
            c.setopt(pycurl.URL, "http://127.0.0.1:9/other")
        elif op == "setopt_long":
            c.setopt(pycurl.TIMEOUT_MS, 1234)
        elif op == "getinfo":
            c.getinfo(pycurl.RESPONSE_CODE)
        elif op == "swap":
            c.setopt(pycurl.WRITEFUNCTION, [].append)
        elif op == "add_handle":
            m.add_handle(c)
        elif op == "remove_handle":
            m.remove_handle(c)
        order.append("done")

    h = threading.Thread(target=holder)
    h.start()
    holding.wait()
    t = threading.Thread(target=caller)
    t.start()
    t.join()
    h.join()
    assert order == ["released", "done"], order  # the call waited for the mutex
    if op == "add_handle":
        assert m.remove_handle(c) is None
    m.close()
    c.close()
    print("ok", order[-1])
""")


@pytest.mark.parametrize("op", ["setopt_str", "setopt_long", "getinfo", "swap", "add_handle",
                                "remove_handle"])
def test_a_call_waits_for_a_held_mutex_without_the_gil(op):
    r = subprocess.run([sys.executable, "-c", CHILD, op], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120,
                       env=dict(os.environ, PYTHONFAULTHANDLER="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok"), r.stdout
