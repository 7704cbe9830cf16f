"""CurlMulti under load against the local servers: the classic
perform()/select() loop with 200 transfers in flight over 5,000 URLs, a
socket_action() loop on epoll, successes mixed with every kind of failure,
1,000 handles at once, descriptors beyond 1024, and examples/crawler.py run
as a pycurl program."""

import collections
import io
import os
import selectors
import subprocess
import sys
import textwrap
import time

import pytest

import curlmulti as pycurl
from curlmulti import Curl, CurlMulti

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRAWLER = os.path.join(ROOT, "examples", "crawler.py")
# Where the curlmulti under test lives: the subprocesses import that one.
PKG_PATH = os.path.dirname(os.path.dirname(os.path.abspath(pycurl.__file__)))
REAL_PYCURL_PYTHON = os.environ.get("CURLMULTI_PYCURL_PYTHON", "/tmp/pcv/bin/python")
BUDGET = 30.0  # seconds per load test on one interpreter


def pattern(size):
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def classic_loop(m, urls, in_flight, setup=None):
    """Keep ``in_flight`` transfers running over ``urls`` with perform() and
    select(); returns {url index: (curl code, response code, body)}."""
    queue = collections.deque(enumerate(urls))
    free = []
    results = {}
    active = 0
    end = time.monotonic() + BUDGET

    def start():
        c = free.pop() if free else Curl()
        c.index, url = queue.popleft()
        c.body = io.BytesIO()
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.WRITEFUNCTION, c.body.write)
        if setup is not None:
            setup(c, url)
        m.add_handle(c)

    while queue and active < in_flight:
        start()
        active += 1
    while active:
        assert time.monotonic() < end, "over budget with %d left" % (active + len(queue))
        if m.select(1.0) == 0:
            continue
        _, running = m.perform()
        while True:
            queued, ok, failed = m.info_read()
            for c, code in [(c, 0) for c in ok] + [(f[0], f[1]) for f in failed]:
                results[c.index] = (code, c.getinfo(pycurl.RESPONSE_CODE), c.body.getvalue())
                m.remove_handle(c)
                free.append(c)
                active -= 1
                if queue:
                    start()
                    active += 1
            if not queued:
                break
    for c in free:
        c.close()
    return results


class EpollLoop(object):
    """A socket_action() loop: M_SOCKETFUNCTION registers sockets with a
    selector (epoll on Linux) and assign()s per-socket state, M_TIMERFUNCTION
    keeps the one timer."""

    def __init__(self, m):
        self.m = m
        self.sel = selectors.DefaultSelector()
        self.deadline = None
        self.assigned = 0
        m.setopt(pycurl.M_SOCKETFUNCTION, self.on_socket)
        m.setopt(pycurl.M_TIMERFUNCTION, self.on_timer)

    def on_socket(self, what, fd, multi, state):
        if what == pycurl.POLL_REMOVE:
            self.sel.unregister(fd)
            return
        mask = (selectors.EVENT_READ if what & pycurl.POLL_IN else 0) | \
               (selectors.EVENT_WRITE if what & pycurl.POLL_OUT else 0)
        if state is None:
            state = {"fd": fd}
            self.sel.register(fd, mask, state)
            multi.assign(fd, state)
            self.assigned += 1
        else:
            assert state["fd"] == fd
            self.sel.modify(fd, mask, state)

    def on_timer(self, ms):
        self.deadline = None if ms < 0 else time.monotonic() + ms / 1000.0

    def run(self, urls, in_flight, setup=None):
        m = self.m
        queue = collections.deque(enumerate(urls))
        results = {}
        end = time.monotonic() + BUDGET
        active = 0

        def start():
            c = Curl()
            c.index, url = queue.popleft()
            c.body = io.BytesIO()
            c.setopt(pycurl.URL, url)
            c.setopt(pycurl.WRITEFUNCTION, c.body.write)
            if setup is not None:
                setup(c, url)
            m.add_handle(c)

        while queue and active < in_flight:
            start()
            active += 1
        while active:
            assert time.monotonic() < end, "over budget"
            d = self.deadline
            wait = 1.0 if d is None else max(0.0, d - time.monotonic())
            ready = self.sel.select(wait) if self.sel.get_map() else time.sleep(wait) or []
            if not ready:
                self.deadline = None
                m.socket_action(pycurl.SOCKET_TIMEOUT, 0)
            for key, mask in ready:
                ev = (pycurl.CSELECT_IN if mask & selectors.EVENT_READ else 0) | \
                     (pycurl.CSELECT_OUT if mask & selectors.EVENT_WRITE else 0)
                m.socket_action(key.fd, ev)
            while True:
                queued, ok, failed = m.info_read()
                for c, code in [(c, 0) for c in ok] + [(f[0], f[1]) for f in failed]:
                    results[c.index] = (code, c.getinfo(pycurl.RESPONSE_CODE), c.body.getvalue())
                    m.remove_handle(c)
                    c.close()
                    active -= 1
                    if queue:
                        start()
                        active += 1
                if not queued:
                    break
        return results


