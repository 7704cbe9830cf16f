"""CurlUrl: libcurl's URL API as pycurl 7.49 exposes it, and CURLU on a Curl."""

import copy
import gc
import json
import pickle
import sys
import threading
import weakref

import pytest

import curlmulti
from curlmulti import Curl, CurlMulti, CurlUrl, error

IS_PYPY = sys.implementation.name == "pypy"


def test_parts_as_properties():
    u = CurlUrl("https://user:pw@example.com:8443/a/b?x=1&y=2#frag")
    assert (u.scheme, u.user, u.password, u.host, u.port, u.path, u.query, u.fragment) == (
        "https", "user", "pw", "example.com", "8443", "/a/b", "x=1&y=2", "frag")
    assert u.url == "https://user:pw@example.com:8443/a/b?x=1&y=2#frag"
    assert u.options is None and u.zoneid is None


def test_absent_parts_are_none_and_empty_handle():
    u = CurlUrl()
    assert u.url is None and u.host is None and u.scheme is None
    assert "incomplete" in repr(u)
    with pytest.raises(error):
        str(u)
    u = CurlUrl("http://example.com")
    assert u.query is None and u.fragment is None and u.port is None and u.user is None
    assert u.path == "/"


def test_setting_and_removing_parts():
    u = CurlUrl("http://example.com/")
    u.host = "example.org"
    u.port = 8080
    u.path = "/p"
    u.query = "q=1"
    assert u.url == "http://example.org:8080/p?q=1"
    u.port = None
    del u.query
    assert u.url == "http://example.org/p"
    assert str(u) == "http://example.org/p"
    u.scheme = b"https"
    assert u.url == "https://example.org/p"


def test_getpart_setpart_with_flags():
    u = CurlUrl()
    # A whole URL with a space needs U_ALLOW_SPACE on libcurl 8 (7.88 takes it without).
    u.setpart(curlmulti.UPART_URL, "http://example.com/a b/ü?q=x y".encode(),
              curlmulti.U_URLENCODE | curlmulti.U_ALLOW_SPACE)
    assert u.path == "/a%20b/%c3%bc" and u.query == "q=x+y"
    assert u.url == "http://example.com/a%20b/%c3%bc?q=x+y"
    u.setpart(curlmulti.UPART_PATH, "/a b/ü".encode(), curlmulti.U_URLENCODE)
    assert u.path == "/a%20b/%c3%bc"
    assert u.getpart(curlmulti.UPART_PATH, curlmulti.U_URLDECODE) == "/a b/ü"
    u.setpart(curlmulti.UPART_QUERY, "name=a b&c", curlmulti.U_URLENCODE)
    u.setpart(curlmulti.UPART_QUERY, "k=v w", curlmulti.U_APPENDQUERY | curlmulti.U_URLENCODE)
    assert u.query == "name=a+b%26c&k=v+w" or u.query.endswith("&k=v+w")
    assert u.getpart(curlmulti.UPART_PORT, curlmulti.U_DEFAULT_PORT) == "80"
    assert u.getpart(curlmulti.UPART_PORT) is None


def test_guess_and_default_scheme():
    u = CurlUrl("example.com/x", curlmulti.U_GUESS_SCHEME)
    assert u.scheme == "http"
    u = CurlUrl("example.com/x", curlmulti.U_DEFAULT_SCHEME)
    assert u.scheme == "https"
    with pytest.raises(error) as info:
        CurlUrl("example.com/x")
    assert info.value.args[0] != 0 and isinstance(info.value.args[1], str)


def test_relative_redirect_resolution():
    u = CurlUrl("https://example.com/a/b/c?q")
    u.url = "../d?e=1"
    assert u.url == "https://example.com/a/d?e=1"


def test_spaces_and_non_ascii_input():
    # A str value must be ASCII, as in pycurl; bytes go through untouched
    # to libcurl, which percent-encodes with U_URLENCODE.
    with pytest.raises(UnicodeEncodeError):
        CurlUrl("http://example.com/ü")
    u = CurlUrl("http://example.com/café x".encode(), curlmulti.U_URLENCODE | curlmulti.U_ALLOW_SPACE)
    assert u.path == "/caf%c3%a9%20x"
    assert u.getpart(curlmulti.UPART_PATH, curlmulti.U_URLDECODE) == "/café x"
    with pytest.raises(error):
        CurlUrl("http://example.com/a b")  # a space needs U_ALLOW_SPACE
    assert CurlUrl("http://example.com/a b", curlmulti.U_ALLOW_SPACE).url == "http://example.com/a b"


