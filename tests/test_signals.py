"""Ctrl-C during a transfer: a real SIGINT, sent to the process while
``Curl.perform()``, a ``CurlMulti`` loop or ``AsyncCurlMulti`` runs a long
download, stops the program promptly, every time, with the
``KeyboardInterrupt`` raised by the call that ran libcurl (never "Exception
ignored from cffi callback", never a transfer that fails with error 23 and
goes on).  Mode ``waiting``: a ``CurlMulti.perform()`` that waits for the
multi's lock, held by another thread's callback, is interrupted as promptly
and leaves the multi idle.  Modes ending in ``-c`` use a builtin as the
write callback (``list.append``), which runs no Python code of its own: the
signal is noticed by the trampoline itself.

Each mode runs in a subprocess of the same interpreter with its own
trickling server (a thread sending 1 KB every 2 ms for ever), one warm-up
round and then ``TRIES`` signals at varied moments; the subprocess prints
the latency of each (from ``os.kill`` to the ``except KeyboardInterrupt``).
Run one by hand with ``python tests/test_signals.py MODE``."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

TRIES = 20
LIMIT_MS = 100.0
MODES = ("perform", "multi", "async", "waiting", "perform-c", "multi-c")


def trickle_server():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)

    def one(conn):
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
            while True:
                conn.sendall(b"x" * 1024)
                time.sleep(0.002)
        except OSError:
            pass
        finally:
            conn.close()

    def serve():
        while True:
            try:
                conn, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return "http://127.0.0.1:%d/" % ls.getsockname()[1]


def wait_for_the_lock(pycurl, url, written):
    """The main thread's CurlMulti.perform() waits for the multi's lock, which
    another thread holds while its add_handle() runs the timer callback."""
    m = pycurl.CurlMulti()
    inside = threading.Event()
    release = threading.Event()

    def on_timer(ms):
        inside.set()
        release.wait(30)

    m.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    t = threading.Thread(target=m.add_handle, args=(c,), daemon=True)
    t.start()
    inside.wait(30)
    written.append(0)
    try:
        m.perform()
    finally:
        release.set()
        t.join(30)
        assert not t.is_alive()
        rec = m._rec
        assert rec.depth == 0 and rec.thread is None and not rec.waiters, (rec.depth, rec.thread)
        m.setopt(pycurl.M_TIMERFUNCTION, None)
        m.close()
        c.close()


def transfer(pycurl, mode, url, written):
    if mode == "waiting":
        return wait_for_the_lock(pycurl, url, written)
    builtin = mode.endswith("-c")
    if builtin:
        mode = mode[:-2]
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEFUNCTION, written.append if builtin else lambda data: written.append(len(data)))
    try:
        if mode == "perform":
            c.perform()
        elif mode == "multi":
            m = pycurl.CurlMulti()
            m.add_handle(c)
            try:
                while True:
                    m.perform()
                    m.select(1.0)
            finally:
                m.close()
        else:
            import asyncio

            async def run():
                async with pycurl.AsyncCurlMulti() as multi:
                    await multi.perform(c)

            asyncio.run(run())
    finally:
        c.close()


def main(mode):
    import curlmulti as pycurl
    # A process started in the background by a non-interactive shell inherits
    # SIGINT ignored, and Python then leaves it so: the signals below would be
    # lost and the transfer would never end.  Ctrl-C's usual handler, always.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    url = trickle_server()
    latencies = []
    for i in range(TRIES + 1):
        sent = []
        written = []

        def fire(delay=0.15 + (i % 7) * 0.011):
            time.sleep(delay)
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=fire, daemon=True).start()
        try:
            transfer(pycurl, mode, url, written)
        except KeyboardInterrupt:
            latency = time.monotonic() - sent[0]
        else:
            raise AssertionError("the transfer ended without the KeyboardInterrupt")
        assert written, "no data before the signal"
        if i:  # the first round warms up (PyPy's JIT, asyncio's imports)
            latencies.append(latency * 1000.0)
    print(" ".join("%.1f" % ms for ms in latencies))


# ---------------------------------------------------------------- the tests (pytest side)

def child_output(script, mode):
    """Run ``script MODE`` in a subprocess of this interpreter, importing the
    curlmulti under test; its output, once it exited 0 with nothing on
    stderr (no "Exception ignored", no traceback)."""
    import curlmulti
    where = os.path.dirname(os.path.dirname(os.path.abspath(curlmulti.__file__)))
    env = dict(os.environ, PYTHONPATH=where)
    proc = subprocess.run([sys.executable, os.path.abspath(script), mode],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=100)
    err = proc.stderr.decode()
    assert proc.returncode == 0 and err == "", err[-3000:]
    return proc.stdout.decode()


try:
    import pytest
except ImportError:
    pytest = None

if pytest is not None and __name__ != "__main__":

    @pytest.mark.timeout(120)
    @pytest.mark.parametrize("mode", MODES)
    def test_sigint_stops_the_transfer_promptly(mode):
        latencies = [float(x) for x in child_output(__file__, mode).split()]
        assert len(latencies) == TRIES
        assert max(latencies) < LIMIT_MS, latencies


if __name__ == "__main__":
    main(sys.argv[1])
