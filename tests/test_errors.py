"""Errors of the easy handle: ``error.args == (code, message)`` with
libcurl's message, TypeError/ValueError for bad arguments, misuse (closed
handle, handle in a CurlMulti, perform in two threads), and each kind of
failed transfer reported with its own E_* code."""

import pickle
import re
import threading

import pytest

import curlmulti
from curlmulti import Curl, CurlMulti, error

E = curlmulti


def failing(url, **options):
    """perform() a transfer that must fail: (curl, error)."""
    c = Curl()
    c.setopt(c.URL, url)
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    for name, value in options.items():
        c.setopt(getattr(curlmulti, name), value)
    with pytest.raises(error) as ei:
        c.perform()
    return c, ei.value


def test_error_class():
    assert issubclass(error, Exception)
    e = error(7, "message")
    assert e.args == (7, "message")
    assert str(e) == "(7, 'message')"
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is error and e2.args == (7, "message")


# -- failed transfers, each with its code and libcurl's message ----------------------

def check(c, err, code):
    assert err.args[0] == code, err.args
    assert isinstance(err.args[1], str) and err.args[1]
    assert len(err.args) == 2
    assert err.__cause__ is None
    if c.errstr():
        assert err.args[1] == c.errstr()    # libcurl's error buffer
    else:
        assert err.args[1] == E.easy_strerror(code)
    c.close()


@pytest.mark.parametrize("url, code", [
    ("htp://example.test/", "E_UNSUPPORTED_PROTOCOL"),
    ("http://", "E_URL_MALFORMAT"),
    ("http://[::1/", "E_URL_MALFORMAT"),
    ("", "E_URL_MALFORMAT"),
])
def test_invalid_url(url, code):
    c, err = failing(url)
    check(c, err, getattr(E, code))


def test_no_url():
    c = Curl()
    with pytest.raises(error) as ei:
        c.perform()
    check(c, ei.value, E.E_URL_MALFORMAT)


def test_unsupported_protocol_message():
    c, err = failing("htp://example.test/")
    assert 'Protocol "htp" not supported' in err.args[1]
    assert err.args[1] == c.errstr()
    c.close()


def test_connection_refused(refused_port):
    c, err = failing(refused_port("/"))
    assert "Failed to connect to 127.0.0.1" in err.args[1]
    assert c.getinfo(c.OS_ERRNO) != 0
    check(c, err, E.E_COULDNT_CONNECT)


def test_unknown_host():
    # .invalid is reserved (RFC 6761): it never resolves.  The timeout keeps
    # a slow resolver from hanging the test.
    c, err = failing("http://nonexistent.invalid/", CONNECTTIMEOUT=20)
    assert "nonexistent.invalid" in err.args[1]
    check(c, err, E.E_COULDNT_RESOLVE_HOST)


def test_unknown_host_removed_from_resolve(httpbin):
    # RESOLVE with a leading '-' removes an entry; the name still fails.
    c, err = failing("http://nonexistent.invalid:%d/" % httpbin.port, CONNECTTIMEOUT=20,
                     RESOLVE=["-nonexistent.invalid:%d" % httpbin.port])
    check(c, err, E.E_COULDNT_RESOLVE_HOST)
    # ... while an added entry makes it resolve.
    c = Curl()
    c.setopt(c.URL, "http://nonexistent.invalid:%d/get" % httpbin.port)
    c.setopt(c.RESOLVE, ["nonexistent.invalid:%d:127.0.0.1" % httpbin.port])
    assert c.perform_rb()
    c.close()


def test_timeout(stalling_server):
    c, err = failing(stalling_server("/"), TIMEOUT_MS=200)
    assert "timed out" in err.args[1]
    check(c, err, E.E_OPERATION_TIMEDOUT)


def test_timeout_after_headers(stalling_server):
    c, err = failing(stalling_server("/after-headers"), TIMEOUT_MS=300)
    assert c.getinfo(c.RESPONSE_CODE) == 200
    check(c, err, E.E_OPERATION_TIMEDOUT)


