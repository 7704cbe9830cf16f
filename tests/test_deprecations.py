"""DeprecationWarnings where pycurl 7.49 emits them, pointing at the caller's
line, and none for unsetting or for the successors."""

import warnings

import pytest

import curlmulti
from curlmulti import Curl, CurlMulti

E = curlmulti
HERE = __file__


def _one_warning(record, match):
    assert len(record) == 1, [str(w.message) for w in record]
    w = record[0]
    assert w.category is DeprecationWarning
    assert match in str(w.message)
    assert w.filename == HERE  # the line that called curlmulti, not curlmulti itself
    return w


@pytest.mark.parametrize("name, value, match", [
    ("HTTPPOST", [("field", "value")], "HTTPPOST is deprecated; use MIMEPOST"),
    ("PROGRESSFUNCTION", lambda *a: 0, "PROGRESSFUNCTION is deprecated; use XFERINFOFUNCTION"),
    ("IOCTLFUNCTION", lambda cmd: 0, "IOCTLFUNCTION is deprecated; use SEEKFUNCTION"),
    ("EGDSOCKET", "/nonexistent/egd", "setopt option is deprecated"),
    ("RANDOM_FILE", "/dev/urandom", "setopt option is deprecated"),
    ("KRBLEVEL", "clear", "setopt option is deprecated"),
    ("SOCKS5_GSSAPI_SERVICE", "rcmd", "setopt option is deprecated"),
    ("TLSAUTH_USERNAME", "user", "setopt option is deprecated"),
    ("PROXY_TLSAUTH_PASSWORD", "secret", "setopt option is deprecated"),
])
def test_setopt_warns(name, value, match):
    if not hasattr(E, name):
        pytest.skip("libcurl built against lacks " + name)
    c = Curl()
    option = getattr(E, name)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        c.setopt(option, value); line = _line()  # noqa: E702  (the warning's line)
    w = _one_warning(record, match)
    assert w.lineno == line
    # Unsetting does not warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c.unsetopt(option)
    # With warnings as errors, the option is refused, as in pycurl.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DeprecationWarning):
            c.setopt(option, value)
    c.close()


def _line():
    import sys
    return sys._getframe(1).f_lineno


def test_setopt_string_warns():
    c = Curl()
    with pytest.warns(DeprecationWarning, match="setopt option is deprecated: EGDSOCKET"):
        c.setopt_string(c.EGDSOCKET, "/nonexistent/egd")
    c.close()


@pytest.mark.parametrize("name", ["CONTENT_LENGTH_DOWNLOAD", "CONTENT_LENGTH_UPLOAD", "SIZE_DOWNLOAD",
                                  "SIZE_UPLOAD", "SPEED_DOWNLOAD", "SPEED_UPLOAD"])
@pytest.mark.parametrize("method", ["getinfo", "getinfo_raw"])
def test_getinfo_warns(httpbin, name, method):
    c = Curl()
    c.setopt(c.URL, httpbin("/bytes/10"))
    c.perform_rb()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        value = getattr(c, method)(getattr(E, name)); line = _line()  # noqa: E702
    assert _one_warning(record, "getinfo option is deprecated").lineno == line
    assert isinstance(value, float)
    if name == "SIZE_DOWNLOAD":
        assert value == 10.0
    c.close()


def test_socket_all_warns(httpbin):
    m = CurlMulti()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = m.socket_all(); line = _line()  # noqa: E702
    assert _one_warning(record, "socket_all is deprecated; use socket_action").lineno == line
    assert result == (0, 0)
    m.close()


@pytest.mark.parametrize("name, value", [
    ("XFERINFOFUNCTION", lambda *a: 0), ("SEEKFUNCTION", lambda o, w: 0), ("URL", "http://127.0.0.1/"),
    ("SIZE_DOWNLOAD_T", None), ("SPEED_DOWNLOAD_T", None), ("PROTOCOLS_STR", "http"),
])
def test_successors_do_not_warn(name, value):
    if not hasattr(E, name):
        pytest.skip("libcurl built against lacks " + name)
    c = Curl()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if value is None:
            c.getinfo(getattr(E, name))
        else:
            c.setopt(getattr(E, name), value)
    c.close()


@pytest.mark.parametrize("name, value", [("PROGRESSFUNCTION", 1), ("HTTPPOST", "x=1"), ("EGDSOCKET", 5)])
def test_wrong_type_gets_only_the_error(name, value):
    c = Curl()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError):
            c.setopt(getattr(E, name), value)
    c.close()


def test_warning_through_the_request_protocol_points_at_the_user():
    """configure_handle(handle) sets options through the library's
    ConfigHandle: the warning still names the user's line."""
    from curlmulti._request import ConfigHandle
    c = Curl()
    handle = ConfigHandle(c, None)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        handle.setopt(E.IOCTLFUNCTION, lambda cmd: 0); line = _line()  # noqa: E702
    assert _one_warning(record, "IOCTLFUNCTION is deprecated").lineno == line
    c.close()
