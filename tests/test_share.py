"""CurlShare: cookies, DNS and connections shared between handles over real
transfers to the local servers, its errors, closing while handles use it,
threads, and every order of closing and collecting a share and its handles.

The lifetime scenarios run in a subprocess of the same interpreter, as in
test_multi_lifetimes.py (``-X dev`` on CPython; exit 0, ``OK``, an empty
stderr).  Run one by hand with ``PYTHONPATH=. python tests/test_share.py
SCENARIO URL`` (URL: a fast_server)."""

import copy
import gc
import io
import itertools
import os
import pickle
import sys
import threading
import weakref

SCENARIOS = {}


def scenario(func):
    SCENARIOS[func.__name__] = func
    return func


def collect():
    for _ in range(5):
        gc.collect()


def get(pycurl, c, url):
    buf = io.BytesIO()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEDATA, buf)
    c.perform()
    return buf.getvalue()


def shared_pair(pycurl, *kinds):
    s = pycurl.CurlShare()
    for kind in kinds or (pycurl.LOCK_DATA_COOKIE, pycurl.LOCK_DATA_DNS, pycurl.LOCK_DATA_CONNECT):
        s.setopt(pycurl.SH_SHARE, kind)
    a, b = pycurl.Curl(), pycurl.Curl()
    for c in (a, b):
        c.setopt(pycurl.SHARE, s)
    return s, a, b


# ---------------------------------------------------------------- lifetime scenarios (subprocess side)

@scenario
def close_in_every_order(pycurl, url):
    for order in itertools.permutations(["share", "a", "b"]):
        s, a, b = shared_pair(pycurl)
        get(pycurl, a, url + "/get")
        get(pycurl, b, url + "/get")          # over a's connection, in the share's cache
        objs = {"share": s, "a": a, "b": b}
        for name in order:
            objs[name].close()
        for name in order:
            objs[name].close()                 # and again: idempotent
        assert s.closed and a.closed and b.closed


@scenario
def drop_in_every_order(pycurl, url):
    for order in itertools.permutations(["share", "a", "b"]):
        s, a, b = shared_pair(pycurl)
        get(pycurl, a, url + "/get")
        objs = {"share": s, "a": a, "b": b}
        del s, a, b
        refs = [weakref.ref(o) for o in objs.values()]
        for name in order:
            del objs[name]
            collect()
        assert all(r() is None for r in refs), order


@scenario
def close_share_then_use_handles(pycurl, url):
    s, a, b = shared_pair(pycurl)
    get(pycurl, a, url + "/get")
    s.close()
    assert a.share() is None and b.share() is None
    assert len(get(pycurl, a, url + "/bytes/10")) == 10
    get(pycurl, b, url + "/get")
    a.close()
    b.close()


@scenario
def cycles(pycurl, url):
    refs = []
    for _ in range(3):
        s, a, b = shared_pair(pycurl)
        s.curls = [a, b]                               # share -> handles -> share
        a.setopt(pycurl.WRITEFUNCTION, lambda d, s=s, b=b: None)
        b.setopt(pycurl.HEADERFUNCTION, lambda h, a=a: None)
        a.setopt(pycurl.URL, url + "/get")
        a.perform()
        m = pycurl.CurlMulti()
        m.add_handle(b)
        s.multi = m
        m.share = s
        refs += [weakref.ref(o) for o in (s, a, b, m)]
        del s, a, b, m
    collect()
    assert all(r() is None for r in refs)


@scenario
def drop_multi_share_and_handles_in_flight(pycurl, url):
    refs = []
    for close_handles in (False, True):
        s = pycurl.CurlShare()
        s.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_CONNECT)
        s.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_DNS)
        m = pycurl.CurlMulti(close_handles=close_handles)
        for i in range(10):
            c = pycurl.Curl()
            c.setopt(pycurl.SHARE, s)
            c.setopt(pycurl.URL, url + ("/delay/0.5" if i % 2 else "/bytes/100000"))
            c.setopt(pycurl.WRITEFUNCTION, lambda d: None)
            m.add_handle(c)
            refs.append(weakref.ref(c))
        del c
        for _ in range(5):
            m.perform()
            m.select(0.02)
        s.close()                              # the attached handles keep libcurl's share
        refs += [weakref.ref(s), weakref.ref(m)]
        del s, m
    collect()
    assert all(r() is None for r in refs)


