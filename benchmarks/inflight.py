#!/usr/bin/env python3
"""Many transfers in flight at once: memory per transfer and the driver's CPU
per event as the count grows (1,000 / 10,000 / 100,000 by default).

    python3 benchmarks/inflight.py                         # CPython, every client
    python3 benchmarks/inflight.py --counts 1000,10000 --reps 3 --clients curlmulti-runready,pycurl-socket

Not part of the test suite and not part of run.py's full run.  It uses
run.py's venvs (pycurl built from source, curlmulti from a copy of this
checkout).  Writes benchmarks/results/inflight.{md,json} and prints the table.

The endpoint: holding servers (this file with --serve, plain epoll, pinned to
CPU 0), one process per 10,000 connections, each on its own 127.0.0.x address
and on several ports, so that no destination gets more than --per-dest
connections (libcurl keeps the connections to one host:port in one list that
a new transfer scans; the loopback's ephemeral ports, about 28,000 per
destination, are not the limit either).  A server reads every request and
answers none until released.  The client opens a control connection to each
server and says how many requests to hold; when every server has all of its
requests, a thread of the client samples RSS, CPU time and the event counters
(the main loop is idle then: every request is sent, nothing has been answered)
and releases the servers, which then answer every request at once (1 KiB
bodies, keep-alive).

Clients (each in its own process, pinned to CPU 1, one process per count and
repetition; every transfer has its own easy handle, its own connection and
its own io.BytesIO body through WRITEFUNCTION, as in run.py's hold cell):

  curlmulti-async     AsyncCurlMulti (the native event core), one task per
                      transfer awaiting multi.perform(curl)
  curlmulti-runready  CurlMulti with the native core: epoll on event_fileno(),
                      run_ready() per wake-up
  curlmulti-socket    CurlMulti with Python M_SOCKETFUNCTION/M_TIMERFUNCTION
                      and socket_action() per ready socket (select.epoll)
  pycurl-socket       the same script with pycurl
  pycurl-async        pycurl's AsyncCurlMulti, one task per transfer (its
                      events are not counted: µs/event reads n/a)

Figures per client and count N:
  KiB/transfer   (RSS when all N are in flight - RSS after the warm-up) / N
  fill           from the first add_handle to all N requests at the servers:
                 creating and adding N handles, connecting, sending
  drain          from the release to the last transfer removed: receiving,
                 finishing, checking N responses
  events         libcurl socket actions (one per ready socket, plus timeout
                 actions) counted by the driver: its own socket_action()
                 calls, or the native core's counter
  CPU            process CPU time (CLOCK_PROCESS_CPUTIME_ID: user + system)
  µs/event       CPU of the phase / its events; µs/transfer likewise
A flat µs/event (and µs/transfer) from 1,000 to N means the driver's work per
event does not grow with the number of transfers in flight.

Limits: every transfer needs a socket, so one client process needs N + a
few descriptors.  The runner raises RLIMIT_NOFILE to its hard limit (and asks
for more, which needs CAP_SYS_RESOURCE); a count that does not fit is
reported as not run, with the limit, and the largest count that fits
(rounded down to 1,000) is measured instead.
"""

import argparse
import datetime
import gc
import json
import math
import os
import platform
import resource
import select
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = ["curlmulti-async", "pycurl-async", "curlmulti-runready", "curlmulti-socket", "pycurl-socket"]
PER_SERVER = 10000      # connections a server process takes (its own descriptor limit)
FD_RESERVE = 64         # descriptors a client needs besides its transfers
BODY = b"x" * 1024
WARMUP = 200            # transfers in the warm-up batch


# -- the holding server -----------------------------------------------------------

