"""Side-by-side scenarios of the easy handle: options of every type, what
the server saw, errors, pause, duphandle, reset (see driver.py)."""

import array
import io
import json
import re


def _curl(pycurl, url=None):
    c = pycurl.Curl()
    if url is not None:
        c.setopt(pycurl.URL, url)
    return c


def _seen(o, key, c):
    """Perform c (a request to httpbin's /anything or /headers) and record
    what the server saw."""
    buf = io.BytesIO()
    c.setopt(c.WRITEFUNCTION, buf.write)
    o.call(key + ".perform", c.perform)
    try:
        body = json.loads(buf.getvalue().decode("utf-8"))
    except ValueError:
        o[key + ".seen"] = {"not json": buf.getvalue()[:200]}
        return
    headers = {k: re.sub(r"boundary=\S+", "boundary=B", v) for k, v in body.get("headers", {}).items()
               if k not in ("Host", "Content-Length")}
    o[key + ".seen"] = {"method": body.get("method"), "headers": headers, "data": body.get("data"),
                        "form": body.get("form"), "args": body.get("args")}


def scenario_string_options(pycurl, o, servers):
    c = _curl(pycurl)
    for label, value in (("str", servers["httpbin"] + "/anything"), ("bytes", b"x"), ("int", 5),
                         ("float", 1.5), ("list", ["a"]), ("tuple", ("a",)), ("nul", "a\0b"),
                         ("non-ascii", "http://\u00e9"), ("bytearray", bytearray(b"x")), ("none", None)):
        o.call("URL=" + label, c.setopt, pycurl.URL, value)
    o.call("USERAGENT=none", c.setopt, pycurl.USERAGENT, None)
    o.call("setopt_string", c.setopt_string, pycurl.USERAGENT, "agent/1")
    o.call("setopt_string(VERBOSE)", c.setopt_string, pycurl.VERBOSE, "1")
    c.setopt(pycurl.URL, servers["httpbin"] + "/anything?q=1")
    c.setopt(pycurl.CUSTOMREQUEST, "PATCH")
    _seen(o, "custom", c)
    o.call("CUSTOMREQUEST=none", c.setopt, pycurl.CUSTOMREQUEST, None)
    _seen(o, "after-unset", c)
    c.close()


def scenario_long_options(pycurl, o, servers):
    c = _curl(pycurl)
    for label, value in (("int", 1), ("true", True), ("false", False), ("str", "1"), ("float", 1.0),
                         ("none", None), ("huge", 1 << 70), ("negative", -1), ("long-max", (1 << 63) - 1)):
        o.call("VERBOSE=" + label, c.setopt, pycurl.VERBOSE, value)
    o.call("VERBOSE=0", c.setopt, pycurl.VERBOSE, 0)
    o.call("TIMEOUT_MS=str", c.setopt, pycurl.TIMEOUT_MS, "10")
    o.call("HTTPAUTH_ANY", c.setopt, pycurl.HTTPAUTH, pycurl.HTTPAUTH_ANY)
    o.call("unsetopt(VERBOSE)", c.unsetopt, pycurl.VERBOSE)
    c.close()


def scenario_off_t_options(pycurl, o, servers):
    c = _curl(pycurl)
    for label, value in (("int", 10), ("str", "10"), ("float", 1.5), ("none", None), ("huge", 1 << 70),
                         ("negative", -5)):
        o.call("RESUME_FROM_LARGE=" + label, c.setopt, pycurl.RESUME_FROM_LARGE, value)
    c.setopt(pycurl.RESUME_FROM_LARGE, 0)
    c.setopt(pycurl.URL, servers["httpbin"] + "/anything")
    c.setopt(pycurl.MAX_RECV_SPEED_LARGE, 1 << 30)
    _seen(o, "get", c)
    c.close()


def scenario_list_options(pycurl, o, servers):
    c = _curl(pycurl)
    for label, value in (("list", ["X-A: 1"]), ("tuple", ("X-A: 1",)), ("str", "X-A: 1"), ("int", 5),
                         ("item-int", [5]), ("item-bytes", [b"X-A: 1"]), ("empty", []), ("none", None)):
        o.call("HTTPHEADER=" + label, c.setopt, pycurl.HTTPHEADER, value)
    c.setopt(pycurl.URL, servers["httpbin"] + "/anything")
    c.setopt(pycurl.HTTPHEADER, ["X-One: 1", "X-Two: two", "Accept:"])
    _seen(o, "headers", c)
    o.call("unsetopt(HTTPHEADER)", c.unsetopt, pycurl.HTTPHEADER)
    _seen(o, "unset", c)
    c.close()


