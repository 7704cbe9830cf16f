"""The ``curl --parallel`` command line tool, measured from outside.

Runs ``curl --parallel --parallel-max C -o /dev/null`` on a URL glob of N
requests and takes its wall time, user+sys CPU and peak RSS from wait4().
Unlike every other client, curl writes the bodies to /dev/null instead of
keeping them in memory, and its numbers include starting the process.  A
first, shorter run is the warm-up and sizes the timed run like the others.
curl caps --parallel-max at 300, so higher concurrencies are unavailable."""

import json
import os
import shutil
import subprocess
import time

import bench_common

PARALLEL_MAX = 300  # curl's own hard limit (src/tool_operate.h)

args = bench_common.parse_args()
CLIENT = "curl-cli"
CURL = shutil.which("curl")
if CURL is None:
    bench_common.unavailable(CLIENT, "no curl executable")
version = subprocess.run([CURL, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
if args.probe:
    print(json.dumps({"client": CLIENT, "probe": True, "versions": {"curl": version}}), flush=True)
    raise SystemExit(0)
if args.concurrency > PARALLEL_MAX:
    bench_common.unavailable(CLIENT, "curl caps --parallel-max at %d" % PARALLEL_MAX)
if args.mode != "rate":
    bench_common.unavailable(CLIENT, "hold mode is not supported")


def curl_batch(url, n):
    sep = "&" if "?" in url else "?"
    cmd = [CURL, "--silent", "--show-error", "--noproxy", "*", "--parallel",
           "--parallel-max", str(args.concurrency), "-o", "/dev/null",
           "-w", "%{http_code} %{size_download}\\n", "%s%si=[1-%d]" % (url, sep, n)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _pid, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    ok = errors = nbytes = 0
    for line in out.split(b"\n"):
        if not line:
            continue
        code, size = line.split()
        if code == b"200":
            ok += 1
            nbytes += int(size)
        else:
            errors += 1
    errors += max(0, n - ok - errors)
    return ok, errors, nbytes, wall, ru


def main():
    wn = max(args.concurrency * 2, 10)
    t_start = time.perf_counter()
    ok, err, _nb, wall, _ru = curl_batch(args.warmup_url or args.url, wn)
    if err:
        raise RuntimeError("%d of %d warm-up requests failed" % (err, wn))
    rate = wn / wall
    if time.perf_counter() - t_start < args.warmup:
        wn = max(wn, int(rate * args.warmup * 0.8))
        ok, err, _nb, wall, _ru = curl_batch(args.warmup_url or args.url, wn)
        rate = wn / wall
    n = min(max(int(rate * args.seconds), args.min_requests, args.concurrency, 1), args.requests)
    ok, err, nbytes, wall, ru = curl_batch(args.url, n)
    out = {
        "client": CLIENT, "interpreter": "C", "python": "", "versions": {"curl": version},
        "mode": args.mode, "concurrency": args.concurrency,
        "warmup_seconds": round(time.perf_counter() - t_start - wall, 3), "warmup_requests": wn,
        "warmup_rate": rate, "baseline_rss_kib": None, "requests": n, "ok": ok, "errors": err,
        "wall_s": wall, "cpu_user_s": ru.ru_utime, "cpu_sys_s": ru.ru_stime,
        "cpu_s": ru.ru_utime + ru.ru_stime, "bytes": nbytes, "peak_rss_kib": ru.ru_maxrss,
        "rss_after_kib": None, "note": "bodies to /dev/null; includes process start",
    }
    print(json.dumps(out), flush=True)


try:
    main()
except Exception as e:
    print(json.dumps({"client": CLIENT, "error": "%s: %s" % (type(e).__name__, e)}), flush=True)
    raise SystemExit(1)