def serve(addr, ports, ctrl_port):
    """Hold every request until the client releases them.  Control protocol
    (one line each): client "T n" -> server "R" once n requests are held;
    client "G" -> every held request is answered."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ep = select.epoll()
    listeners = {}
    for port in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(65535)
        s.setblocking(False)
        listeners[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    ctl_l = socket.socket()
    ctl_l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ctl_l.bind((addr, ctrl_port))
    ctl_l.listen(16)
    ctl_l.setblocking(False)
    ep.register(ctl_l.fileno(), select.EPOLLIN)
    conns = {}      # fd -> [socket, received bytes]
    held = []       # sockets with a complete request, not answered
    ctl = {}        # fd -> [socket, buffer]
    target = None
    told = False
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % len(BODY))
    answer = head + BODY
    print("serving %s ports %s control %d" % (addr, ports, ctrl_port), flush=True)
    while True:
        for fd, ev in ep.poll():
            if fd in listeners:
                lst = listeners[fd]
                while True:
                    try:
                        c, _ = lst.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:  # EMFILE: leave it in the backlog
                        print("accept: %s" % e, file=sys.stderr, flush=True)
                        break
                    c.setblocking(False)
                    conns[c.fileno()] = [c, b""]
                    ep.register(c.fileno(), select.EPOLLIN)
            elif fd == ctl_l.fileno():
                c, _ = ctl_l.accept()
                ctl[c.fileno()] = [c, b""]
                ep.register(c.fileno(), select.EPOLLIN)
            elif fd in ctl:
                entry = ctl[fd]
                data = entry[0].recv(4096)
                if not data:
                    ep.unregister(fd)
                    entry[0].close()
                    del ctl[fd]
                    continue
                entry[1] += data
                while b"\n" in entry[1]:
                    line, entry[1] = entry[1].split(b"\n", 1)
                    if line.startswith(b"T "):
                        target, told = int(line[2:]), False
                    elif line == b"G":
                        for c in held:
                            try:
                                c.send(answer)  # 1.1 KiB: fits an empty socket buffer
                            except OSError:
                                pass
                        held = []
                        target, told = None, False
                    elif line == b"Q":
                        return
                    elif line == b"S":
                        entry[0].sendall(b"%d %d\n" % (len(conns), len(held)))
                if target is not None and not told and len(held) >= target:
                    entry[0].sendall(b"R\n")
                    told = True
            elif fd in conns:
                entry = conns[fd]
                try:
                    data = entry[0].recv(65536)
                except OSError:
                    data = b""
                if not data:
                    ep.unregister(fd)
                    entry[0].close()
                    del conns[fd]
                    continue
                entry[1] += data
                while b"\r\n\r\n" in entry[1]:  # one request: hold it
                    _, entry[1] = entry[1].split(b"\r\n\r\n", 1)
                    held.append(entry[0])
                if target is not None and not told and len(held) >= target:
                    for c in ctl.values():
                        c[0].sendall(b"R\n")
                    told = True


# -- the client -------------------------------------------------------------------

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


class Control(object):
    """The client's side of the control connections: one per server."""

    def __init__(self, servers):
        self.socks = []
        for addr, port in servers:
            s = socket.create_connection((addr, port), timeout=600)
            self.socks.append(s)

    def hold(self, counts, on_all_held):
        """Tell each server how many requests to hold; a thread waits until
        all have them, calls on_all_held() and releases them."""
        for s, n in zip(self.socks, counts):
            s.sendall(b"T %d\n" % n)

        def wait():
            for s in self.socks:
                buf = b""
                while not buf.endswith(b"\n"):
                    data = s.recv(16)
                    if not data:
                        raise RuntimeError("a server closed its control connection")
                    buf += data
            on_all_held()
            for s in self.socks:
                s.sendall(b"G\n")

        t = threading.Thread(target=wait, daemon=True)
        t.start()
        return t


