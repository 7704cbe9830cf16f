"""A crawler's toolkit on ``AsyncCurlMulti``: ``fetch()``, ``Session``,
``as_completed()``/``map()`` over millions of URLs with limits, retries,
politeness, cookies and failures as values.

Ten lines::

    import asyncio
    from curlmulti.crawl import Session

    async def main(urls):
        async with Session(limit=100, per_host=10, retries=2) as session:
            async for r in session.as_completed(urls):
                print(r.status if r.ok else r.error, r.url, len(r.content))

    asyncio.run(main(["https://example.com/", "https://example.org/"]))

How it runs (pure Python over the public API of ``AsyncCurlMulti``,
``Curl``, ``CurlShare`` and ``Buffer``; no second event loop integration):

1. A request goes into the queue of its host (scheme, host and port of its
   URL as libcurl's URL API normalises it, ``normalise_url()``).  Hosts that may start a transfer (fewer than
   ``per_host`` running, their politeness delay passed) wait in one
   round-robin ``ready`` queue; a transfer starts while fewer than
   ``limit`` run.  So a slow host holds at most ``per_host`` slots and
   the others keep the rest.  libcurl is told the same limits
   (``M_MAX_HOST_CONNECTIONS``, ``M_MAX_TOTAL_CONNECTIONS``); an https
   transfer waits for its host's first connection to say whether it
   multiplexes (``PIPEWAIT``), so the requests to an HTTP/2 host share one.
2. Each running transfer uses a ``Curl`` from a pool (at most ``limit``),
   its constant options set once: the body goes into a ``Buffer`` from C,
   the header lines into a list, so a transfer costs no Python call per
   body chunk.  The future of ``AsyncCurlMulti.add_handle()`` gets a done
   callback: no task per request.
3. ``as_completed()`` reads its input lazily: it holds at most ``buffer``
   requests that are read but not yet yielded (queued, running, waiting
   for a retry or done), so a million URLs cost the memory of ``buffer``.
4. A finished transfer that ``transient()`` calls transient is retried
   after an exponential backoff with full jitter (at least the server's
   ``Retry-After``), up to ``retries`` times; then, or at once for
   anything else, its ``Response`` is delivered: exactly one per request.
"""

import asyncio
import collections
import email.utils
import functools
import heapq
import json as _json
import random
import re
import threading
import time
from typing import (Any, AsyncGenerator, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple, Union, cast)

from ._async import AsyncCurlMulti
from ._constants import CONSTANTS
from ._easy import Curl
from ._errors import error
from ._share import CurlShare
from ._sinks import Buffer, _Sink
from ._stream import header_pairs
from ._url import CurlUrl
from ._version import __version__

__all__ = ["fetch", "Session", "Request", "Response", "Headers", "Timings", "Redirect", "FetchError",
           "transient", "TRANSIENT_CODES", "TRANSIENT_STATUSES", "normalise_url"]

_C = CONSTANTS
USER_AGENT = "curlmulti/%s" % __version__

# -- what is worth retrying -------------------------------------------------------

#: libcurl codes of failures that may go away on their own: the peer refused
#: or reset the connection, sent nothing or too little, or was too slow.
TRANSIENT_CODES = frozenset(_C[name] for name in (
    "E_COULDNT_CONNECT",      # 7: refused (the server restarts, its backlog is full)
    "E_OPERATION_TIMEDOUT",   # 28: connect or total timeout
    "E_SEND_ERROR",           # 55: reset while sending
    "E_RECV_ERROR",           # 56: reset while receiving
    "E_GOT_NOTHING",          # 52: closed without a response
    "E_PARTIAL_FILE",         # 18: closed before the announced length
    "E_HTTP2",                # 16: the HTTP/2 framing layer failed
    "E_HTTP2_STREAM",         # 92: the server reset the stream
) if name in _C)

#: HTTP statuses that ask the client to come back later.
TRANSIENT_STATUSES = frozenset([408, 429, 502, 503, 504])


def transient(code: int = 0, status: Optional[int] = None) -> bool:
    """Whether a finished transfer is worth retrying: the one classifier.

    ``code`` is libcurl's CURLcode (0 when the transfer itself worked) and
    ``status`` the final HTTP status.  Transient are the codes in
    ``TRANSIENT_CODES`` (connection refused or reset, nothing or too little
    received, timeouts, HTTP/2 stream errors) and, for a transfer that
    worked, the statuses in ``TRANSIENT_STATUSES`` (408, 429, 502, 503,
    504).  Not transient: a name that does not resolve, TLS and certificate
    failures, malformed URLs, too many redirects, a sink that could not
    write, every other status."""
    if code:
        return code in TRANSIENT_CODES
    return status in TRANSIENT_STATUSES


class FetchError(error):
    """A request that did not complete: ``code`` (libcurl's CURLcode, or 0),
    ``message``, ``transient`` (see ``transient()``) and ``url``.  As
    ``curlmulti.error``, ``args`` is ``(code, message)``."""

    def __init__(self, code: int, message: str, url: Optional[str] = None,
                 is_transient: Optional[bool] = None) -> None:
        error.__init__(self, code, message)
        self.code = code
        self.message = message
        self.url = url
        self.transient = transient(code) if is_transient is None else is_transient

    def __str__(self) -> str:
        return "(%d) %s" % (self.code, self.message)


# -- URLs --------------------------------------------------------------------------

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# ASCII characters that libcurl's URL API leaves as they are but that may not
# appear in a URL: escaped before parsing (a space so that it becomes %20 in
# the query too, where libcurl would write "+").  In the host they still make
# the URL invalid.
_UNSAFE = re.compile(r'[ "<>\\^`{|}]')
_ESCAPES = {c: "%%%02X" % ord(c) for c in ' "<>\\^`{|}'}
_UPART_URL = _C["UPART_URL"]
_UPART_HOST = _C["UPART_HOST"]
_U_PUNYCODE = _C.get("U_PUNYCODE", 0)   # libcurl 7.88+
_U_URLDECODE = _C["U_URLDECODE"]
_U_URLENCODE = _C["U_URLENCODE"]
_USERINFO = (_C["UPART_USER"], _C["UPART_PASSWORD"], _C["UPART_OPTIONS"])
#: How a URL from the wild is parsed: non-ASCII percent-encoded, and any
#: scheme accepted (the transfer fails later for one libcurl cannot fetch).
_PARSE_FLAGS = _U_URLENCODE | _C["U_NON_SUPPORT_SCHEME"]
#: How a Location is resolved: as libcurl does when it follows a redirect.
_REDIRECT_FLAGS = _U_URLENCODE | _C.get("U_ALLOW_SPACE", 0)
_urls = threading.local()


