"""A pycurl program runs unchanged on curlmulti.

PROGRAM below is written for pycurl (``import pycurl``).  It runs in a
subprocess whose sys.path starts with a directory holding a two-line
``pycurl.py`` that makes ``import pycurl`` give curlmulti, and the test
checks what it prints.  Set PYCURL_PYTHON to an interpreter that has the
real pycurl to also run the program there and compare the outputs.
"""

import array
import json
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


# -- pycurl 7.49's behaviours, one by one (tests/test_vs_pycurl.py runs them
# side by side with the real pycurl when it is built) --------------------------

def test_multi_close_handles_closes_every_attached_handle(fast_server):
    m = curlmulti.CurlMulti(close_handles=True)
    done, idle = curlmulti.Curl(), curlmulti.Curl()
    done.setopt(done.URL, fast_server("/bytes/10"))
    done.setopt(done.WRITEFUNCTION, lambda data: None)
    m.add_handle(done)
    m.add_handle(idle)
    running = 1
    while running:
        _, running = m.perform()
        if running:
            m.select(1.0)
    m.close()
    assert m.closed and done.closed and idle.closed
    assert done.multi() is None and idle.multi() is None  # no error on a closed handle
    with curlmulti.CurlMulti(close_handles=True) as m2:
        c = curlmulti.Curl()
        m2.add_handle(c)
    assert m2.closed and c.closed


def test_multi_close_keeps_handles_open_by_default():
    m = curlmulti.CurlMulti()
    c = curlmulti.Curl()
    m.add_handle(c)
    m.close()
    assert not c.closed and c.multi() is None
    c.close()


def test_multi_takes_no_positional_argument():
    with pytest.raises(TypeError):
        curlmulti.CurlMulti(True)
    with pytest.raises(TypeError):
        curlmulti.CurlMulti(bogus=1)
    assert not curlmulti.CurlMulti(close_handles=True).closed


def test_curl_in_multi():
    m = curlmulti.CurlMulti()
    c = curlmulti.Curl()
    assert c not in m
    m.add_handle(c)
    assert c in m
    m.remove_handle(c)
    assert c not in m
    for other in (5, None, "curl", m):
        with pytest.raises(TypeError):
            other in m  # noqa: B015
    m.close()
    assert c not in m
    c.close()


def test_pause_defaults_to_pause_all_and_unpause_resumes(fast_server):
    size = 200000
    received = []
    c = curlmulti.Curl()
    c.setopt(c.URL, fast_server("/bytes/%d" % size))

    def write(data):
        received.append(len(data))
        if len(received) == 1:
            c.pause()  # pycurl's default argument: PAUSE_ALL

    c.setopt(c.WRITEFUNCTION, write)
    m = curlmulti.CurlMulti()
    m.add_handle(c)
    while not received:
        m.perform()
        m.select(1.0)
    # Paused: however often libcurl runs, nothing more is delivered.
    for _ in range(5):
        m.perform()
        m.select(0.02)
    assert len(received) == 1
    c.unpause()
    running = 1
    while running:
        _, running = m.perform()
        if running:
            m.select(1.0)
    assert sum(received) == size
    assert m.info_read()[1] == [c]
    m.close()
    # On an idle handle libcurl refuses, in pycurl's words.
    with pytest.raises(curlmulti.error) as ei:
        c.unpause()
    assert ei.value.args == (curlmulti.E_BAD_FUNCTION_ARGUMENT, "pause/unpause failed")
    c.close()


@pytest.mark.parametrize("result", ["abc", 1.5, b"x", [1]])
def test_write_callback_returning_a_non_int_is_a_write_error(fast_server, result):
    c = curlmulti.Curl()
    c.setopt(c.URL, fast_server("/bytes/100"))
    c.setopt(c.WRITEFUNCTION, lambda data: result)
    with pytest.raises(curlmulti.error) as ei:
        c.perform()
    assert ei.value.args[0] == curlmulti.E_WRITE_ERROR
    assert isinstance(ei.value.__cause__, TypeError)
    c.close()


@pytest.mark.parametrize("name", ["XFERINFOFUNCTION", "PROGRESSFUNCTION", "SOCKOPTFUNCTION"])
def test_callback_int_result_must_fit_a_c_int(fast_server, name):
    """As pycurl 7.48+: refused (not truncated: 1 << 32 would become 0, go on),
    the value in the message."""
    c = curlmulti.Curl()
    c.setopt(c.URL, fast_server("/bytes/100"))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(c.NOPROGRESS, 0)
    c.setopt(getattr(c, name), lambda *args: 1 << 32)
    with pytest.raises(curlmulti.error) as ei:
        c.perform()
    assert isinstance(ei.value.__cause__, OverflowError)
    assert "returned 4294967296 which does not fit in an int" in str(ei.value.__cause__)
    c.close()


