"""A pycurl program runs unchanged on curlmulti.

PROGRAM below is written for pycurl (``import pycurl``).  It runs in a
subprocess whose sys.path starts with a directory holding a two-line
``pycurl.py`` that makes ``import pycurl`` give curlmulti, and the test
checks what it prints.  Set PYCURL_PYTHON to an interpreter that has the
real pycurl to also run the program there and compare the outputs.
"""

import os
import subprocess
import sys
import textwrap

import pytest

import curlmulti

PROGRAM = textwrap.dedent(r'''
    import io
    import json
    import sys
    try:
        from urllib.parse import urlencode
    except ImportError:
        from urllib import urlencode

    import pycurl

    base = sys.argv[1]
    out = []

    def show(key, value):
        out.append("%s=%s" % (key, value))

    # GET, body through WRITEFUNCTION, headers through HEADERFUNCTION.
    headers = {}

    def header_function(line):
        line = line.decode("iso-8859-1")
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()

    buf = io.BytesIO()
    c = pycurl.Curl()
    c.setopt(pycurl.URL, base + "/get?who=pycurl")
    c.setopt(pycurl.WRITEFUNCTION, buf.write)
    c.setopt(pycurl.HEADERFUNCTION, header_function)
    c.setopt(pycurl.HTTPHEADER, ["X-Program: compat"])
    c.setopt(pycurl.USERAGENT, "compat/1.0")
    c.setopt(pycurl.FOLLOWLOCATION, True)
    c.perform()
    body = json.loads(buf.getvalue().decode("utf-8"))
    show("get.code", c.getinfo(pycurl.RESPONSE_CODE))
    show("get.args", body["args"]["who"])
    show("get.header", body["headers"]["X-Program"])
    show("get.agent", body["headers"]["User-Agent"])
    show("get.content-type", headers["content-type"])
    show("get.url", c.getinfo(pycurl.EFFECTIVE_URL) == base + "/get?who=pycurl")
    total = c.getinfo(pycurl.TOTAL_TIME)
    show("get.time", isinstance(total, float) and 0 < total < 60)

    # POST with POSTFIELDS, on the same handle.
    buf = io.BytesIO()
    c.setopt(pycurl.URL, base + "/post")
    c.setopt(pycurl.POSTFIELDS, urlencode({"field": "value", "n": 3}))
    c.setopt(pycurl.WRITEDATA, buf)
    c.perform()
    show("post.code", c.getinfo(pycurl.HTTP_CODE))
    show("post.form", sorted(json.loads(buf.getvalue().decode())["form"].items()))
    c.close()

    # Upload with READFUNCTION.
    data = io.BytesIO(b"uploaded " * 1000)
    c = pycurl.Curl()
    c.setopt(c.URL, base + "/put")
    c.setopt(c.UPLOAD, 1)
    c.setopt(c.READFUNCTION, data.read)
    c.setopt(c.INFILESIZE, 9000)
    result = c.perform_rb()
    show("put.code", c.getinfo(c.RESPONSE_CODE))
    show("put.length", len(json.loads(result.decode())["data"]))
    show("put.method", c.getinfo(c.EFFECTIVE_METHOD))
    c.close()

    # An exception raised in WRITEFUNCTION aborts the transfer.
    def failing_write(chunk):
        raise ValueError("no thanks")

    c = pycurl.Curl()
    c.setopt(c.URL, base + "/bytes/100")
    c.setopt(c.WRITEFUNCTION, failing_write)
    try:
        c.perform()
    except pycurl.error as e:
        code, message = e.args
        show("raise.code", code == pycurl.E_WRITE_ERROR)
        show("raise.message", isinstance(message, str) and len(message) > 0)
        show("raise.errstr", c.errstr() == message)
    else:
        show("raise.code", "no error")
    c.close()

    # Failures are pycurl.error with (code, message).
    c = pycurl.Curl()
    c.setopt(c.URL, "http://127.0.0.1:1/")
    try:
        c.perform()
    except pycurl.error as e:
        show("refused", e.args[0] == pycurl.E_COULDNT_CONNECT)
    c.close()
    show("closed", c.closed if hasattr(c, "closed") else True)
    show("version", "libcurl/" in pycurl.version)
    show("version_info", pycurl.version_info()[1] in pycurl.version)

    print("\n".join(out))
''')

SHIM = "import sys, curlmulti\nsys.modules['pycurl'] = curlmulti\n"

EXPECTED = [
    "get.code=200", "get.args=pycurl", "get.header=compat", "get.agent=compat/1.0",
    "get.content-type=application/json", "get.url=True", "get.time=True",
    "post.code=200", "post.form=[('field', 'value'), ('n', '3')]",
    "put.code=200", "put.length=9000", "put.method=PUT",
    "raise.code=True", "raise.message=True", "raise.errstr=True",
    "refused=True", "closed=True", "version=True", "version_info=True",
]


def run(python, path, url, tmp_path):
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    proc = subprocess.run([python, str(script), url], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode().splitlines(), proc.stderr.decode(errors="replace")


def test_pycurl_program_runs_on_curlmulti(httpbin, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "pycurl.py").write_text(SHIM)
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(curlmulti.__file__)))
    lines, err = run(sys.executable, [str(shim), package_dir] + sys.path, httpbin.url, tmp_path)
    assert lines == EXPECTED, err


def test_shim_gives_curlmulti(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "pycurl.py").write_text(SHIM)
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(curlmulti.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim), package_dir] + sys.path))
    out = subprocess.check_output(
        [sys.executable, "-c", "import pycurl, curlmulti; print(pycurl is curlmulti)"], env=env)
    assert out.strip() == b"True"


@pytest.mark.skipif(not os.environ.get("PYCURL_PYTHON"), reason="set PYCURL_PYTHON to compare")
def test_same_output_as_real_pycurl(httpbin, tmp_path):
    python = os.environ["PYCURL_PYTHON"]
    lines, err = run(python, [], httpbin.url, tmp_path)
    assert lines == EXPECTED, err
