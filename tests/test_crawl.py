"""curlmulti.crawl: fetch(), Session, as_completed()/map(), against local
servers with planted faults (crawlservers.py, servers.py)."""

import asyncio
import collections
import concurrent.futures
import gc
import os
import platform
import re

import pytest

import curlmulti
from curlmulti import crawl
from curlmulti.crawl import FetchError, Headers, Request, Session, fetch, normalise_url, transient

import nginxserver
from crawlservers import CrawlServer, GateServer, serve

E = curlmulti


@pytest.fixture
def crawl_server():
    yield from serve(CrawlServer())


@pytest.fixture
def gate_server():
    yield from serve(GateServer())


# -- URLs -----------------------------------------------------------------------------
# normalise_url() is libcurl's URL API (CurlUrl): the hex digits of the escapes
# libcurl adds are lower-case in 7.88, so escapes are compared without case.

_ESC = re.compile(r"%[0-9A-Fa-f]{2}")


def upper_escapes(url):
    return _ESC.sub(lambda m: m.group().upper(), url)


@pytest.mark.parametrize("raw, want", [
    ("http://example.com", "http://example.com/"),
    ("  example.com/a b  ", "http://example.com/a%20b"),
    ("HTTP://Example.COM:8080/x?y=1#frag", "http://example.com:8080/x?y=1"),
    ("http://example.com/caf\u00e9?q=\u00e9 \u00f6", "http://example.com/caf%C3%A9?q=%C3%A9%20%C3%B6"),
    ("http://b\u00fccher.de/", "http://xn--bcher-kva.de/"),
    ("http://B\u00fcCHER.De/x", "http://xn--bcher-kva.de/x"),
    (b"http://b\xc3\xbccher.de/caf\xc3\xa9", "http://xn--bcher-kva.de/caf%C3%A9"),
    ("http://example.com/%41%zz%", "http://example.com/%41%25zz%25"),
    ("http://[::1]:80/", "http://[::1]:80/"),
    ("http://user:p w@example.com/", "http://user:p%20w@example.com/"),
    ("http://\u00fcser:p\u00e4ss@example.com/", "http://%C3%BCser:p%C3%A4ss@example.com/"),
    ("http://example.com/a{b}|c^d`e\"f<g>h\\i", "http://example.com/a%7Bb%7D%7Cc%5Ed%60e%22f%3Cg%3Eh%5Ci"),
    # what libcurl's parser does on top of the encoding
    ("http://example.com/a/./b/../c", "http://example.com/a/c"),
    ("http://example.com/x?", "http://example.com/x"),
    ("http://example.com:/x", "http://example.com/x"),
    ("http://example.com:080/x", "http://example.com:80/x"),
    ("http://127.1/", "http://127.0.0.1/"),
    ("http://0x7f.0.0.1:8080/", "http://127.0.0.1:8080/"),
    ("http://example.com/caf\u00e9#fr\u00e9 x", "http://example.com/caf%C3%A9"),
])
def test_normalise_url(raw, want):
    got = normalise_url(raw)
    assert got.isascii()
    assert upper_escapes(got) == want


def _fast_path_cases():
    hosts = ["a.com", "A.com", "a-b.c-d.example", "xn--bcher-kva.de", "host1", "a.b1", "localhost", "127.0.0.1",
             "1.2.3.4", "255.255.255.255", "256.1.1.1", "127.1", "010.0.0.1", "0x7f.0.0.1", "1.2.3.4.5", "a.com.",
             "[::1]", "b\u00fccher.de", "a..b"]
    ports = ["", ":80", ":8080", ":080", ":0", ":65535", ":65536", ":"]
    paths = ["", "/", "/a?b=c", "/x/y.html?q=%41&r=1", "/%zz", "/%4", "/x#f", "/caf\u00e9", "/a b", "/?x=1?y",
             "/a/../b", "/a/./b", "/.well-known/x", "/a/..", "/a/.", "/x?", "/x?a/../b", "//x", "/~u/;p=1,2",
             "/a:b@c!$&'()*+=", "/x?%20", "/A%2fB"]
    for scheme in ("http", "https", "HTTP", "ftp"):
        for host in hosts:
            for port in ports:
                for path in paths:
                    yield "%s://%s%s%s" % (scheme, host, port, path)


