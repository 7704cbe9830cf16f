#!/usr/bin/env python3
"""Soak test: many requests through curlmulti against a local nginx with
faulty endpoints, checking that every request is accounted for exactly once
with the outcome its endpoint calls for, and that descriptors and RSS stay
flat after the warm-up.

    python benchmarks/soak.py                       # 1,000,000 requests per driver
    python benchmarks/soak.py --quick               # 50,000 per driver
    python benchmarks/soak.py --requests 200000 --driver async

Run it with an interpreter that has curlmulti installed (tox -e soak does
that; so do the venvs of scripts/test.sh: .venv/cpython/bin/python,
.venv/pypy/bin/python).  It starts nginx (apt-get installs nginx-light as
root when missing) on 127.0.0.1 with benchmarks/run.py's helpers, and
stops it by PID at the end.  Only curlmulti's public API is used.

Endpoints, one request in five faulty (every kind at 4 %):

  ok        /ok.bin, 1 KiB file                       200, 1024 bytes
  missing   /no-such-file                             404
  status    location returning 503                    503
  close     location returning 444 (nginx closes)     error E_GOT_NOTHING, E_RECV_ERROR or E_SEND_ERROR
  upstream  proxy to a port nothing listens on        502
  refused   a port nothing listens on (no nginx)      error E_COULDNT_CONNECT

Drivers (each runs --requests requests, --concurrency at a time):

  multi     CurlMulti: add_handle / perform / info_read / select
  async     AsyncCurlMulti on asyncio: one coroutine per slot awaiting perform()

Every --recycle completions a slot closes its Curl and makes a new one, so
handle lifetimes churn too.  Samples of RSS and open descriptors are printed
--samples times per driver; the verdict compares the samples after the warm-up
(the first --warmup fraction) with the last warm-up sample:

  descriptors  never more than --concurrency + --fd-margin above the count
               before the driver started (M_MAXCONNECTS is set to --concurrency)
  RSS          never more than --rss-margin MiB above the last warm-up sample

A JSON summary is the last line printed.  Exit status 0 only if every check
passed.
"""

import argparse
import io
import json
import os
import platform
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import curlmulti as pycurl  # noqa: E402

# Kinds, in a fixed 25-slot pattern: 20 ok and 1 of each fault (20 % faulty).
FAULTS = ("missing", "status", "close", "upstream", "refused")
PATTERN = ["ok"] * 4 + [FAULTS[0]] + ["ok"] * 4 + [FAULTS[1]] + ["ok"] * 4 + [FAULTS[2]] \
    + ["ok"] * 4 + [FAULTS[3]] + ["ok"] * 4 + [FAULTS[4]]
assert len(PATTERN) == 25 and PATTERN.count("ok") == 20
OK_SIZE = 1024

# Outcome codes kept per request id (bytearray: one byte a request).
PENDING = 0
OUTCOMES = {"http200": 1, "http404": 2, "http503": 3, "http502": 4,
            "got_nothing": 5, "recv_error": 6, "send_error": 7, "couldnt_connect": 8,
            "other": 9, "bad_body": 10}