@scenario
def closesocket_callbacks_of_shared_connections(pycurl, url):
    """With LOCK_DATA_CONNECT the connections stay in the share's cache after
    the handles that opened them are gone, and are closed at its cleanup
    through those handles' CLOSESOCKETFUNCTION."""
    closed = []

    def close_socket(fd):
        closed.append(fd)
        os.close(fd)
        return 0

    for how in ("share-last", "share-first", "drop"):
        s = pycurl.CurlShare()
        s.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_CONNECT)
        curls = []
        for _ in range(2):
            c = pycurl.Curl()
            c.setopt(pycurl.SHARE, s)
            c.setopt(pycurl.CLOSESOCKETFUNCTION, close_socket)
            get(pycurl, c, url + "/get")
            curls.append(c)
        n = len(closed)
        if how == "share-first":
            s.close()
        for c in curls:
            c.close() if how != "drop" else None
        del curls, c
        if how == "drop":
            del s
        collect()
        if how == "share-last":
            s.close()
        assert len(closed) == n + 1, (how, closed)   # one connection, reused by both


@scenario
def share_closed_while_attached_to_a_multi(pycurl, url):
    s = pycurl.CurlShare()
    s.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_CONNECT)
    m = pycurl.CurlMulti()
    c = pycurl.Curl()
    c.setopt(pycurl.SHARE, s)
    c.setopt(pycurl.URL, url + "/get")
    c.setopt(pycurl.WRITEFUNCTION, lambda d: None)
    m.add_handle(c)
    s.close()
    assert s.closed and c.share() is s         # kept: a transfer may use the share's cache
    running = 1
    while running:
        _, running = m.perform()
        m.select(0.1)
    assert c.getinfo(pycurl.RESPONSE_CODE) == 200
    m.remove_handle(c)
    c.unsetopt(pycurl.SHARE)                   # now it lets go, and the CURLSH is freed
    assert c.share() is None
    get(pycurl, c, url + "/get")
    m.close()
    c.close()


