"""``CurlUrl``: pycurl's URL object over libcurl's URL API (``CURLU *``).

Lifetimes
---------
1. A ``_UrlRecord`` owns the ``CURLU``: it holds it as an ``ffi.gc`` cdata
   (``curl_url_cleanup``), with one lock and a ``closed`` flag.  The
   ``CurlUrl`` is a thin view over it.
2. ``Curl.setopt(CURLU, u)`` hands libcurl the pointer; libcurl reads the URL
   from it when each transfer starts.  The Curl's record keeps a ``_UrlUse``
   (in its ``keep``, like an slist) that holds the cdata, so the ``CURLU``
   lives as long as any handle may read it, whatever is closed first.
3. ``close()`` (pycurl has none; curlmulti adds it, with ``closed`` and the
   context manager) refuses every later call on the ``CurlUrl`` with
   ``error``.  The ``CURLU`` is cleaned up at once when no handle uses it,
   else when the last one lets go (``unsetopt``, another ``CURLU``,
   ``reset``, ``close``).  Dropping the last reference frees it as well.
4. Changing a part while a handle that uses it is in ``perform()`` or
   attached to a ``CurlMulti`` is refused with ``error``: libcurl reads the
   ``CURLU`` from inside those calls, without any lock of ours.

Text: values given as str must be ASCII (as in pycurl; give bytes, or use
``U_URLENCODE``, for anything else), values read are decoded as UTF-8 with
replacement characters for invalid bytes, as pycurl does.
"""

import threading
import weakref
from typing import TYPE_CHECKING, Any, NoReturn, Optional, Tuple, TypeVar, Union

from ._curl import ffi, lib
from ._easy import OBJECT_OPTIONS
from ._errors import closed_error, error, misuse, url_strerror
from ._owner import ATTACHED, PERFORMING

_UINT_MAX = (1 << 32) - 1
# The codes that mean "this part is absent": getpart() returns None.
_ABSENT = frozenset(
    getattr(lib, "CURLUE_NO_" + n) for n in
    ("SCHEME", "USER", "PASSWORD", "OPTIONS", "HOST", "PORT", "QUERY", "FRAGMENT", "ZONEID"))
_CLOSED = "CurlUrl object"
_Value = Union[str, bytes, None]
_U = TypeVar("_U", bound="CurlUrl")


def check_url(code: int) -> None:
    if code != 0:
        raise error(code, url_strerror(code))


def _flags(flags: int, method: str) -> int:
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise TypeError("%s(): flags must be an int (U_* constants), not %s" % (method, type(flags).__name__))
    if not 0 <= flags <= _UINT_MAX:
        raise OverflowError("%s(): flags %d do not fit in a C unsigned int" % (method, flags))
    return flags


def _part(part: int, method: str) -> int:
    if isinstance(part, bool) or not isinstance(part, int):
        raise TypeError("%s(): part must be an int (UPART_* constant), not %s" % (method, type(part).__name__))
    if not 0 <= part < (1 << 31):
        raise ValueError("%s(): unknown URL part %d" % (method, part))
    return part


def _value(value: Union[str, bytes]) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("ascii")  # as pycurl: non-ASCII text raises UnicodeEncodeError
    else:
        raise TypeError("a URL part must be a string, bytes, or None, not %s" % type(value).__name__)
    if 0 in data:
        raise ValueError("a URL part must not contain a NUL byte")
    return data


class _UrlUse(object):
    """What a Curl's record keeps while its CURLU option points at a URL: the
    cdata (so the CURLU outlives the option) and, weakly, the user."""

    __slots__ = ("u", "erec", "__weakref__")

    def __init__(self, u: Any, erec: Any) -> None:
        self.u = u
        self.erec = weakref.ref(erec)


class _UrlRecord(object):
    """The owner record of one CURLU."""

    __slots__ = ("u", "lock", "closed", "uses", "__weakref__")

    def __init__(self, u: Any) -> None:
        self.u: Any = u  # the ffi.gc cdata; None once closed
        self.lock = threading.RLock()
        self.closed = False
        self.uses: "weakref.WeakSet[_UrlUse]" = weakref.WeakSet()  # the _UrlUse objects of the handles that point at it

    def handle(self, method: str) -> Any:
        """Under the lock: the CURLU, unless closed."""
        if self.u is None:
            raise closed_error(_CLOSED, method)
        return self.u

    def refuse_in_use(self, method: str) -> None:
        """Under the lock: refuse a change while a transfer may read it."""
        for use in list(self.uses):
            erec = use.erec()
            if erec is not None and (erec.state is PERFORMING or erec.state is ATTACHED):
                raise misuse("cannot invoke %s() - the CurlUrl is used by a Curl object that is "
                             "performing or attached to a CurlMulti" % method)

    def use(self, erec: Any) -> _UrlUse:
        """Curl.setopt(CURLU, ...): the _UrlUse the handle keeps."""
        with self.lock:
            u = self.handle("setopt")
            use = _UrlUse(u, erec)
            self.uses.add(use)
            return use

    def close(self) -> None:
        with self.lock:
            u, self.u = self.u, None
            in_use = bool(self.uses)
        if u is not None and not in_use:
            ffi.release(u)  # curl_url_cleanup now; else when the last handle lets go


