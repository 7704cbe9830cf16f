#!/usr/bin/env python3
"""curlmulti benchmark: one command, from a clean checkout.

    python3 benchmarks/run.py                 # full run, CPython and PyPy (under 20 minutes)
    python3 benchmarks/run.py --quick         # smoke run, about 2 minutes once installed
    python3 benchmarks/run.py --only curlmulti,pycurl,c --interp cpython

What it does, in order:
  1. apt-get installs what is missing (nginx-light, libcurl4-openssl-dev,
     libssl-dev, gcc, curl, pypy3, pypy3-dev, pypy3-venv, python3-venv);
  2. builds venvs under benchmarks/.work/ (git-ignored) with the peers --
     pycurl built from source against the system libcurl, aiohttp, httpx,
     matplotlib -- and curlmulti installed from a copy of this checkout;
  3. compiles benchmarks/c_client.c with gcc -O2 -lcurl;
  4. writes files of 1 KiB, 64 KiB, 64 MiB and an nginx config, starts
     nginx (one worker) and the holding server (hold_server.py) on
     127.0.0.1, pinned to CPU 0, and stops them by PID at the end;
  5. runs every client in its own process on CPU 1, cell by cell,
     interleaving clients and repetitions;
  6. writes benchmarks/results/{latest,<date>}.{md,json,png}.

Nothing talks to anything but 127.0.0.1 (apart from the package installs in
steps 1 and 2).  A client that cannot be installed or imported, or that
lacks a class, is recorded as unavailable; the run goes on.
"""

import argparse
import datetime
import hashlib
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
WORK = os.path.join(HERE, ".work")
RESULTS = os.path.join(HERE, "results")
LOGS = os.path.join(WORK, "logs")
sys.path.insert(0, HERE)
import report  # noqa: E402

# pycurl: the newest release on CPython; on PyPy 3.9 (7.3.11) 7.45.2 and later
# fail to compile (Py_TRASHCAN_END), 7.45.1 is the newest that builds.
PIP_SETS = {
    "cpython": ["setuptools>=77.0.3", "wheel", "cffi>=1.15", "pycurl", "aiohttp", "httpx", "matplotlib"],
    "pypy": ["setuptools>=77.0.3", "wheel", "pycurl==7.45.1", "aiohttp"],
}
REPORTED_PACKAGES = ("curlmulti", "pycurl", "aiohttp", "httpx", "cffi", "matplotlib")

# (interp, client name, script argv after the interpreter)
PY_CLIENTS = [
    ("curlmulti-multi", ["client_pycurl.py", "--module", "curlmulti", "--driver", "multi"]),
    ("curlmulti-async", ["client_pycurl.py", "--module", "curlmulti", "--driver", "async"]),
    # curlmulti's own fast path: bodies written by C into a Buffer per handle.
    ("curlmulti-multi-buffer", ["client_pycurl.py", "--module", "curlmulti", "--driver", "multi",
                                "--sink", "buffer"]),
    ("curlmulti-async-buffer", ["client_pycurl.py", "--module", "curlmulti", "--driver", "async",
                                "--sink", "buffer"]),
    # The same two on the pure-Python AsyncCurlMulti driver (the fallback of the native core).
    ("curlmulti-async-pydriver", ["client_pycurl.py", "--module", "curlmulti", "--driver", "async",
                                  "--async-driver", "python"]),
    ("curlmulti-async-buffer-pydriver", ["client_pycurl.py", "--module", "curlmulti", "--driver", "async",
                                         "--sink", "buffer", "--async-driver", "python"]),
    ("pycurl-multi", ["client_pycurl.py", "--module", "pycurl", "--driver", "multi"]),
    ("pycurl-async", ["client_pycurl.py", "--module", "pycurl", "--driver", "async"]),
    ("aiohttp", ["client_aiohttp.py"]),
    ("httpx", ["client_httpx.py"]),
    # The crawl cell only (client_crawl.py): the same crawler with curlmulti.crawl and aiohttp.
    ("crawl-curlmulti", ["client_crawl.py", "--lib", "curlmulti"]),
    ("crawl-aiohttp", ["client_crawl.py", "--lib", "aiohttp"]),
]
PYPY_CLIENTS = ("curlmulti-multi", "curlmulti-async", "curlmulti-multi-buffer", "curlmulti-async-buffer",
                "curlmulti-async-pydriver", "curlmulti-async-buffer-pydriver",
                "pycurl-multi", "pycurl-async", "aiohttp", "crawl-curlmulti", "crawl-aiohttp")