def test_classic_loop_5000_urls_200_in_flight(fast_server):
    server = fast_server.server
    urls = [fast_server("/bytes/%d" % (i % 97 * 7)) for i in range(5000)]
    before = server.requests
    t0 = time.monotonic()
    m = CurlMulti()
    results = classic_loop(m, urls, 200)
    elapsed = time.monotonic() - t0
    m.close()
    assert len(results) == 5000
    bad = [(i, r[:2]) for i, r in results.items() if r[0] != 0 or r[1] != 200]
    assert not bad, bad[:5]
    assert all(body == pattern(i % 97 * 7) for i, (_, _, body) in results.items())
    assert server.requests - before >= 5000    # (late answers of earlier tests count too)
    assert elapsed < BUDGET


def test_socket_action_loop_on_epoll(fast_server):
    urls = [fast_server("/bytes/%d" % (i % 50 * 100)) for i in range(2000)]
    m = CurlMulti()
    loop = EpollLoop(m)
    results = loop.run(urls, 100)
    assert len(results) == 2000
    assert all(r[0] == 0 and r[1] == 200 for r in results.values())
    assert all(body == pattern(i % 50 * 100) for i, (_, _, body) in results.items())
    assert loop.assigned >= 1
    assert not loop.sel.get_map() or all(k.data is not None for k in loop.sel.get_map().values())
    m.close()
    assert not m._rec.assigned


@pytest.mark.parametrize("driver", ["classic", "epoll"])
def test_successes_and_failures_each_report_their_code(
        driver, fast_server, refused_port, stalling_server, truncating_server, reset_server,
        garbage_server):
    cases = [
        (fast_server("/bytes/1000"), 0, 200),
        (fast_server("/status/404"), 0, 404),                  # no FAILONERROR: a success
        (fast_server("/status/404?fail"), pycurl.E_HTTP_RETURNED_ERROR, 404),
        (fast_server("/status/503?fail"), pycurl.E_HTTP_RETURNED_ERROR, 503),
        (refused_port("/"), pycurl.E_COULDNT_CONNECT, 0),
        (stalling_server("/"), pycurl.E_OPERATION_TIMEDOUT, 0),
        (stalling_server("/after-headers"), pycurl.E_OPERATION_TIMEDOUT, 200),
        (truncating_server("/"), pycurl.E_PARTIAL_FILE, 200),
        (truncating_server("/empty"), pycurl.E_GOT_NOTHING, 0),
        (reset_server("/"), pycurl.E_RECV_ERROR, 200),
        (garbage_server("/"), None, 0),   # libcurl's choice: see below
        ("http://127.0.0.1:99999/", pycurl.E_URL_MALFORMAT, 0),
        ("nosuchscheme://x/", pycurl.E_UNSUPPORTED_PROTOCOL, 0),
    ] * 3

    def setup(c, url):
        c.setopt(pycurl.FAILONERROR, 1 if url.endswith("?fail") else 0)
        c.setopt(pycurl.TIMEOUT_MS, 700)

    urls = [u for u, _, _ in cases]
    m = CurlMulti()
    if driver == "classic":
        results = classic_loop(m, urls, 20, setup)
    else:
        results = EpollLoop(m).run(urls, 20, setup)
    m.close()
    assert len(results) == len(cases)
    for i, (url, code, status) in enumerate(cases):
        got_code, got_status, body = results[i]
        if code is None:  # not HTTP: libcurl 7.88 says HTTP/0.9 or weird reply
            assert got_code in (pycurl.E_UNSUPPORTED_PROTOCOL, pycurl.E_WEIRD_SERVER_REPLY), (url, got_code)
        else:
            assert (got_code, got_status) == (code, status), url
        if code == 0:
            assert body == (pattern(1000) if status == 200 else body)


def test_a_thousand_handles_attached_at_once(fast_server):
    m = CurlMulti()
    curls = []
    for i in range(1000):
        c = Curl()
        c.setopt(pycurl.URL, fast_server("/bytes/%d" % (i % 10)))
        c.body = io.BytesIO()
        c.setopt(pycurl.WRITEFUNCTION, c.body.write)
        m.add_handle(c)
        curls.append(c)
    assert len(m._rec.handles) == 1000
    t0 = time.monotonic()
    _, running = m.perform()
    while running:
        assert time.monotonic() - t0 < BUDGET
        if m.select(1.0) == 0:
            continue
        _, running = m.perform()
    ok = []
    while True:
        queued, o, failed = m.info_read()
        assert not failed, failed[:3]
        ok += o
        if not queued:
            break
    assert len(ok) == 1000 and set(map(id, ok)) == set(map(id, curls))
    assert all(c.body.getvalue() == pattern(i % 10) for i, c in enumerate(curls))
    m.close()
    assert not any(c in m for c in curls)


