"""The curlmulti command: in a pipe, on a pty (progress bar), bad input,
reports, --resume, -o DIR, Ctrl-C, and the demo."""

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from crawlservers import CrawlServer, GateServer, serve

try:
    import tqdm  # noqa: F401
    HAVE_TQDM = True
except ImportError:
    HAVE_TQDM = False


@pytest.fixture
def crawl_server():
    yield from serve(CrawlServer())


@pytest.fixture
def gate_server():
    yield from serve(GateServer())


def run(args, cwd, **kw):
    """python -m curlmulti ARGS in a pipe: (exit status, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "curlmulti"] + args, cwd=str(cwd), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120, **kw)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def read_report(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_fetch_in_a_pipe(crawl_server, tmp_path):
    out = tmp_path / "out"
    report = tmp_path / "report.jsonl"
    urls = [crawl_server.url("/ok/a"), crawl_server.url("/ok/b"), crawl_server.url("/missing"),
            crawl_server.url("/redirect/2")]
    rc, stdout, stderr = run(["fetch"] + urls + ["-o", str(out), "--report", str(report)], tmp_path)
    assert rc == 1, stderr  # one 404
    lines = stdout.splitlines()
    assert len(lines) == 4
    assert sum(line.startswith("ok ") for line in lines) == 3
    assert [line for line in lines if line.startswith("FAIL")] == ["FAIL HTTP 404 Not Found %s" % urls[2]]
    assert "4 URLs in" in stderr and "3 ok, 1 failed" in stderr
    files = sorted(os.listdir(out))
    host = "127.0.0.1_%d" % crawl_server.port
    assert files == sorted([host + "_ok_a", host + "_ok_b", host + "_redirect_2"])  # no 404 body, no .part
    assert (out / (host + "_ok_a")).read_bytes() == b"ok a"
    recs = {r["url"]: r for r in read_report(report)}
    assert set(recs) == set(urls)
    assert recs[urls[0]]["ok"] and recs[urls[0]]["status"] == 200 and recs[urls[0]]["bytes"] == 4
    assert recs[urls[0]]["file"] == str(out / (host + "_ok_a")) and recs[urls[0]]["error"] is None
    assert recs[urls[2]]["ok"] is False and recs[urls[2]]["status"] == 404 and recs[urls[2]]["file"] is None
    assert recs[urls[2]]["message"] == "HTTP 404 Not Found"
    assert all(isinstance(r["time"], float) for r in recs.values())


def test_no_overwrite_unless_asked(crawl_server, tmp_path):
    url = crawl_server.url("/ok/same")
    rc, _, _ = run(["fetch", url, "-o", "out"], tmp_path)
    assert rc == 0
    name = tmp_path / "out" / ("127.0.0.1_%d_ok_same" % crawl_server.port)
    name.write_bytes(b"mine")
    rc, stdout, _ = run(["fetch", url, "-o", "out"], tmp_path)
    assert rc == 1 and "exists" in stdout and name.read_bytes() == b"mine"
    rc, _, _ = run(["fetch", url, "-o", "out", "--overwrite"], tmp_path)
    assert rc == 0 and name.read_bytes() == b"ok same"
    assert sorted(os.listdir(tmp_path / "out")) == [name.name]


def test_input_file_transient_failure_and_resume(crawl_server, refused_port, tmp_path):
    urls = [crawl_server.url("/ok/%d" % i) for i in range(20)] + [refused_port("/gone")]
    listing = tmp_path / "urls.txt"
    listing.write_text("# a comment\n\n" + "\n".join(urls) + "\n")
    report = tmp_path / "r.jsonl"
    rc, stdout, stderr = run(["fetch", "-i", str(listing), "--report", str(report), "--retries", "1",
                              "--parallel", "4", "--per-host", "2"], tmp_path)
    assert rc == 1
    recs = read_report(report)
    assert len(recs) == 21 and sorted(r["url"] for r in recs) == sorted(urls)
    gone = [r for r in recs if not r["ok"]]
    assert len(gone) == 1 and gone[0]["error"] == 7 and gone[0]["attempts"] == 2
    before = sum(len(v) for v in crawl_server.times.values())
    rc, stdout, stderr = run(["fetch", "-i", str(listing), "--report", str(report), "--resume",
                              "--retries", "0"], tmp_path)
    assert rc == 1
    assert "20 URL(s) skipped" in stderr
    assert sum(len(v) for v in crawl_server.times.values()) == before  # nothing fetched again
    recs = read_report(report)
    assert len(recs) == 22 and recs[-1]["url"] == refused_port("/gone")


def test_stdin_and_headers(crawl_server, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "curlmulti", "fetch", "-i", "-", "-H", "X-A: 1"],
                          input=("%s\n" % crawl_server.url("/ok/stdin")).encode(), cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().startswith("ok   200")


@pytest.mark.parametrize("args, words", [
    (["fetch", "http://exa mple.com/"], "malformed URL"),
    (["fetch", "--no-such-flag", "http://127.0.0.1/"], "unrecognized arguments"),
    (["fetch", "http://127.0.0.1/", "-o", "afile/sub"], "cannot write to output directory"),
    (["fetch"], "no URL given"),
    (["fetch", "-i", "missing.txt"], "cannot read missing.txt"),
    (["fetch", "--parallel", "0", "http://127.0.0.1/"], "--parallel"),
    (["fetch", "-H", "nocolon", "http://127.0.0.1/"], "bad --header"),
    (["fetch", "--resume", "http://127.0.0.1/"], "--resume needs --report"),
    (["bogus"], "invalid choice"),
    ([], "a command is needed"),
])
def test_bad_input_is_one_line(tmp_path, args, words):
    (tmp_path / "afile").write_text("a regular file, not a directory")
    rc, stdout, stderr = run(args, tmp_path)
    assert rc == 2
    assert stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("curlmulti: error: ") and words in stderr, stderr


def test_console_script_and_help(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "curlmulti")
    if not os.path.exists(script):
        pytest.skip("curlmulti is not installed as a command here")
    proc = subprocess.run([script, "fetch", "--help"], stdout=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0 and b"--per-host" in proc.stdout and b"--resume" in proc.stdout


def test_missing_tqdm_says_how_to_get_it(crawl_server, tmp_path):
    code = ("import sys; sys.modules['tqdm'] = None; from curlmulti._cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "fetch", "--progress", "bar", crawl_server.url("/ok/x")],
                          cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0
    assert "pip install 'curlmulti[cli]'" in proc.stderr.decode()
    assert proc.stdout.decode().startswith("ok ")  # plain lines instead


def _read_until_exit(fd, proc, timeout=120):
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            proc.kill()
            raise AssertionError("no output for %s s: %r" % (timeout, b"".join(chunks)[-500:]))
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child side closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(30)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(not HAVE_TQDM, reason="needs tqdm (curlmulti[cli])")
def test_progress_bar_on_a_pty(tmp_path):
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "curlmulti", "demo", "--count", "400"], cwd=str(tmp_path),
                                stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    finally:
        os.close(slave)
    try:
        out = _read_until_exit(master, proc)
    finally:
        os.close(master)
    assert proc.returncode == 0, out
    frames = [f for f in out.replace("\n", "\r").split("\r") if "url/s" in f or "?url/s" in f]
    assert frames, out
    last = frames[-1]
    assert "400/400" in last and "100%" in last, last
    assert "failed" in last and "in flight" in last, last
    assert "as expected" in out and "400 URLs in" in out
    assert "ok   200" not in out  # no plain lines on a terminal


def test_demo_in_a_pipe(tmp_path):
    rc, stdout, stderr = run(["demo", "--count", "600"], tmp_path)
    assert rc == 0, stderr
    assert len(stdout.splitlines()) == 600
    assert "as expected" in stderr and "600 URLs in" in stderr
    assert "HTTP 404 Not Found" in stderr and "Connection reset" in stderr


def test_ctrl_c_stops_cleanly(crawl_server, gate_server, tmp_path):
    urls = [crawl_server.url("/ok/%d" % i) for i in range(3)] + [gate_server.url("/g/%d" % i) for i in range(6)]
    out = tmp_path / "out"
    report = tmp_path / "r.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "curlmulti", "fetch"] + urls +
                            ["-o", str(out), "--report", str(report), "--per-host", "3"],
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        gate_server.wait_for(3)
        parts = [n for n in os.listdir(out) if n.endswith(".part") and "_g_" in n]
        assert len(parts) == 3  # the held transfers' files are open
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = stderr.decode()
    assert proc.returncode == 130, stderr
    recs = read_report(report)
    assert all(r["ok"] and "/ok/" in r["url"] for r in recs)  # the held ones are not reported
    assert "interrupted; %d URL(s) not fetched" % (9 - len(recs)) in stderr
    assert "Traceback" not in stderr
    # the fetched bodies are kept, the partial files removed
    assert sorted(os.listdir(out)) == sorted(os.path.basename(r["file"]) for r in recs)