def scenario_postfields(pycurl, o, servers):
    c = _curl(pycurl, servers["httpbin"] + "/anything")
    for label, value in (("int", 5), ("none", None), ("list", [1])):
        o.call("POSTFIELDS=" + label, c.setopt, pycurl.POSTFIELDS, value)
    c.setopt(pycurl.POSTFIELDS, "a=1&b=%C3%A9")
    _seen(o, "str", c)
    c.setopt(pycurl.POSTFIELDS, b"raw\0bytes")
    c.setopt(pycurl.HTTPHEADER, ["Content-Type: application/octet-stream"])
    _seen(o, "bytes-with-nul", c)
    c.close()


def scenario_blob_options(pycurl, o, servers):
    with open(servers["ca_file"], "rb") as f:
        pem = f.read()
    c = _curl(pycurl)
    values = (("bytes", pem), ("str", pem.decode("ascii")), ("bytearray", bytearray(pem)),
              ("memoryview", memoryview(pem)), ("array-B", array.array("B", pem)),
              ("array-i", array.array("i", [1, 2])), ("non-contiguous", memoryview(pem)[::2]),
              ("int", 5), ("bool", True), ("float", 1.5), ("list", [1]), ("non-ascii", "\u00e9"),
              ("none", None))
    for label, value in values:
        o.call("SSLCERT_BLOB=" + label, c.setopt, pycurl.SSLCERT_BLOB, value)
    for label, value in values[:5]:
        c.reset()
        c.setopt(pycurl.URL, servers["tls"] + "/ok/5")
        c.setopt(pycurl.WRITEFUNCTION, lambda data: None)
        o.call("CAINFO_BLOB=" + label, c.setopt, pycurl.CAINFO_BLOB, value)
        o.call("tls-with-" + label, c.perform)
    c.close()


def scenario_file_options(pycurl, o, servers):
    c = _curl(pycurl, servers["fast"] + "/bytes/10")
    buf = io.BytesIO()
    o.call("WRITEDATA=bytesio", c.setopt, pycurl.WRITEDATA, buf)
    o.call("perform", c.perform)
    o["body"] = buf.getvalue()
    o.call("WRITEDATA=int", c.setopt, pycurl.WRITEDATA, 5)
    o.call("WRITEDATA=none", c.setopt, pycurl.WRITEDATA, None)
    o.call("WRITEHEADER=none", c.setopt, pycurl.WRITEHEADER, None)
    o.call("READDATA=none", c.setopt, pycurl.READDATA, None)
    o.call("WRITEFUNCTION=int", c.setopt, pycurl.WRITEFUNCTION, 5)
    o.call("WRITEFUNCTION=none", c.setopt, pycurl.WRITEFUNCTION, None)
    c.close()


def scenario_unset_by_none(pycurl, o, servers):
    """setopt(option, None) is unsetopt(option): which options each accepts."""
    c = _curl(pycurl)
    names = ("PROXY", "USERPWD", "RANGE", "COOKIE", "COOKIEFILE", "COOKIEJAR", "ENCODING",
             "SSH_KNOWNHOSTS", "REFERER", "INFILESIZE", "OPT_CERTINFO", "PROXYHEADER", "RESOLVE",
             "SHARE", "HTTPPOST", "CAINFO_BLOB", "DEBUGFUNCTION", "SEEKFUNCTION", "XFERINFOFUNCTION")
    for name in names:
        option = getattr(pycurl, name, None)
        if option is None:
            o[name] = "absent"
            continue
        o.call("setopt(%s,None)" % name, c.setopt, option, None)
    c.close()


def scenario_bad_option_numbers(pycurl, o, servers):
    c = _curl(pycurl)
    o.call("setopt(999999)", c.setopt, 999999, 1)
    o.call("setopt(str)", c.setopt, "URL", 1)
    o.call("getinfo(str)", c.getinfo, "x")
    o.call("getinfo(999999)", c.getinfo, 999999)
    c.close()


def scenario_default_user_agent(pycurl, o, servers):
    c = _curl(pycurl, servers["httpbin"] + "/headers")
    _seen(o, "fresh", c)
    c.setopt(pycurl.USERAGENT, "mine/1")
    dup = c.duphandle()
    _seen(o, "dup", dup)
    c.reset()
    c.setopt(pycurl.URL, servers["httpbin"] + "/headers")
    _seen(o, "reset", c)
    dup.close()
    c.close()


def scenario_perform_variants(pycurl, o, servers):
    c = _curl(pycurl, servers["fast"] + "/bytes/300")
    o.call("perform_rb", c.perform_rb)
    o.call("perform_rs-not-utf8", c.perform_rs)
    c.setopt(pycurl.URL, servers["httpbin"] + "/encoding/utf8")
    o.call("perform_rs-utf8-type", lambda: type(c.perform_rs()).__name__)
    o.call("code", c.getinfo, pycurl.RESPONSE_CODE)
    o.call("content-type", c.getinfo, pycurl.CONTENT_TYPE)
    o.call("effective-url", c.getinfo, pycurl.EFFECTIVE_URL)
    o.call("effective-url-raw", c.getinfo_raw, pycurl.EFFECTIVE_URL)
    o.call("time-type", lambda: type(c.getinfo(pycurl.TOTAL_TIME)).__name__)
    o.call("size-type", lambda: type(c.getinfo(pycurl.SIZE_DOWNLOAD_T)).__name__)
    c.close()


