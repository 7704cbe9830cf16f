#!/usr/bin/env python3
"""Instructions per call of curlmulti's hot methods, counted by callgrind.

    python3 benchmarks/micro.py                      # every operation, this tree
    python3 benchmarks/micro.py --ops setopt_url,getinfo --n 2000
    python3 benchmarks/micro.py --path /some/other/checkout   # compare a build

Each operation runs N times and 6N times in a fresh interpreter under
``valgrind --tool=callgrind``; the difference divided by 5N is the cost of
one call, with start-up, imports and setup cancelled out.  The counts do not
move with the machine's load, so two builds can be compared on a busy
machine.  No server is needed: the operations are the calls a crawler makes
per transfer, on handles with nothing to transfer.

``--path`` is put first on ``sys.path``: a checkout whose compiled module
was built in place (or an installed package's site directory).  ``--python``
picks the interpreter (PyPy's figures include its JIT warming up: use a
large ``--n`` and read them as rough).
"""

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _setup(cm):
    """The objects the operations use (built once, before the loop)."""
    c = cm.Curl()
    m = cm.CurlMulti()
    c2 = cm.Curl()
    c2.setopt(cm.URL, "http://127.0.0.1:9/")
    return c, m, c2


def _ops(cm, c, m, c2):
    url = "http://127.0.0.1:9/some/path?q=1"
    rc = cm.RESPONSE_CODE
    timeout = cm.SOCKET_TIMEOUT
    cb = [].append
    URL, TIMEOUT_MS, WRITEFUNCTION = cm.URL, cm.TIMEOUT_MS, cm.WRITEFUNCTION
    setopt, getinfo = c.setopt, c.getinfo

    def setopt_url():
        setopt(URL, url)

    def setopt_long():
        setopt(TIMEOUT_MS, 5000)

    def setopt_callback():
        setopt(WRITEFUNCTION, cb)

    def getinfo_long():
        getinfo(rc)

    def add_remove():
        m.add_handle(c2)
        m.remove_handle(c2)

    def perform_idle():
        m.perform()

    def socket_action_timeout():
        m.socket_action(timeout, 0)

    def info_read_empty():
        m.info_read()

    def select_zero():
        m.select(0)

    from curlmulti import crawl
    prepare = crawl._prepare
    normalise = crawl.normalise_url
    plain = "http://127.0.0.2:8080/1k.bin?i=12345"
    wild = "  HTTP://Example.COM/caf\u00e9 menu/../x?q=\u00e9t\u00e9#top "

    def crawl_prepare_plain():   # what a Session does per plain URL (no libcurl call)
        prepare(plain)

    def crawl_normalise_wild():  # a URL from the wild, through libcurl's URL API
        normalise(wild)

    return {
        "setopt_url": setopt_url,
        "setopt_long": setopt_long,
        "setopt_callback": setopt_callback,
        "getinfo": getinfo_long,
        "add_remove": add_remove,
        "perform": perform_idle,
        "socket_action": socket_action_timeout,
        "info_read": info_read_empty,
        "select": select_zero,
        "crawl_prepare_plain": crawl_prepare_plain,
        "crawl_normalise_wild": crawl_normalise_wild,
    }


OPS = ["setopt_url", "setopt_long", "setopt_callback", "getinfo", "add_remove", "perform",
       "socket_action", "info_read", "select", "crawl_prepare_plain", "crawl_normalise_wild"]


def child(op, n):
    import curlmulti as cm
    objs = _setup(cm)
    func = _ops(cm, *objs)[op]
    for _ in range(50):  # warm caches (option kinds, lazily made arrays)
        func()
    for _ in range(n):
        func()


def count(python, path, op, n):
    env = dict(os.environ)
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           python, os.path.abspath(__file__), "--child", op, "--n", str(n)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                       cwd="/")
    m = re.search(r"Collected : (\d+)", r.stderr)
    if r.returncode != 0 or not m:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd), r.stderr[-3000:]))
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", default=",".join(OPS), help="comma-separated, of: " + ", ".join(OPS))
    ap.add_argument("--n", type=int, default=2000, help="calls in the small run (the large: 6N)")
    ap.add_argument("--path", default=os.path.dirname(HERE),
                    help="put first on sys.path (default: this checkout)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.n)
        return
    ops = [o for o in a.ops.split(",") if o]
    for o in ops:
        if o not in OPS:
            raise SystemExit("unknown operation %s (have %s)" % (o, ", ".join(OPS)))
    out = {}
    for op in ops:
        small = count(a.python, a.path, op, a.n)
        large = count(a.python, a.path, op, 6 * a.n)
        out[op] = (large - small) / (5.0 * a.n)
        if not a.json:
            print("%-16s %8.0f instructions/call" % (op, out[op]), flush=True)
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