T0 = time.time()


def process_timeout(quick, hold):
    """Seconds one client process may take: a client too slow for a cell
    (httpx's pool at 1,000+ connections) is recorded as timed out."""
    if quick:
        return 20
    return 60 if hold else 120


def log(msg):
    print("[%6.1fs] %s" % (time.time() - T0, msg), flush=True)


# -- settings ---------------------------------------------------------------

def cells(quick):
    hold_n = 2000 if quick else 10000
    return [
        {"id": "1k-c1", "label": "1 KiB ×1", "title": "1 KiB bodies, 1 transfer at a time",
         "path": "/1k.bin", "conc": 1, "max": 500000, "min": 50},
        {"id": "1k-c10", "label": "1 KiB ×10", "title": "1 KiB bodies, 10 concurrent transfers",
         "path": "/1k.bin", "conc": 10, "max": 500000, "min": 100},
        {"id": "1k-c100", "label": "1 KiB ×100", "title": "1 KiB bodies, 100 concurrent transfers",
         "path": "/1k.bin", "conc": 100, "max": 500000, "min": 300},
        {"id": "1k-c1000", "label": "1 KiB ×1,000", "title": "1 KiB bodies, 1,000 concurrent transfers",
         "path": "/1k.bin", "conc": 1000, "max": 500000, "min": 1000},
        {"id": "64k-c50", "label": "64 KiB ×50", "title": "64 KiB bodies, 50 concurrent transfers",
         "path": "/64k.bin", "conc": 50, "max": 200000, "min": 200},
        {"id": "64m-c1", "label": "64 MiB ×1", "title": "64 MiB bodies, one at a time (see MB/s)",
         "path": "/64m.bin", "conc": 1, "max": 2000, "min": 3},
        {"id": "hold-%d" % hold_n, "label": "%s in flight" % "{:,}".format(hold_n), "mode": "hold",
         "title": "%s transfers in flight at once (memory; 1 KiB bodies held by the server)"
                  % "{:,}".format(hold_n),
         "path": "/hold?n=%d" % hold_n, "conc": hold_n, "max": hold_n, "min": hold_n},
        # Run by the crawl-* clients only (and they run nothing else): distinct URLs
        # on 4 hosts (127.0.0.1-4), 100 at once, 25 per host; see client_crawl.py.
        {"id": "crawl-c100", "label": "crawl ×100", "mode": "crawl",
         "title": "crawl: distinct 1 KiB URLs on 4 hosts, 100 at once, 25 per host, timeouts, "
                  "redirects, retries, cookies",
         "path": "/1k.bin", "conc": 100, "max": 500000, "min": 300},
    ]


def timing(quick, interp):
    """(warm-up seconds, timed seconds) per client process."""
    if quick:
        return (0.5 if interp == "pypy" else 0.25), 0.3
    return (2.0 if interp == "pypy" else 0.5), 0.8


# -- system packages ------------------------------------------------------------

def dpkg_installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def ensure_system(interps):
    want = []
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        want.append("nginx-light")
    for pkg in ("libcurl4-openssl-dev", "libssl-dev", "gcc", "curl", "util-linux"):
        if not dpkg_installed(pkg):
            want.append(pkg)
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        want.append("python3-venv")
    if "pypy" in interps:
        for pkg in ("pypy3", "pypy3-dev", "pypy3-venv"):
            if not dpkg_installed(pkg):
                want.append(pkg)
    if not want:
        return
    if os.geteuid() != 0:
        sys.exit("missing Debian packages: %s (run as root, or apt-get install them)" % " ".join(want))
    log("apt-get install %s" % " ".join(want))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with open(os.path.join(LOGS, "apt.log"), "a") as f:
        subprocess.run(["apt-get", "update"], stdout=f, stderr=subprocess.STDOUT, env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends"] + want,
                       stdout=f, stderr=subprocess.STDOUT, env=env, check=True)