def test_fast_path_agrees_with_libcurl():
    """_prepare() skips libcurl for URLs it would return unchanged: over a
    few thousand URLs, it returns what libcurl's URL API makes of them."""
    fast = 0
    for raw in _fast_path_cases():
        try:
            want = crawl._parse(raw)
        except ValueError:
            with pytest.raises(ValueError):
                crawl._prepare(raw)
            continue
        assert crawl._prepare(raw) == want, raw
        if crawl._PLAIN_URL.match(raw):
            fast += 1
    assert fast > 500  # the fast path did take part


@pytest.mark.parametrize("raw", ["", "   ", "http://", "http://example.com:99999/", "http://exa mple.com/",
                                 "http://a.com\\x/", "file:///etc/passwd", "http://a.com/\x00", "http://a.com/\tx",
                                 "http://[::1/"])
def test_normalise_url_rejects(raw):
    with pytest.raises(ValueError):
        normalise_url(raw)


def test_normalise_url_in_threads():
    # each thread parses with a CurlUrl of its own
    urls = ["http://h%d.example/caf\u00e9 %d" % (i, i) for i in range(200)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(normalise_url, urls))
    assert [upper_escapes(u) for u in got] == ["http://h%d.example/caf%%C3%%A9%%20%d" % (i, i) for i in range(200)]


def test_transient_is_the_one_classifier():
    assert transient(E.E_COULDNT_CONNECT)
    assert transient(E.E_OPERATION_TIMEDOUT)
    assert transient(E.E_RECV_ERROR)
    assert transient(E.E_GOT_NOTHING)
    assert not transient(E.E_COULDNT_RESOLVE_HOST)
    assert not transient(E.E_TOO_MANY_REDIRECTS)
    assert not transient(E.E_URL_MALFORMAT)
    for status in (429, 503, 502, 504, 408):
        assert transient(0, status)
    for status in (200, 301, 404, 500, 403):
        assert not transient(0, status)


def test_headers_multimap():
    h = Headers([("Set-Cookie", "a=1"), ("Content-Type", "text/html"), ("set-cookie", "b=2")])
    assert h["content-type"] == "text/html"
    assert h["SET-COOKIE"] == "a=1"
    assert h.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert "CONTENT-TYPE" in h and "x" not in h
    assert h.get("missing", "d") == "d"
    assert len(h) == 3 and h.keys() == ["Set-Cookie", "Content-Type", "set-cookie"]
    with pytest.raises(KeyError):
        h["missing"]


# -- one fetch ------------------------------------------------------------------------


async def test_fetch_response(httpbin):
    r = await fetch(httpbin("/get?x=1"), headers={"X-Test": "yes"})
    assert r.ok and r.status == 200 and r.reason == "OK"
    assert r.http_version == "1.1"
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["args"] == {"x": "1"}
    assert body["headers"]["X-Test"] == "yes"
    assert body["headers"]["User-Agent"] == crawl.USER_AGENT
    assert "gzip" in body["headers"]["Accept-Encoding"]  # compression on by default
    assert r.history == [] and r.effective_url == r.url
    assert r.timings.total > 0 and r.timings.total >= r.timings.connect
    assert r.size == len(r.content) > 0 and r.attempts == 1 and r.error is None


async def test_fetch_decompresses(httpbin):
    r = await fetch(httpbin("/gzip"))
    assert r.ok and r.json()["gzipped"] is True