NAMES = {v: k for k, v in OUTCOMES.items()}
# nginx's 444 closes the connection: libcurl sees an empty reply (52), or a
# receive error (56) on a reset; on a reused connection it retries on fresh
# ones and, after 5 closes, gives up with "Connection died, tried 5 times
# before giving up" (55, E_SEND_ERROR).
EXPECTED = {"ok": {OUTCOMES["http200"]}, "missing": {OUTCOMES["http404"]},
            "status": {OUTCOMES["http503"]},
            "close": {OUTCOMES["got_nothing"], OUTCOMES["recv_error"], OUTCOMES["send_error"]},
            "upstream": {OUTCOMES["http502"]}, "refused": {OUTCOMES["couldnt_connect"]}}


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SoakNginx(object):
    """benchmarks/run.py's Nginx, in a directory of its own, with the faulty
    locations added to its server block."""

    def __init__(self, work):
        import run as bench_run
        self.bench_run = bench_run
        www = os.path.join(work, "www")
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "ok.bin"), "wb") as f:
            f.write(bytes(range(256)) * (OK_SIZE // 256))
        self.refused_port = free_port()     # nothing listens there (see the check in main)
        outer = self

        class _Nginx(bench_run.Nginx):
            def __init__(self):
                bench_run.Nginx.__init__(self, www)
                self.dir = os.path.join(work, "nginx")
                os.makedirs(self.dir, exist_ok=True)

            def config(self):
                text = bench_run.Nginx.config(self)
                locations = (
                    "location / { }\n"
                    "        location = /status { return 503; }\n"
                    "        location = /close { return 444; }\n"
                    "        location = /upstream { proxy_pass http://127.0.0.1:%d; }\n"
                    % outer.refused_port)
                assert "location / { }" in text
                text = text.replace("location / { }", locations)
                # Every refused upstream is an [error] line: keep the log small.
                return text.replace("error.log warn;", "error.log crit;")

        self.server = _Nginx()
        self.urls = {
            "ok": "http://127.0.0.1:%d/ok.bin" % self.server.port,
            "missing": "http://127.0.0.1:%d/no-such-file" % self.server.port,
            "status": "http://127.0.0.1:%d/status" % self.server.port,
            "close": "http://127.0.0.1:%d/close" % self.server.port,
            "upstream": "http://127.0.0.1:%d/upstream" % self.server.port,
            "refused": "http://127.0.0.1:%d/refused" % self.refused_port,
        }

    def start(self):
        if not os.path.exists(self.bench_run.nginx_binary()):
            os.makedirs(self.bench_run.LOGS, exist_ok=True)
            self.bench_run.ensure_system([])
        self.server.start()

    def stop(self):
        self.server.stop()


# -- per-request bookkeeping --------------------------------------------------

class Ledger(object):
    """One outcome per request id; a second result for an id is an error."""

    def __init__(self, n):
        self.n = n
        self.outcome = bytearray(n)
        self.twice = []
        self.strays = 0             # completions of a handle not in flight
        self.done = 0

    def record(self, rid, code):
        if self.outcome[rid] != PENDING:
            if len(self.twice) < 20:
                self.twice.append((rid, NAMES.get(self.outcome[rid]), NAMES.get(code)))
            return
        self.outcome[rid] = code
        self.done += 1

    def verdict(self):
        """(problems, counts by kind and outcome)."""
        problems = []
        counts = {}
        wrong = []
        n_wrong = missing = 0
        for rid in range(self.n):
            kind = PATTERN[rid % 25]
            got = self.outcome[rid]
            key = "%s:%s" % (kind, NAMES.get(got, "pending"))
            counts[key] = counts.get(key, 0) + 1
            if got == PENDING:
                missing += 1
            elif got not in EXPECTED[kind]:
                n_wrong += 1
                if len(wrong) < 20:
                    wrong.append((rid, kind, NAMES.get(got)))
        if missing:
            problems.append("%d requests never completed" % missing)
        if self.twice:
            problems.append("requests completed twice: %s" % self.twice)
        if self.strays:
            problems.append("%d completions of a handle that was not in flight" % self.strays)
        if n_wrong:
            problems.append("%d unexpected outcomes, first: %s" % (n_wrong, wrong))
        return problems, counts


def classify_response(curl, sink):
    code = curl.getinfo(pycurl.RESPONSE_CODE)
    if code == 200:
        return OUTCOMES["http200"] if sink.tell() == OK_SIZE else OUTCOMES["bad_body"]
    return OUTCOMES.get("http%d" % code, OUTCOMES["other"])


def classify_error(errno):
    if errno == pycurl.E_GOT_NOTHING:
        return OUTCOMES["got_nothing"]
    if errno == pycurl.E_SEND_ERROR:
        return OUTCOMES["send_error"]
    if errno == pycurl.E_RECV_ERROR:
        return OUTCOMES["recv_error"]
    if errno == pycurl.E_COULDNT_CONNECT:
        return OUTCOMES["couldnt_connect"]
    return OUTCOMES["other"]


class Monitor(object):
    """RSS and descriptor samples at fixed request counts."""

    def __init__(self, n, samples, warmup, label):
        self.every = max(1, n // samples)
        self.warmup_at = int(n * warmup)
        self.next = self.every
        self.rows = []
        self.label = label
        self.t0 = time.perf_counter()

    def poll(self, done):
        if done < self.next:
            return
        while self.next <= done:
            self.next += self.every
        t = time.perf_counter() - self.t0
        row = {"done": done, "s": round(t, 2), "req_s": round(done / t) if t else 0,
               "rss_kib": rss_kib(), "fds": open_fds()}
        self.rows.append(row)
        print("  %-6s %9d done  %7.1fs  %6d req/s  RSS %7d KiB  fds %4d%s" % (
            self.label, done, t, row["req_s"], row["rss_kib"], row["fds"],
            "  (warm-up)" if done <= self.warmup_at else ""), flush=True)

    def verdict(self, fds_before, concurrency, fd_margin, rss_margin_kib):
        warm = [r for r in self.rows if r["done"] <= self.warmup_at]
        after = [r for r in self.rows if r["done"] > self.warmup_at]
        if not warm or not after:
            return ["too few samples to judge RSS and descriptors (%d)" % len(self.rows)], {}
        # At most one connection per transfer in flight, and the multi keeps
        # no more than M_MAXCONNECTS (= concurrency) open in all.
        fd_limit = fds_before + concurrency + fd_margin
        rss_base = warm[-1]["rss_kib"]
        rss_limit = rss_base + rss_margin_kib
        problems = []
        worst_fd = max(r["fds"] for r in after)
        worst_rss = max(r["rss_kib"] for r in after)
        if worst_fd > fd_limit:
            problems.append("descriptors grew: %d after the warm-up, limit %d" % (worst_fd, fd_limit))
        if worst_rss > rss_limit:
            problems.append("RSS grew: %d KiB after the warm-up, base %d KiB, limit %d KiB"
                            % (worst_rss, rss_base, rss_limit))
        return problems, {"fds_before": fds_before, "fd_warm_max": max(r["fds"] for r in warm),
                          "fd_after_max": worst_fd, "fd_limit": fd_limit,
                          "rss_warm_last_kib": rss_base, "rss_after_max_kib": worst_rss,
                          "rss_growth_kib": worst_rss - rss_base}


# -- drivers ------------------------------------------------------------------------

class Slot(object):
    """A reusable Curl and the request it is carrying."""

    __slots__ = ("curl", "rid", "sink", "uses")

    def __init__(self):
        self.curl = None
        self.rid = -1
        self.sink = None
        self.uses = 0
        self.renew()

    def renew(self):
        if self.curl is not None:
            self.curl.close()
        c = pycurl.Curl()
        c.setopt(pycurl.PROXY, "")
        c.setopt(pycurl.NOSIGNAL, 1)
        c.setopt(pycurl.CONNECTTIMEOUT_MS, 5000)
        c.setopt(pycurl.TIMEOUT_MS, 30000)
        self.curl = c
        self.uses = 0

    def start(self, rid, urls):
        self.rid = rid
        self.sink = io.BytesIO()
        self.curl.setopt(pycurl.URL, urls[PATTERN[rid % 25]])
        self.curl.setopt(pycurl.WRITEFUNCTION, self.sink.write)

    def finish(self, recycle):
        self.sink = None
        self.uses += 1
        if recycle and self.uses >= recycle:
            self.renew()


def run_multi(n, conc, urls, ledger, monitor, recycle, timeout):
    m = pycurl.CurlMulti()
    m.setopt(pycurl.M_MAXCONNECTS, conc)
    slots = [Slot() for _ in range(conc)]
    by_curl = {}
    free = list(slots)
    nxt = 0
    deadline = time.monotonic() + timeout
    try:
        while ledger.done < n and not ledger.twice and not ledger.strays:
            while nxt < n and free:
                s = free.pop()
                s.start(nxt, urls)
                nxt += 1
                by_curl[id(s.curl)] = s
                m.add_handle(s.curl)
            while True:
                ret, running = m.perform()
                if ret != pycurl.E_CALL_MULTI_PERFORM:
                    break
            while True:
                queued, ok_list, err_list = m.info_read()
                for c in ok_list:
                    s = by_curl.pop(id(c), None)
                    if s is None:           # reported again, or not ours
                        ledger.strays += 1
                        continue
                    m.remove_handle(c)
                    ledger.record(s.rid, classify_response(c, s.sink))
                    s.finish(recycle)
                    free.append(s)
                for c, errno, _msg in err_list:
                    s = by_curl.pop(id(c), None)
                    if s is None:
                        ledger.strays += 1
                        continue
                    m.remove_handle(c)
                    ledger.record(s.rid, classify_error(errno))
                    s.finish(recycle)
                    free.append(s)
                if queued == 0:
                    break
            monitor.poll(ledger.done)
            if free and nxt < n:
                continue
            if ledger.done < n:
                m.select(1.0)
                if time.monotonic() > deadline:
                    raise RuntimeError("multi driver: no end after %.0f s" % timeout)
    finally:
        for s in by_curl.values():     # still attached after a failure
            m.remove_handle(s.curl)
        m.close()
        for s in slots:
            s.curl.close()


def run_async(n, conc, urls, ledger, monitor, recycle, timeout):
    import asyncio

    async def main():
        nxt = [0]
        async with pycurl.AsyncCurlMulti() as m:
            m.setopt(pycurl.M_MAXCONNECTS, conc)
            async def worker(s):
                while nxt[0] < n:
                    rid = nxt[0]
                    nxt[0] += 1
                    s.start(rid, urls)
                    try:
                        await m.perform(s.curl)
                    except pycurl.error as e:
                        ledger.record(rid, classify_error(e.args[0]))
                    else:
                        ledger.record(rid, classify_response(s.curl, s.sink))
                    s.finish(recycle)
                    monitor.poll(ledger.done)
            slots = [Slot() for _ in range(conc)]
            try:
                await asyncio.wait_for(asyncio.gather(*[worker(s) for s in slots]), timeout)
            finally:
                for s in slots:
                    s.curl.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


DRIVERS = {"multi": run_multi, "async": run_async}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=1000000, help="requests per driver (default 1,000,000)")
    p.add_argument("--quick", action="store_true", help="50,000 requests per driver")
    p.add_argument("--driver", choices=("multi", "async", "both"), default="both")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--recycle", type=int, default=1000,
                   help="close and replace a slot's Curl after this many requests (0: never)")
    p.add_argument("--samples", type=int, default=20, help="RSS/fd samples per driver")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of requests that warms up")
    p.add_argument("--fd-margin", type=int, default=16,
                   help="descriptors allowed above the count before the driver plus --concurrency")
    p.add_argument("--rss-margin", type=float, default=16.0, help="MiB")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per driver")
    p.add_argument("--json", help="also write the summary to this file")
    args = p.parse_args(argv)
    n = 50000 if args.quick else args.requests
    if n < 25 * args.samples:
        p.error("--requests must be at least 25 x --samples")

    work = os.path.join(HERE, ".work", "soak")
    os.makedirs(work, exist_ok=True)
    server = SoakNginx(work)
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < min(hard, 4096):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    except (ImportError, ValueError, OSError):
        pass
    interp = "%s %s" % (platform.python_implementation(), platform.python_version())
    print("soak: %s, curlmulti %s, %s; %d requests per driver, %d at a time, 20 %% faulty"
          % (interp, getattr(pycurl, "__version__", "?"), pycurl.version, n, args.concurrency), flush=True)
    summary = {"date": time.strftime("%Y-%m-%d"), "interpreter": interp,
               "curlmulti": getattr(pycurl, "__version__", "?"), "libcurl": pycurl.version,
               "requests": n, "concurrency": args.concurrency, "drivers": {}}
    ok = True
    server.start()
    try:
        try:
            socket.create_connection(("127.0.0.1", server.refused_port), timeout=1).close()
            sys.exit("port %d was meant to refuse connections, but something listens there"
                     % server.refused_port)
        except ConnectionRefusedError:
            pass
        drivers = ("multi", "async") if args.driver == "both" else (args.driver,)
        for name in drivers:
            print("%s driver:" % name, flush=True)
            ledger = Ledger(n)
            monitor = Monitor(n, args.samples, args.warmup, name)
            fds_before = open_fds()
            t0 = time.perf_counter()
            DRIVERS[name](n, args.concurrency, server.urls, ledger, monitor, args.recycle, args.timeout)
            secs = time.perf_counter() - t0
            problems, counts = ledger.verdict()
            flat_problems, flat = monitor.verdict(fds_before, args.concurrency, args.fd_margin,
                                                  int(args.rss_margin * 1024))
            problems += flat_problems
            rate = n / secs
            print("  %s: %d requests in %.1f s, %.0f req/s; outcomes %s"
                  % (name, n, secs, rate, json.dumps(counts, sort_keys=True)), flush=True)
            print("  %s: %s" % (name, json.dumps(flat, sort_keys=True)), flush=True)
            for prob in problems:
                print("  FAIL %s: %s" % (name, prob), flush=True)
            ok = ok and not problems
            summary["drivers"][name] = {"seconds": round(secs, 1), "req_s": round(rate),
                                        "outcomes": counts, "samples": monitor.rows,
                                        "flat": flat, "problems": problems}
    finally:
        server.stop()
    summary["ok"] = ok
    line = json.dumps(summary, sort_keys=True)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")
    print("soak %s" % ("passed" if ok else "FAILED"), flush=True)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