# -- venvs and installs ---------------------------------------------------------------

def venv_python(interp):
    return os.path.join(WORK, "venv-" + interp, "bin", "python")


def pip(interp, args, logname):
    cmd = [venv_python(interp), "-m", "pip", "--disable-pip-version-check"] + args
    with open(os.path.join(LOGS, logname), "a") as f:
        f.write("\n$ %s\n" % " ".join(cmd))
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=1200).returncode == 0


def ensure_venv(interp):
    """Create the venv and install the peers; returns {requirement: ok}."""
    vdir = os.path.join(WORK, "venv-" + interp)
    base = sys.executable if interp == "cpython" else shutil.which("pypy3")
    if interp == "cpython" and platform.python_implementation() != "CPython":
        base = shutil.which("python3")
    stamp = os.path.join(vdir, ".bench-peers.json")
    want = PIP_SETS[interp]
    try:
        with open(stamp) as f:
            done = json.load(f)
        if done.get("want") == want and os.path.exists(venv_python(interp)):
            return done["ok"]
    except (OSError, ValueError):
        pass
    if not os.path.exists(venv_python(interp)):
        log("creating venv %s from %s" % (vdir, base))
        subprocess.run([base, "-m", "venv", vdir], check=True)
    log("installing peers into venv-%s: %s (log: .work/logs/pip-%s.log)" % (interp, " ".join(want), interp))
    ok = {}
    for req in want:
        extra = ["--no-binary", "pycurl"] if req.startswith("pycurl") else []
        ok[req] = pip(interp, ["install"] + extra + [req], "pip-%s.log" % interp)
        if not ok[req]:
            log("  could not install %s on %s (see the log); its clients will be unavailable" % (req, interp))
    if all(ok.values()):  # otherwise the next run tries again
        with open(stamp, "w") as f:
            json.dump({"want": want, "ok": ok}, f)
    return ok


# The commit the source copy was taken from (set by source_copy: the tree
# may change while the run goes on).
REPO_STATE = ["?"]