async def test_post_and_method(httpbin):
    async with Session() as s:
        r = await s.fetch(httpbin("/post"), method="POST", data=b"a=1")
        assert r.json()["form"] == {"a": "1"}
        r = await s.fetch(httpbin("/anything"), method="PUT", data=b"x", headers={"Content-Type": "text/plain"})
        assert r.json()["method"] == "PUT" and r.json()["data"] == "x"
        r = await s.fetch(httpbin("/get"))  # the pooled handle is back to GET
        assert r.ok and r.json()["url"].endswith("/get")
        r = await s.fetch(httpbin("/get"), method="HEAD")
        assert r.ok and r.content == b""
        r = await s.fetch(httpbin("/get"))
        assert r.ok and r.content


async def test_redirects_history_and_final_headers(crawl_server):
    r = await fetch(crawl_server.url("/redirect/3"))
    assert r.ok and r.content == b"final"
    assert r.effective_url == crawl_server.url("/redirect/0")
    assert [h.status for h in r.history] == [302, 302, 302]
    assert [h.url for h in r.history] == [crawl_server.url("/redirect/%d" % n) for n in (3, 2, 1)]
    assert r.history[-1].location == crawl_server.url("/redirect/0")
    # the final response's headers only: nothing of the redirects leaks in
    assert r.headers["X-Final"] == "yes"
    assert "X-Hop" not in r.headers and "Location" not in r.headers


async def test_too_many_redirects_is_a_permanent_failure(crawl_server):
    with pytest.raises(FetchError) as info:
        await fetch(crawl_server.url("/loop"), max_redirects=3)
    assert info.value.code == E.E_TOO_MANY_REDIRECTS and not info.value.transient
    assert isinstance(info.value, curlmulti.error)


async def test_no_redirects(crawl_server):
    r = await fetch(crawl_server.url("/redirect/1"), max_redirects=0)
    assert r.status == 302 and not r.ok and r.headers["Location"] == "/redirect/0"


async def test_text_charset(crawl_server):
    for charset in ("utf-8", "latin-1", "utf-16"):
        r = await fetch(crawl_server.url("/charset/" + charset))
        assert r.charset == charset
        assert r.text() == "caf\u00e9"


async def test_non_ascii_and_space_urls(crawl_server):
    async with Session() as s:
        r = await s.fetch(crawl_server.url("/target/caf\u00e9 au lait?q=\u00e9t\u00e9"))
        assert r.ok
        assert upper_escapes(r.content.decode("ascii")) == "/target/caf%C3%A9%20au%20lait?q=%C3%A9t%C3%A9"
        r = await s.fetch(crawl_server.url("/target/already%20encoded"))
        assert r.content == b"/target/already%20encoded"


async def test_relative_redirect_resolved_as_libcurl_does(crawl_server):
    # Location: ../target/café x?q=é 1 (raw UTF-8, relative, a space)
    r = await fetch(crawl_server.url("/relative"))
    assert r.ok and [h.status for h in r.history] == [302]
    assert r.history[0].location == r.effective_url  # resolved as libcurl did to follow it
    assert r.effective_url.startswith(crawl_server.url("/target/caf%"))
    path = r.content.decode("ascii").partition("?")[0]
    assert upper_escapes(path) == "/target/caf%C3%A9%20x"
    assert r.effective_url.endswith(r.content.decode("ascii"))


async def test_idn_host_goes_out_as_punycode(crawl_server):
    # CrawlServer answers an absolute-form target as a proxy would: it shows
    # the host libcurl sent
    r = await fetch("http://B\u00fccher.example/ok/idn", proxy=crawl_server.url)
    assert r.ok and r.url == "http://xn--bcher-kva.example/ok/idn"
    assert crawl_server.requests[-1].target == "http://xn--bcher-kva.example/ok/idn"


