"""Side-by-side scenarios of CurlUrl: parts, getpart/setpart flags,
percent-encoding, errors and their codes, and CURLU driving a transfer
(see driver.py)."""

import io

PARTS = ("URL", "SCHEME", "USER", "PASSWORD", "OPTIONS", "HOST", "PORT", "PATH", "QUERY",
         "FRAGMENT", "ZONEID")


def scenario_parts(pycurl, o, servers):
    u = pycurl.CurlUrl("https://us%20er:pw@Example.COM:8443/a/b%20c/../d?x=1&y=%C3%A9#frag")
    for name in PARTS:
        o.call("get-" + name.lower(), getattr, u, name.lower())
    for name in PARTS:
        o.call("getpart-" + name.lower(), u.getpart, getattr(pycurl, "UPART_" + name))
    o.call("empty-constructor", lambda: pycurl.CurlUrl().url)
    o.call("ipv6-zoneid", lambda: pycurl.CurlUrl("http://[fe80::1%25eth0]:80/").zoneid)


def scenario_getpart_flags(pycurl, o, servers):
    u = pycurl.CurlUrl("http://example.com/p%20q?a=%41+b#f")
    for label, part, flags in (
            ("path-decoded", "PATH", "U_URLDECODE"),
            ("query-decoded", "QUERY", "U_URLDECODE"),
            ("port-default", "PORT", "U_DEFAULT_PORT"),
            ("port-none", "PORT", None),
            ("url-default-port", "URL", "U_DEFAULT_PORT"),
            ("url-no-default-port", "URL", "U_NO_DEFAULT_PORT"),
            ("punycode-host", "HOST", "U_PUNYCODE")):
        f = getattr(pycurl, flags) if flags else 0
        o.call(label, u.getpart, getattr(pycurl, "UPART_" + part), f)
    o.call("guess-scheme", lambda: pycurl.CurlUrl("ftp.example.com/x").url)
    g = pycurl.CurlUrl()
    o.call("set-guess-scheme", g.setpart, pycurl.UPART_URL, "ftp.example.com/x", pycurl.U_GUESS_SCHEME)
    o["guessed"] = g.url
    d = pycurl.CurlUrl()
    o.call("set-default-scheme", d.setpart, pycurl.UPART_URL, "example.com/x", pycurl.U_DEFAULT_SCHEME)
    o["defaulted"] = d.url


def scenario_setpart(pycurl, o, servers):
    u = pycurl.CurlUrl("http://example.com/")
    o.call("query-plain", u.setpart, pycurl.UPART_QUERY, "a=1")
    o.call("query-append", u.setpart, pycurl.UPART_QUERY, "b=2 3", pycurl.U_APPENDQUERY | pycurl.U_URLENCODE)
    o["after-append"] = u.url
    o.call("path-encode-ascii", u.setpart, pycurl.UPART_PATH, "/a b/c", pycurl.U_URLENCODE)
    o["path-ascii"] = u.path
    o.call("path-encode-bytes", u.setpart, pycurl.UPART_PATH, "/caf\u00e9/\u00fc".encode("utf-8"),
           pycurl.U_URLENCODE)
    o["path-bytes"] = u.path
    o.call("path-encode-latin1-bytes", u.setpart, pycurl.UPART_PATH, b"/\xe9\xff", pycurl.U_URLENCODE)
    o["path-latin1"] = u.path
    o.call("path-str-non-ascii", u.setpart, pycurl.UPART_PATH, "/caf\u00e9", pycurl.U_URLENCODE)
    o["path-str"] = u.path
    o.call("fragment-remove", u.setpart, pycurl.UPART_FRAGMENT, None)
    o.call("property-set-host", setattr, u, "host", "example.org")
    o.call("property-set-port", setattr, u, "port", "8080")
    o.call("property-del-query", setattr, u, "query", None)
    o["final"] = u.url
    o.call("set-url-relative", setattr, u, "url", "../other?z")
    o["relative"] = u.url
    o.call("int-value", u.setpart, pycurl.UPART_PATH, 5)
    o.call("int-property", setattr, u, "host", 5)


def scenario_errors(pycurl, o, servers):
    o.call("bad-url", pycurl.CurlUrl, "http://exa mple.com/")
    o.call("bad-port", pycurl.CurlUrl, "http://example.com:99999/")
    o.call("no-scheme", pycurl.CurlUrl, "example.com")
    u = pycurl.CurlUrl("http://example.com/")
    o.call("missing-user", u.getpart, pycurl.UPART_USER)
    o.call("missing-fragment", lambda: u.fragment)
    o.call("bad-part", u.getpart, 999)
    o.call("bad-set-port", u.setpart, pycurl.UPART_PORT, "abc")
    o.call("bad-scheme", u.setpart, pycurl.UPART_SCHEME, "1http")
    o.call("space", u.setpart, pycurl.UPART_URL, "http://a b/")
    o.call("space-allowed", u.setpart, pycurl.UPART_URL, "http://ab/x y", pycurl.U_ALLOW_SPACE)
    o["allowed"] = u.url
    empty = pycurl.CurlUrl()
    o.call("empty-url", lambda: empty.url)
    o.call("empty-host", empty.getpart, pycurl.UPART_HOST)
    o.call("disallow-user", empty.setpart, pycurl.UPART_URL, "http://u@h/", pycurl.U_DISALLOW_USER)
    o.call("unsupported-scheme", empty.setpart, pycurl.UPART_URL, "blah://h/")
    o.call("unsupported-scheme-allowed", empty.setpart, pycurl.UPART_URL, "blah://h/",
           pycurl.U_NON_SUPPORT_SCHEME)
    o.call("bad-flags-type", empty.getpart, pycurl.UPART_URL, "x")
    o.call("error-class", lambda: isinstance(_raised(pycurl, pycurl.CurlUrl, "http://[::1/"), pycurl.error))


def _raised(pycurl, func, *args):
    try:
        func(*args)
    except Exception as e:
        return e
    return None


def scenario_curlu_transfer(pycurl, o, servers):
    u = pycurl.CurlUrl(servers["fast"] + "/bytes/10")
    c = pycurl.Curl()
    o.call("setopt", c.setopt, pycurl.CURLU, u)
    buf = io.BytesIO()
    c.setopt(pycurl.WRITEFUNCTION, buf.write)
    o.call("perform", c.perform)
    o["len"] = len(buf.getvalue())
    o["effective"] = c.getinfo(pycurl.EFFECTIVE_URL)
    u.path = "/bytes/3"
    buf.seek(0)
    buf.truncate()
    o.call("perform-after-change", c.perform)
    o["len2"] = len(buf.getvalue())
    del u  # the Curl keeps it alive
    buf.seek(0)
    buf.truncate()
    o.call("perform-after-del", c.perform)
    o["len3"] = len(buf.getvalue())
    o.call("setopt-wrong-type", c.setopt, pycurl.CURLU, "http://x/")
    o.call("unset", c.setopt, pycurl.CURLU, None)
    o.call("unsetopt", c.unsetopt, pycurl.CURLU)
    c.close()
