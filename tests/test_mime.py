"""CurlMime / CurlMimePart (MIMEPOST) as in pycurl 7.49: uploads checked
against what the server received, callbacks and their errors, and the
lifetimes: every order of closing and dropping a Curl, its mime, a part and
a subtree runs in a subprocess (a crash fails one test, not the run)."""

import gc
import io
import itertools
import json
import sys

SCENARIOS = {}
IS_PYPY = sys.implementation.name == "pypy"


def scenario(func):
    SCENARIOS[func.__name__] = func
    return func


def collect():
    for _ in range(3):
        gc.collect()


# ------------------------------------------------------------- lifetime matrix
# Objects: the Curl (c), its mime (m), a part (p), a subtree (s, from
# add_multipart).  For each order of "close or drop" over them, the
# transfer that was set up before must have run or be refused with a
# clear error, and the free callback of a data_cb part must run once.

def _build(pycurl, url):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url + "/echo")
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    m = pycurl.CurlMime(c)
    freed = []
    src = io.BytesIO(b"streamed")
    p = m.addpart()
    p.name("cb")
    p.data_cb(8, lambda ud, n: ud.read(n), lambda ud, off, origin: ud.seek(off, origin) and 0,
              lambda ud: freed.append(ud), src)
    s = m.add_multipart(name="nested")
    s.add_field("inner", "value")
    c.setopt(pycurl.MIMEPOST, m)
    return {"c": c, "m": m, "p": p, "s": s}, freed


def _still_answers(pycurl, objs):
    """What is left is closed, or works."""
    for key, obj in objs.items():
        try:
            if key == "p":
                obj.name("again")
            elif key == "c":
                obj.setopt(pycurl.VERBOSE, 0)
            else:
                obj.add_field("again", "x")
        except pycurl.error:
            assert key == "p" or obj.closed


def _matrix(pycurl, url, how):
    for order in itertools.permutations("cmps"):
        objs, freed = _build(pycurl, url)
        objs["c"].perform()
        for key in order:
            if how == "close" and key != "p":
                objs[key].close()
            else:
                del objs[key]  # a part has no close(): dropped
            collect()
            _still_answers(pycurl, objs)
        objs.clear()
        collect()
        assert len(freed) == 1, (order, freed)


@scenario
def close_in_every_order(pycurl, url):
    _matrix(pycurl, url, "close")


@scenario
def drop_in_every_order(pycurl, url):
    _matrix(pycurl, url, "drop")


@scenario
def parts_used_after_their_mime_closed(pycurl, url):
    objs, freed = _build(pycurl, url)
    c, m, p, s = objs["c"], objs["m"], objs["p"], objs["s"]
    m.close()
    for call in (lambda: p.name("x"), lambda: p.data(b"x"), lambda: s.addpart(),
                 lambda: m.addpart(), lambda: s.add_field("a", "b")):
        try:
            call()
        except pycurl.error:
            pass
        else:
            raise AssertionError("a closed tree was used")
    assert m.closed and s.closed
    c.perform()  # the handle still holds the tree
    assert freed == []
    c.close()
    collect()
    assert len(freed) == 1


@scenario
def duphandle_shares_callback_content(pycurl, url):
    objs, freed = _build(pycurl, url)
    c = objs.pop("c")
    d = c.duphandle()
    objs.clear()
    c.close()
    collect()
    assert freed == []  # the copy of the tree in d still reads it
    d.perform()
    d.close()
    collect()
    assert len(freed) == 1


@scenario
def replace_content_frees_subtree(pycurl, url):
    c = pycurl.Curl()
    m = pycurl.CurlMime(c)
    freed = []
    p = m.addpart()
    child = pycurl.CurlMime(c)
    q = child.addpart()
    q.data_cb(1, lambda ud, n: b"x", None, lambda ud: freed.append(1))
    p.subparts(child)
    p.data(b"plain")  # libcurl frees the subtree
    assert child.closed and freed == [1]
    try:
        q.name("x")
    except pycurl.error:
        pass
    else:
        raise AssertionError("a part of a freed subtree was used")
    m.close()
    c.close()


@scenario
def drop_curl_before_mime(pycurl, url):
    c = pycurl.Curl()
    m = pycurl.CurlMime(c)
    m.add_field("a", "b")
    m.add_multipart().add_field("c", "d")
    del c
    collect()
    m.add_field("e", "f")
    m.close()


# ------------------------------------------------------------- the tests (pytest side)

try:
    import pytest
except ImportError:  # the subprocess side needs no pytest
    pytest = None

