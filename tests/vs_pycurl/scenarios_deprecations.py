"""Side-by-side scenarios of the DeprecationWarnings: which calls warn,
the category, the text, where it points, and what warnings-as-errors does
(see driver.py)."""

import warnings

SETOPT = (("HTTPPOST", [("field", "value")]), ("PROGRESSFUNCTION", lambda *a: 0),
          ("IOCTLFUNCTION", lambda cmd: 0), ("EGDSOCKET", "/nonexistent/egd"),
          ("RANDOM_FILE", "/dev/urandom"), ("KRBLEVEL", "clear"), ("SOCKS5_GSSAPI_SERVICE", "rcmd"),
          ("TLSAUTH_TYPE", "SRP"), ("TLSAUTH_USERNAME", "user"), ("TLSAUTH_PASSWORD", "secret"),
          ("PROXY_TLSAUTH_TYPE", "SRP"), ("PROXY_TLSAUTH_USERNAME", "user"),
          ("PROXY_TLSAUTH_PASSWORD", "secret"))
# Successors and neighbours that must not warn.
QUIET = (("XFERINFOFUNCTION", lambda *a: 0), ("SEEKFUNCTION", lambda *a: 0),
         ("USERAGENT", "ua"), ("NOPROGRESS", 0))
GETINFO = ("CONTENT_LENGTH_DOWNLOAD", "CONTENT_LENGTH_UPLOAD", "SIZE_DOWNLOAD", "SIZE_UPLOAD",
           "SPEED_DOWNLOAD", "SPEED_UPLOAD", "CONTENT_LENGTH_DOWNLOAD_T", "SIZE_DOWNLOAD_T",
           "SPEED_DOWNLOAD_T", "RESPONSE_CODE")


def _warned(o, key, func, *args):
    """Record the warnings func(*args) issues: category, text, and whether
    they point at this file (the caller's line)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            func(*args)
            outcome = "ok"
        except Exception as exc:
            outcome = type(exc).__name__
    o[key] = {"outcome": outcome, "categories": [w.category.__name__ for w in caught],
              "at-caller": [w.filename == __file__ for w in caught]}
    o[key + ".message"] = [str(w.message) for w in caught]


def _as_error(o, key, func, *args):
    """Record what func(*args) does with DeprecationWarning as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            o[key] = {"ok": func(*args)}
        except Exception as exc:
            o[key] = {"raise": type(exc).__name__, "~message": str(exc)}


def scenario_setopt(pycurl, o, servers):
    c = pycurl.Curl()
    for name, value in SETOPT + QUIET:
        if hasattr(pycurl, name):
            _warned(o, name, c.setopt, getattr(pycurl, name), value)
            _warned(o, name + ".unset", c.unsetopt, getattr(pycurl, name))
        else:
            o[name] = "absent"
    _warned(o, "HTTPPOST.wrong-type", c.setopt, pycurl.HTTPPOST, 5)
    _warned(o, "EGDSOCKET.none", c.setopt, pycurl.EGDSOCKET, None)
    c.close()


def scenario_getinfo(pycurl, o, servers):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, servers["fast"] + "/bytes/10")
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    c.perform()
    for name in GETINFO:
        _warned(o, name, c.getinfo, getattr(pycurl, name))
    _warned(o, "getinfo_raw", c.getinfo_raw, pycurl.SIZE_DOWNLOAD)
    c.close()


def scenario_multi(pycurl, o, servers):
    m = pycurl.CurlMulti()
    _warned(o, "socket_all", m.socket_all)
    _warned(o, "socket_action", m.socket_action, pycurl.SOCKET_TIMEOUT, 0)
    m.close()


def scenario_as_errors(pycurl, o, servers):
    c = pycurl.Curl()
    for name, value in SETOPT[:4]:
        _as_error(o, name, c.setopt, getattr(pycurl, name), value)
    c.setopt(pycurl.URL, servers["fast"] + "/bytes/10")
    c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
    _as_error(o, "perform", c.perform)
    _as_error(o, "getinfo", c.getinfo, pycurl.SIZE_DOWNLOAD)
    _as_error(o, "getinfo-after", c.getinfo, pycurl.SIZE_DOWNLOAD_T)
    m = pycurl.CurlMulti()
    _as_error(o, "socket_all", m.socket_all)
    m.close()
    c.close()
