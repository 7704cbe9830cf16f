"""Generated files are current: tools/gen_constants.py run on the installed
libcurl headers reproduces curlmulti/_constnames.py."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "gen_constants.py")
TABLE = os.path.join(ROOT, "curlmulti", "_constnames.py")


def _curl_include_dir():
    try:
        flags = subprocess.check_output(["curl-config", "--cflags"]).decode().split()
    except (OSError, subprocess.CalledProcessError):
        flags = []
    dirs = [f[2:] for f in flags if f.startswith("-I")]
    dirs += ["/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu", "/usr/include"]
    for d in dirs:
        if os.path.exists(os.path.join(d, "curl", "curl.h")):
            return os.path.join(d, "curl")
    return None


@pytest.mark.skipif(not os.path.exists(TOOL), reason="needs the source tree")
def test_constnames_is_current():
    headers = _curl_include_dir()
    if headers is None:
        pytest.skip("libcurl headers not found")
    with open(os.path.join(headers, "curlver.h")) as f:
        if '"7.88.1' not in f.read():
            pytest.skip("_constnames.py was generated from libcurl 7.88.1's headers")
    out = subprocess.check_output([sys.executable, TOOL, "--headers", headers, "--names",
                                   os.path.join(ROOT, "tools", "pycurl-names.txt")],
                                  stderr=subprocess.DEVNULL).decode()
    with open(TABLE) as f:
        assert f.read() == out, "run tools/gen_constants.py to regenerate _constnames.py"


def test_values_come_from_the_compiler():
    import curlmulti
    from curlmulti._curl import lib
    # A few values fixed by libcurl's ABI, checked against the compiled module.
    assert curlmulti.URL == lib.CURLOPT_URL == 10002
    assert curlmulti.WRITEFUNCTION == 20011
    assert curlmulti.RESPONSE_CODE == 0x200002
    assert curlmulti.E_COULDNT_CONNECT == 7
    assert curlmulti.SOCKET_TIMEOUT == -1
    assert curlmulti.M_SOCKETFUNCTION == 20001