async def test_cookies_shared_through_the_session(crawl_server):
    async with Session() as s:
        await s.fetch(crawl_server.url("/cookie/set"))
        r = await s.fetch(crawl_server.url("/cookie/get"))
        assert r.content == b"crawl=yes"
        assert any("\tcrawl\tyes" in line for line in s.cookies())
    async with Session(cookies=False) as s:
        await s.fetch(crawl_server.url("/cookie/set"))
        r = await s.fetch(crawl_server.url("/cookie/get"))
        assert r.content == b""


async def test_proxy(crawl_server):
    # CrawlServer answers an absolute-form request target as a proxy would
    r = await fetch("http://example.invalid/ok/via-proxy", proxy=crawl_server.url)
    assert r.ok and r.content == b"ok via-proxy"
    assert crawl_server.requests[-1].target == "http://example.invalid/ok/via-proxy"


async def test_cancelled_fetch_is_not_started_later(crawl_server, gate_server):
    async with Session(limit=1, per_host=1) as s:
        held = asyncio.ensure_future(s.fetch(gate_server.url("/hold")))
        queued = asyncio.ensure_future(s.fetch(crawl_server.url("/ok/never")))
        await asyncio.get_running_loop().run_in_executor(None, gate_server.wait_for, 1)
        queued.cancel()
        gate_server.release()
        assert (await held).ok
        r = await s.fetch(crawl_server.url("/ok/next"))
        assert r.ok
    assert "/ok/never" not in crawl_server.times


async def test_sink_streams_the_body(httpbin, tmp_path):
    path = tmp_path / "body"
    with open(path, "wb") as f:
        r = await fetch(httpbin("/bytes/5000"), sink=curlmulti.FileSink(f))
    assert r.ok and r.content == b"" and r.size == 5000
    assert os.path.getsize(path) == 5000


# -- failures and retries -------------------------------------------------------------


async def test_429_retry_after_is_honoured(crawl_server):
    async with Session(retries=2, backoff=0.01) as s:
        r = await s.fetch(crawl_server.url("/once/429/a?after=1"))
    assert r.ok and r.attempts == 2
    first, second = crawl_server.times["/once/429/a"]
    assert second - first >= 0.95  # waited for Retry-After, not just the 10 ms backoff


async def test_retry_after_too_long_is_not_waited(crawl_server):
    async with Session(retries=2, max_retry_after=5) as s:
        r = await s.fetch(crawl_server.url("/once/429/b?after=3600"))
    assert r.status == 429 and r.attempts == 1 and r.transient and not r.ok
    assert r.headers["Retry-After"] == "3600"


async def test_503_and_reset_recover(crawl_server):
    async with Session(retries=2, backoff=0.01) as s:
        got = [r async for r in s.as_completed([crawl_server.url("/once/503/x"),
                                                crawl_server.url("/once/reset/y")])]
    assert sorted((r.ok, r.attempts) for r in got) == [(True, 2), (True, 2)]


async def test_reset_every_time_fails_after_retries(crawl_server):
    async with Session(retries=2, backoff=0.01) as s:
        with pytest.raises(FetchError) as info:
            await s.fetch(crawl_server.url("/always/reset"))
    err = info.value
    assert err.code in (E.E_RECV_ERROR, E.E_GOT_NOTHING, E.E_SEND_ERROR) and err.transient
    assert len(crawl_server.times["/always/reset"]) == 3
    assert err.url == crawl_server.url("/always/reset")


async def test_refused_and_timeout_are_transient(refused_port, stalling_server):
    async with Session(retries=1, backoff=0.01, timeout=0.3) as s:
        got = {r.request.url: r async for r in s.as_completed([refused_port("/x"),
                                                               stalling_server("/y")])}
    refused = got[refused_port("/x")]
    assert refused.error.code == E.E_COULDNT_CONNECT and refused.transient and refused.attempts == 2
    stalled = got[stalling_server("/y")]
    assert stalled.error.code == E.E_OPERATION_TIMEDOUT and stalled.transient and stalled.attempts == 2