def client_main(a):
    import io
    if a.module == "curlmulti":
        import curlmulti as pycurl
    else:
        import pycurl
    urls = a.urls.split(",")
    servers = [(u.split(":")[0], int(u.split(":")[1])) for u in a.controls.split(",")]
    control = Control(servers)

    def new_handle(url, warm):
        c = pycurl.Curl()
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.PROXY, "")
        if warm or a.forbid_reuse:  # warm-up: no connection left in the multi's cache
            c.setopt(pycurl.FORBID_REUSE, 1)
        b = io.BytesIO()
        c.setopt(pycurl.WRITEFUNCTION, b.write)
        c.body = b
        return c

    def finished(c):
        ok = c.getinfo(pycurl.RESPONSE_CODE) == 200 and c.body.tell() == len(BODY)
        c.body = None
        return ok

    # -- the drivers: run(handles) performs them all; events() counts actions.
    if a.driver == "socket":
        m = pycurl.CurlMulti()
        ep = select.epoll()
        state = {"deadline": None, "actions": 0, "wakeups": 0}
        watched = {}
        EPIN, EPOUT = select.EPOLLIN, select.EPOLLOUT

        def socket_cb(what, fd, multi, socketp):
            if what == pycurl.POLL_REMOVE:
                if fd in watched:
                    del watched[fd]
                    try:
                        ep.unregister(fd)
                    except OSError:
                        pass
                return
            mask = (EPIN if what & pycurl.POLL_IN else 0) | (EPOUT if what & pycurl.POLL_OUT else 0)
            if fd in watched:
                ep.modify(fd, mask)
            else:
                ep.register(fd, mask)
            watched[fd] = mask

        def timer_cb(ms):
            state["deadline"] = None if ms < 0 else time.monotonic() + ms / 1000.0

        if a.maxconnects:
            m.setopt(pycurl.M_MAXCONNECTS, a.maxconnects)
        m.setopt(pycurl.M_SOCKETFUNCTION, socket_cb)
        m.setopt(pycurl.M_TIMERFUNCTION, timer_cb)
        CS_IN, CS_OUT = pycurl.CSELECT_IN, pycurl.CSELECT_OUT
        EPERRS = select.EPOLLERR | select.EPOLLHUP
        TIMEOUT = pycurl.SOCKET_TIMEOUT

        def run(handles):
            for c in handles:
                m.add_handle(c)
            left = len(handles)
            bad = 0
            socket_action, poll, info_read = m.socket_action, ep.poll, m.info_read
            while left:
                d = state["deadline"]
                if d is None:
                    timeout = -1
                else:
                    timeout = max(d - time.monotonic(), 0.0)
                events = poll(timeout, 1024)
                state["wakeups"] += 1
                if events:
                    for fd, ev in events:
                        mask = (CS_IN if ev & (EPIN | EPERRS) else 0) | (CS_OUT if ev & (EPOUT | EPERRS) else 0)
                        socket_action(fd, mask)
                    state["actions"] += len(events)
                d = state["deadline"]
                if d is not None and time.monotonic() >= d:
                    state["deadline"] = None
                    socket_action(TIMEOUT, 0)
                    state["actions"] += 1
                while True:
                    queued, ok, failed = info_read()
                    for c in ok:
                        m.remove_handle(c)
                        bad += not finished(c)
                    for c, code, msg in failed:
                        m.remove_handle(c)
                        c.body = None
                        bad += 1
                    left -= len(ok) + len(failed)
                    if not queued:
                        break
            return bad

        def events():
            return state["actions"], state["wakeups"]

    elif a.driver == "runready":
        m = pycurl.CurlMulti()
        ep = select.epoll()
        ep.register(m.event_fileno(), select.EPOLLIN)
        if a.maxconnects:
            m.setopt(pycurl.M_MAXCONNECTS, a.maxconnects)
        state = {"wakeups": 0}
        core = m._rec.core.c  # the native core's C struct: its action counter

        def run(handles):
            for c in handles:
                m.add_handle(c)
            left = len(handles)
            bad = 0
            poll, run_ready, event_timeout = ep.poll, m.run_ready, m.event_timeout
            while left:
                ms = event_timeout()
                poll(-1 if ms < 0 else ms / 1000.0, 1)
                state["wakeups"] += 1
                _, ok, failed = run_ready()
                for c in ok:
                    bad += not finished(c)
                for c, code, msg in failed:
                    c.body = None
                    bad += 1
                left -= len(ok) + len(failed)
            return bad

        def events():
            return int(core.actions), state["wakeups"]

    else:  # async
        import asyncio
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        am = pycurl.AsyncCurlMulti()
        if a.maxconnects:
            am.setopt(pycurl.M_MAXCONNECTS, a.maxconnects)

        async def one(c):
            try:
                await am.perform(c)
            except pycurl.error:
                c.body = None
                return 1
            return 0 if finished(c) else 1

        async def all_of(handles):
            return sum(await asyncio.gather(*[one(c) for c in handles]))

        def run(handles):
            return loop.run_until_complete(all_of(handles))

        def events():
            core = getattr(am, "_core", None)  # curlmulti's native core counts its actions
            return (int(core.actions) if core is not None else 0), 0

    def batch(n, warm=False):
        """n transfers spread over the URLs, all held until every one is at
        its server.  Returns (failures, samples)."""
        per = [0] * len(urls)
        for i in range(n):
            per[i % len(urls)] += 1
        # the servers: one control connection each, the URLs in order of them
        counts = [0] * len(servers)
        for i, u in enumerate(urls):
            counts[a.server_of[i]] += per[i]
        marks = {}

        def mark(name):
            marks[name] = (time.process_time(), resource.getrusage(resource.RUSAGE_SELF), events(),
                           rss_kib(), time.perf_counter())

        mark("start")
        waiter = control.hold(counts, lambda: mark("held"))
        handles = [new_handle(urls[i % len(urls)], warm) for i in range(n)]
        bad = run(handles)
        mark("end")
        waiter.join(5)
        for c in handles:
            c.close()
        return bad, marks

    bad, _ = batch(min(WARMUP, a.count), warm=True)  # warm-up: the code paths, and the server connections
    if bad:
        raise SystemExit(json.dumps({"error": "%d warm-up transfers failed" % bad}))
    gc.collect()
    base_rss = rss_kib()
    bad, marks = batch(a.count)
    if "held" not in marks:
        print(json.dumps({"error": "the servers never had every request"}), flush=True)
        sys.exit(1)
    s, h, e = marks["start"], marks["held"], marks["end"]
    out = {
        "client": a.name, "count": a.count, "failed": bad,
        "interpreter": platform.python_implementation(), "python": sys.version.split()[0],
        "base_rss_kib": base_rss, "held_rss_kib": h[3], "end_rss_kib": e[3],
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "kib_per_transfer": (h[3] - base_rss) / float(a.count),
    }
    for name, p, q in (("fill", s, h), ("drain", h, e)):
        cpu = q[0] - p[0]
        ev = q[2][0] - p[2][0]
        out[name] = {
            "cpu_s": cpu, "user_s": q[1].ru_utime - p[1].ru_utime, "sys_s": q[1].ru_stime - p[1].ru_stime,
            "wall_s": q[4] - p[4], "events": ev, "wakeups": q[2][1] - p[2][1],
            "us_per_event": cpu * 1e6 / ev if ev else None,
            "us_per_transfer": cpu * 1e6 / a.count,
        }
        u = out[name]
        for k in ("user", "sys"):
            u[k + "_us_per_transfer"] = u[k + "_s"] * 1e6 / a.count
            u[k + "_us_per_event"] = u[k + "_s"] * 1e6 / ev if ev else None
    print(json.dumps(out), flush=True)
    os._exit(0)  # not the close of 100,000 handles