@pytest.mark.parametrize("result, aborts", [(None, False), (0, False), (False, False), ("", False),
                                            (True, True), (5, True), ("stop", True), (-1, True)])
def test_xferinfo_result_as_pycurl(fast_server, result, aborts):
    c = curlmulti.Curl()
    c.setopt(c.URL, fast_server("/bytes/100"))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(c.NOPROGRESS, 0)
    c.setopt(c.XFERINFOFUNCTION, lambda *args: result)
    if aborts:
        with pytest.raises(curlmulti.error) as ei:
            c.perform()
        assert ei.value.args[0] == curlmulti.E_ABORTED_BY_CALLBACK and ei.value.__cause__ is None
    else:
        c.perform()
        assert c.getinfo(c.RESPONSE_CODE) == 200
    c.close()


def test_perform_rs_refuses_a_body_that_is_not_utf8(fast_server):
    c = curlmulti.Curl()
    c.setopt(c.URL, fast_server("/bytes/300"))  # bytes 0..255: not UTF-8
    with pytest.raises(UnicodeDecodeError):
        c.perform_rs()
    assert c.perform_rb() == bytes(range(256)) + bytes(range(44))
    c.setopt(c.URL, fast_server("/bytes/100"))  # ASCII
    assert c.perform_rs() == bytes(range(100)).decode("ascii")
    c.close()


@pytest.mark.parametrize("multi", [False, True], ids=["perform", "multi"])
@pytest.mark.parametrize("name", ["DEBUGFUNCTION", "WRITEFUNCTION", "HEADERFUNCTION", "XFERINFOFUNCTION",
                                  "PROGRESSFUNCTION", "SOCKOPTFUNCTION"])
def test_keyboard_interrupt_stops_the_transfer_at_once(fast_server, name, multi):
    """The interrupted callback is not called again, no body is delivered after
    it, and the call that ran libcurl raises the KeyboardInterrupt itself.
    (libcurl ignores a debug callback's result: the other callbacks of the
    transfer abort it.)"""
    calls, body = [], []
    c = curlmulti.Curl()
    c.setopt(c.URL, fast_server("/bytes/300000"))
    c.setopt(c.VERBOSE, 1)
    c.setopt(c.NOPROGRESS, 0)

    def interrupt(*args):
        calls.append(1)
        raise KeyboardInterrupt("stop")

    if name != "WRITEFUNCTION":
        c.setopt(c.WRITEFUNCTION, body.append)
    c.setopt(getattr(c, name), interrupt)
    with pytest.raises(KeyboardInterrupt, match="stop"):
        if multi:
            m = curlmulti.CurlMulti()
            m.add_handle(c)
            while True:
                m.perform()
                m.select(1.0)
        else:
            c.perform()
    assert len(calls) == 1
    assert body == [] or name == "DEBUGFUNCTION" and sum(map(len, body)) < 300000
    if multi:
        m.close()
    c.close()


def _ca_pem(fault_server):
    with open(fault_server.ca_file, "rb") as f:
        return f.read()


@pytest.mark.parametrize("kind", ["bytes", "str", "bytearray", "memoryview", "array"])
def test_blob_options_take_any_contiguous_buffer(fault_server, kind):
    pem = _ca_pem(fault_server)
    value = {"bytes": lambda: pem, "str": lambda: pem.decode("ascii"), "bytearray": lambda: bytearray(pem),
             "memoryview": lambda: memoryview(pem), "array": lambda: array.array("B", pem)}[kind]()
    c = curlmulti.Curl()
    c.setopt(c.URL, fault_server.tls_url + "/ok/10")
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.setopt(c.CAINFO_BLOB, value)
    c.perform()  # the server's certificate is trusted through the blob
    assert c.getinfo(c.SSL_VERIFYRESULT) == 0
    c.close()