def source_copy():
    """Copy the checkout (minus .git, build products and benchmarks/) to
    .work/src, so building curlmulti never writes into the working tree."""
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    REPO_STATE[0] = commit + (" (with uncommitted changes)" if dirty else "")
    dst = os.path.join(WORK, "src")
    ignore = shutil.ignore_patterns(".git", "benchmarks", "build", "dist", "*.so", "*.o", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".venv*", ".tox", ".benchmarks",
                                    "_curl.c")
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(REPO, dst, ignore=ignore, symlinks=True)
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(dst)):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            h.update(p[len(dst):].encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return dst, h.hexdigest()


def ensure_curlmulti(interp, src, digest):
    stamp = os.path.join(WORK, "venv-" + interp, ".bench-curlmulti")
    try:
        with open(stamp) as f:
            if f.read() == digest:
                return True
    except OSError:
        pass
    log("installing curlmulti from the checkout into venv-%s" % interp)
    ok = pip(interp, ["install", "--no-deps", "--no-build-isolation", "--force-reinstall", src],
             "pip-curlmulti-%s.log" % interp)
    if ok:
        with open(stamp, "w") as f:
            f.write(digest)
    else:
        log("  curlmulti did not build/install on %s (see .work/logs/pip-curlmulti-%s.log)" % (interp, interp))
    return ok


def build_c_client():
    exe = os.path.join(WORK, "c_client")
    src = os.path.join(HERE, "c_client.c")
    r = subprocess.run(["gcc", "-O2", "-Wall", "-o", exe, src, "-lcurl"], capture_output=True, text=True)
    if r.returncode != 0:
        log("gcc failed:\n" + r.stderr)
        return None
    return exe


def package_versions(interp):
    code = ("import json, importlib.metadata as m\nout = {}\n"
            "for n in %r:\n    try: out[n] = m.version(n)\n    except Exception: pass\n"
            "print(json.dumps(out))" % (REPORTED_PACKAGES,))
    try:
        r = subprocess.run([venv_python(interp), "-c", code], capture_output=True, text=True, timeout=60)
        return json.loads(r.stdout)
    except Exception:
        return {}


# -- servers --------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, seconds=10.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def make_files():
    www = os.path.join(WORK, "www")
    os.makedirs(www, exist_ok=True)
    for name, size in (("1k.bin", 1024), ("64k.bin", 65536), ("64m.bin", 64 << 20)):
        p = os.path.join(www, name)
        if not os.path.exists(p) or os.path.getsize(p) != size:
            with open(p + ".tmp", "wb") as f:
                left = size
                while left:
                    chunk = os.urandom(min(left, 1 << 20))
                    f.write(chunk)
                    left -= len(chunk)
            os.replace(p + ".tmp", p)
    return www


def nginx_binary():
    return shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx(object):
    def __init__(self, www):
        self.dir = os.path.join(WORK, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.www = www
        self.proc = None

    def config(self):
        info = subprocess.run([nginx_binary(), "-V"], capture_output=True, text=True).stderr
        temps = ["client_body_temp_path %s/body;" % self.dir]
        for mod in ("proxy", "fastcgi", "uwsgi", "scgi"):
            if "--without-http_%s_module" % mod not in info:
                temps.append("%s_temp_path %s/%s;" % (mod, self.dir, mod))
        user = "user root root;" if os.geteuid() == 0 else ""
        return """# written by benchmarks/run.py
%(user)s
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile %(nofile)d;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events {
    worker_connections %(conns)d;
    use epoll;
    multi_accept on;
}
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    open_file_cache max=16 inactive=600s;
    default_type application/octet-stream;
    %(temps)s
    server {
        listen 127.0.0.1:%(port)d backlog=16384;
        listen 127.0.0.2:%(port)d backlog=16384;   # the crawl cell's other hosts
        listen 127.0.0.3:%(port)d backlog=16384;
        listen 127.0.0.4:%(port)d backlog=16384;
        server_name localhost;
        root %(www)s;
        location / { }
    }
}
""" % {"user": user, "dir": self.dir, "port": self.port, "www": self.www,
       "temps": "\n    ".join(temps),
       "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
       "conns": resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100}

    def start(self):
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self.config())
        cmd = ["taskset", "-c", "0", nginx_binary(), "-p", self.dir, "-c", conf,
               "-e", os.path.join(self.dir, "error.log")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "w"))
        if not wait_port(self.port, self.proc):
            self.stop()
            with open(os.path.join(self.dir, "stderr.log")) as f:
                sys.exit("nginx did not start:\n" + f.read())
        log("nginx (pid %d) on 127.0.0.1:%d, CPU 0" % (self.proc.pid, self.port))

    def children(self):
        """PIDs whose parent is our nginx master (its worker)."""
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        stat = f.read()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                        out.append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        return out

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        workers = self.children()
        self.proc.send_signal(signal.SIGQUIT)  # graceful shutdown of master and worker
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class HoldServer(object):
    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        cmd = ["taskset", "-c", "0", sys.executable, os.path.join(HERE, "hold_server.py"),
               "--port", str(self.port), "--hold-ms", "300", "--max-wait", "120"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(LOGS, "hold_server.log"), "w"))
        if not wait_port(self.port, self.proc):
            self.stop()
            sys.exit("the holding server did not start (see .work/logs/hold_server.log)")
        log("holding server (pid %d) on 127.0.0.1:%d, CPU 0" % (self.proc.pid, self.port))

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", path)
            return c.getresponse().read()
        finally:
            c.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# -- running clients ------------------------------------------------------------

def client_env():
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "*"
    env.pop("PYTHONPATH", None)
    return env