# -- the runner -------------------------------------------------------------------

def nofile_for(n):
    """Raise RLIMIT_NOFILE for a client of n transfers; returns None if it
    fits, else why not."""
    want = n + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            hard = want
        except (ValueError, OSError) as e:
            return ("needs %d descriptors; RLIMIT_NOFILE's hard limit is %d and raising it was refused "
                    "(%s: no CAP_SYS_RESOURCE)" % (want, hard, e))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return None


def layout(n, per_dest):
    """Servers and URLs for n transfers: [(addr, [ports], ctrl_port)], urls,
    server index of each URL."""
    nservers = max(1, int(math.ceil(n / float(PER_SERVER))))
    per_server = int(math.ceil(n / float(nservers)))
    nports = max(1, int(math.ceil(per_server / float(per_dest))))
    servers, urls, server_of = [], [], []
    base = 20000 + (os.getpid() % 1000) * 10
    for j in range(nservers):
        addr = "127.0.0.%d" % (j + 1)
        ports = [base + 1 + k for k in range(nports)]
        servers.append((addr, ports, base))
        for p in ports:
            urls.append("http://%s:%d/hold" % (addr, p))
            server_of.append(j)
    return servers, urls, server_of


def start_servers(servers):
    procs = []
    for addr, ports, ctrl in servers:
        cmd = ["taskset", "-c", "0", sys.executable, os.path.abspath(__file__), "--serve", addr,
               "--ports", ",".join(map(str, ports)), "--ctrl", str(ctrl)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr))
    for p in procs:
        line = p.stdout.readline()
        if not line.startswith(b"serving"):
            stop_servers(procs)
            sys.exit("a holding server did not start")
    return procs


