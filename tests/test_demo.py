"""examples/demo.py, the README's main job, runs and gets what it expects."""

import os
import subprocess
import sys

import pytest

import curlmulti

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "demo.py")


@pytest.mark.skipif(not os.path.exists(DEMO), reason="needs the source tree")
@pytest.mark.skipif(not hasattr(curlmulti, "AsyncCurlMulti"), reason="AsyncCurlMulti is not exported yet")
def test_demo(tmp_path):
    # From tmp_path, so the demo imports the same curlmulti as the tests.
    proc = subprocess.run([sys.executable, DEMO, "--quiet", "--count", "50"], cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out
    assert out.count("50 transfers in") == 2, out
    assert out.count("47 ok, 2 not found (404), 1 failed") == 2, out
    assert out.count("as expected") == 2, out