def run_process(cmd, timeout):
    """Run one client on CPU 1; returns (parsed JSON or None, stderr tail, exit code)."""
    p = subprocess.Popen(["taskset", "-c", "1"] + cmd, cwd=HERE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=client_env(), start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the client's own process group (curl-cli has a child)
        out, err = p.communicate()
        return {"error": "timed out after %.0f s" % timeout}, err.decode(errors="replace")[-2000:], None
    data = None
    for line in reversed(out.decode(errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
                break
            except ValueError:
                pass
    return data, err.decode(errors="replace")[-2000:], p.returncode


class Client(object):
    def __init__(self, interp, name, cmd):
        self.interp = interp
        self.name = name
        self.cmd = cmd
        self.unavailable = None
        self.versions = {}

    @property
    def key(self):
        return "%s/%s" % (self.interp, self.name)


def make_clients(interps, only, venv_ok, c_exe):
    clients = []
    for interp in ("cpython", "pypy"):
        if interp not in interps:
            continue
        for name, argv in PY_CLIENTS:
            if interp == "pypy" and name not in PYPY_CLIENTS:
                continue
            c = Client(interp, name, [venv_python(interp)] + argv)
            if not venv_ok.get(interp, {}).get(name.split("-")[0], True):
                c.unavailable = "%s did not install on %s" % (name.split("-")[0], interp)
            clients.append(c)
    c = Client("native", "c-libcurl", [c_exe] if c_exe else None)
    if not c_exe:
        c.unavailable = "c_client.c did not compile"
    clients.append(c)
    clients.append(Client("native", "curl-cli", [sys.executable, "client_curlcli.py"]))
    if only:
        words = [w.strip().lower() for w in only.split(",") if w.strip()]

        def wanted(c):
            # "c" is the C client alone (not every client on "cpython/..."), "curl" the CLI.
            for w in words:
                if w == "c":
                    if c.name == "c-libcurl":
                        return True
                elif w in ("curl", "cli"):
                    if c.name == "curl-cli":
                        return True
                elif c.name.startswith(w) or c.key.startswith(w):
                    return True
            return False
        clients = [c for c in clients if wanted(c)]
    return clients


def probe(client):
    if client.unavailable or client.name == "c-libcurl":
        return
    data, err, rc = run_process(client.cmd + ["--probe"], 120)
    if data and data.get("probe"):
        client.versions = data.get("versions", {})
    elif data and data.get("unavailable"):
        client.unavailable = data["unavailable"]
    else:
        tail = (data or {}).get("error") or err.strip().splitlines()[-1:] or ["exit %s" % rc]
        client.unavailable = "does not start: %s" % (tail if isinstance(tail, str) else tail[0])[:200]


def run_one(client, cell, rep, urls, quick, hold):
    warm, secs = timing(quick, client.interp)
    is_hold = cell.get("mode") == "hold"
    args = ["--url", urls["base"] + cell["path"] if not is_hold else urls["hold"] + cell["path"],
            "--requests", str(cell["max"]), "--concurrency", str(cell["conc"]),
            "--min-requests", str(cell["min"]), "--seconds", str(secs), "--warmup", str(warm),
            "--max-seconds", str(process_timeout(quick, is_hold) - 5)]
    if is_hold:
        args += ["--mode", "hold", "--warmup-url", urls["base"] + "/1k.bin"]
        hold.get("/reset")
    rec = {"interp": client.interp, "client": client.name, "cell": cell["id"], "rep": rep}
    t = time.time()
    data, err, rc = run_process(client.cmd + args, process_timeout(quick, is_hold))
    rec["process_seconds"] = round(time.time() - t, 2)
    data = data or {"error": "no result (exit %s): %s" % (rc, err.strip()[-300:])}
    rec.update(data)
    rec["client"] = client.name
    if "error" not in data and "unavailable" not in data:
        if data.get("errors"):
            rec["error"] = "%d of %d requests failed" % (data["errors"], data["requests"])
        elif data.get("ok") != data.get("requests"):
            rec["error"] = "%s of %s requests succeeded" % (data.get("ok"), data.get("requests"))
        elif is_hold:
            stats = json.loads(hold.get("/stats"))
            rec["held_at_once"] = max(stats["batches"]) if stats["batches"] else 0
            if rec["held_at_once"] < cell["conc"]:
                rec["error"] = "only %d transfers were in flight at once" % rec["held_at_once"]
    if "error" in data and err.strip():
        rec["stderr_tail"] = err.strip()[-1000:]
    rec["ok_run"] = "error" not in rec and "unavailable" not in rec
    return rec


def machine_info(interps):
    def first(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except Exception:
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = f.readline().split(":", 1)[1].strip()
    osname = "?"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(), "os": osname,
        "libcurl": first(["curl-config", "--version"]), "nginx": first([nginx_binary(), "-v"]),
        "gcc": first(["gcc", "--version"]), "curl": first(["curl", "--version"]),
        "repo_commit": REPO_STATE[0],
        "packages": {},
    }
    for interp in interps:
        if os.path.exists(venv_python(interp)):
            info[interp] = first([venv_python(interp), "-c", "import sys; print(sys.version.replace(chr(10), ' '))"])
            info["packages"][interp] = package_versions(interp)
    return info


NOTES = [
    "Server: Debian's nginx, one worker, keep-alive (keepalive_requests 1e8), access_log off, sendfile, "
    "pinned to CPU 0; every client runs in its own process pinned to CPU 1.",
    "Each client process warms up first (%s s on CPython, %s s on PyPy, so PyPy's JIT has compiled "
    "the loop) on the same URL and connections, then times one run sized to last about %s s.",
    "CPU = the client process's user+sys time (getrusage) over the timed run only; req/s and MB/s use "
    "wall time; peak RSS is the process's ru_maxrss.",
    "Every Python client and the C client receive every body into memory and check the status code; "
    "pycurl and curlmulti run the same script (client_pycurl.py, `import curlmulti as pycurl`).",
    "curl --parallel writes bodies to /dev/null, its figures include starting the process, and it caps "
    "--parallel-max at 300 (so the 1,000 and in-flight cells are unavailable).",
    "The in-flight cell uses hold_server.py (asyncio, CPU 0), which answers no request until all are "
    "waiting at once ('held at once' is its count); KiB/transfer = (peak RSS - RSS after warm-up) / N.",
    "Ratios: CPU vs pycurl divides by pycurl's CurlMulti loop on the same interpreter; vs C by the C "
    "client (libcurl multi API, gcc -O2) of the same run.",
    "pycurl is built from source against the system libcurl; on PyPy 3.9 pycurl 7.45.1 is the newest "
    "release that compiles (7.45.2+ fail on Py_TRASHCAN_END) and it has no AsyncCurlMulti.",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, short timings")
    ap.add_argument("--only", help="comma-separated client name prefixes, e.g. curlmulti,pycurl,c")
    ap.add_argument("--interp", choices=("cpython", "pypy", "both"), default="both")
    ap.add_argument("--reps", type=int, help="repetitions (default 3, 1 with --quick)")
    ap.add_argument("--cells", help="comma-separated cell ids to run (default all)")
    a = ap.parse_args()
    reps = a.reps or (1 if a.quick else 3)
    interps = ["cpython", "pypy"] if a.interp == "both" else [a.interp]
    os.makedirs(LOGS, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(limit, soft), max(limit, hard)))
            break
        except (ValueError, OSError):
            continue
    log("open files limit: %d" % resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    ensure_system(interps)
    venv_ok = {}
    src, digest = source_copy()
    for interp in interps:
        ok = ensure_venv(interp)
        venv_ok[interp] = {req.split("=")[0].split(">")[0]: v for req, v in ok.items()}
        venv_ok[interp]["curlmulti"] = ensure_curlmulti(interp, src, digest)
    c_exe = build_c_client()
    clients = make_clients(interps, a.only, venv_ok, c_exe)
    for c in clients:
        probe(c)
        log("client %-22s %s" % (c.key, "UNAVAILABLE: " + c.unavailable if c.unavailable else "ok"))

    all_cells = cells(a.quick)
    if a.cells:
        want = set(a.cells.split(","))
        all_cells = [c for c in all_cells if c["id"] in want]
    www = make_files()
    nginx = Nginx(www)
    hold = HoldServer()
    runs = []
    t_bench = time.time()
    try:
        nginx.start()
        hold.start()
        urls = {"base": "http://127.0.0.1:%d" % nginx.port, "hold": "http://127.0.0.1:%d" % hold.port}
        runnable = [c for c in clients if not c.unavailable]
        failed = set()
        for rep in range(reps):
            for ci, cell in enumerate(all_cells):
                shift = (rep * 3 + ci) % max(len(runnable), 1)
                order = runnable[shift:] + runnable[:shift]   # rotate the order: interleaved
                for c in order:
                    if (c.key, cell["id"]) in failed:
                        continue    # failed or timed out in an earlier repetition: not again
                    if (cell.get("mode") == "crawl") != c.name.startswith("crawl-"):
                        continue    # the crawl clients run the crawl cell, and only they do
                    rec = run_one(c, cell, rep, urls, a.quick, hold)
                    if not rec["ok_run"]:
                        failed.add((c.key, cell["id"]))
                    runs.append(rec)
                    if rec["ok_run"]:
                        extra = ""
                        if "held_at_once" in rec:
                            extra = ", %.2f KiB/transfer" % ((rec["peak_rss_kib"] - rec["baseline_rss_kib"])
                                                             / rec["requests"])
                        log("rep %d %-9s %-24s %8.0f req/s %7.3f CPU s/1k %6.0f MiB%s" % (
                            rep + 1, cell["id"], c.key, rec["requests"] / rec["wall_s"],
                            rec["cpu_s"] / rec["requests"] * 1000, rec["peak_rss_kib"] / 1024.0, extra))
                    else:
                        log("rep %d %-9s %-24s %s" % (rep + 1, cell["id"], c.key,
                                                      rec.get("unavailable") or rec.get("error")))
    finally:
        hold.stop()
        nginx.stop()
    bench_seconds = time.time() - t_bench

    machine = machine_info(interps)
    machine["total_run_seconds"] = round(time.time() - T0)
    warm_c, secs = timing(a.quick, "cpython")
    warm_p, _ = timing(a.quick, "pypy")
    notes = list(NOTES)
    notes[1] = notes[1] % (warm_c, warm_p, secs)
    results = {
        "params": {"quick": a.quick, "reps": reps, "interps": interps, "only": a.only,
                   "bench_seconds": round(bench_seconds)},
        "machine": machine, "cells": all_cells, "notes": notes,
        "unavailable": {c.key: c.unavailable for c in clients if c.unavailable},
        "clients": {c.key: c.versions for c in clients},
        "runs": runs,
    }
    for c in clients:
        if c.unavailable:
            for cell in all_cells:
                runs.append({"interp": c.interp, "client": c.name, "cell": cell["id"], "rep": 0,
                             "unavailable": c.unavailable, "ok_run": False})
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if a.quick else "")
    paths = {}
    for base in (stamp, "latest"):
        paths[base] = os.path.join(RESULTS, base)
        with open(paths[base] + ".json", "w") as f:
            json.dump(results, f, indent=1)
        with open(paths[base] + ".md", "w") as f:
            f.write(report.markdown(results))
    chart_py = venv_python("cpython") if os.path.exists(venv_python("cpython")) else sys.executable
    r = subprocess.run([chart_py, os.path.join(HERE, "report.py"), "--chart", paths[stamp] + ".png",
                        paths[stamp] + ".json"], capture_output=True, text=True)
    if r.returncode == 0:
        shutil.copyfile(paths[stamp] + ".png", paths["latest"] + ".png")
    else:
        log("chart failed (matplotlib?): %s" % r.stderr.strip()[-500:])
    sys.stdout.write("\n" + report.markdown(results) + "\n")
    log("wrote %s.{md,json,png} and latest.*; total %.0f s" % (paths[stamp], time.time() - T0))


if __name__ == "__main__":
    main()