def stop_servers(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def one_run(python, client, n, per_dest, timeout, maxconnects, forbid_reuse=False):
    module, driver = client.split("-")
    servers, urls, server_of = layout(n, per_dest)
    procs = start_servers(servers)
    try:
        cmd = ["taskset", "-c", "1", python, os.path.abspath(__file__), "--client", client,
               "--module", module, "--driver", driver, "--count", str(n),
               "--mc", str(n if maxconnects == "count" else 0 if maxconnects == "libcurl" else int(maxconnects)),
               ] + (["--forbid-reuse"] if forbid_reuse else []) + ["--urls", ",".join(urls),
               "--controls", ",".join("%s:%d" % (s[0], s[2]) for s in servers),
               "--server-of", ",".join(map(str, server_of))]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"client": client, "count": n, "error": "timed out after %d s" % timeout}
        for line in reversed(r.stdout.decode(errors="replace").splitlines()):
            if line.startswith("{"):
                out = json.loads(line)
                out.setdefault("client", client)
                out.setdefault("count", n)
                return out
        return {"client": client, "count": n,
                "error": "exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace")[-600:])}
    finally:
        stop_servers(procs)


def median_of(runs, path):
    vals = []
    for r in runs:
        v = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            vals.append(v)
    return statistics.median(vals) if vals else None