if pytest is not None and __name__ != "__main__":
    import scenarios

    import curlmulti
    from curlmulti import Curl, CurlMime, CurlMimePart, CurlMulti, error

    @pytest.mark.parametrize("name", sorted(SCENARIOS))
    def test_lifetime(fast_server, name):
        scenarios.check(__file__, name, fast_server.url)

    def post(c):
        return json.loads(c.perform_rb())

    def test_fields_files_and_types(httpbin, tmp_path):
        path = tmp_path / "upload.txt"
        path.write_bytes(b"file contents\n")
        c = Curl()
        c.setopt(c.URL, httpbin("/post"))
        m = CurlMime(c)
        m.add_field("plain", "value")
        m.add_field("bytes", b"raw", content_type="text/plain")
        m.add_field("buffer", bytearray(b"from a buffer"))
        m.add_file("upload", str(path))
        m.add_file("renamed", path, filename="other.txt", content_type="application/x-test")
        p = m.addpart()
        p.name("low")
        p.data(memoryview(b"level"))
        c.setopt(c.MIMEPOST, m)
        got = post(c)
        assert got["form"] == {"plain": "value", "bytes": "raw", "buffer": "from a buffer", "low": "level"}
        assert got["files"] == {"upload": "file contents\n", "renamed": "file contents\n"}
        assert got["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
        c.close()
        assert not m.closed
        m.close()

    def test_raw_body_seen_by_the_server(fast_server):
        c = Curl()
        c.setopt(c.URL, fast_server("/echo"))
        m = CurlMime(c)
        m.add(name="enc", data=b"hello", encoder="base64", headers=["X-Part: one"],
              filename="h.txt", content_type="text/x-hello")
        nested = m.add_multipart(name="nest", subtype="mixed")
        nested.add_field("inner", "v")
        c.setopt(c.MIMEPOST, m)
        body = c.perform_rb()
        assert b'name="enc"; filename="h.txt"' in body
        assert b"Content-Transfer-Encoding: base64" in body and b"aGVsbG8=" in body
        assert b"X-Part: one" in body and b"Content-Type: text/x-hello" in body
        assert b"Content-Type: multipart/mixed; boundary=" in body
        assert b'name="inner"' in body and b"\r\nv\r\n" in body
        c.close()
        m.close()

    def test_non_ascii_and_bad_arguments(httpbin, tmp_path):
        c = Curl()
        m = CurlMime(c)
        with pytest.raises(ValueError, match="at most one of data or file"):
            m.add(name="x", data=b"a", file="/etc/hostname")
        with pytest.raises(TypeError):
            m.add_field("ü", "x")
        with pytest.raises(TypeError):
            m.add_field("x", 5)
        with pytest.raises(error) as info:  # pycurl's E_READ_ERROR, no part added
            m.add_file("f", str(tmp_path / "missing"))
        assert info.value.args[0] == curlmulti.E_READ_ERROR
        assert isinstance(info.value.__context__, FileNotFoundError)
        with pytest.raises(TypeError):
            m.add_field("x", "y", headers="X: not a list")
        with pytest.raises(TypeError):
            CurlMime("not a curl")
        with pytest.raises(TypeError):
            CurlMimePart()
        p = m.addpart()
        with pytest.raises(TypeError):
            p.data_cb(1, "not callable")
        with pytest.raises(ValueError):
            p.data_cb(-2, lambda ud, n: b"")
        with pytest.raises(TypeError):
            c.setopt(c.MIMEPOST, [("a", "b")])
        child = m.add_multipart()
        with pytest.raises(ValueError, match="already attached"):
            m.addpart().subparts(child)
        with pytest.raises(ValueError, match="MIMEPOST"):
            c.setopt(c.MIMEPOST, child)
        with pytest.raises(ValueError, match="parent"):
            child.addpart().subparts(m)
        other = CurlMime(Curl())
        with pytest.raises(ValueError, match="same Curl"):
            m.addpart().subparts(other)
        other.close()
        # Non-ASCII content travels as bytes, untouched.
        m.close()
        c.setopt(c.URL, httpbin("/post"))
        m = CurlMime(c)
        m.add_field("utf8", "café".encode())
        c.setopt(c.MIMEPOST, m)
        assert post(c)["form"]["utf8"] == "café"
        c.close()
        m.close()

    def test_data_cb_streams_and_rewinds(httpbin):
        c = Curl()
        c.setopt(c.URL, httpbin("/post"))
        m = CurlMime(c)
        src = io.BytesIO(b"0123456789" * 1000)
        reads, freed = [], []

        def read(ud, n):
            reads.append(n)
            return ud.read(n)

        def seek(ud, offset, origin):
            ud.seek(offset, origin)
            return curlmulti.SEEKFUNC_OK

        p = m.addpart()
        p.name("stream")
        p.data_cb(10000, read, seek, freed.append, src)
        c.setopt(c.MIMEPOST, m)
        assert post(c)["form"]["stream"] == "0123456789" * 1000
        assert post(c)["form"]["stream"] == "0123456789" * 1000  # rewound by seek
        assert reads and freed == []
        m.close()  # the handle still holds it
        assert freed == []
        c.close()
        gc.collect()
        assert freed == [src]

    def test_data_cb_unknown_size_is_chunked(fast_server):
        c = Curl()
        c.setopt(c.URL, fast_server("/echo"))
        m = CurlMime(c)
        chunks = [b"abc", b"def", b""]
        m.addpart().data_cb(None, lambda ud, n: chunks.pop(0))
        c.setopt(c.MIMEPOST, m)
        assert b"abcdef" in c.perform_rb()
        c.close()
        m.close()

    def test_data_cb_exception_reaches_perform(httpbin):
        c = Curl()
        c.setopt(c.URL, httpbin("/post"))
        m = CurlMime(c)

        def read(ud, n):
            raise RuntimeError("from the mime read callback")
        m.addpart().data_cb(5, read)
        c.setopt(c.MIMEPOST, m)
        with pytest.raises(error) as info:
            c.perform()
        assert isinstance(info.value.__cause__, RuntimeError)
        assert c.callback_error is info.value.__cause__

        m2 = CurlMime(c)
        m2.addpart().data_cb(5, lambda ud, n: 12345)  # not a valid result
        c.setopt(c.MIMEPOST, m2)
        with pytest.raises(error) as info:
            c.perform()
        assert isinstance(info.value.__cause__, ValueError)
        c.close()
        m.close()
        m2.close()

    def test_data_cb_exception_in_a_multi(httpbin):
        c = Curl()
        c.setopt(c.URL, httpbin("/post"))
        m = CurlMime(c)

        def read(ud, n):
            raise KeyError("multi")
        m.addpart().data_cb(5, read)
        c.setopt(c.MIMEPOST, m)
        multi = CurlMulti()
        multi.add_handle(c)
        while multi.perform()[1]:
            multi.select(1.0)
        _, ok, failed = multi.info_read()
        assert not ok and failed[0][0] is c
        assert isinstance(c.callback_error, KeyError)
        multi.close()
        c.close()
        m.close()

    def test_free_callback_error_is_reported(monkeypatch):
        seen = []
        monkeypatch.setattr(sys, "unraisablehook", seen.append)
        c = Curl()
        m = CurlMime(c)

        def free(ud):
            raise ValueError("in free")
        m.addpart().data_cb(0, lambda ud, n: b"", None, free)
        m.close()
        assert len(seen) == 1 and isinstance(seen[0].exc_value, ValueError)
        c.close()

    def test_changes_refused_while_in_use(httpbin):
        c = Curl()
        c.setopt(c.URL, httpbin("/post"))
        m = CurlMime(c)
        p = m.add_field("a", "b")
        c.setopt(c.MIMEPOST, m)
        seen = []

        def write(data):
            for call in (lambda: p.data(b"x"), m.addpart, m.close):
                try:
                    call()
                except error as exc:
                    seen.append(str(exc))
        c.setopt(c.WRITEFUNCTION, write)
        c.perform()
        assert len(seen) >= 3 and "perform" in seen[-1]
        multi = CurlMulti()
        multi.add_handle(c)
        with pytest.raises(error, match="attached"):
            p.name("z")
        with pytest.raises(error, match="attached"):
            c.setopt(c.MIMEPOST, CurlMime(c))
        multi.remove_handle(c)
        multi.close()
        c.unsetopt(c.MIMEPOST)
        p.name("z")
        c.close()
        m.close()

    def test_httppost_and_mimepost_replace_each_other(httpbin):
        c = Curl()
        c.setopt(c.URL, httpbin("/post"))
        freed = []
        m = CurlMime(c)
        m.add_field("from", "mime")
        c.setopt(c.MIMEPOST, m)
        assert post(c)["form"] == {"from": "mime"}
        c.setopt(c.HTTPPOST, [("from", "form")])
        assert post(c)["form"] == {"from": "form"}
        m.addpart().data_cb(0, lambda ud, n: b"", None, freed.append, "ud")
        if IS_PYPY:
            gc.collect()  # PyPy sees that c let go of m's use at its next collection
        m.close()
        assert freed == ["ud"]  # c let go of m when HTTPPOST replaced it: freed at once
        m2 = CurlMime(c)
        m2.add_field("again", "mime")
        c.setopt(c.MIMEPOST, m2)
        assert post(c)["form"] == {"again": "mime"}
        c.close()
        m2.close()

    def test_closed_mime_refused_clearly():
        c = Curl()
        m = CurlMime(c)
        m.close()
        m.close()
        assert m.closed
        with pytest.raises(error, match="no mime handle"):
            m.addpart()
        with pytest.raises(error, match="no mime handle"):
            c.setopt(c.MIMEPOST, m)
        c.close()
        with pytest.raises(error):
            CurlMime(c)
        with CurlMime(Curl()) as m2:
            m2.add_field("a", "b")
        assert m2.closed


if __name__ == "__main__":
    import curlmulti
    func = SCENARIOS[sys.argv[1]]
    func(curlmulti, sys.argv[2].rstrip("/"))
    collect()
    print("OK " + sys.argv[1])
    sys.stdout.flush()
