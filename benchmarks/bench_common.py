"""Shared measuring harness for the Python benchmark clients.

Every client script supplies one function, ``batch(url, n, concurrency)``,
that performs ``n`` GET requests with at most ``concurrency`` in flight,
receives every body into memory and returns ``(ok, errors, nbytes)``.  This
module parses argv, warms up, measures and prints one JSON line.

Two modes:

rate  Warm up for ``--warmup`` seconds (repeated batches against the same
      URL; on PyPy this lets the JIT compile the hot loops), then run one
      timed batch of N requests, where N is what the warm-up rate says fits
      in ``--seconds`` (never more than ``--requests``, never fewer than
      ``--min-requests``).
hold  For the memory cell: warm up with ``--warmup-url`` at a small
      concurrency, record the resident set size as the baseline, then run
      exactly ``--requests`` transfers all at once against the holding
      server, which answers none of them until all are in flight.
"""

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time


def rss_kib():
    """Current resident set size in KiB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * (os.sysconf("SC_PAGE_SIZE") // 1024)


def parse_args(extra=None, argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--url")
    p.add_argument("--requests", type=int,
                   help="maximum number of timed requests (rate) or exact number (hold)")
    p.add_argument("--concurrency", type=int)
    p.add_argument("--probe", action="store_true", help="only check that the client can run")
    p.add_argument("--mode", choices=("rate", "hold"), default="rate")
    p.add_argument("--seconds", type=float, default=2.0, help="target length of the timed run")
    p.add_argument("--min-requests", type=int, default=0)
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up")
    p.add_argument("--warmup-url", default=None)
    p.add_argument("--max-seconds", type=float, default=300.0, help="hard limit for one batch")
    if extra:
        extra(p)
    a = p.parse_args(argv)
    if not a.probe and (a.url is None or a.requests is None or a.concurrency is None):
        p.error("--url, --requests and --concurrency are required")
    return a


class Deadline(Exception):
    pass


def run(args, batch, client, versions):
    """Warm up, measure, print the JSON line.  ``batch`` may raise; the
    exception ends the client with a JSON line carrying ``error``."""
    out = {
        "client": client,
        "interpreter": platform.python_implementation(),
        "python": sys.version.split()[0],
        "versions": versions,
        "mode": args.mode,
        "concurrency": args.concurrency,
    }
    warm_url = args.warmup_url or args.url
    warm_conc = args.concurrency if args.mode == "rate" else min(args.concurrency, 100)
    # -- warm-up: batches sized to take about a quarter of a second each.
    wn = max(min(args.concurrency, args.requests), 1) if args.mode == "rate" else warm_conc * 2
    warm_reqs = 0
    rate = None
    t_start = time.perf_counter()
    t_end = t_start + args.warmup
    for _ in range(10000):  # bounded; the time check below normally ends it
        t0 = time.perf_counter()
        ok, err, _nb = batch(warm_url, wn, warm_conc)
        dt = time.perf_counter() - t0
        warm_reqs += wn
        if err:
            raise RuntimeError("%d of %d warm-up requests failed" % (err, wn))
        rate = wn / dt if dt > 0 else 1e9
        if time.perf_counter() >= t_end:
            break
        wn = max(warm_conc, min(int(rate * 0.25) + 1, 1000000))
    out["warmup_seconds"] = round(time.perf_counter() - t_start, 3)
    out["warmup_requests"] = warm_reqs
    out["warmup_rate"] = rate

    if args.mode == "rate":
        n = int(rate * args.seconds)
        n = max(n, args.min_requests, args.concurrency, 1)
        n = min(n, args.requests)
    else:
        n = args.requests
    gc.collect()
    out["baseline_rss_kib"] = rss_kib()

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    ok, err, nbytes = batch(args.url, n, args.concurrency)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    out.update({
        "requests": n,
        "ok": ok,
        "errors": err,
        "wall_s": wall,
        "cpu_user_s": ru1.ru_utime - ru0.ru_utime,
        "cpu_sys_s": ru1.ru_stime - ru0.ru_stime,
        "bytes": nbytes,
        "peak_rss_kib": ru1.ru_maxrss,
        "rss_after_kib": rss_kib(),
    })
    out["cpu_s"] = out["cpu_user_s"] + out["cpu_sys_s"]
    return out


def main(args, batch, client, versions, close=None):
    if args.probe:
        print(json.dumps({"client": client, "probe": True, "versions": versions,
                          "interpreter": platform.python_implementation(),
                          "python": sys.version.split()[0]}), flush=True)
        sys.exit(0)
    try:
        out = run(args, batch, client, versions)
    except BaseException as e:  # report, never hang or crash silently
        if type(e).__name__ == "TimeoutError":   # asyncio.wait_for around a batch
            msg = "a batch took longer than --max-seconds %.0f" % args.max_seconds
        else:
            msg = "%s: %s" % (type(e).__name__, e)
        out = {"client": client, "error": msg}
        print(json.dumps(out), flush=True)
        sys.exit(1)
    finally:
        if close is not None:
            try:
                close()
            except Exception:
                pass
    print(json.dumps(out), flush=True)


def unavailable(client, reason):
    """The client cannot run here (a missing module or class): say so and exit 3."""
    print(json.dumps({"client": client, "unavailable": reason}), flush=True)
    sys.exit(3)


def check_deadline(t0, limit):
    if time.perf_counter() - t0 > limit:
        raise Deadline("batch exceeded %.0f s" % limit)