async def test_non_transient_is_not_retried(crawl_server):
    async with Session(retries=3) as s:
        r = await s.fetch(crawl_server.url("/nothing-here"))
    assert r.status == 404 and r.attempts == 1 and not r.transient
    assert len(crawl_server.times["/nothing-here"]) == 1
    with pytest.raises(FetchError) as info:
        r.raise_for_status()
    assert info.value.code == 0 and "404" in str(info.value)


# -- many URLs ------------------------------------------------------------------------


async def test_every_request_exactly_once(crawl_server, refused_port):
    requests = []
    for i in range(60):
        requests.append(Request(crawl_server.url("/ok/%d" % i), meta=i))
    requests.append(Request(crawl_server.url("/nothing"), meta="404"))
    requests.append(Request(refused_port("/"), meta="refused"))
    requests.append(Request("http://exa mple.com/", meta="malformed"))
    requests.append(Request(crawl_server.url("/ok/0"), meta="duplicate"))
    async with Session(limit=8, per_host=4, retries=1, backoff=0.01) as s:
        got = [r async for r in s.as_completed(iter(requests), buffer=10)]
        assert s.running == 0
    assert collections.Counter(id(r.request) for r in got) == collections.Counter(id(r) for r in requests)
    by_meta = {r.request.meta: r for r in got}
    assert all(by_meta[i].ok and by_meta[i].content == b"ok %d" % i for i in range(60))
    assert by_meta["404"].status == 404 and by_meta["404"].error is None
    assert by_meta["refused"].error.code == E.E_COULDNT_CONNECT
    assert by_meta["malformed"].error.code == E.E_URL_MALFORMAT and not by_meta["malformed"].transient
    assert by_meta["duplicate"].ok


async def test_input_is_read_lazily(crawl_server):
    read = [0]
    yielded = [0]
    most_ahead = [0]

    def urls():
        for i in range(300):
            read[0] += 1
            most_ahead[0] = max(most_ahead[0], read[0] - yielded[0])
            yield crawl_server.url("/ok/%d" % i)

    async with Session(limit=10, per_host=10) as s:
        async for r in s.as_completed(urls(), buffer=25):
            assert r.ok
            yielded[0] += 1
    assert yielded[0] == 300
    assert most_ahead[0] <= 25 + 1  # the generator runs one item ahead of its accounting


async def test_async_iterable_and_map_order(crawl_server):
    async def urls():
        for i in range(40):
            await asyncio.sleep(0)
            yield crawl_server.url("/ok/%d" % i)

    async with Session(limit=10, per_host=10) as s:
        got = [r.content async for r in s.map(urls(), buffer=8)]
    assert got == [b"ok %d" % i for i in range(40)]


async def test_slow_host_cannot_take_every_slot(crawl_server, gate_server):
    slow = [gate_server.url("/s/%d" % i) for i in range(20)]
    fast = [crawl_server.url("/ok/%d" % i) for i in range(50)]
    urls = [u for pair in zip(slow, fast) for u in pair] + fast[20:]
    done_fast = 0
    done_slow = 0
    async with Session(limit=6, per_host=2, timeout=60) as s:
        async for r in s.as_completed(urls):
            assert r.ok, r
            if r.url.startswith(crawl_server.url):
                done_fast += 1
                # every fast URL completes while the slow host holds its 2 slots
                assert done_slow == 0
                if done_fast == len(fast):
                    await asyncio.get_running_loop().run_in_executor(None, gate_server.wait_for, 2)
                    gate_server.release()
            else:
                done_slow += 1
    assert done_fast == 50 and done_slow == 20
    assert gate_server.max_waiting == 2


async def test_politeness_delay(crawl_server):
    urls = [crawl_server.url("/ok/p%d" % i) for i in range(4)]
    async with Session(limit=4, per_host=4, delay=0.2) as s:
        got = [r async for r in s.as_completed(urls)]
    assert all(r.ok for r in got)
    times = sorted(crawl_server.times["/ok/p%d" % i][0] for i in range(4))
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Starts are 0.2 s apart; arrivals at the server also differ by the
    # time each took to connect, so allow for that (without the delay, all
    # four arrive within milliseconds).
    assert times[-1] - times[0] >= 0.5 and min(gaps) >= 0.1, gaps