def markdown(results, counts, skipped, info):
    lines = ["Transfers in flight at once (benchmarks/inflight.py), %s; medians of %s repetitions." % (
        info["date"], info["reps"]), ""]
    lines.append("| client | in flight | KiB/transfer | fill µs/transfer (user+sys) | "
                 "drain µs/event (user+sys) | drain events/transfer |")
    lines.append("|---|---:|---:|---:|---:|---:|")

    def f(v, fmt="%.1f"):
        return "n/a" if v is None else fmt % v

    for client in info["clients"]:
        for n in counts:
            runs = [r for r in results if r["client"] == client and r["count"] == n and "error" not in r]
            errs = [r["error"] for r in results if r["client"] == client and r["count"] == n and "error" in r]
            if not runs:
                lines.append("| %s | %s | %s |  |  |  |" % (
                    client, "{:,}".format(n), "failed: %s" % errs[0][:80] if errs else "not run"))
                continue
            lines.append("| %s | %s | %s | %s (%s+%s) | %s (%s+%s) | %s |" % (
                client, "{:,}".format(n), f(median_of(runs, ("kib_per_transfer",))),
                f(median_of(runs, ("fill", "us_per_transfer"))),
                f(median_of(runs, ("fill", "user_us_per_transfer")), "%.0f"),
                f(median_of(runs, ("fill", "sys_us_per_transfer")), "%.0f"),
                f(median_of(runs, ("drain", "us_per_event"))),
                f(median_of(runs, ("drain", "user_us_per_event")), "%.0f"),
                f(median_of(runs, ("drain", "sys_us_per_event")), "%.0f"),
                f(median_of(runs, ("drain", "events")) / float(n), "%.2f")))
    for n, why in skipped:
        lines.append("")
        lines.append("%s in flight: not run: %s." % ("{:,}".format(n), why))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="1000,10000,100000")
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--per-dest", type=int, default=500,
                    help="connections per server address:port (default 500)")
    ap.add_argument("--maxconnects", default="count",
                    help="M_MAXCONNECTS of the multi: 'count' (the number in flight, the default), "
                         "'libcurl' (libcurl's default) or a number")
    ap.add_argument("--forbid-reuse", action="store_true",
                    help="FORBID_REUSE on every transfer: each connection is closed when its transfer "
                         "ends instead of going to the multi's cache")
    ap.add_argument("--interp", choices=("cpython", "pypy"), default="cpython")
    ap.add_argument("--timeout", type=int, default=600, help="seconds one client process may take")
    # internal: the server and the client processes
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    ap.add_argument("--ctrl", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--client", dest="name", help=argparse.SUPPRESS)
    ap.add_argument("--module", help=argparse.SUPPRESS)
    ap.add_argument("--driver", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mc", dest="maxconnects_n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--urls", help=argparse.SUPPRESS)
    ap.add_argument("--controls", help=argparse.SUPPRESS)
    ap.add_argument("--server-of", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        return serve(a.serve, [int(p) for p in a.ports.split(",")], a.ctrl)
    if a.name:
        a.server_of = [int(x) for x in a.server_of.split(",")]
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        a.maxconnects = a.maxconnects_n
        return client_main(a)

    sys.path.insert(0, HERE)
    import run  # the benchmark's own setup: venvs, curlmulti from a copy of the checkout
    os.makedirs(run.LOGS, exist_ok=True)
    run.ensure_system([a.interp])
    src, digest = run.source_copy()
    run.ensure_venv(a.interp)
    run.ensure_curlmulti(a.interp, src, digest)
    python = run.venv_python(a.interp)
    clients = [c for c in a.clients.split(",") if c]
    for c in clients:
        if c not in CLIENTS:
            sys.exit("unknown client %s (have %s)" % (c, ", ".join(CLIENTS)))
    counts, skipped = [], []
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    for n in [int(x) for x in a.counts.split(",") if x]:
        why = nofile_for(n)
        if why is None:
            counts.append(n)
            continue
        skipped.append((n, why))
        fit = (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - FD_RESERVE) // 1000 * 1000
        if fit > 0 and fit not in counts:
            skipped[-1] = (n, why + "; measured at %s instead" % "{:,}".format(fit))
            counts.append(fit)
    counts = sorted(set(counts))
    info = run.machine_info([a.interp])
    info.update({"reps": a.reps, "clients": clients, "per_dest": a.per_dest, "maxconnects": a.maxconnects,
                 "forbid_reuse": a.forbid_reuse, "nofile_hard": hard,
                 "skipped": skipped})
    results = []
    for rep in range(a.reps):
        for n in counts:
            order = clients[rep % len(clients):] + clients[:rep % len(clients)]
            for client in order:
                r = one_run(python, client, n, a.per_dest, a.timeout, a.maxconnects, a.forbid_reuse)
                r["rep"] = rep
                results.append(r)
                if "error" in r:
                    run.log("%-20s %7d  %s" % (client, n, r["error"]))
                else:
                    run.log("%-20s %7d  %.1f KiB/transfer, fill %.1f µs/event (%d events, %.2f s), "
                            "drain %.1f µs/event (%d events)%s" % (
                                client, n, r["kib_per_transfer"], r["fill"]["us_per_event"] or 0,
                                r["fill"]["events"], r["fill"]["wall_s"], r["drain"]["us_per_event"] or 0,
                                r["drain"]["events"], ", %d FAILED" % r["failed"] if r["failed"] else ""))
    text = markdown(results, counts, skipped, info)
    os.makedirs(run.RESULTS, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M")
    for name in ("inflight", "inflight-" + stamp):
        with open(os.path.join(run.RESULTS, name + ".md"), "w") as fh:
            fh.write(text)
        with open(os.path.join(run.RESULTS, name + ".json"), "w") as fh:
            json.dump({"machine": info, "results": results}, fh, indent=1)
    sys.stdout.write("\n" + text)


if __name__ == "__main__":
    main()