def test_bad_arguments():
    u = CurlUrl("http://example.com/")
    with pytest.raises(TypeError):
        u.host = 5
    with pytest.raises(TypeError):
        u.getpart("host")
    with pytest.raises(TypeError):
        u.setpart(curlmulti.UPART_HOST, "x", "flags")
    with pytest.raises(ValueError):
        u.host = "a\0b"
    with pytest.raises(OverflowError):
        u.getpart(curlmulti.UPART_HOST, 1 << 40)
    with pytest.raises(error):
        u.getpart(12345)  # CURLUE_UNKNOWN_PART


def test_url_strerror():
    assert curlmulti.url_strerror(0) == "No error"
    with pytest.raises(error) as info:
        CurlUrl("http://[bad")
    code, msg = info.value.args
    assert msg == curlmulti.url_strerror(code)


def test_copy_is_independent_and_pickle_refused():
    u = CurlUrl("http://example.com/x")
    v = copy.copy(u)
    w = copy.deepcopy(u)
    v.host = "other.example"
    assert u.host == "example.com" and w.host == "example.com" and v.host == "other.example"
    with pytest.raises(TypeError):
        pickle.dumps(u)


def test_close_refuses_further_use():
    u = CurlUrl("http://example.com/")
    assert not u.closed
    u.close()
    u.close()
    assert u.closed
    for call in (lambda: u.host, lambda: u.setpart(curlmulti.UPART_HOST, "x"), lambda: copy.copy(u)):
        with pytest.raises(error, match="CurlUrl object is closed"):
            call()
    assert "closed" in repr(u)
    c = Curl()
    with pytest.raises(error, match="closed"):
        c.setopt(c.CURLU, u)
    c.close()
    with CurlUrl("http://example.com/") as u2:
        assert u2.host == "example.com"
    assert u2.closed


def test_setopt_curlu_drives_transfers(httpbin):
    u = CurlUrl(httpbin("/get?first=1"))
    c = Curl()
    c.setopt(c.CURLU, u)
    assert json.loads(c.perform_rb())["args"] == {"first": "1"}
    del u.query  # the next transfer uses the change
    u.setpart(curlmulti.UPART_QUERY, "second=a b", curlmulti.U_URLENCODE | curlmulti.U_APPENDQUERY)
    assert json.loads(c.perform_rb())["args"] == {"second": "a b"}
    with pytest.raises(TypeError, match="CURLU takes a CurlUrl"):
        c.setopt(c.CURLU, httpbin("/get"))
    c.unsetopt(c.CURLU)
    c.setopt(c.URL, httpbin("/get?third=3"))
    assert json.loads(c.perform_rb())["args"] == {"third": "3"}
    c.close()


def test_curl_keeps_its_curlurl_alive(httpbin):
    c = Curl()
    u = CurlUrl(httpbin("/get?kept=1"))
    ref = weakref.ref(u)
    c.setopt(c.CURLU, u)
    del u
    gc.collect()
    # The CurlUrl object may go; the CURLU libcurl reads stays.
    assert json.loads(c.perform_rb())["args"] == {"kept": "1"}
    del ref
    c.close()


def test_close_while_set_keeps_the_handle_working(httpbin):
    c = Curl()
    u = CurlUrl(httpbin("/get?closed=1"))
    c.setopt(c.CURLU, u)
    u.close()
    assert u.closed
    assert json.loads(c.perform_rb())["args"] == {"closed": "1"}
    d = c.duphandle()
    c.close()
    assert json.loads(d.perform_rb())["args"] == {"closed": "1"}
    d.reset()
    d.close()


def test_change_refused_while_a_transfer_uses_it(httpbin):
    u = CurlUrl(httpbin("/get"))
    c = Curl()
    c.setopt(c.CURLU, u)
    seen = []

    def write(data):
        try:
            u.path = "/status/500"
        except error as exc:
            seen.append(exc)
    c.setopt(c.WRITEFUNCTION, write)
    c.perform()
    assert seen and "performing" in str(seen[0])
    assert u.path == "/get"
    m = CurlMulti()
    m.add_handle(c)
    with pytest.raises(error, match="attached"):
        u.path = "/x"
    assert u.host == "127.0.0.1"  # reading is allowed
    m.remove_handle(c)
    u.path = "/x"
    m.close()
    c.close()


def test_threads_change_one_url_safely():
    u = CurlUrl("http://example.com/")
    errors = []

    def work(i):
        try:
            for j in range(200):
                u.setpart(curlmulti.UPART_QUERY, "t%d=%d" % (i, j))
                assert u.query.startswith("t")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.skipif(IS_PYPY, reason="refcounts: CPython frees at the last reference")
def test_dropping_frees_at_once():
    u = CurlUrl("http://example.com/")
    ref = weakref.ref(u._rec)
    del u
    assert ref() is None