async def test_breaking_out_stops_the_transfers(gate_server, crawl_server):
    async with Session(limit=4, per_host=4) as s:
        gen = s.as_completed([crawl_server.url("/ok/1")] + [gate_server.url("/s/%d" % i) for i in range(10)])
        async for r in gen:
            assert r.ok
            break
        await asyncio.get_running_loop().run_in_executor(None, gate_server.wait_for, 4)
        await gen.aclose()
        await asyncio.sleep(0)  # the cancelled transfers' callbacks run
        assert s.running == 0
        r = await s.fetch(crawl_server.url("/ok/after"))  # the session still works
        assert r.ok


# -- HTTP/2 over TLS against a real nginx (nginxserver.py) ---------------------------------


@pytest.fixture(scope="module")
def nginx():
    if nginxserver.binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light): no HTTP/2 server to test against")
    with nginxserver.Nginx() as server:
        yield server


def _trusting(nginx, **kwargs):
    """Session/fetch keywords that trust the test CA (and only it)."""
    kwargs.setdefault("options", {})[curlmulti.CAINFO] = nginx.ca_file
    return kwargs


def test_libcurl_has_http2():
    # version_info()[4] is libcurl's feature bits; the toolkit's HTTP/2 needs nghttp2
    assert curlmulti.version_info()[4] & curlmulti.VERSION_HTTP2, curlmulti.version


async def test_fetch_over_tls_uses_http2(nginx):
    r = await fetch(nginx.url("/big"), **_trusting(nginx))
    assert r.ok and r.http_version == "2"
    assert r.content == nginxserver.BIG and r.headers["content-encoding"] == "gzip"  # decoded
    r = await fetch(nginx.url("/big"), http2=False, **_trusting(nginx))
    assert r.ok and r.http_version == "1.1" and r.content == nginxserver.BIG


async def test_certificate_is_verified(nginx):
    # the same server, its CA not trusted: a permanent failure, not retried
    with pytest.raises(FetchError) as info:
        await fetch(nginx.url("/f/0"), retries=3)
    assert info.value.code in (E.E_PEER_FAILED_VERIFICATION, getattr(E, "E_SSL_CACERT", -1))
    assert not info.value.transient
    # verify=False is the only way past it
    r = await fetch(nginx.url("/f/0"), verify=False)
    assert r.ok and r.content == b"file 0\n"


async def test_concurrent_fetches_share_one_http2_connection(nginx):
    n = 20
    tag = "share-%d" % id(object())
    async with Session(per_host=n, **_trusting(nginx)) as s:
        rs = await asyncio.gather(*[s.fetch(nginx.url("/f/%d?%s" % (i, tag))) for i in range(n)])
        assert [r.content for r in rs] == [b"file %d\n" % i for i in range(n)]
        assert all(r.ok and r.http_version == "2" for r in rs)
        # all n ran at once: the pool grows only when no handle is free
        assert s._slots == n and len(s._free) == n
        # libcurl's view: one connection made among the n transfers
        handles = [slot.curl for slot in s._free]
        assert sum(c.getinfo(curlmulti.NUM_CONNECTS) for c in handles) == 1
        if hasattr(curlmulti, "CONN_ID"):  # libcurl 8.2+
            ids = {c.getinfo(curlmulti.CONN_ID) for c in handles} - {-1}
            assert len(ids) == 1, ids
        # nginx logs a request when it is done with it, which may be just
        # after the client has its response; it reads a new request on the
        # connection only after that: one more round trip on it flushes the log
        r = await s.fetch(nginx.url("/f/0?%s-flush" % tag))
        assert r.ok and r.http_version == "2" and s._free[-1].curl.getinfo(curlmulti.NUM_CONNECTS) == 0
    # nginx's view: the n requests came on one connection, over HTTP/2
    rows = [row for row in nginx.requests() if row[3].endswith("?" + tag)]
    assert sorted(row[3] for row in rows) == sorted("/f/%d?%s" % (i, tag) for i in range(n))
    assert {row[0] for row in rows} == {rows[0][0]} and {row[1] for row in rows} == {"HTTP/2.0"}