def test_low_speed_limit(slow_body_server):
    c, err = failing(slow_body_server("/?bytes=100&interval=0.5"), LOW_SPEED_LIMIT=1000,
                     LOW_SPEED_TIME=1)
    check(c, err, E.E_OPERATION_TIMEDOUT)


def test_truncated_body(truncating_server):
    got = []
    c = Curl()
    c.setopt(c.URL, truncating_server("/"))
    c.setopt(c.WRITEFUNCTION, got.append)
    with pytest.raises(error) as ei:
        c.perform()
    assert sum(map(len, got)) == 500
    # 7.88: "... with 500 bytes remaining to read"; 8.x: "... with 500 bytes missing"
    assert re.search(r"500 bytes (remaining|missing)", ei.value.args[1]), ei.value.args[1]
    check(c, ei.value, E.E_PARTIAL_FILE)


def test_empty_reply(truncating_server):
    c, err = failing(truncating_server("/empty"))
    check(c, err, E.E_GOT_NOTHING)


def test_reset_mid_transfer(reset_server):
    got = []
    c = Curl()
    c.setopt(c.URL, reset_server("/"))
    c.setopt(c.WRITEFUNCTION, got.append)
    with pytest.raises(error) as ei:
        c.perform()
    assert c.getinfo(c.RESPONSE_CODE) == 200
    check(c, ei.value, E.E_RECV_ERROR)


def test_reset_before_headers(reset_server):
    c, err = failing(reset_server("/before-headers"))
    check(c, err, E.E_RECV_ERROR)


def test_garbage_reply(garbage_server):
    c, err = failing(garbage_server("/"))
    # Not HTTP: libcurl takes it for HTTP/0.9, which it refuses by default.
    check(c, err, E.E_UNSUPPORTED_PROTOCOL)


