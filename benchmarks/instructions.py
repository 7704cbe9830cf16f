#!/usr/bin/env python3
"""Where each client's CPU goes: user-space instructions per request, counted
by valgrind's callgrind, which does not depend on what else the machine is
doing (the timed benchmark does).

    python3 benchmarks/instructions.py                     # CPython, the default cells
    python3 benchmarks/instructions.py --interp both --cells 1k-c10,64k-c50

It uses run.py's venvs, C client and nginx (installing what is missing, as
run.py does, plus valgrind).  Every client runs the same script as in the
timed benchmark, with exactly N timed requests (no time-based warm-up), once
with N = --small and once with N = --large; the difference divided by
(large - small) is the cost of one request, without start-up and imports.

Kernel time is not counted (callgrind sees user space only): the timed run's
``cpu_sys_s`` gives that part, and it is the same for every libcurl client
(the same syscalls, see benchmarks/README.md).  The C client's figure is the
floor, what libcurl itself costs; a binding's overhead is its figure minus
that one.

Writes benchmarks/results/instructions-INTERP.{md,json} and prints the table.
PyPy: a count includes the JIT compiling the loop, so --interp pypy uses a
larger N and its figures are rougher.  1k-c1 is not a default cell: with one
transfer at a time, how often the loop polls before the response is there
depends on the timing under valgrind, and its count varies by 20 %.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402  (the benchmark's own setup: venvs, nginx, the C client)

CELLS = {
    "1k-c1": ("/1k.bin", 1),
    "1k-c10": ("/1k.bin", 10),
    "1k-c100": ("/1k.bin", 100),
    "64k-c50": ("/64k.bin", 50),
    # run.py's crawl cell: client_crawl.py over 4 hosts (127.0.0.1-4), 25 per host;
    # only the crawl-* clients run it, and they run nothing else
    "crawl-c100": ("/1k.bin", 100),
}
CLIENTS = ["curlmulti-multi", "pycurl-multi", "curlmulti-async", "pycurl-async", "aiohttp"]


def count(cmd):
    """Instructions callgrind counted for cmd, or None (with the reason)."""
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + cmd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=1200)
    m = re.search(r"Collected : (\d+)", r.stderr)
    if r.returncode != 0 or not m:
        return None, (r.stdout.strip() or r.stderr.strip()).splitlines()[-1:] or ["exit %d" % r.returncode]
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {}
    if out.get("unavailable") or out.get("error"):
        return None, [out.get("unavailable") or out.get("error")]
    if out.get("errors"):
        return None, ["%d requests failed" % out["errors"]]
    return int(m.group(1)), None


def per_request(cmd, url, conc, small, large):
    args = ["--concurrency", str(conc), "--warmup", "0", "--seconds", "0.001", "--url", url]
    a, why = count(cmd + args + ["--requests", str(small), "--min-requests", str(small)])
    if a is None:
        return None, why
    b, why = count(cmd + args + ["--requests", str(large), "--min-requests", str(large)])
    if b is None:
        return None, why
    return (b - a) / float(large - small), None


def markdown(rows, cells):
    out = ["User-space instructions per request (callgrind; thousands; lower is better). "
           "Overhead = the client's figure minus the C client's (libcurl alone).", ""]
    out.append("| client | " + " | ".join(cells) + " |")
    out.append("|---|" + "---:|" * len(cells))
    base = {cell: rows.get(("native", "c-libcurl"), {}).get(cell) for cell in cells}
    for (interp, name), vals in rows.items():
        label = "C, libcurl multi API" if interp == "native" else "%s: %s" % (
            "CPython" if interp == "cpython" else "PyPy", name)
        cols = []
        for cell in cells:
            v = vals.get(cell)
            if v is None:
                cols.append("n/a")
            elif interp == "native" or base.get(cell) is None:
                cols.append("%.1f" % (v / 1000.0))
            else:
                cols.append("%.1f (overhead %.1f)" % (v / 1000.0, (v - base[cell]) / 1000.0))
        out.append("| %s | %s |" % (label, " | ".join(cols)))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interp", choices=("cpython", "pypy", "both"), default="cpython")
    ap.add_argument("--cells", default="1k-c10,1k-c100,64k-c50")
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--small", type=int, default=400)
    ap.add_argument("--large", type=int, default=2400)
    a = ap.parse_args()
    interps = ["cpython", "pypy"] if a.interp == "both" else [a.interp]
    cells = [c for c in a.cells.split(",") if c]
    for c in cells:
        if c not in CELLS:
            sys.exit("unknown cell %s (have %s)" % (c, ", ".join(CELLS)))
    os.makedirs(run.LOGS, exist_ok=True)
    run.ensure_system(interps)
    if not shutil.which("valgrind"):
        if os.geteuid() != 0:
            sys.exit("valgrind is missing: apt-get install valgrind")
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "valgrind"],
                       stdout=subprocess.DEVNULL, check=True)
    src, digest = run.source_copy()
    for interp in interps:
        run.ensure_venv(interp)
        run.ensure_curlmulti(interp, src, digest)
    c_exe = run.build_c_client()

    wanted = [w for w in a.clients.split(",") if w]
    jobs = [(("native", "c-libcurl"), [c_exe])]
    for interp in interps:
        for name, argv in run.PY_CLIENTS:
            if name in wanted and (interp == "cpython" or name in run.PYPY_CLIENTS):
                jobs.append(((interp, name), [run.venv_python(interp)] + [os.path.join(HERE, argv[0])]
                             + argv[1:]))
    nginx = run.Nginx(run.make_files())
    rows, notes = {}, {}
    try:
        nginx.start()
        base = "http://127.0.0.1:%d" % nginx.port
        for key, cmd in jobs:
            rows[key] = {}
            for cell in cells:
                if cell.startswith("crawl-") != key[1].startswith("crawl-"):
                    continue
                path, conc = CELLS[cell]
                small, large = a.small, a.large
                if key[0] == "pypy":
                    small, large = a.small * 5, a.large * 5
                v, why = per_request(cmd, base + path, conc, small, large)
                rows[key][cell] = v
                if why:
                    notes["%s/%s %s" % (key[0], key[1], cell)] = why
                run.log("%-24s %-8s %s" % ("/".join(key), cell,
                                           "%.0f instructions/request" % v if v else "n/a: %s" % why))
    finally:
        nginx.stop()
    text = markdown(rows, cells)
    os.makedirs(run.RESULTS, exist_ok=True)
    name = os.path.join(run.RESULTS, "instructions-%s" % a.interp)
    with open(name + ".md", "w") as f:
        f.write(text)
    with open(name + ".json", "w") as f:
        json.dump({"cells": cells, "small": a.small, "large": a.large, "notes": notes,
                   "rows": [{"interp": k[0], "client": k[1], "per_request": v} for k, v in rows.items()]},
                  f, indent=1)
    sys.stdout.write("\n" + text)


if __name__ == "__main__":
    main()