async def test_non_ascii_path_over_http2(nginx):
    # the file is named "café menu.txt": nginx finds it only if the path was
    # percent-encoded as UTF-8
    r = await fetch(nginx.url("/" + nginxserver.NON_ASCII_NAME), **_trusting(nginx))
    assert r.ok and r.http_version == "2" and r.content == b"non-ASCII name\n"
    assert upper_escapes(r.url) == nginx.url("/caf%C3%A9%20menu.txt")


async def test_session_bad_arguments():
    with pytest.raises(ValueError):
        Session(limit=0)
    with pytest.raises(ValueError):
        Session(per_host=0)
    with pytest.raises(ValueError):
        Session(headers={"Bad:Name": "x"})
    async with Session() as s:
        with pytest.raises(FetchError) as info:
            await s.fetch(123)
        assert info.value.code == E.E_URL_MALFORMAT
        got = [r async for r in s.as_completed([object()])]
        assert got[0].error.code == E.E_URL_MALFORMAT


async def test_closed_session_refuses():
    s = Session()
    await s.aclose()
    await s.aclose()  # idempotent
    with pytest.raises(RuntimeError):
        await s.fetch("http://127.0.0.1/")


def _rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


async def _crawl_many(base, n):
    """Crawl n URLs (1 in 100 a 404); returns (responses seen once each,
    RSS growth in KiB from a quarter of the way to the end)."""
    seen = bytearray(n)
    ok = failed = 0
    rss_quarter = None
    async with Session(limit=50, per_host=50, retries=0) as s:
        urls = (Request(base + ("/status/404" if i % 100 == 99 else "/get?i=%d" % i), meta=i) for i in range(n))
        i = 0
        async for r in s.as_completed(urls):
            index = r.request.meta
            assert not seen[index], "reported twice: %s" % r.request.url
            seen[index] = 1
            if r.ok:
                ok += 1
            else:
                failed += 1
            i += 1
            if i == n // 4:
                gc.collect()
                rss_quarter = _rss_kib()
        assert s.running == 0 and not s._hosts and not s._timers
    gc.collect()
    return seen, ok, failed, _rss_kib() - rss_quarter


async def test_crawl_10000_every_url_once_flat_memory(fast_server):
    n = 10000
    seen, ok, failed, growth = await _crawl_many(fast_server.url, n)
    assert all(seen)
    assert failed == n // 100 and ok == n - failed
    # 7,500 more URLs after the first quarter: 2 KiB kept per URL would be 15 MB.
    # PyPy's JIT and its growing GC heap add up to ~13 MiB of noise here (seen
    # on a loaded machine), so it is held to a looser bound (4 KiB per URL);
    # the 100,000-URL crawl below is the finer memory check on both.
    bound = 32 * 1024 if platform.python_implementation() == "PyPy" else 12 * 1024
    assert growth < bound, "RSS grew by %d KiB" % growth


@pytest.mark.skipif(not os.environ.get("CURLMULTI_SLOW"), reason="slow: CURLMULTI_SLOW=1 (tox -e crawl-slow)")
@pytest.mark.timeout(900)
async def test_crawl_100000_every_url_once_flat_memory(fast_server):
    n = 100000
    seen, ok, failed, growth = await _crawl_many(fast_server.url, n)
    assert all(seen)
    assert failed == n // 100 and ok == n - failed
    assert growth < 24 * 1024, "RSS grew by %d KiB" % growth