def _curl_url() -> CurlUrl:
    """This thread's CurlUrl, reused: setting a whole absolute URL replaces
    every part of the previous one."""
    u: Optional[CurlUrl] = getattr(_urls, "u", None)
    if u is None:
        u = _urls.u = CurlUrl()
    return u


def normalise_url(url: Union[str, bytes]) -> str:
    """A URL from the wild made fit for libcurl, or ValueError.

    libcurl's URL API (``CurlUrl``, ``U_URLENCODE``) parses it: a scheme and a
    host are required, the scheme is lower-cased, the port checked and
    written as a plain number, an IPv4 address in any of its forms written
    as four decimal numbers, ``.`` and ``..`` path segments removed, an
    empty path made ``/``, non-ASCII characters percent-encoded as UTF-8
    (escapes already there are kept), and a non-ASCII host converted to
    IDNA (punycode).  Before that, white space around the URL is dropped, a
    missing scheme becomes ``http://``, and the characters libcurl would
    leave as they are but that may not appear in a URL (space,
    ``"<>\\^`{|}``, a ``%`` that starts no escape) are percent-encoded;
    after it, the host is lower-cased and the fragment dropped (it is
    never sent)."""
    return _parse(url)[0]


def _parse(url: Union[str, bytes]) -> Tuple[str, "_HostKey"]:
    """(normalised URL, host key), or ValueError: see normalise_url()."""
    if isinstance(url, bytes):
        url = url.decode("utf-8", "surrogateescape")
    if not isinstance(url, str):
        raise TypeError("a URL is a str, not %s" % type(url).__name__)
    text = url.strip()
    if not text:
        raise ValueError("empty URL")
    if not _SCHEME.match(text):
        text = "http://" + text
    if "#" in text:
        text = text.partition("#")[0]  # the fragment is never sent
    if "%" in text:
        text = _BAD_PERCENT.sub("%25", text)
    if _UNSAFE.search(text) is not None:
        text = _UNSAFE.sub(_escape, text)
    u = _curl_url()
    try:
        u.setpart(_UPART_URL, text.encode("utf-8", "surrogateescape"), _PARSE_FLAGS)
        host = u.getpart(_UPART_HOST)
        if not host:
            raise ValueError("no host in URL %r" % (url,))
        normal = cast(str, u.getpart(_UPART_URL))
        if not normal.isascii():
            normal = _encode_userinfo(u)
        if not host.isascii():
            new_host = _idna(u, host, url)
        elif host[0] == "[":
            new_host = host  # an IPv6 address, in the form libcurl writes
        else:
            new_host = host.lower()
        # libcurl's URL is scheme://[userinfo@]host[:port]/...: the host goes
        # in lower-case (or punycode), the scheme and the port come out.
        start = normal.index("://") + 3
        at = normal.rfind("@", start, _authority_end(normal, start)) + 1 or start
        if new_host != host:
            if normal.startswith(host, at):
                normal = normal[:at] + new_host + normal[at + len(host):]
            else:
                u.setpart(_UPART_HOST, new_host)
                normal = cast(str, u.getpart(_UPART_URL))
                at = normal.rfind("@", start, _authority_end(normal, start)) + 1 or start
    except error as exc:
        raise ValueError("bad URL %r: %s" % (url, exc.args[1] if len(exc.args) > 1 else exc)) from None
    if not normal.isascii():
        raise ValueError("bad URL %r: non-ASCII characters left after encoding" % (url,))
    end = _authority_end(normal, at)
    colon = normal.rfind(":", at, end)
    port = int(normal[colon + 1:end]) if colon > normal.rfind("]", at, end) else None
    return normal, (normal[:start - 3], new_host, port)


def _authority_end(url: str, start: int) -> int:
    end = url.find("/", start)
    return end if end >= 0 else len(url)


def _escape(m: "re.Match[str]") -> str:
    return _ESCAPES[m.group()]


def _encode_userinfo(u: CurlUrl) -> str:
    """The URL of ``u`` once libcurl has percent-encoded the non-ASCII user
    name, password or options (it encodes the path and the query only when
    it parses a whole URL)."""
    for part in _USERINFO:
        value = u.getpart(part, _U_URLDECODE)
        if value is not None and not value.isascii():
            u.setpart(part, value.encode("utf-8", "surrogateescape"), _U_URLENCODE)
    return cast(str, u.getpart(_UPART_URL))


def _idna(u: CurlUrl, host: str, url: str) -> str:
    """The ASCII (punycode) form of the non-ASCII host of ``u``: libcurl's
    (libidn2, IDNA 2008) when it has IDN support, else Python's codec."""
    if _U_PUNYCODE:
        try:
            return cast(str, u.getpart(_UPART_HOST, _U_PUNYCODE)).lower()
        except error:
            pass  # this libcurl has no IDN support, or refuses this name
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError("bad host name in URL %r" % (url,)) from None


def _resolve(base: str, location: bytes) -> str:
    """``location`` (the raw value of a Location header) made absolute
    against ``base``, as libcurl resolves it when it follows the redirect;
    decoded as latin-1 if it does not parse."""
    u = _curl_url()
    try:
        u.setpart(_UPART_URL, base.encode("ascii"), _PARSE_FLAGS)
        u.setpart(_UPART_URL, location, _REDIRECT_FLAGS)
        return cast(str, u.getpart(_UPART_URL))
    except (error, ValueError, UnicodeError):
        return location.decode("latin-1")


_HostKey = Tuple[str, Optional[str], Optional[int]]