class CurlUrl(object):
    """A libcurl URL handle (``curl_url``), pycurl-compatible.  The parts are
    properties (``None`` when absent; assigning ``None`` or ``del`` removes
    one); ``getpart``/``setpart`` take ``UPART_*`` and ``U_*`` flags.  Pass it
    to ``Curl.setopt(CURLU, u)`` to drive transfers; changes made between
    transfers apply to the next one."""

    _rec: Optional[_UrlRecord] = None

    if TYPE_CHECKING:  # the part properties, set below the class
        url: Optional[str]
        scheme: Optional[str]
        user: Optional[str]
        password: Optional[str]
        options: Optional[str]
        host: Optional[str]
        path: Optional[str]
        query: Optional[str]
        fragment: Optional[str]
        zoneid: Optional[str]

        @property
        def port(self) -> Optional[str]: ...
        @port.setter
        def port(self, value: Union[str, bytes, int, None]) -> None: ...

    def __init__(self, url: _Value = None, flags: int = 0) -> None:
        if self._rec is not None:
            return  # as in pycurl, a second __init__ does nothing
        flags = _flags(flags, "CurlUrl")
        self._rec = _UrlRecord(_new(lib.curl_url()))
        if url is not None:
            self.setpart(lib.CURLUPART_URL, url, flags)

    @property
    def closed(self) -> bool:
        """Whether close() was called (curlmulti's addition)."""
        return self._rec is None or self._rec.u is None

    def close(self) -> None:
        """Free the URL handle now, or when the last Curl using it lets go;
        every later call raises ``error``.  Idempotent."""
        if self._rec is not None:
            self._rec.close()

    def __enter__(self: _U) -> _U:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def getpart(self, part: int, flags: int = 0) -> Optional[str]:
        """One part as str (``curl_url_get``), or None when it is absent."""
        part = _part(part, "getpart")
        flags = _flags(flags, "getpart")
        rec = self._record("getpart")
        out = ffi.new("char **")
        with rec.lock:
            code = lib.curl_url_get(rec.handle("getpart"), part, out, flags)
        if code == 0:
            try:
                return ffi.string(out[0]).decode("utf-8", "replace")
            finally:
                lib.curl_free(out[0])
        if code in _ABSENT:
            return None
        check_url(code)
        return None  # not reached: check_url raised

    def setpart(self, part: int, value: _Value, flags: int = 0) -> None:
        """Set one part (``curl_url_set``); None removes it."""
        part = _part(part, "setpart")
        flags = _flags(flags, "setpart")
        data = ffi.NULL if value is None else _value(value)
        rec = self._record("setpart")
        with rec.lock:
            u = rec.handle("setpart")
            rec.refuse_in_use("setpart")
            check_url(lib.curl_url_set(u, part, data, flags))

    def _record(self, method: str) -> _UrlRecord:
        rec = self._rec
        if rec is None:
            raise closed_error(_CLOSED, method)
        return rec

    def __copy__(self: _U) -> _U:
        """A new CurlUrl with the same parts (``curl_url_dup``)."""
        rec = self._record("copy")
        with rec.lock:
            u = lib.curl_url_dup(rec.handle("copy"))
        dup = CurlUrl.__new__(type(self))
        dup._rec = _UrlRecord(_new(u))
        return dup

    def __deepcopy__(self: _U, memo: object) -> _U:
        return self.__copy__()

    def __reduce__(self) -> NoReturn:
        raise TypeError("CurlUrl objects do not support serialization")

    __reduce_ex__ = __getstate__ = __reduce__  # type: ignore[assignment]

    def __setstate__(self, state: object) -> NoReturn:
        raise TypeError("CurlUrl objects do not support deserialization")

    def __str__(self) -> str:
        url = self.getpart(lib.CURLUPART_URL)
        if url is None:
            raise error(0, "cannot serialise an incomplete URL")
        return url

    def __repr__(self) -> str:
        if self.closed:
            return "<curlmulti.CurlUrl closed>"
        try:
            url = self.getpart(lib.CURLUPART_URL)
        except error:
            url = None
        if url is None:
            return "<curlmulti.CurlUrl (incomplete) at 0x%x>" % id(self)
        return "<curlmulti.CurlUrl %r at 0x%x>" % (url, id(self))


def _new(u: Any) -> Any:
    if u == ffi.NULL:
        raise MemoryError("curl_url() failed")
    return ffi.gc(u, lib.curl_url_cleanup, size=128)


def _part_property(name: str, doc: str, port: bool = False) -> "property":
    part = getattr(lib, "CURLUPART_" + name.upper())

    def get(self: CurlUrl) -> Optional[str]:
        return self.getpart(part)

    def set(self: CurlUrl, value: Any) -> None:  # setpart checks it
        if port and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        self.setpart(part, value)

    def delete(self: CurlUrl) -> None:
        self.setpart(part, None)

    return property(get, set, delete, doc)


for _name, _doc in [
        ("url", "The whole URL, or None while it is incomplete."),
        ("scheme", "The scheme, or None."),
        ("user", "The user name of the userinfo, or None."),
        ("password", "The password of the userinfo, or None."),
        ("options", "The options of the userinfo, or None."),
        ("host", "The host (an IPv6 address in brackets), or None."),
        ("path", "The path, or None."),
        ("query", "The query, or None."),
        ("fragment", "The fragment, or None."),
        ("zoneid", "The IPv6 zone id, or None.")]:
    setattr(CurlUrl, _name, _part_property(_name, _doc))
CurlUrl.port = _part_property(  # type: ignore[assignment,method-assign]
    "port", "The port as a str, or None; an int may be assigned.", port=True)
del _name, _doc


def _for_setopt(value: object, erec: Any) -> Tuple[Any, _UrlUse]:
    """Curl.setopt(CURLU, value): (the CURLU pointer, what the handle keeps)."""
    if not isinstance(value, CurlUrl):
        raise TypeError("CURLU takes a CurlUrl, not %s" % type(value).__name__)
    rec = value._rec
    if rec is None:
        raise closed_error(_CLOSED, "setopt")
    use = rec.use(erec)
    return use.u, use



OBJECT_OPTIONS[lib.CURLOPT_CURLU] = (_for_setopt, False)