def test_blob_options_refuse_what_is_not_a_contiguous_buffer():
    c = curlmulti.Curl()
    with pytest.raises(BufferError, match="^SSLCERT_BLOB: .*not C-contiguous"):
        c.setopt(c.SSLCERT_BLOB, memoryview(b"abcdef")[::2])
    for value in (5, True, 1.5, [1], object()):
        with pytest.raises(TypeError, match="^CAINFO_BLOB takes str, bytes or a buffer, not "):
            c.setopt(c.CAINFO_BLOB, value)
    with pytest.raises(UnicodeEncodeError):
        c.setopt(c.CAINFO_BLOB, "\u00e9")
    c.setopt(c.CAINFO_BLOB, array.array("i", [1, 2]))  # any item size: its bytes
    c.setopt(c.CAINFO_BLOB, None)  # unset, as pycurl
    c.close()


def test_default_user_agent_set_at_creation_and_by_reset(httpbin):
    c = curlmulti.Curl()
    c.setopt(c.URL, httpbin("/user-agent"))
    agent = json.loads(c.perform_rb().decode())["user-agent"]
    # The first two words of version only: "curlmulti/<x> libcurl/<y>".
    libcurl = curlmulti.version_info()[1]
    assert agent == "curlmulti/%s libcurl/%s" % (curlmulti.__version__, libcurl)
    assert curlmulti.version.startswith(agent + " ")
    c.setopt(c.USERAGENT, "mine/1")
    dup = c.duphandle()
    assert json.loads(dup.perform_rb().decode())["user-agent"] == "mine/1"
    c.reset()
    c.setopt(c.URL, httpbin("/user-agent"))
    assert json.loads(c.perform_rb().decode())["user-agent"] == agent
    dup.close()
    c.close()


def test_duphandle_copies_the_attributes_and_the_class():
    class MyCurl(curlmulti.Curl):
        pass

    c = MyCurl()
    c.tag, c.seen = "first", []
    dup = c.duphandle()
    assert type(dup) is MyCurl
    assert dup.tag == "first" and dup.seen is c.seen  # a shallow copy, as pycurl
    dup.tag = "second"
    assert c.tag == "first"
    assert dup._rec is not c._rec
    dup.close()
    assert not c.closed
    c.close()
    with pytest.raises(curlmulti.error) as ei:
        c.duphandle()
    assert "cannot invoke duphandle() - no curl handle" in ei.value.args[1]


def test_misuse_messages_in_pycurls_words():
    """Where a program may match pycurl's message, it is there (with more
    after it in parentheses).  As every curlmulti error, args is (code,
    message): 0 for misuse (pycurl's args are the message alone)."""
    import contextlib
    import re

    @contextlib.contextmanager
    def misuse(pattern):
        with pytest.raises(curlmulti.error) as ei:
            yield
        assert ei.value.args[0] == 0 and re.search(pattern, ei.value.args[1]), ei.value.args

    m = curlmulti.CurlMulti()
    c = curlmulti.Curl()
    m.add_handle(c)
    with misuse("^curl object already on this multi-stack"):
        m.add_handle(c)
    other = curlmulti.CurlMulti()
    with misuse("^cannot add/remove handle - curl object already on another "
                                              "multi-stack"):
        other.add_handle(c)
    m.remove_handle(c)
    with misuse("^curl object not on this multi-stack"):
        m.remove_handle(c)
    c.close()
    with misuse("^curl object already closed$"):
        m.add_handle(c)
    for method, args in (("setopt", (curlmulti.URL, "x")), ("getinfo", (curlmulti.RESPONSE_CODE,)),
                         ("perform", ()), ("errstr", ()), ("reset", ()), ("pause", ())):
        with misuse(r"^cannot invoke %s\(\) - no curl handle" % method):
            getattr(c, method)(*args)
    m.close()
    other.close()
    with misuse("^cannot add/remove handle - multi-stack is closed$"):
        m.add_handle(curlmulti.Curl())
    with misuse(r"^cannot invoke perform\(\) - no multi handle"):
        m.perform()
    s = curlmulti.CurlShare()
    s.close()
    with misuse(r"^cannot invoke setopt\(\) - no share handle"):
        s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_COOKIE)


def test_share_detach_on_close():
    s = curlmulti.CurlShare()  # detach_on_close=True: the handles let go
    c = curlmulti.Curl()
    c.setopt(c.SHARE, s)
    s.close()
    assert s.closed and c.share() is None
    strict = curlmulti.CurlShare(detach_on_close=False)
    c.setopt(c.SHARE, strict)
    with pytest.raises(curlmulti.error) as ei:
        strict.close()
    assert ei.value.args == (0, "cannot close CurlShare: still in use by 1 active Curl object")
    assert not strict.closed and c.share() is strict
    c.close()
    strict.close()
    assert strict.closed
    with pytest.raises(TypeError):
        curlmulti.CurlShare(False)  # keyword only, as pycurl