def test_http_error_status(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/status/404"))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.perform()                     # a 404 is a successful transfer ...
    assert c.getinfo(c.RESPONSE_CODE) == 404
    c.setopt(c.FAILONERROR, 1)      # ... unless asked otherwise
    with pytest.raises(error) as ei:
        c.perform()
    assert "404" in ei.value.args[1]
    check(c, ei.value, E.E_HTTP_RETURNED_ERROR)


def test_too_many_redirects(httpbin):
    c, err = failing(httpbin("/redirect/3"), FOLLOWLOCATION=1, MAXREDIRS=2)
    check(c, err, E.E_TOO_MANY_REDIRECTS)


# -- bad arguments ----------------------------------------------------------------------

def test_wrong_value_types_raise_type_error():
    c = Curl()
    cases = [
        (c.URL, 1), (c.URL, ["x"]), (c.VERBOSE, "1"), (c.VERBOSE, 1.0),
        (c.MAXFILESIZE_LARGE, "1"), (c.HTTPHEADER, "X: 1"), (c.HTTPHEADER, [1]),
        (c.WRITEFUNCTION, "f"), (c.WRITEDATA, 1), (c.POSTFIELDS, 1), (c.READDATA, "f"),
    ]
    for option, value in cases:
        with pytest.raises(TypeError):
            c.setopt(option, value)
    with pytest.raises(TypeError):
        c.setopt("URL", "http://x/")
    with pytest.raises(TypeError):
        c.setopt(c.URL)              # pylint: disable=no-value-for-parameter
    with pytest.raises(TypeError):
        c.getinfo(None)
    with pytest.raises(TypeError):
        c.pause(None)
    c.close()


@pytest.mark.parametrize("option", [99999, 19999, 10999, 20999, 30999, -1, 1 << 40])
def test_unknown_option(option):
    c = Curl()
    with pytest.raises(error) as ei:
        c.setopt(option, 1)
    assert ei.value.args[0] == E.E_UNKNOWN_OPTION
    assert "unknown option" in ei.value.args[1].lower() or "unknown" in ei.value.args[1]
    with pytest.raises(error) as ei:
        c.unsetopt(option)
    assert ei.value.args[0] == E.E_UNKNOWN_OPTION
    c.close()


def test_easy_strerror_and_multi_strerror():
    assert E.easy_strerror(E.E_OK) == "No error"
    # libcurl 8 spells it "Could not connect to server"
    assert E.easy_strerror(E.E_COULDNT_CONNECT) in ("Couldn't connect to server", "Could not connect to server")
    assert E.easy_strerror(E.E_UNKNOWN_OPTION).startswith("An unknown option was passed")
    assert E.multi_strerror(E.E_MULTI_OK) == "No error"
    assert E.multi_strerror(E.E_MULTI_BAD_HANDLE) == "Invalid multi handle"
    messages = {E.easy_strerror(code) for code in range(1, 40)}
    assert len(messages) > 30
    assert isinstance(E.easy_strerror(100000), str)   # unknown codes: libcurl's text
    with pytest.raises(TypeError):
        E.easy_strerror("7")


# -- misuse ----------------------------------------------------------------------------------

CLOSED_CALLS = {
    "setopt": lambda c: c.setopt(c.URL, "http://x/"),
    "setopt_string": lambda c: c.setopt_string(c.URL, "http://x/"),
    "unsetopt": lambda c: c.unsetopt(c.URL),
    "perform": lambda c: c.perform(),
    "perform_rb": lambda c: c.perform_rb(),
    "perform_rs": lambda c: c.perform_rs(),
    "getinfo": lambda c: c.getinfo(c.RESPONSE_CODE),
    "getinfo_raw": lambda c: c.getinfo_raw(c.RESPONSE_CODE),
    "reset": lambda c: c.reset(),
    "duphandle": lambda c: c.duphandle(),
    "pause": lambda c: c.pause(E.PAUSE_ALL),
    "unpause": lambda c: c.unpause(),
    "errstr": lambda c: c.errstr(),
    "errstr_raw": lambda c: c.errstr_raw(),
}


@pytest.mark.parametrize("method", sorted(CLOSED_CALLS))
def test_methods_on_closed_handle(method):
    c = Curl()
    c.close()
    with pytest.raises(error) as ei:
        CLOSED_CALLS[method](c)
    assert "closed" in ei.value.args[-1]
    assert "cannot invoke" in ei.value.args[-1]
    c.close()   # still fine


def test_perform_on_handle_in_multi(httpbin):
    m = CurlMulti()
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    m.add_handle(c)
    for call in (c.perform, c.perform_rb):
        with pytest.raises(error) as ei:
            call()
        assert "CurlMulti" in ei.value.args[1]
    m.remove_handle(c)
    c.perform()                    # fine once removed
    assert c.getinfo(c.RESPONSE_CODE) == 200
    c.close()
    m.close()


def test_perform_in_two_threads(slow_body_server):
    c = Curl()
    c.setopt(c.URL, slow_body_server("/?bytes=20&interval=0.05"))
    running = threading.Event()
    c.setopt(c.WRITEFUNCTION, lambda data: running.set())
    outcome = []
    t = threading.Thread(target=lambda: outcome.append(c.perform()))
    t.start()
    try:
        assert running.wait(10)
        with pytest.raises(error) as ei:
            c.perform()
        assert ei.value.args[1] == "cannot invoke perform() - perform() is currently running"
    finally:
        t.join(20)
    assert outcome == [None]
    c.close()


def test_many_threads_race_for_one_handle(httpbin):
    """Exactly one of the threads calling perform() at once runs it; the
    others get error, and nothing crashes."""
    c = Curl()
    c.setopt(c.URL, httpbin("/delay/0.3"))
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    barrier = threading.Barrier(6)
    results = []
    lock = threading.Lock()

    def run():
        barrier.wait()
        try:
            c.perform()
            r = "ok"
        except error as e:
            r = e.args[1]
        with lock:
            results.append(r)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 6
    assert results.count("ok") >= 1
    assert all(r == "ok" or "currently running" in r for r in results)
    c.close()


def test_callback_error_attribute_is_reset(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/get"))
    c.setopt(c.WRITEFUNCTION, lambda data: [][1])
    with pytest.raises(error):
        c.perform()
    assert isinstance(c.callback_error, IndexError)
    c.setopt(c.WRITEFUNCTION, lambda data: None)
    c.perform()
    assert c.callback_error is None
    c.close()