def _host_key(url: str) -> _HostKey:
    """(scheme, host, port) of a normalised URL: the unit of per-host limits."""
    return _parse(url)[1]


# A URL that libcurl's URL API and normalise_url() return unchanged, the
# common case, recognised without a call into libcurl: lower-case http(s)
# scheme and host, a port without leading zero, a path and query of
# characters that need no escaping.  Checked apart: the host is a name whose
# last label starts with a letter or an IPv4 address in its usual form
# (libcurl rewrites 127.1, 0x7f.0.0.1...), no dot segment, no empty query,
# no bad escape.
_PLAIN_URL = re.compile(r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([1-9][0-9]{0,4}))?"
                        r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)\Z")
_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                   r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")
_PLAIN_HOSTS: Dict[str, bool] = {}  # host -> libcurl leaves it as it is (the first 10,000 seen)


def _prepare(url: Union[str, bytes]) -> Tuple[str, _HostKey]:
    """(normalised URL, host key); the common case without libcurl."""
    if type(url) is str:
        m = _PLAIN_URL.match(url)
        if m is not None and "/." not in url and url[-1] != "?" and (
                "%" not in url or _BAD_PERCENT.search(url) is None):
            host = m.group(2)
            plain = _PLAIN_HOSTS.get(host)
            if plain is None:
                plain = host[host.rfind(".") + 1].isalpha() or _IPV4.fullmatch(host) is not None
                if len(_PLAIN_HOSTS) < 10000:
                    _PLAIN_HOSTS[host] = plain
            if plain:
                port = m.group(3)
                if port is None:
                    return url, (m.group(1), host, None)
                if int(port) <= 65535:
                    return url, (m.group(1), host, int(port))
    return _parse(url)


# -- responses ---------------------------------------------------------------------