def scenario_transfer_errors(pycurl, o, servers):
    c = _curl(pycurl, "http://127.0.0.1:1/")
    o.call("refused", c.perform)
    o.call("errstr", c.errstr)
    o.call("errstr_raw", c.errstr_raw)
    c.setopt(pycurl.URL, "nope://x")
    o.call("unsupported-protocol", c.perform)
    c.setopt(pycurl.URL, servers["fast"] + "/status/404")
    c.setopt(pycurl.FAILONERROR, 1)
    o.call("failonerror", c.perform)
    o.call("code", c.getinfo, pycurl.RESPONSE_CODE)
    c.close()


def scenario_pause(pycurl, o, servers):
    c = _curl(pycurl)
    o.call("pause()-idle", c.pause)
    o.call("unpause()-idle", c.unpause)
    o.call("pause(str)", c.pause, "x")
    size = 100000
    got = []

    def write(data):
        got.append(len(data))
        if len(got) == 1:
            o.call("pause()-in-callback", c.pause)

    c.setopt(pycurl.URL, servers["fast"] + "/bytes/%d" % size)
    c.setopt(pycurl.WRITEFUNCTION, write)
    m = pycurl.CurlMulti()
    m.add_handle(c)
    while not got:
        m.perform()
        m.select(1.0)
    for _ in range(3):
        m.perform()
        m.select(0.01)
    o["chunks-while-paused"] = len(got)
    o.call("unpause()-attached", c.unpause)
    running = 1
    while running:
        _, running = m.perform()
        if running:
            m.select(1.0)
    o["received"] = sum(got)
    m.remove_handle(c)
    m.close()
    c.close()


def scenario_duphandle(pycurl, o, servers):
    class MyCurl(pycurl.Curl):
        pass

    c = MyCurl()
    c.tag = "first"
    c.shared = []
    c.setopt(pycurl.URL, servers["httpbin"] + "/anything")
    c.setopt(pycurl.HTTPHEADER, ["X-Dup: 1"])
    dup = c.duphandle()
    o["type"] = type(dup).__name__
    o.call("attrs", lambda: (dup.tag, dup.shared is c.shared))
    _seen(o, "dup", dup)
    dup.close()
    c.close()
    o.call("closed", c.duphandle)


def scenario_closed_curl(pycurl, o, servers):
    c = _curl(pycurl)
    c.close()
    o["closed"] = c.closed
    o.call("close-again", c.close)
    for method, args in (("setopt", (pycurl.URL, "x")), ("unsetopt", (pycurl.VERBOSE,)),
                         ("getinfo", (pycurl.RESPONSE_CODE,)), ("perform", ()), ("perform_rb", ()),
                         ("errstr", ()), ("reset", ()), ("pause", (0,)), ("multi", ()), ("share", ())):
        o.call(method, getattr(c, method), *args)


def scenario_reset(pycurl, o, servers):
    c = _curl(pycurl, servers["httpbin"] + "/anything")
    c.setopt(pycurl.HTTPHEADER, ["X-Before: 1"])
    c.setopt(pycurl.CUSTOMREQUEST, "PUT")
    o.call("reset", c.reset)
    c.setopt(pycurl.URL, servers["httpbin"] + "/anything")
    _seen(o, "after", c)
    c.close()


def scenario_share_option(pycurl, o, servers):
    c = _curl(pycurl)
    s = pycurl.CurlShare()
    o.call("SH_SHARE", s.setopt, pycurl.SH_SHARE, pycurl.LOCK_DATA_COOKIE)
    o.call("SHARE=share", c.setopt, pycurl.SHARE, s)
    o.call("share()", lambda: c.share() is s)
    o.call("SHARE=int", c.setopt, pycurl.SHARE, 5)
    o.call("SHARE=none", c.setopt, pycurl.SHARE, None)
    o.call("share()-after", c.share)
    s.close()
    o.call("SHARE=closed-share", c.setopt, pycurl.SHARE, s)
    c.close()



def scenario_share_detach_on_close(pycurl, o, servers):
    o.call("positional", pycurl.CurlShare, False)
    for detach in (True, False):
        key = "detach_on_close=%s" % detach
        s = pycurl.CurlShare(detach_on_close=detach)
        c = _curl(pycurl)
        c.setopt(pycurl.SHARE, s)
        o.call(key + ".close-in-use", s.close)
        o.call(key + ".state", lambda: (s.closed, c.share() is s))
        c.close()
        o.call(key + ".close-after", s.close)
        o[key + ".closed"] = s.closed