BEYOND_1024 = textwrap.dedent(r"""
    import os, resource, sys, time
    import curlmulti as pycurl
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft == resource.RLIM_INFINITY or soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    hold = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    assert max(hold) > 1024
    url = sys.argv[1]
    m = pycurl.CurlMulti()
    fds = set()
    curls = []
    for i in range(50):
        c = pycurl.Curl()
        c.setopt(pycurl.URL, url + "/bytes/%d" % (1000 + i))
        c.setopt(pycurl.WRITEFUNCTION, lambda d: None)
        c.setopt(pycurl.SOCKOPTFUNCTION, lambda fd, purpose: fds.add(fd) or 0)
        m.add_handle(c)
        curls.append(c)
    end = time.monotonic() + 20
    _, running = m.perform()
    while running:
        assert time.monotonic() < end, "stalled"
        r, w, x = m.fdset()        # cannot show fds >= 1024, must not crash
        assert all(fd < 1024 for fd in r + w + x)
        if m.select(1.0) == 0:
            continue
        _, running = m.perform()
    ok = []
    while True:
        q, o, f = m.info_read()
        assert not f, f
        ok += o
        if not q:
            break
    assert len(ok) == 50, len(ok)
    assert fds and min(fds) > 1024, sorted(fds)[:5]
    for c in curls:
        assert c.getinfo(pycurl.SIZE_DOWNLOAD) > 0
    m.close()
    print("OK", len(fds), min(fds))
""")


def test_select_beyond_descriptor_1024(fast_server, tmp_path):
    env = dict(os.environ, PYTHONPATH=PKG_PATH)
    proc = subprocess.run([sys.executable, "-c", BEYOND_1024, fast_server.url], cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, err[-3000:]
    assert out.startswith("OK"), out


# ---------------------------------------------------------------- the crawler example

def _crawl(python, pythonpath, urls, *args):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    proc = subprocess.run([python, CRAWLER] + list(args), input="\n".join(urls).encode(), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120)
    lines = proc.stdout.decode().splitlines()
    return proc.returncode, sorted(lines), proc.stderr.decode()


def _crawl_urls(fast_server, refused_port):
    good = [fast_server("/bytes/%d" % (i * 10)) for i in range(200)]
    extra = [fast_server("/status/404"), refused_port("/")]
    expected = sorted(["200 %d %s" % (i * 10, u) for i, u in enumerate(good)]
                      + ["404 0 %s" % extra[0], "0 0 %s" % extra[1]])
    return good + extra, expected


def test_crawler_runs_unchanged_with_curlmulti_as_pycurl(tmp_path, fast_server, refused_port):
    (tmp_path / "pycurl.py").write_text(
        "import sys, curlmulti\nsys.modules[__name__] = curlmulti\n")
    urls, expected = _crawl_urls(fast_server, refused_port)
    code, lines, err = _crawl(sys.executable, str(tmp_path) + os.pathsep + PKG_PATH, urls, "-c", "20")
    assert lines == expected
    assert code == 1 and err.count("\n") == 1
    assert "error %d:" % pycurl.E_COULDNT_CONNECT in err
    # The shim really was the pycurl the script imported.
    probe = subprocess.run([sys.executable, "-c", "import pycurl; print(pycurl.version)"],
                           stdout=subprocess.PIPE, cwd=str(tmp_path),
                           env=dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + PKG_PATH))
    assert probe.stdout.decode().startswith("curlmulti/")


def test_crawler_urls_as_arguments(tmp_path, fast_server):
    urls = [fast_server("/bytes/5"), fast_server("/bytes/6")]
    env = dict(os.environ, PYTHONPATH=PKG_PATH)
    proc = subprocess.run([sys.executable, CRAWLER] + urls, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(proc.stdout.decode().splitlines()) == ["200 5 " + urls[0], "200 6 " + urls[1]]


@pytest.mark.skipif(not os.path.exists(REAL_PYCURL_PYTHON),
                    reason="no python with the real pycurl (set CURLMULTI_PYCURL_PYTHON)")
def test_crawler_runs_with_the_real_pycurl(fast_server, refused_port):
    probe = subprocess.run([REAL_PYCURL_PYTHON, "-c", "import pycurl; print(pycurl.version)"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=""))
    if probe.returncode != 0 or not probe.stdout.startswith(b"PycURL/"):
        pytest.skip("no pycurl at %s" % REAL_PYCURL_PYTHON)
    urls, expected = _crawl_urls(fast_server, refused_port)
    code, lines, err = _crawl(REAL_PYCURL_PYTHON, "", urls, "-c", "20")
    assert lines == expected
    assert code == 1