class Headers(object):
    """The headers of one response: a case-insensitive multi-map, in the
    order they arrived.  ``h["content-type"]`` is the first value (KeyError
    if absent), ``h.get(name)``, ``h.get_all(name)`` every value,
    ``h.items()`` the (name, value) pairs as sent."""

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[Tuple[str, str]] = ()) -> None:
        self._items = list(items)
        self._index: Optional[Dict[str, List[str]]] = None

    def _map(self) -> Dict[str, List[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._items:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    def __getitem__(self, name: str) -> str:
        return self._map()[name.lower()][0]

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        values = self._map().get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> List[str]:
        return list(self._map().get(name.lower(), ()))

    getall = get_all

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map()

    def items(self) -> List[Tuple[str, str]]:
        return list(self._items)

    def keys(self) -> List[str]:
        return [name for name, _ in self._items]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        return NotImplemented

    def __repr__(self) -> str:
        return "Headers(%r)" % (self._items,)


class Timings(collections.namedtuple("Timings", "namelookup connect appconnect pretransfer starttransfer "
                                                "total redirect")):
    """Seconds from the start of the transfer (libcurl's ``*_TIME`` infos):
    name resolved, connected, TLS done, about to send, first byte received,
    all done; ``redirect``: the time spent in followed redirects."""

    __slots__ = ()


class Redirect(collections.namedtuple("Redirect", "status url location")):
    """One followed redirect: its ``status``, the ``url`` that answered it
    and its ``location`` (made absolute)."""

    __slots__ = ()


class Request(object):
    """One request for ``Session.fetch``/``as_completed``/``map``.

    ``url``; ``method`` (default GET); ``headers`` (dict or pairs, added to
    the session's); ``data`` (bytes body); ``sink``: where the body goes
    instead of ``Response.content``: a ``Buffer``/``FileSink``, an object
    with ``write()``, or a callable that returns one and is called at each
    attempt (so a retry can start the file again); ``meta``: anything, given
    back as ``Response.request.meta``."""

    __slots__ = ("url", "method", "headers", "data", "sink", "meta")

    def __init__(self, url: str, method: str = "GET", headers: Any = None, data: Optional[bytes] = None,
                 sink: Any = None, meta: Any = None) -> None:
        self.url = url
        self.method = method.upper()
        self.headers = headers
        self.data = data
        self.sink = sink
        self.meta = meta

    def __repr__(self) -> str:
        return "<Request %s %s>" % (self.method, self.url)


class Response(object):
    """The outcome of one request, failed or not.

    ``request`` (the Request; ``request.url`` as given), ``url`` (the
    normalised URL asked for), ``effective_url`` (after redirects),
    ``status`` (int, 0 if no response came), ``reason``, ``http_version``
    (``"1.1"``, ``"2"``...), ``headers`` (``Headers`` of the final response
    only), ``history`` (list of ``Redirect``), ``timings`` (``Timings`` or
    None), ``content`` (the body as bytes; ``b""`` when it went to a sink),
    ``size`` (body bytes received), ``attempts`` and ``error`` (a
    ``FetchError`` when the transfer failed, else None).  ``ok``: no error
    and a 2xx status.  The header lines are parsed when first asked for."""

    __slots__ = ("request", "url", "effective_url", "status", "timings", "content", "size", "attempts", "error",
                 "_lines", "_head")

    def __init__(self, request: Request, url: str, status: int = 0, lines: Sequence[bytes] = (),
                 effective_url: Optional[str] = None, timings: Optional[Timings] = None, content: bytes = b"",
                 size: int = 0, attempts: int = 1, error: Optional[FetchError] = None) -> None:
        self.request = request
        self.url = url
        self.effective_url = effective_url if effective_url is not None else url
        self.status = status
        self.timings = timings
        self.content = content
        self.size = size
        self.attempts = attempts
        self.error = error
        self._lines = lines   # every header line received, redirects included
        # (reason, http_version, Headers, history), parsed on demand
        self._head: Optional[Tuple[str, str, Headers, List[Redirect]]] = None

    def _parsed(self) -> Tuple[str, str, Headers, List[Redirect]]:
        head = self._head
        if head is None:
            status, reason, version, headers, history = _head_and_history(self._lines, self.url)
            head = self._head = (reason, version, headers, history)
            self._lines = ()
        return head

    @property
    def reason(self) -> str:
        return self._parsed()[0]

    @property
    def http_version(self) -> str:
        return self._parsed()[1]

    @property
    def headers(self) -> Headers:
        return self._parsed()[2]

    @property
    def history(self) -> List[Redirect]:
        return self._parsed()[3]

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """Whether retrying could help (see ``transient()``)."""
        if self.error is not None:
            return self.error.transient
        return transient(0, self.status)

    @property
    def charset(self) -> Optional[str]:
        ctype = self.headers.get("content-type", "") or ""
        for param in ctype.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                return value.strip().strip("\"'") or None
        return None

    def text(self, encoding: Optional[str] = None, errors: str = "replace") -> str:
        """The body decoded with ``encoding``, else the charset of
        Content-Type, else UTF-8 (undecodable bytes replaced)."""
        enc = encoding or self.charset or "utf-8"
        try:
            return self.content.decode(enc, errors)
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors)

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON (``json.loads``)."""
        return _json.loads(self.content, **kwargs)

    def raise_for_status(self) -> "Response":
        """Raise the FetchError if the transfer failed, FetchError(0, ...)
        for a status that is not 2xx; else return self."""
        if self.error is not None:
            raise self.error
        if not 200 <= self.status < 300:
            raise FetchError(0, "HTTP %d %s" % (self.status, self.reason), self.url,
                             transient(0, self.status))
        return self

    def __repr__(self) -> str:
        if self.error is not None:
            return "<Response %s failed: %s>" % (self.url, self.error)
        return "<Response %d %s, %d bytes>" % (self.status, self.effective_url, self.size)


def _parse_blocks(lines: Iterable[bytes]) -> List[List[bytes]]:
    """Split raw header lines into blocks (each a list of lines without the
    blank line)."""
    blocks: List[List[bytes]] = []
    block: List[bytes] = []
    for line in lines:
        if line == b"\r\n" or line == b"\n":
            if block:
                blocks.append(block)
                block = []
        else:
            block.append(line)
    if block:
        blocks.append(block)
    return blocks


def _status_line(line: bytes) -> Optional[Tuple[int, str, str]]:
    """(status, reason, version) of an HTTP status line, or None."""
    text = line.decode("latin-1").rstrip("\r\n")
    if not text.startswith("HTTP/"):
        return None
    parts = text.split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return None
    return status, (parts[2].strip() if len(parts) > 2 else ""), parts[0][5:]


def _head_and_history(lines: Iterable[bytes], url: str) -> Tuple[int, str, str, Headers, List[Redirect]]:
    """(status, reason, version, Headers, [Redirect]) from every header line
    of a transfer: the final response's head, and the followed redirects."""
    blocks: List[Tuple[Tuple[int, str, str], List[bytes]]] = []
    for block in _parse_blocks(lines):
        sl = _status_line(block[0])
        if sl is None:
            if blocks:  # trailers, or a block we cannot read: belongs to the last response
                blocks[-1][1].extend(block)
            continue
        if sl[0] < 200 and sl[0] != 101:
            continue  # 100 Continue, 103 Early Hints
        blocks.append((sl, block[1:]))
    if not blocks:
        return 0, "", "", Headers(), []
    history: List[Redirect] = []
    current = url
    for (status, _, _), block in blocks[:-1]:
        location = None
        for raw in block:
            if raw[:9].lower() == b"location:":
                location = raw[9:].strip()
                break
        nxt = _resolve(current, location) if location else current
        history.append(Redirect(status, current, nxt))
        current = nxt
    (status, reason, version), block = blocks[-1]
    return status, reason, version, Headers(header_pairs(block)), history


def _retry_after(headers: Headers, now: Optional[float] = None) -> Optional[float]:
    """Seconds from the Retry-After header (delta or HTTP date), or None."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# -- the session ---------------------------------------------------------------------

_WRITEDATA = _C["WRITEDATA"]
_WRITEFUNCTION = _C["WRITEFUNCTION"]
_URL = _C["URL"]
_PIPEWAIT = _C["PIPEWAIT"]
_HTTPHEADER = _C["HTTPHEADER"]
_CUSTOMREQUEST = _C["CUSTOMREQUEST"]
_POSTFIELDS = _C["POSTFIELDS"]
_HTTPGET = _C["HTTPGET"]
_NOBODY = _C["NOBODY"]
_RESPONSE_CODE = _C["RESPONSE_CODE"]
_EFFECTIVE_URL = _C["EFFECTIVE_URL"]
_REDIRECT_COUNT = _C["REDIRECT_COUNT"]
_TOTAL_TIME = _C["TOTAL_TIME"]
_SIZE_DOWNLOAD = _C["SIZE_DOWNLOAD_T"] if "SIZE_DOWNLOAD_T" in _C else _C["SIZE_DOWNLOAD"]
_TIME_INFOS = tuple(_C[n] for n in ("NAMELOOKUP_TIME", "CONNECT_TIME", "APPCONNECT_TIME", "PRETRANSFER_TIME",
                                     "STARTTRANSFER_TIME", "TOTAL_TIME", "REDIRECT_TIME"))
_E_URL_MALFORMAT = _C["E_URL_MALFORMAT"]
_E_WRITE_ERROR = _C["E_WRITE_ERROR"]
_E_ABORTED_BY_CALLBACK = _C["E_ABORTED_BY_CALLBACK"]


class _Slot(object):
    """A pooled Curl with its body buffer and header lines."""

    __slots__ = ("curl", "buf", "lines", "custom", "sink", "pipewait")

    def __init__(self, curl: Curl, buf: Buffer, lines: List[bytes]) -> None:
        self.curl = curl
        self.buf = buf
        self.lines = lines
        self.custom = False   # method, body or headers differ from the session's defaults
        self.sink: Any = None      # the request's own sink during this transfer
        self.pipewait = False      # PIPEWAIT is set on the handle


class _Host(object):
    __slots__ = ("key", "queue", "active", "next_ok", "ready")

    def __init__(self, key: _HostKey) -> None:
        self.key = key
        self.queue: Deque[_Job] = collections.deque()
        self.active = 0
        self.next_ok = 0.0
        self.ready = False   # in Session._ready


class _Job(object):
    __slots__ = ("request", "url", "host", "attempts", "deliver", "run", "fut", "slot", "seq")

    def __init__(self, request: Request, url: str, host: Optional[_Host],
                 deliver: Callable[["_Job", Response], None], run: Optional["_Run"], seq: int) -> None:
        self.request = request
        self.url = url
        # None only for a request that failed before it was queued: never scheduled
        self.host = cast(_Host, host)
        self.attempts = 0
        self.deliver = deliver
        self.run = run
        self.fut: Optional["asyncio.Future[Any]"] = None
        self.slot: Optional[_Slot] = None
        self.seq = seq


class _Run(object):
    """One as_completed()/map() call: its results and its bound on memory."""

    __slots__ = ("results", "outstanding", "closed", "waiter", "jobs", "ordered", "next_seq", "held")

    def __init__(self, ordered: bool) -> None:
        self.results: Deque[Response] = collections.deque()
        self.outstanding = 0     # read from the input and not yet yielded
        self.closed = False
        self.waiter: Optional["asyncio.Future[None]"] = None
        self.jobs: Dict[_Job, None] = {}           # job -> None: running now (cancelled at close)
        self.ordered = ordered
        self.next_seq = 0
        self.held: Dict[int, Response] = {}           # seq -> Response, waiting for its turn (map)

    def deliver(self, job: _Job, response: Response) -> None:
        if self.closed:
            return
        if self.ordered:
            self.held[job.seq] = response
            held = self.held
            while self.next_seq in held:
                self.results.append(held.pop(self.next_seq))
                self.next_seq += 1
        else:
            self.results.append(response)
        self.wake()

    def wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)


def _as_request(item: object) -> Request:
    if isinstance(item, Request):
        return item
    if isinstance(item, (str, bytes)):
        return Request(item)  # type: ignore[arg-type]  # a bytes URL too: normalise_url decodes it
    raise TypeError("a request is a URL (str) or a Request, not %s" % type(item).__name__)


class Session(object):
    """Shared state for many requests: one ``AsyncCurlMulti``, a pool of
    ``Curl`` handles, a ``CurlShare`` (cookies, DNS cache, TLS sessions), the
    per-host queues and the limits.

    ``limit``: transfers at once (default 100); ``per_host``: at once per
    host (scheme, name, port; default 6); ``timeout``: seconds for a whole
    transfer, redirects included (default 30); ``connect_timeout`` (default
    10); ``retries``: extra attempts of a transient failure (default 2);
    ``backoff``: the first retry's maximum delay in seconds, doubled at each
    attempt up to ``max_backoff`` (full jitter: a random delay up to that);
    ``max_retry_after``: a ``Retry-After`` longer than this is not waited
    for (the response is delivered as it is); ``delay``: seconds between the
    starts of two requests to the same host (politeness, default 0);
    ``max_redirects`` (default 10, 0: do not follow); ``headers``: sent
    with every request; ``user_agent``; ``cookies``: keep a cookie jar
    shared by every transfer (default True); ``proxy``: a proxy URL
    (``http://``, ``socks5h://``...); ``http2``: ``True`` (default) uses
    HTTP/2 where a TLS server offers it, the concurrent requests to one host
    multiplexed over one connection, ``"always"`` also asks plain-text
    servers to upgrade, ``False`` stays on HTTP/1.1; ``compression``
    (default True: Accept-Encoding for every encoding libcurl decodes);
    ``verify``: check TLS certificates (default True); ``timings``: read
    every field of ``Response.timings`` (default True; False: ``total``
    only, the others None, a few microseconds less per request); ``options``: extra
    ``{option: value}`` set on every handle."""

    def __init__(self, limit: int = 100, per_host: int = 6, timeout: float = 30.0,
                 connect_timeout: float = 10.0, retries: int = 2, backoff: float = 0.5,
                 max_backoff: float = 30.0, max_retry_after: float = 60.0, delay: float = 0.0,
                 max_redirects: int = 10, headers: Any = None, user_agent: str = USER_AGENT,
                 cookies: bool = True, proxy: Optional[str] = None, http2: Union[bool, str] = True,
                 compression: bool = True, verify: bool = True, timings: bool = True,
                 options: Optional[Dict[int, Any]] = None) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError("limit must be an int >= 1, not %r" % (limit,))
        if not isinstance(per_host, int) or per_host < 1:
            raise ValueError("per_host must be an int >= 1, not %r" % (per_host,))
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0 (or None: no total timeout)")
        self.limit = limit
        self.per_host = min(per_host, limit)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.delay = delay
        self._time_infos = _TIME_INFOS if timings else (_TOTAL_TIME,)
        self._header_list = self._header_lines(headers)
        self._options = self._base_options(timeout, connect_timeout, max_redirects, user_agent, proxy,
                                           http2, compression, verify, options)
        self._share: Optional[CurlShare] = None
        if cookies:
            share = CurlShare()
            for name in ("LOCK_DATA_COOKIE", "LOCK_DATA_DNS", "LOCK_DATA_SSL_SESSION"):
                share.setopt(_C["SH_SHARE"], _C[name])
            self._share = share
        self._multi = AsyncCurlMulti()
        self._multi.setopt(_C["M_MAX_HOST_CONNECTIONS"], self.per_host)
        self._multi.setopt(_C["M_MAX_TOTAL_CONNECTIONS"], limit)
        self._multi.setopt(_C["M_MAXCONNECTS"], limit)
        # HTTP/2: transfers to one host multiplexed over one connection.  An
        # https transfer to a host whose first connection is still in its TLS
        # handshake waits (PIPEWAIT) to learn whether it speaks HTTP/2 rather
        # than opening a connection of its own, so concurrent requests to an
        # HTTP/2 server share one connection from the start.  Not for plain
        # http: there the answer comes only with the first response.
        self._pipewait = bool(http2)
        if http2:
            self._multi.setopt(_C["M_PIPELINING"], _C["PIPE_MULTIPLEX"])  # libcurl's default since 7.62
        self._free: List[_Slot] = []      # idle _Slots
        self._slots = 0
        self._hosts: Dict[_HostKey, _Host] = {}  # key -> _Host
        self._ready: Deque[_Host] = collections.deque()  # _Hosts that may start a transfer
        self._running = 0
        self._timers: List[Tuple[float, int, Union[_Host, _Job]]] = []  # a heap
        self._timer: Optional[asyncio.TimerHandle] = None  # the loop handle for the earliest
        self._timer_when = 0.0            # its time (read only while _timer is set)
        self._seq = 0
        self._closed = False
        self._loop: Any = None            # the event loop, from _bind() on (before any use)
        self._runs: Dict[_Run, None] = {}  # _Run -> None: as_completed()/map() calls in progress
        self.random = random.Random()

    # -- configuration ------------------------------------------------------------

    @staticmethod
    def _header_lines(headers: Any) -> List[str]:
        if not headers:
            return []
        items = headers.items() if hasattr(headers, "items") else headers
        lines: List[str] = []
        for name, value in items:
            if not isinstance(name, str) or not name or any(c in name for c in ":\r\n"):
                raise ValueError("bad header name %r" % (name,))
            if any(c in str(value) for c in "\r\n"):
                raise ValueError("header %s: value contains a line break" % name)
            lines.append("%s: %s" % (name, value))
        return lines

    def _base_options(self, timeout: Optional[float], connect_timeout: float, max_redirects: int,
                      user_agent: Optional[str], proxy: Optional[str], http2: Union[bool, str],
                      compression: bool, verify: bool,
                      options: Optional[Dict[int, Any]]) -> List[Tuple[int, Any]]:
        opts: List[Tuple[int, Any]] = [
            (_C["NOSIGNAL"], 1),
            (_C["CONNECTTIMEOUT_MS"], int(connect_timeout * 1000)),
            (_C["TIMEOUT_MS"], int(timeout * 1000) if timeout else 0),
            (_C["FOLLOWLOCATION"], 1 if max_redirects else 0),
            (_C["MAXREDIRS"], max_redirects),
            (_C["USERAGENT"], user_agent or ""),
        ]
        if "REDIR_PROTOCOLS_STR" in _C:
            opts.append((_C["REDIR_PROTOCOLS_STR"], "http,https"))
        if "SUPPRESS_CONNECT_HEADERS" in _C:
            opts.append((_C["SUPPRESS_CONNECT_HEADERS"], 1))
        if compression:
            opts.append((_C["ACCEPT_ENCODING"], ""))
        if proxy:
            opts.append((_C["PROXY"], proxy))
        if http2 == "always":
            opts.append((_C["HTTP_VERSION"], _C["CURL_HTTP_VERSION_2_0"]))
        elif http2:
            opts.append((_C["HTTP_VERSION"], _C["CURL_HTTP_VERSION_2TLS"]))
        else:
            opts.append((_C["HTTP_VERSION"], _C["CURL_HTTP_VERSION_1_1"]))
        if not verify:
            opts.append((_C["SSL_VERIFYPEER"], 0))
            opts.append((_C["SSL_VERIFYHOST"], 0))
        for option, value in (options or {}).items():
            opts.append((option, value))
        return opts

    def _new_slot(self) -> _Slot:
        curl = Curl()
        try:
            buf = Buffer()
            lines: List[bytes] = []
            curl.setopt(_WRITEDATA, buf)
            curl.setopt(_C["HEADERFUNCTION"], lines.append)
            for option, value in self._options:
                curl.setopt(option, value)
            if self._header_list:
                curl.setopt(_HTTPHEADER, self._header_list)
            if self._share is not None:
                curl.setopt(_C["SHARE"], self._share)
                curl.setopt(_C["COOKIEFILE"], "")
        except BaseException:
            curl.close()
            raise
        self._slots += 1
        return _Slot(curl, buf, lines)

    # -- public API -------------------------------------------------------------------

    async def __aenter__(self) -> "Session":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel what runs, close the handles.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        for run in list(self._runs):
            run.wake()  # they raise RuntimeError: the Session was closed
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._multi.aclose()
        for slot in self._free:
            slot.curl.close()
        self._free = []
        if self._share is not None:
            self._share.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def running(self) -> int:
        """Transfers in flight now."""
        return self._running

    def cookies(self) -> List[str]:
        """The cookie jar, as libcurl's Netscape-format lines
        (``INFO_COOKIELIST``)."""
        if self._share is None:
            return []
        slot = self._free[-1] if self._free else None
        if slot is None:
            slot = self._new_slot()
            self._free.append(slot)
        return cast(List[str], slot.curl.getinfo(_C["INFO_COOKIELIST"]))

    async def fetch(self, url: Union[str, Request], **kwargs: Any) -> Response:
        """One request through the session's limits and retries.  Returns
        the Response whatever its status; raises ``FetchError`` when the
        transfer failed (after its retries).  ``kwargs`` are Request's."""
        request = Request(url, **kwargs) if not isinstance(url, Request) else url
        loop = self._bind()
        fut: "asyncio.Future[Response]" = loop.create_future()

        def deliver(job: _Job, response: Response) -> None:
            if not fut.done():
                fut.set_result(response)

        job = self._submit(request, deliver, None, 0)
        try:
            response = await fut
        except BaseException:
            if job is not None:
                self._cancel_job(job)
            raise
        if response.error is not None:
            raise response.error
        return response

    def as_completed(self, requests: Any, buffer: Optional[int] = None) -> AsyncGenerator[Response, None]:
        """Yield a Response for every request of ``requests`` (an iterable or
        async iterable of URLs or Requests), exactly once, as each completes.
        Failures are values: ``response.error``/``response.ok``.  At most
        ``buffer`` requests (default ``max(1000, 4 * limit)``) are held at
        once, read but not yet yielded.  Leaving the loop early (or
        ``aclose()`` of the iterator) stops its transfers."""
        return self._run(requests, False, buffer)

    def map(self, requests: Any, buffer: Optional[int] = None) -> AsyncGenerator[Response, None]:
        """As ``as_completed()``, but in the order of ``requests``: a slow
        request holds back the ones after it (up to ``buffer`` of them)."""
        return self._run(requests, True, buffer)

    # -- the run loop -------------------------------------------------------------

    async def _run(self, requests: Any, ordered: bool, buffer: Optional[int]) -> AsyncGenerator[Response, None]:
        if buffer is None:
            buffer = max(1000, 4 * self.limit)
        if buffer < 1:
            raise ValueError("buffer must be >= 1")
        self._bind()
        run = _Run(ordered)
        self._runs[run] = None
        aiter: Any = None
        it: Optional[Iterator[Any]] = None
        if hasattr(requests, "__aiter__"):
            aiter = requests.__aiter__()
        else:
            it = iter(requests)
        exhausted = False
        seq = 0
        loop = self._loop
        try:
            while True:
                # Read while there is room: the running transfers' done
                # callbacks start queued ones without us.
                while not exhausted and run.outstanding < buffer:
                    try:
                        item = next(it) if it is not None else await aiter.__anext__()
                    except (StopIteration, StopAsyncIteration):
                        exhausted = True
                        break
                    run.outstanding += 1
                    try:
                        request = _as_request(item)
                    except TypeError as exc:
                        request = Request(repr(item))
                        run.deliver(_Job(request, request.url, None, run.deliver, run, seq),
                                    Response(request, request.url, attempts=0,
                                             error=FetchError(_E_URL_MALFORMAT, str(exc), None, False)))
                    else:
                        self._submit(request, run.deliver, run, seq)
                    seq += 1
                    if self._closed:
                        raise RuntimeError("the Session is closed")
                results = run.results
                while results:
                    response = results.popleft()
                    run.outstanding -= 1
                    yield response
                if exhausted and run.outstanding == 0:
                    return
                if self._closed:
                    raise RuntimeError("the Session was closed during as_completed()")
                if run.outstanding >= buffer or exhausted:
                    w = run.waiter = loop.create_future()
                    await w
        finally:
            self._runs.pop(run, None)
            run.closed = True
            run.wake()
            for job in list(run.jobs):
                self._cancel_job(job)
            run.jobs.clear()

    # -- scheduling -----------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("the Session is bound to a different event loop")
        if self._closed:
            raise RuntimeError("the Session is closed")
        return loop

    def _submit(self, request: Request, deliver: Callable[[_Job, Response], None], run: Optional[_Run],
                seq: int) -> Optional[_Job]:
        """Queue a request on its host; returns its job (None if it failed
        at once)."""
        try:
            url, key = _prepare(request.url)
        except (ValueError, TypeError) as exc:
            job = _Job(request, str(request.url), None, deliver, run, seq)
            deliver(job, Response(request, str(request.url), attempts=0,
                                  error=FetchError(_E_URL_MALFORMAT, str(exc), str(request.url), False)))
            return None
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(key)
        job = _Job(request, url, host, deliver, run, seq)
        host.queue.append(job)
        if not host.ready and host.active < self.per_host:
            host.ready = True
            self._ready.append(host)
        self._pump()
        return job

    def _pump(self) -> None:
        """Start transfers while there is a free slot and a ready host."""
        ready = self._ready
        per_host = self.per_host
        delay = self.delay
        while ready and self._running < self.limit:
            host = ready.popleft()
            host.ready = False
            queue = host.queue
            while queue and _abandoned(queue[0]):
                queue.popleft()
            if not queue:
                self._forget(host)
                continue
            if host.active >= per_host:
                continue  # made ready again when one of its transfers ends
            if delay:
                now = self._loop.time()
                if host.next_ok > now:
                    self._at(host.next_ok, host)
                    continue
                host.next_ok = now + delay
            self._start(queue.popleft(), host)
            if queue and host.active < per_host:
                if delay:
                    self._at(host.next_ok, host)
                else:
                    host.ready = True
                    ready.append(host)

    def _forget(self, host: _Host) -> None:
        if host.active == 0 and not host.queue and not host.ready and (
                not self.delay or host.next_ok <= self._loop.time()):
            if self._hosts.get(host.key) is host:
                del self._hosts[host.key]

    def _at(self, when: float, item: Union[_Host, _Job]) -> None:
        """Wake ``item`` (a _Host to make ready, a _Job to queue again) at
        loop time ``when``."""
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, item))
        if self._timer is None or when < self._timer_when:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(when, self._on_timer)
            self._timer_when = when

    def _on_timer(self) -> None:
        self._timer = None
        timers = self._timers
        now = self._loop.time()
        while timers and timers[0][0] <= now:
            _, _, item = heapq.heappop(timers)
            if isinstance(item, _Job):
                job = item
                if _abandoned(job):
                    continue
                host = self._hosts.get(job.host.key)
                if host is None:
                    host = self._hosts[job.host.key] = job.host
                host.queue.appendleft(job)
            else:
                host = item
            if not host.ready and host.queue and host.active < self.per_host:
                host.ready = True
                self._ready.append(host)
        if timers and not self._closed:
            self._timer_when = timers[0][0]
            self._timer = self._loop.call_at(self._timer_when, self._on_timer)
        self._pump()

    def _start(self, job: _Job, host: _Host) -> None:
        job.host = host  # the host record may have been made anew while the job waited for a retry
        slot = self._free.pop() if self._free else None
        request = job.request
        job.attempts += 1
        try:
            if slot is None:
                slot = self._new_slot()
            curl = slot.curl
            curl.setopt(_URL, job.url)
            if self._pipewait and slot.pipewait is not (host.key[0] == "https"):
                slot.pipewait = not slot.pipewait
                curl.setopt(_PIPEWAIT, 1 if slot.pipewait else 0)
            if request.method != "GET" or request.data is not None or request.headers:
                slot.custom = True
                self._customise(curl, request)
            sink = request.sink
            if sink is not None:
                if callable(sink) and not isinstance(sink, _Sink):
                    sink = sink()
                slot.sink = sink
                if isinstance(sink, _Sink):
                    curl.setopt(_WRITEDATA, sink)
                else:
                    curl.setopt(_WRITEFUNCTION, sink.write)
            fut = self._multi.add_handle(curl)
        except Exception as exc:
            if slot is not None:
                self._release(slot)
            code = exc.args[0] if isinstance(exc, error) and exc.args and isinstance(exc.args[0], int) \
                else _E_ABORTED_BY_CALLBACK
            if isinstance(exc, OSError):
                code = _E_WRITE_ERROR
            err = FetchError(code, "%s: %s" % (type(exc).__name__, exc), job.url, False)
            err.__cause__ = exc
            job.deliver(job, Response(request, job.url, attempts=job.attempts, error=err))
            return
        job.fut = fut
        job.slot = slot
        host.active += 1
        self._running += 1
        if job.run is not None:
            job.run.jobs[job] = None
        fut.add_done_callback(functools.partial(self._done, job))

    def _customise(self, curl: Curl, request: Request) -> None:
        method = request.method
        if request.data is not None:
            curl.setopt(_POSTFIELDS, request.data)
            if method != "POST":
                curl.setopt(_CUSTOMREQUEST, method)
        elif method == "HEAD":
            curl.setopt(_NOBODY, 1)
        elif method != "GET":
            curl.setopt(_CUSTOMREQUEST, method)
        if request.headers:
            curl.setopt(_HTTPHEADER, self._header_list + self._header_lines(request.headers))

    def _release(self, slot: _Slot) -> None:
        curl = slot.curl
        try:
            if slot.custom:
                slot.custom = False
                curl.unsetopt(_CUSTOMREQUEST)
                curl.setopt(_NOBODY, 0)
                curl.setopt(_HTTPGET, 1)
                if self._header_list:
                    curl.setopt(_HTTPHEADER, self._header_list)
                else:
                    curl.unsetopt(_HTTPHEADER)
            if slot.sink is not None:
                slot.sink = None
                curl.setopt(_WRITEDATA, slot.buf)
        except Exception:
            curl.close()  # cannot be trusted with the defaults: not reused
            self._slots -= 1
            return
        slot.buf.clear()
        del slot.lines[:]
        if self._closed:
            curl.close()
        else:
            self._free.append(slot)

    def _cancel_job(self, job: _Job) -> None:
        """Stop a job whose consumer went away (it is delivered nowhere)."""
        fut = job.fut
        if fut is not None and not fut.done():
            fut.cancel()  # removes the handle now; _done releases the slot
        job.deliver = _drop

    def _done(self, job: _Job, fut: "asyncio.Future[Any]") -> None:
        slot = cast(_Slot, job.slot)  # set by _start() with the future
        host = job.host
        job.fut = None
        job.slot = None
        self._running -= 1
        host.active -= 1
        run = job.run
        if run is not None:
            run.jobs.pop(job, None)
        if fut.cancelled():
            self._release(slot)
            self._host_freed(host)
            self._pump()
            return
        exc = fut.exception()
        response = self._response(job, slot, exc)
        self._release(slot)
        self._host_freed(host)
        delay = self._retry_delay(job, response)
        if delay is None:
            job.deliver(job, response)
        elif not self._closed:
            self._at(self._loop.time() + delay, job)
        self._pump()

    def _host_freed(self, host: _Host) -> None:
        if host.queue and not host.ready and host.active < self.per_host:
            if self.delay and host.next_ok > self._loop.time():
                self._at(host.next_ok, host)
            else:
                host.ready = True
                self._ready.append(host)
        elif not host.queue:
            self._forget(host)

    def _response(self, job: _Job, slot: _Slot, exc: Optional[BaseException]) -> Response:
        curl = slot.curl
        request = job.request
        err: Optional[FetchError] = None
        if exc is not None:
            code, message = (exc.args + (0, ""))[:2] if isinstance(exc, error) else (0, str(exc))
            if not isinstance(code, int):
                code, message = 0, str(exc)
            sink_error = getattr(slot.sink, "error", None) if slot.sink is not None else None
            if sink_error is not None:
                message = "%s (%s)" % (message, sink_error)
            err = FetchError(code, message, job.url)
            err.__cause__ = exc.__cause__ if exc.__cause__ is not None else exc
        try:
            status = curl.getinfo(_RESPONSE_CODE)
            effective = curl.getinfo(_EFFECTIVE_URL) if curl.getinfo(_REDIRECT_COUNT) else job.url
            infos = self._time_infos
            if len(infos) == 1:
                timings = Timings(None, None, None, None, None, curl.getinfo(_TOTAL_TIME), None)
            else:
                timings = Timings(*[curl.getinfo(i) for i in infos])
        except error:
            status, effective, timings = 0, job.url, None
        lines = slot.lines[:]
        if slot.sink is None:
            content = slot.buf.getvalue()
            size = len(content)
        else:
            content = b""
            try:
                size = int(curl.getinfo(_SIZE_DOWNLOAD))
            except error:
                size = 0
        return Response(request, job.url, status, lines, effective, timings, content, size, job.attempts, err)

    def _retry_delay(self, job: _Job, response: Response) -> Optional[float]:
        """Seconds before the next attempt, or None: deliver now."""
        if job.attempts > self.retries or self._closed:
            return None
        if response.error is not None:
            if not response.error.transient:
                return None
        elif not transient(0, response.status):
            return None
        cap = min(self.max_backoff, self.backoff * (2 ** (job.attempts - 1)))
        delay = self.random.uniform(0, cap)
        if response.error is None:
            after = _retry_after(response.headers)
            if after is not None:
                if after > self.max_retry_after:
                    return None
                delay = max(delay, after)
        return delay


def _drop(job: _Job, response: Response) -> None:
    pass


def _abandoned(job: _Job) -> bool:
    """Nobody waits for this job's response any more: do not start it."""
    return job.deliver is _drop or (job.run is not None and job.run.closed)


async def fetch(url: Union[str, Request], **kwargs: Any) -> Response:
    """One request with a Session of its own (its defaults: timeouts,
    redirects, compression, retries).  ``kwargs`` go to ``Request``
    (method, headers, data, sink, meta) or to ``Session`` (the rest).
    Raises ``FetchError`` if the transfer failed; returns the Response
    whatever its status.  For many URLs use one ``Session``."""
    req_kw = {k: kwargs.pop(k) for k in ("method", "headers", "data", "sink", "meta") if k in kwargs}
    async with Session(**kwargs) as session:
        return await session.fetch(url, **req_kw)

