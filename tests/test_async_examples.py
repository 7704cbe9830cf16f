"""examples/async_*.py run and print what they should."""

import os
import subprocess
import sys

import pytest

import curlmulti

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def run(name, *args):
    env = dict(os.environ)
    # The same curlmulti as the tests, wherever it comes from.
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(curlmulti.__file__)))]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, name)] + list(args), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out
    return out


pytestmark = pytest.mark.skipif(not os.path.isdir(EXAMPLES), reason="needs the source tree")


def test_async_fetch():
    out = run("async_fetch.py")
    assert out.count(" 200, ") == 20, out
    assert "/missing" in out and "404, " in out
    assert "21 transfers in" in out


def test_async_stream():
    out = run("async_stream.py")
    assert "download: 268435456 bytes" in out, out
    assert "upload: 33554432 bytes sent, server says 33554432 " in out, out


def test_async_request():
    out = run("async_request.py")
    assert "head: 200" in out and "done: status 200, 100000 bytes" in out, out
    assert "lines: finished with status 200" in out, out
    lines = [line for line in out.splitlines() if line.startswith("lines: got")]
    assert len(lines) >= 3, out  # the lines arrived as interim updates