@scenario
def threads_share_one_share(pycurl, url):
    s = pycurl.CurlShare()
    for kind in (pycurl.LOCK_DATA_COOKIE, pycurl.LOCK_DATA_DNS, pycurl.LOCK_DATA_CONNECT,
                 pycurl.LOCK_DATA_SSL_SESSION):
        s.setopt(pycurl.SH_SHARE, kind)
    errors, counts = [], []

    def worker(n):
        try:
            c = pycurl.Curl()
            c.setopt(pycurl.SHARE, s)
            c.setopt(pycurl.COOKIEFILE, "")
            done = 0
            for i in range(n):
                if i % 10 == 0:
                    c.setopt(pycurl.SHARE, s) if c.share() is None else c.unsetopt(pycurl.SHARE)
                get(pycurl, c, url + "/bytes/%d" % (100 + i))
                assert c.getinfo(pycurl.RESPONSE_CODE) == 200
                done += 1
            c.close()
            counts.append(done)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(150,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert counts == [150] * 4
    s.close()


# ---------------------------------------------------------------- the tests (pytest side)

try:
    import pytest
except ImportError:  # the subprocess side needs no pytest
    pytest = None

if pytest is not None and __name__ != "__main__":
    import scenarios
    import curlmulti
    from curlmulti import Curl, CurlMulti, CurlShare, error

    @pytest.mark.parametrize("name", sorted(SCENARIOS))
    def test_lifetime(fast_server, name):
        scenarios.check(__file__, name, fast_server.url)

    # -- the API ------------------------------------------------------------

    def test_api_matches_pycurl():
        assert "CurlShare" in curlmulti.__all__ and curlmulti.CurlShare is CurlShare
        # pycurl's CurlShare methods (tools/compare_pycurl.py lists none missing).
        for name in ("setopt", "share", "unshare", "close", "closed", "__enter__", "__exit__"):
            assert hasattr(CurlShare, name), name
        s = CurlShare()
        assert s.SH_SHARE == curlmulti.SH_SHARE and s.LOCK_DATA_DNS == curlmulti.LOCK_DATA_DNS
        assert s.SH_UNSHARE == curlmulti.SH_UNSHARE and s.LOCK_DATA_CONNECT == curlmulti.LOCK_DATA_CONNECT
        s.close()

    def test_async_multi_module():
        from curlmulti.async_multi import AsyncCurlMulti
        assert AsyncCurlMulti is curlmulti.AsyncCurlMulti
        assert curlmulti.async_multi.AsyncCurlMulti is AsyncCurlMulti  # an attribute, as in pycurl

    def test_second_init_copy_and_pickle():
        s = CurlShare()
        s.setopt(s.SH_SHARE, s.LOCK_DATA_COOKIE)
        c_s = s._rec.s
        s.__init__()
        assert s._rec.s is c_s
        with pytest.raises(TypeError):
            copy.copy(s)
        with pytest.raises(TypeError):
            copy.deepcopy(s)
        with pytest.raises(TypeError):
            pickle.dumps(s)
        s.close()
        s.__init__()
        assert s.closed

    # -- sharing over real transfers ----------------------------------------------

    def cookie_handles(share):
        """Two handles on share, each with libcurl's cookie engine on (needed
        for a shared cookie jar)."""
        handles = Curl(), Curl()
        for c in handles:
            c.setopt(c.COOKIEFILE, "")
            c.setopt(c.SHARE, share)
        return handles

    def test_cookies_shared(httpbin):
        s = CurlShare()
        s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_COOKIE)
        a, b = cookie_handles(s)
        get(curlmulti, a, httpbin("/cookies/set?flavour=oat"))
        assert b'"flavour": "oat"' in get(curlmulti, b, httpbin("/cookies"))
        # Without the share, a third handle has no cookies.
        c = Curl()
        c.setopt(c.COOKIEFILE, "")
        assert b'"flavour"' not in get(curlmulti, c, httpbin("/cookies"))
        for h in (a, b, c):
            h.close()
        s.close()

    def test_share_and_unshare_methods(httpbin):
        # pycurl 7.49's share(*data)/unshare(*data): setopt for each item, in order.
        s = CurlShare()
        s.share(curlmulti.LOCK_DATA_COOKIE, curlmulti.LOCK_DATA_DNS)
        s.unshare(curlmulti.LOCK_DATA_DNS)
        a, b = cookie_handles(s)
        get(curlmulti, a, httpbin("/cookies/set?flavour=rye"))
        assert b'"flavour": "rye"' in get(curlmulti, b, httpbin("/cookies"))
        with pytest.raises(error) as e:     # libcurl refuses changes while handles use it
            s.unshare(curlmulti.LOCK_DATA_COOKIE)
        in_use = curlmulti._curl.lib.CURLSHE_IN_USE
        assert e.value.args == (in_use, curlmulti.share_strerror(in_use))
        for c in (a, b):
            c.close()
        with pytest.raises(TypeError):
            s.share()
        with pytest.raises(TypeError):
            s.share([curlmulti.LOCK_DATA_COOKIE])   # lists are not expanded, as in pycurl
        with pytest.raises(error):
            s.share(1000)                            # CURLSHE_BAD_OPTION from libcurl
        s.close()
        with pytest.raises(error):
            s.share(curlmulti.LOCK_DATA_COOKIE)

    def test_unshare_before_attaching(httpbin):
        s = CurlShare()
        s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_COOKIE)
        s.setopt(curlmulti.SH_UNSHARE, curlmulti.LOCK_DATA_COOKIE)
        a, b = cookie_handles(s)
        get(curlmulti, a, httpbin("/cookies/set?flavour=oat"))
        assert b'"flavour"' not in get(curlmulti, b, httpbin("/cookies"))
        # libcurl refuses changes while handles use the share.
        with pytest.raises(error) as ei:
            s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_COOKIE)
        in_use = curlmulti._curl.lib.CURLSHE_IN_USE
        assert ei.value.args == (in_use, curlmulti.share_strerror(in_use))
        a.unsetopt(a.SHARE)
        b.setopt(b.SHARE, None)
        assert a.share() is None and b.share() is None
        s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_COOKIE)
        a.close()
        b.close()
        s.close()

    def test_dns_shared_with_resolve(fast_server):
        s = CurlShare()
        s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_DNS)
        host = "share-test.invalid"
        url = "http://%s:%d/get" % (host, fast_server.port)
        a, b, alone = Curl(), Curl(), Curl()
        a.setopt(a.RESOLVE, ["%s:%d:127.0.0.1" % (host, fast_server.port)])
        a.setopt(a.SHARE, s)
        b.setopt(b.SHARE, s)
        get(curlmulti, a, url)
        get(curlmulti, b, url)             # the name is in the shared DNS cache
        assert b.getinfo(b.RESPONSE_CODE) == 200 and b.getinfo(b.PRIMARY_IP) == "127.0.0.1"
        with pytest.raises(error) as ei:
            get(curlmulti, alone, url)
        assert ei.value.args[0] == curlmulti.E_COULDNT_RESOLVE_HOST
        for h in (a, b, alone):
            h.close()
        s.close()

    def test_connections_shared(fast_server):
        s = CurlShare()
        s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_CONNECT)
        a, b = Curl(), Curl()
        a.setopt(a.SHARE, s)
        b.setopt(b.SHARE, s)
        get(curlmulti, a, fast_server("/get"))
        get(curlmulti, b, fast_server("/get"))
        assert a.getinfo(a.NUM_CONNECTS) == 1
        assert b.getinfo(b.NUM_CONNECTS) == 0             # reused a's connection
        assert b.getinfo(b.LOCAL_PORT) == a.getinfo(a.LOCAL_PORT)
        # Detached, b opens its own.
        b.unsetopt(b.SHARE)
        get(curlmulti, b, fast_server("/get"))
        assert b.getinfo(b.NUM_CONNECTS) == 1
        a.close()
        b.close()
        s.close()

    def test_share_accessor_duphandle_and_reset(httpbin):
        s = CurlShare()
        s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_COOKIE)
        a = Curl()
        assert a.share() is None
        a.setopt(a.COOKIEFILE, "")
        a.setopt(a.SHARE, s)
        a.setopt(a.SHARE, s)               # the same again: nothing changes
        assert a.share() is s
        get(curlmulti, a, httpbin("/cookies/set?flavour=oat"))
        # libcurl's duphandle does not copy the share (nor the cookies).
        d = a.duphandle()
        assert d.share() is None
        assert b'"flavour"' not in get(curlmulti, d, httpbin("/cookies"))
        # reset() keeps it, as libcurl's reset keeps shares.
        a.reset()
        assert a.share() is s
        a.setopt(a.COOKIEFILE, "")
        assert b'"flavour": "oat"' in get(curlmulti, a, httpbin("/cookies"))
        a.close()
        d.close()
        assert a.share() is None  # closed: as pycurl
        s.close()

    # -- errors -------------------------------------------------------------------

    def test_bad_values():
        s = CurlShare()
        for option, value in [("1", curlmulti.LOCK_DATA_DNS), (None, 1), (1.0, 1),
                              (curlmulti.SH_SHARE, "dns"), (curlmulti.SH_SHARE, None),
                              (curlmulti.SH_SHARE, 3.0), (curlmulti.SH_SHARE, [3])]:
            with pytest.raises(TypeError):
                s.setopt(option, value)
        with pytest.raises(TypeError):     # the lock functions are curlmulti's
            s.setopt(curlmulti.SH_SHARE + 2, 1)
        with pytest.raises(OverflowError):
            s.setopt(curlmulti.SH_SHARE, 1 << 40)
        for option, value in [(curlmulti.SH_SHARE, 99), (curlmulti.SH_SHARE, -1),
                              (curlmulti.SH_SHARE, 0), (curlmulti.SH_UNSHARE, 1000),
                              (999, curlmulti.LOCK_DATA_DNS), (-7, curlmulti.LOCK_DATA_DNS),
                              (1 << 40, curlmulti.LOCK_DATA_DNS)]:
            with pytest.raises(error) as ei:
                s.setopt(option, value)
            assert ei.value.args == (1, curlmulti.share_strerror(1)), (option, value)  # CURLSHE_BAD_OPTION
        c = Curl()
        for value in ("share", 1, CurlMulti, object()):
            with pytest.raises(TypeError):
                c.setopt(c.SHARE, value)
        assert c.share() is None
        c.close()
        s.close()

    def test_closed_share():
        s = CurlShare()
        with s as entered:
            assert entered is s and not s.closed
        assert s.closed
        s.close()                          # idempotent
        with pytest.raises(error) as ei:
            s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_DNS)
        assert "closed" in ei.value.args[1] and "setopt" in ei.value.args[1]
        c = Curl()
        with pytest.raises(error) as ei:
            c.setopt(c.SHARE, s)
        assert "closed" in ei.value.args[1]
        assert c.share() is None
        c.close()
        assert repr(s) == "<curlmulti.CurlShare closed>"

    def test_close_while_attached(fast_server):
        s = CurlShare()
        s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_CONNECT)
        a, b = Curl(), Curl()
        a.setopt(a.SHARE, s)
        b.setopt(b.SHARE, s)
        get(curlmulti, a, fast_server("/get"))
        assert "2 handles" in repr(s)
        s.close()                          # detaches both idle handles first
        assert a.share() is None and b.share() is None
        get(curlmulti, b, fast_server("/get"))
        assert b.getinfo(b.NUM_CONNECTS) == 1
        a.close()
        b.close()

    def test_share_refused_while_attached_to_a_multi(fast_server):
        s = CurlShare()
        m = CurlMulti()
        c = Curl()
        m.add_handle(c)
        with pytest.raises(error) as ei:
            c.setopt(c.SHARE, s)
        assert "CurlMulti" in ei.value.args[1]
        m.remove_handle(c)
        c.setopt(c.SHARE, s)
        m.add_handle(c)
        with pytest.raises(error):
            c.unsetopt(c.SHARE)
        assert c.share() is s
        m.close()
        c.close()
        s.close()

    def test_the_handle_keeps_the_share_alive(fast_server):
        s = CurlShare()
        s.setopt(curlmulti.SH_SHARE, curlmulti.LOCK_DATA_CONNECT)
        ref = weakref.ref(s)
        c = Curl()
        c.setopt(c.SHARE, s)
        del s
        collect()
        assert ref() is not None and c.share() is ref()
        get(curlmulti, c, fast_server("/get"))
        c.close()
        collect()
        assert ref() is None


if __name__ == "__main__":
    import curlmulti
    func = SCENARIOS[sys.argv[1]]
    func(curlmulti, sys.argv[2].rstrip("/"))
    collect()
    print("OK " + sys.argv[1])
    sys.stdout.flush()
