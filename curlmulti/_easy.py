"""``Curl``: pycurl's easy handle over libcurl's ``CURL *``."""

from __future__ import annotations

import errno
import io
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Tuple, Union

from . import _callbacks  # noqa: F401  (registers the trampolines)
from ._callbacks import C_WRITE as _C_WRITE
from . import _deprecations
from ._constants import ALL_CONSTANTS, CONSTANTS, option_name
from ._curl import ffi, lib
from ._sinks import _Sink
from ._share import CurlShare
from ._errors import (check_easy, closed_error, easy_error, easy_strerror, error, misuse,
                      raise_from_callback)
from ._globals import version as _version
from ._owner import ATTACHED, CLOSED, CLOSING, IDLE, PERFORMING, Owned, acquire, get_ident

if TYPE_CHECKING:
    from ._curl import _CData
    from ._multi import CurlMulti, _MultiRecord

_LONG_MAX = int(ffi.cast("long", -1 & ((1 << (8 * ffi.sizeof("long") - 1)) - 1)))
_ULONG_SPAN = 1 << (8 * ffi.sizeof("long"))
_E_UNKNOWN_OPTION = lib.CURLE_UNKNOWN_OPTION
_E_ABORTED_BY_CALLBACK = lib.CURLE_ABORTED_BY_CALLBACK
_E_AGAIN = CONSTANTS.get("E_AGAIN", 81)

_setopt_str = lib.cm_easy_setopt_str
_fast_setopt_str = lib.cm_easy_fast_setopt_str
_fast_setopt_long = lib.cm_easy_fast_setopt_long
_fast_getinfo_long = lib.cm_easy_fast_getinfo_long
_getinfo_code = lib.cm_getinfo_code
_BUSY = lib.CM_BUSY
_BUSY_INFO = int(ffi.cast("CURLcode", lib.CM_BUSY))  # what cm_getinfo_code() says for CM_BUSY
# What a setopt value is, from libcurl's own option table (curl_easy_option_by_id).
_LONG, _OFF_T, _STRING, _SLIST, _BLOB, _FUNCTION, _OBJECT = range(7)
_KINDS: Dict[int, int] = {}


def _option_kind(option: int) -> int:
    kind = _KINDS.get(option)
    if kind is not None:
        return kind
    if not isinstance(option, int):
        raise TypeError("option must be an int, not %s" % type(option).__name__)
    desc = lib.curl_easy_option_by_id(option) if 0 <= option < (1 << 31) else ffi.NULL
    if desc == ffi.NULL:
        raise error(_E_UNKNOWN_OPTION, "unknown option %d: %s" % (option, easy_strerror(_E_UNKNOWN_OPTION)))
    base = option - option % 10000
    if base == lib.CM_OPTTYPE_LONG:
        kind = _LONG
    elif base == lib.CM_OPTTYPE_OFF_T:
        kind = _OFF_T
    elif base == lib.CM_OPTTYPE_FUNCTIONPOINT:
        kind = _FUNCTION
    elif base == lib.CM_OPTTYPE_BLOB or desc.type == lib.CM_EASYTYPE_BLOB:
        kind = _BLOB
    elif desc.type == lib.CM_EASYTYPE_STRING:
        kind = _STRING
    elif desc.type == lib.CM_EASYTYPE_SLIST:
        kind = _SLIST
    else:
        kind = _OBJECT
    _KINDS[option] = kind
    return kind


def _opt(name: str) -> int:
    return CONSTANTS.get(name, -1)


# *FUNCTION option -> the Curl attribute its trampoline calls.
_CALLBACK_ATTRS = {
    _opt(name): attr for name, attr in [
        ("WRITEFUNCTION", "write_cb"), ("HEADERFUNCTION", "header_cb"),
        ("READFUNCTION", "read_cb"), ("XFERINFOFUNCTION", "xferinfo_cb"),
        ("PROGRESSFUNCTION", "progress_cb"), ("DEBUGFUNCTION", "debug_cb"),
        ("SEEKFUNCTION", "seek_cb"), ("IOCTLFUNCTION", "ioctl_cb"),
        ("SOCKOPTFUNCTION", "sockopt_cb"), ("OPENSOCKETFUNCTION", "opensocket_cb"),
        ("CLOSESOCKETFUNCTION", "closesocket_cb"),
        ("SSH_KEYFUNCTION", "ssh_key_cb"), ("SSH_HOSTKEYFUNCTION", "ssh_hostkey_cb"),
        ("PREREQFUNCTION", "prereq_cb"), ("TRAILERFUNCTION", "trailer_cb"),
        ("RESOLVER_START_FUNCTION", "resolver_start_cb"), ("FNMATCH_FUNCTION", "fnmatch_cb"),
        ("HSTSREADFUNCTION", "hstsread_cb"), ("HSTSWRITEFUNCTION", "hstswrite_cb"),
    ] if name in CONSTANTS
}
# File-object options: (the *FUNCTION they fill, the method of the file used).
_FILE_OPTIONS = {
    _opt("WRITEDATA"): (_opt("WRITEFUNCTION"), "write"),
    _opt("HEADERDATA"): (_opt("HEADERFUNCTION"), "write"),
    _opt("READDATA"): (_opt("READFUNCTION"), "read"),
}
_WRITEFUNCTION = _opt("WRITEFUNCTION")
# The options that take use_memoryview, and the flag the trampoline reads.
_VIEW_ATTRS = {_WRITEFUNCTION: "write_view", _opt("HEADERFUNCTION"): "header_view"}
_CAINFO_BLOB = _opt("CAINFO_BLOB")
_CLOSESOCKETFUNCTION = _opt("CLOSESOCKETFUNCTION")
_POSTFIELDS = _opt("POSTFIELDS")
_COPYPOSTFIELDS = _opt("COPYPOSTFIELDS")
_POSTFIELDSIZE_LARGE = _opt("POSTFIELDSIZE_LARGE")
_HTTPPOST = _opt("HTTPPOST")
_MIMEPOST = _opt("MIMEPOST")
# Options whose pointer curlmulti itself owns.
_RESERVED = {ALL_CONSTANTS.get(n, -1) for n in (
    "PRIVATE", "ERRORBUFFER", "WRITEDATA", "HEADERDATA", "READDATA", "XFERINFODATA",
    "PROGRESSDATA", "DEBUGDATA", "SEEKDATA", "IOCTLDATA", "SOCKOPTDATA",
    "OPENSOCKETDATA", "CLOSESOCKETDATA", "STDERR", "MIMEPOST",
)} - {-1}
_SHARE = _opt("SHARE")
_DEPRECATED_SETOPT = _deprecations.SETOPT
_DEPRECATED_GETINFO = _deprecations.GETINFO

# setopt(option, None) unsets only what pycurl 7.49's does (anything else is a
# TypeError there); unsetopt() itself also resets other string options.
# (INFILESIZE is absent: pycurl's INFILESIZE is INFILESIZE_LARGE, which it
# does not unset.)
_UNSET_BY_NONE = {_opt(n) for n in (
    "SHARE", "WRITEHEADER", "HEADERDATA", "CAINFO", "CAINFO_BLOB", "CAPATH", "SSLCERT_BLOB",
    "SSLKEY_BLOB", "ISSUERCERT_BLOB", "COOKIE", "COOKIEJAR", "CUSTOMREQUEST", "EGDSOCKET",
    "ENCODING", "FTPPORT", "PROXYUSERPWD", "PROXYUSERNAME", "PROXYPASSWORD", "RANDOM_FILE",
    "SSL_CIPHER_LIST", "USERPWD", "USERNAME", "PASSWORD", "RANGE", "PROXY", "SERVICE_NAME",
    "PROXY_SERVICE_NAME", "PROXY_CAPATH", "PROXY_CAINFO", "PRE_PROXY", "PROXY_SSLCERT",
    "PROXY_SSLCERTTYPE", "PROXY_SSLKEY", "PROXY_SSLKEYTYPE", "PROXY_SSL_CIPHER_LIST",
    "PROXY_CAINFO_BLOB", "PROXY_SSLCERT_BLOB", "PROXY_SSLKEY_BLOB", "PROXY_ISSUERCERT_BLOB",
    "SSL_EC_CURVES", "HSTS", "SSL_SIGNATURE_ALGORITHMS", "OPT_CERTINFO", "HTTPHEADER",
    "PROXYHEADER", "HTTP200ALIASES", "QUOTE", "POSTQUOTE", "PREQUOTE", "TELNETOPTIONS", "RESOLVE",
    "MAIL_RCPT", "CONNECT_TO", "HTTPPOST", "MIMEPOST", "CURLU",
    "WRITEFUNCTION", "READFUNCTION", "HEADERFUNCTION", "PROGRESSFUNCTION", "XFERINFOFUNCTION",
    "DEBUGFUNCTION", "IOCTLFUNCTION", "OPENSOCKETFUNCTION", "CLOSESOCKETFUNCTION",
    "SOCKOPTFUNCTION", "SSH_KEYFUNCTION", "SSH_HOSTKEYFUNCTION", "SEEKFUNCTION", "PREREQFUNCTION",
    "FNMATCH_FUNCTION", "RESOLVER_START_FUNCTION", "TRAILERFUNCTION", "HSTSREADFUNCTION",
    "HSTSWRITEFUNCTION",
)} - {-1}
# The long options among them, and the value unsetting gives them.
_LONG_DEFAULTS = {_opt("OPT_CERTINFO"): 0} if "OPT_CERTINFO" in CONSTANTS else {}
_PAUSE_ALL = lib.CURLPAUSE_ALL
# The User-Agent a new or reset handle sends (pycurl sends its version
# string): the first two words of version, "curlmulti/<x> libcurl/<y>".  Not
# all of it: libcurl formats the header afresh for every request, and 7.88
# spends about 130 instructions on each byte of it (the whole version string,
# some 180 bytes, was 15 % of a small request's CPU).
_USERAGENT = _opt("USERAGENT")
_DEFAULT_AGENT = " ".join(_version.split()[:2]).encode("ascii", "replace")

# Options that take an object of another module (CURLU: _url.py, MIMEPOST:
# _mime.py), which registers option -> (convert, refused while attached).
# convert(value, record) returns (the pointer for libcurl, what the record
# keeps while libcurl may use it).
OBJECT_OPTIONS: Dict[int, Tuple[Callable[[Any, "_EasyRecord"], Tuple[Any, object]], bool]] = {}

# The long options that take libcurl's unsigned bitmasks (CURLAUTH_ANY is
# ~CURLAUTH_DIGEST_IE as an unsigned long): a value past LONG_MAX that fits
# in an unsigned long is passed as its C bit pattern; other longs must fit.
_UNSIGNED_LONGS = {_opt(n) for n in (
    "HTTPAUTH", "PROXYAUTH", "SOCKS5_AUTH", "SSH_AUTH_TYPES", "PROTOCOLS", "REDIR_PROTOCOLS",
)} - {-1}

_INFO_TYPEMASK = lib.CM_INFO_TYPEMASK
_INFO_LONG = lib.CM_INFO_LONG
_LONG_MIN = -_LONG_MAX - 1
_INFO_CERTINFO = _opt("INFO_CERTINFO")
_INFO_PRIVATE = _opt("PRIVATE") and CONSTANTS.get("INFO_PRIVATE", lib.CM_INFO_STRING + 21)
# The pointer-typed infos that are curl_slists; the others (TLS_SSL_PTR, ...)
# point at structures curlmulti does not convert.
_INFO_SLISTS = {_opt("SSL_ENGINES"), _opt("INFO_COOKIELIST")} - {-1}


def _to_bytes(value: object, option: int) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("ascii")  # as pycurl: non-ASCII text raises UnicodeEncodeError
    else:
        raise TypeError("%s takes str or bytes, not %s" % (option_name(option), type(value).__name__))
    return data


def _blob_view(value: object, option: int) -> Union[bytes, memoryview]:
    """A blob option's value as bytes-like: str (ASCII), bytes or any
    C-contiguous buffer (memoryview, bytearray, array, ...), as pycurl."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("ascii")
    if isinstance(value, (int, float)):  # bool too: never a buffer
        raise TypeError("%s takes str, bytes or a buffer, not %s" % (option_name(option), type(value).__name__))
    try:
        view = memoryview(value)  # type: ignore[arg-type]  # any buffer; the TypeError is the check
    except TypeError:
        raise TypeError("%s takes str, bytes or a buffer, not %s"
                        % (option_name(option), type(value).__name__)) from None
    if not view.c_contiguous:
        raise BufferError("%s: memoryview: underlying buffer is not C-contiguous" % option_name(option))
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _c_string(value: object, option: int) -> _CData:
    data = _to_bytes(value, option)
    if 0 in data:
        raise ValueError("%s: value contains a NUL byte" % option_name(option))
    return ffi.new("char[]", data)


def _c_long(value: object, option: int) -> int:
    if not isinstance(value, int):
        raise TypeError("%s takes an int, not %s" % (option_name(option), type(value).__name__))
    if not _LONG_MIN <= value <= _LONG_MAX:
        if option in _UNSIGNED_LONGS and _LONG_MAX < value < _ULONG_SPAN:
            return value - _ULONG_SPAN  # an unsigned bitmask such as HTTPAUTH_ANY
        raise OverflowError("%s: %d does not fit in a C long" % (option_name(option), value))
    return value


class _Form(object):
    """pycurl's HTTPPOST list as a curl_mime (libcurl's successor of
    curl_formadd), freed when the last user lets go.  Items are
    ``(name, value)`` or ``(name, (FORM_option, value, ...))`` with
    FORM_CONTENTS, FORM_FILE, FORM_FILENAME, FORM_CONTENTTYPE, FORM_BUFFER
    and FORM_BUFFERPTR."""

    __slots__ = ("ptr",)

    def __init__(self, h: _CData, fields: object, option: int) -> None:
        if not isinstance(fields, (list, tuple)):
            raise TypeError("HTTPPOST takes a list of (name, value) tuples, not %s" % type(fields).__name__)
        ptr = lib.curl_mime_init(h)
        if ptr == ffi.NULL:
            raise MemoryError("curl_mime_init failed")
        self.ptr = ffi.gc(ptr, lib.curl_mime_free)
        for field in fields:
            if not isinstance(field, (list, tuple)) or len(field) != 2:
                raise TypeError("HTTPPOST items must be (name, value) tuples")
            name, value = field
            part = lib.curl_mime_addpart(self.ptr)
            if part == ffi.NULL:
                raise MemoryError("curl_mime_addpart failed")
            check_easy(lib.curl_mime_name(part, _c_string(name, option)))
            if isinstance(value, (str, bytes)):
                self._data(part, value, option)
            elif isinstance(value, (list, tuple)):
                self._options(part, value, option)
            else:
                raise TypeError("unsupported second type in tuple: %s" % type(value).__name__)

    @staticmethod
    def _data(part: _CData, value: object, option: int) -> None:
        data = _to_bytes(value, option)
        check_easy(lib.curl_mime_data(part, data, len(data)))

    def _options(self, part: _CData, pairs: Union[List[Any], Tuple[Any, ...]], option: int) -> None:
        if len(pairs) % 2:
            raise TypeError("HTTPPOST: a FORM_* tuple holds (option, value) pairs")
        given: Dict[int, object] = {}
        for i in range(0, len(pairs), 2):
            key, value = pairs[i], pairs[i + 1]
            if key not in _FORM_OPTIONS:
                raise TypeError("HTTPPOST: unsupported form option %r" % (key,))
            given[key] = value
        # The content first: FORM_FILE also sets the file name, which
        # FORM_FILENAME or FORM_BUFFER may then replace.
        if _FORM_FILE in given:
            check_easy(lib.curl_mime_filedata(part, _c_string(given[_FORM_FILE], option)))
        for key in (_FORM_CONTENTS, _FORM_BUFFERPTR):
            if key in given:
                self._data(part, given[key], option)
        for key in (_FORM_BUFFER, _FORM_FILENAME):
            if key in given:
                check_easy(lib.curl_mime_filename(part, _c_string(given[key], option)))
        if _FORM_CONTENTTYPE in given:
            check_easy(lib.curl_mime_type(part, _c_string(given[_FORM_CONTENTTYPE], option)))


_FORM_CONTENTS, _FORM_FILE, _FORM_FILENAME, _FORM_CONTENTTYPE, _FORM_BUFFER, _FORM_BUFFERPTR = (
    _opt(n) for n in ("FORM_CONTENTS", "FORM_FILE", "FORM_FILENAME", "FORM_CONTENTTYPE",
                      "FORM_BUFFER", "FORM_BUFFERPTR"))
_FORM_OPTIONS = {_FORM_CONTENTS, _FORM_FILE, _FORM_FILENAME, _FORM_CONTENTTYPE, _FORM_BUFFER,
                 _FORM_BUFFERPTR} - {-1}


class _Slist(object):
    """A curl_slist owned by Python, freed when the last user lets go."""

    __slots__ = ("ptr",)

    def __init__(self, items: object, option: int) -> None:
        if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
            raise TypeError("%s takes a list or tuple of str/bytes, not %s"
                            % (option_name(option), type(items).__name__))
        ptr = ffi.NULL
        try:
            for item in items:
                nxt = lib.curl_slist_append(ptr, _c_string(item, option))
                if nxt == ffi.NULL:
                    raise MemoryError("curl_slist_append failed")
                ptr = nxt
        except BaseException:
            if ptr != ffi.NULL:
                lib.curl_slist_free_all(ptr)
            raise
        self.ptr = ffi.gc(ptr, lib.curl_slist_free_all) if ptr != ffi.NULL else ffi.NULL


def _slist_to_list(ptr: _CData, raw: bool) -> List[Any]:
    out: List[Any] = []  # bytes with raw, else str
    while ptr != ffi.NULL:
        data = ffi.string(ptr.data)
        out.append(data if raw else data.decode("utf-8", "surrogateescape"))
        ptr = ptr.next
    return out


class _SocketCloser(object):
    """The owner libcurl is given for a CLOSESOCKETFUNCTION.  libcurl copies it
    into every connection the handle opens, and a connection can outlive its
    Curl in a CurlMulti's or CurlShare's connection cache (closed at their
    cleanup), so it is a small object of its own, one per Curl: the Curl's
    record keeps it until it is freed, a CurlMulti or CurlShare those of the
    handles that used it until its own cleanup.  Replacing the callback
    replaces it for every connection (as in pycurl); unsetopt() and reset()
    remove it, and a connection closed after that has its socket closed as
    libcurl would."""

    __slots__ = ("closesocket_cb", "owner", "ud", "__weakref__")

    closesocket_cb: Optional[Callable[[int], object]]
    owner: weakref.ref[_EasyRecord]
    ud: _CData

    def __init__(self, func: Callable[[int], object], rec: _EasyRecord) -> None:
        self.closesocket_cb = func
        self.owner = weakref.ref(rec)  # weakly: the record holds its closers
        self.ud = ffi.new_handle(self)

    def callback_failed(self, exc: BaseException) -> None:
        rec = self.owner()
        if rec is not None:
            rec.callback_failed(exc)


_CALLBACK_SLOTS = tuple(sorted(set(_CALLBACK_ATTRS.values())))
# The callbacks whose trampoline's owner is the record (CLOSESOCKETFUNCTION's
# is a _SocketCloser): replacing one that is set only swaps the callable.
_SWAP_ATTRS = {o: a for o, a in _CALLBACK_ATTRS.items() if o != _CLOSESOCKETFUNCTION}
_get_ident = get_ident
_easy_lock = lib.cm_easy_lock
_easy_unlock = lib.cm_easy_unlock
_easy_reclaim = lib.cm_easy_reclaim


class _Lock(Protocol):
    """A record's lock: its own _EasyLock, or its multi's _MultiLock while attached."""

    def acquire(self) -> object: ...

    def release(self) -> object: ...


class _EasyLock(object):
    """The own lock of an easy handle's record: the recursive C mutex of its
    ``struct cm_easy`` (shims.c), so that the fast paths of setopt() and
    getinfo() take it in the same C call as their libcurl call.  This
    object holds only the gate (one per Curl: kept small).

    ``acquire()`` waits in slices of SLICE_MS (in C), so that a signal handler runs
    while another thread holds the mutex.  An exception that handler raises
    as the taking call returns (the result lost) would leave the mutex held
    for good: ``cm_easy_reclaim`` releases it if that call took it."""

    __slots__ = ("gate",)

    def __init__(self, gate: _CData) -> None:
        self.gate = gate

    def acquire(self) -> None:
        gate = self.gate
        try:
            while _easy_lock(gate):
                pass  # not free yet: a loop's back edge, where PyPy runs signal handlers
        except BaseException:
            _easy_reclaim(gate)  # released if that call took it
            raise

    def release(self) -> None:
        _easy_unlock(self.gate)

    def __enter__(self) -> _EasyLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class _EasyRecord(object):
    """The owner record of one ``CURL *`` (see ``_owner.py``).

    States: IDLE -> PERFORMING (Curl.perform, in ``thread``) -> IDLE;
    IDLE -> ATTACHED (CurlMulti.add_handle: ``multi`` is the multi's record,
    and ``lock`` is the multi's lock) -> IDLE (remove_handle); any -> CLOSING
    (closed while its multi is inside a libcurl call: freed when the call
    returns) -> CLOSED; IDLE -> CLOSED (close, or the last reference gone).

    It holds what libcurl points at: ``keep`` (option -> slist, form,
    buffer, sink), ``retired`` (what was replaced while attached: a transfer
    in flight may still read it, so it is freed at the detach), ``closers``,
    the share, the error buffer; and the callables the trampolines call."""

    __slots__ = ("h", "udp", "lock", "own_lock", "gate", "state", "thread", "multi", "keep",
                 "retired", "closers", "sink_h", "share", "share_s", "callback_error",
                 "write_view", "header_view", "__weakref__") + _CALLBACK_SLOTS

    h: Optional[_CData]  # the CURL *, None once freed
    udp: _CData
    lock: _Lock
    own_lock: _EasyLock
    gate: _CData
    state: str
    thread: Optional[int]
    multi: Optional[_MultiRecord]
    keep: Dict[int, Any]  # option -> _Slist, _Form, _Sink, cdata buffer, another module's object
    retired: Optional[List[Any]]
    closers: Tuple[_SocketCloser, ...]
    sink_h: _CData
    share: Optional[CurlShare]
    share_s: Optional[_CData]
    callback_error: Optional[BaseException]
    write_view: bool
    header_view: bool
    # The callables the trampolines call (None: not set); see _callbacks._EasyOwner.
    write_cb: Optional[Callable[[Any], object]]
    header_cb: Optional[Callable[[Any], object]]
    read_cb: Optional[Callable[[int], object]]
    xferinfo_cb: Optional[Callable[[int, int, int, int], object]]
    progress_cb: Optional[Callable[[float, float, float, float], object]]
    debug_cb: Optional[Callable[[int, bytes], object]]
    seek_cb: Optional[Callable[[int, int], object]]
    ioctl_cb: Optional[Callable[[int], object]]
    sockopt_cb: Optional[Callable[[int, int], object]]
    opensocket_cb: Optional[Callable[..., object]]
    closesocket_cb: Optional[Callable[[int], object]]
    ssh_key_cb: Optional[Callable[..., object]]
    ssh_hostkey_cb: Optional[Callable[[int, bytes], object]]
    prereq_cb: Optional[Callable[[str, str, int, int], object]]
    trailer_cb: Optional[Callable[[], object]]
    resolver_start_cb: Optional[Callable[[], object]]
    fnmatch_cb: Optional[Callable[[bytes, bytes], object]]
    hstsread_cb: Optional[Callable[[], object]]
    hstswrite_cb: Optional[Callable[..., object]]

    def __init__(self, h: _CData) -> None:
        self.h = None  # set last: if this fails, the caller frees h, not __del__
        self.udp = ffi.NULL  # set by Curl._adopt: the Curl holds the owning handle
        # Memory owned by this cdata, freed only with the last reference
        # (never by a destructor that a collected cycle could run first).
        gate = ffi.new("struct cm_easy *")
        lib.cm_easy_init(gate, h)
        # The C side of the record: its lock, and the idle flag the fast
        # paths read.  idle is written only under that lock.
        self.gate = gate
        self.lock = self.own_lock = _EasyLock(self.gate)
        self.state = IDLE
        self.thread = None
        self.multi = None
        self.keep = {}
        self.retired = None
        self.closers = ()
        self.sink_h = ffi.NULL
        self.share = self.share_s = None
        self.callback_error = None
        self.clear_callbacks()
        self.h = h

    def bind(self) -> None:
        check_easy(lib.cm_easy_bind(self.h, self.udp))
        check_easy(lib.cm_easy_setopt_ptr(self.h, lib.CURLOPT_ERRORBUFFER, self.gate.errbuf))

    def clear_callbacks(self) -> None:
        for attr in _CALLBACK_SLOTS:
            setattr(self, attr, None)
        for closer in self.closers:
            closer.closesocket_cb = None
        self.write_view = self.header_view = False

    def callback_failed(self, exc: BaseException) -> None:
        """Called by the trampolines: the first exception wins, except that a
        KeyboardInterrupt or SystemExit replaces an ordinary exception (it
        must reach the caller).  Once one is stored, every later callback of
        the transfer aborts at once (see _callbacks._halted)."""
        stored = self.callback_error
        if stored is None or (isinstance(stored, Exception) and not isinstance(exc, Exception)):
            self.callback_error = exc
        if not isinstance(exc, Exception):
            # KeyboardInterrupt, SystemExit: also raised by the CurlMulti call.
            multi = self.multi
            if multi is not None:
                multi.callback_failed(exc)

    # -- state checks (under the lock) -----------------------------------------

    def enter(self, method: str, mutating: bool = True) -> _CData:
        """The handle, for a method that may run now.  Under ``self.lock``.
        ``mutating``: the method changes what a running transfer reads, so it
        is refused from the transfer's own callbacks too (as in pycurl)."""
        state = self.state
        if state is IDLE:
            return self.h
        if state is ATTACHED:
            if self.multi.enter(method) and mutating:  # type: ignore[union-attr]  # ATTACHED: multi is set
                raise misuse("cannot invoke %s() - perform() is currently running" % method)
            return self.h
        if state is PERFORMING:
            if mutating:
                raise misuse("cannot invoke %s() - perform() is currently running" % method)
            if self.thread != _get_ident():
                raise misuse("cannot invoke %s() - perform() is currently running on another thread"
                             % method)
            return self.h
        raise closed_error("Curl object", method)

    def transfer_error(self, code: int) -> error:
        """The ``error`` for a finished transfer's CURLcode (the message from
        the error buffer when libcurl left one)."""
        if not code:
            code = _E_ABORTED_BY_CALLBACK
        message = ffi.string(self.gate.errbuf).decode("utf-8", "surrogateescape") if self.h is not None else ""
        return easy_error(code, message or None)

    # -- what libcurl points at --------------------------------------------------

    def hold(self, option: int, obj: object) -> None:
        """Keep obj (None: nothing) as what libcurl points at for option.  The
        object it replaces is freed now, or, while the handle is attached to a
        CurlMulti (a transfer may be reading it), when it is detached."""
        old = self.keep.pop(option, None)
        if obj is not None:
            self.keep[option] = obj
        if old is not None and self.state is ATTACHED:
            if self.retired is None:
                self.retired = []
            self.retired.append(old)

    def forget_sink(self) -> None:
        """A C sink stops reading this handle's Content-Length."""
        sink = self.keep.pop(_WRITEFUNCTION, None)
        if sink is not None:
            lib.cm_sink_detach(sink._sink, self.sink_h)

    def refuse_attached(self, what: str) -> None:
        """For what libcurl cannot take while a transfer may be in flight."""
        if self.state is ATTACHED:
            raise misuse("cannot %s - the Curl object is attached to a CurlMulti "
                         "(remove_handle() it first)" % what)

    def set_callback(self, h: _CData, option: int, func: Callable[..., object], view: bool = False) -> None:
        attr = _CALLBACK_ATTRS.get(option)
        if attr is None:
            raise TypeError("callback option %s is not supported by curlmulti" % option_name(option))
        if not callable(func):
            raise TypeError("%s takes a callable, not %s" % (option_name(option), type(func).__name__))
        view_attr = _VIEW_ATTRS.get(option)
        if view_attr is not None:
            setattr(self, view_attr, bool(view))
        # A callable in the slot means the trampoline is in place with this
        # record as its owner: then only the callable changes, unless the new
        # one is a C sink's write() (never stored there) or the option is
        # CLOSESOCKETFUNCTION (whose owner is a _SocketCloser).
        if getattr(self, attr) is not None and option != _CLOSESOCKETFUNCTION and (
                option != _WRITEFUNCTION or not isinstance(getattr(func, "__self__", None), _Sink)):
            setattr(self, attr, func)
            return
        if option == _WRITEFUNCTION:
            sink = getattr(func, "__self__", None)
            if isinstance(sink, _Sink) and getattr(func, "__func__", None) is _Sink.write:
                # A C sink: libcurl writes into it with no Python call.
                self.forget_sink()
                check_easy(lib.cm_easy_set_sink(h, sink._sink))
                self.keep[option] = sink
                self.sink_h = h
                self.write_cb = None
                return
            self.forget_sink()
        owner = self.udp
        if option == _CLOSESOCKETFUNCTION:
            if self.closers:
                closer = self.closers[0]
                closer.closesocket_cb = func
            else:
                closer = _SocketCloser(func, self)
                self.closers = (closer,)
            owner = closer.ud
        if _C_WRITE and option in _VIEW_ATTRS:
            # CPython, WRITEFUNCTION or HEADERFUNCTION: libcurl calls the
            # callback through a C trampoline (_decl/cwrite.c).
            check_easy(lib.cm_easy_set_cwrite(h, option, self.gate, ffi.cast("void *", id(self))))
        else:
            check_easy(lib.cm_easy_set_callback(h, option, owner))
        setattr(self, attr, func)

    def use_share(self, h: _CData, share: Optional[CurlShare], what: str) -> None:
        """CURLOPT_SHARE: stop using the current share, use ``share`` (a
        CurlShare, or None).  Refused while attached to a CurlMulti: libcurl
        picked the connection cache of a transfer there when it was added."""
        self.refuse_attached(what)
        old, old_s = self.share, self.share_s
        new_s = share._rec.s if share is not None else None
        if share is not None and new_s is None:
            raise misuse("CurlShare is closed")  # pycurl's words
        code = lib.cm_easy_use_share(h, ffi.NULL if old_s is None else old_s,
                                     ffi.NULL if new_s is None else new_s)
        if code:
            if share is not None and share._rec.s is None:
                raise misuse("CurlShare is closed")  # closed by another thread meanwhile
            raise easy_error(code)
        self.share, self.share_s = share, new_s
        if share is not None:
            share._rec.join(self)
        if old is not None:
            old._rec.leave(self)

    def leave_share(self, share_rec: object) -> None:
        """CurlShare.close(): detach from it unless a transfer may be using it
        (then the handle keeps libcurl's share until it is detached or closed)."""
        lock = acquire(self)
        try:
            if self.share is not None and self.share._rec is share_rec and self.state is IDLE:
                self.use_share(self.h, None, "unset SHARE")
        finally:
            lock.release()

    def drop_share(self) -> None:
        """After curl_easy_cleanup: the handle no longer uses its share."""
        share, s = self.share, self.share_s
        self.share = self.share_s = None
        if share is not None:
            share._rec.leave(self)
        lib.cm_share_leave(s)  # share (a local) keeps the closers alive meanwhile

    # -- freeing -------------------------------------------------------------

    def take_handle(self) -> Optional[_CData]:
        """Under the lock: the state becomes CLOSED and the caller owns the
        CURL * (None if it was freed already)."""
        h, self.h = self.h, None
        self.state = CLOSED
        lib.cm_easy_retire(self.gate)  # waits for a fast path in flight
        self.multi = None
        self.lock = self.own_lock
        return h

    def free(self, h: _CData, quiet: bool = False) -> None:
        """curl_easy_cleanup(h) and let go of everything libcurl pointed at.
        ``quiet``: the Curl is gone, so the trampolines' userdata is no longer
        valid: remove them first (the CLOSESOCKETFUNCTION stays: its owner is
        the closer, which this record still holds)."""
        if quiet:
            lib.cm_easy_quiet(h)
        lib.curl_easy_cleanup(h)
        self.release()

    def release(self) -> None:
        if self.share_s is not None:
            self.drop_share()
        self.forget_sink()
        self.keep = {}
        self.retired = None
        self.closers = ()  # a CurlMulti or CurlShare may still need them: they hold their own
        self.clear_callbacks()

    def __del__(self) -> None:
        # The last reference is gone (the Curl was dropped unclosed): never
        # attached nor performing then, as both hold the Curl.
        h = self.h
        if h is not None:
            self.h = None
            self.state = CLOSED
            lib.cm_easy_retire(self.gate)
            self.free(h, quiet=True)


class Curl(Owned):
    """A libcurl easy handle (``curl_easy_init``), pycurl-compatible.

    Callbacks are called with pycurl's signatures.  An exception raised in a
    callback aborts the transfer; ``perform()`` then raises ``error`` with
    the exception as ``__cause__``, and ``callback_error`` holds it (also for
    transfers run by a ``CurlMulti``).

    Thread-safe: every method checks the handle's state under its lock, so a
    call from another thread while ``perform()`` runs is refused with
    ``error``, as pycurl does.  The state lives in ``self._rec`` (see
    ``_owner.py``); dropping the last reference frees the handle at once."""

    _ud: Optional[_CData] = None  # the ffi.new_handle libcurl's callback data points at
    # The owner record.  None (Owned's default) only in an object whose
    # __init__ never ran: the methods check for that before using it.
    _rec: _EasyRecord

    def __init__(self) -> None:
        if self._rec is not None:
            return  # already set up (or closed): as in pycurl, a second __init__ does nothing
        h = lib.curl_easy_init()
        if h == ffi.NULL:
            raise error(lib.CURLE_FAILED_INIT, "curl_easy_init() failed")
        self._adopt(h)
        check_easy(_setopt_str(h, _USERAGENT, _DEFAULT_AGENT))

    def _adopt(self, h: _CData) -> None:
        rec = None
        try:
            rec = _EasyRecord(h)
            self._ud = ffi.new_handle(rec)
            rec.udp = ffi.cast("void *", self._ud)
            self._rec = rec
            rec.bind()
        except BaseException:
            if rec is not None and rec.h is not None:
                # The record owns h by now: let it go first, or its __del__
                # would free h a second time.
                rec.h = None
                rec.state = CLOSED
                lib.cm_easy_retire(rec.gate)
            lib.curl_easy_cleanup(h)
            raise

    @property
    def callback_error(self) -> Optional[BaseException]:
        """The exception a callback raised during the last transfer, or None."""
        return self._rec.callback_error

    @callback_error.setter
    def callback_error(self, value: Optional[BaseException]) -> None:
        self._rec.callback_error = value

    @property
    def closed(self) -> bool:
        rec = self._rec
        return rec is None or rec.h is None or rec.state is CLOSING

    def _enter(self, method: str, mutating: bool = True) -> Tuple[Any, Any]:
        """Acquire the lock and check the state: (lock, handle).  The caller
        releases the lock."""
        rec = self._rec
        if rec is None:
            raise closed_error("Curl object", method)
        while True:
            lock = acquire(rec)
            try:
                h = rec.enter(method, mutating)
            except BaseException:
                lock.release()
                raise
            if rec.lock is lock:
                return lock, h
            lock.release()  # detached while waiting for the multi's wait to end: again

    # -- options ------------------------------------------------------------

    def setopt(self, option: int, value: Any, *, use_memoryview: bool = False) -> None:
        """Set an option (``curl_easy_setopt``); pycurl's value rules.  With
        ``use_memoryview=True`` (WRITEFUNCTION and HEADERFUNCTION only), the
        callback receives a read-only memoryview of libcurl's buffer instead
        of bytes, valid until it returns."""
        if option in _DEPRECATED_SETOPT:
            _deprecations.setopt(option, value)
        rec = self._rec
        if type(option) is int and rec is not None and not use_memoryview:
            # The fast path: an idle handle's string and long options, the
            # state checked and libcurl called under its lock in one C call.
            kind = _KINDS.get(option)
            if kind == _STRING:
                if type(value) is str:
                    try:
                        value = value.encode("ascii")
                    except UnicodeEncodeError:
                        kind = None  # the slow path raises it, after its checks
                if type(value) is bytes and kind is not None and 0 not in value:
                    code = _fast_setopt_str(rec.gate, option, value)
                    if code == 0:
                        return
                    if code != _BUSY:
                        raise easy_error(code)
            elif kind == _LONG and type(value) is int and _LONG_MIN <= value <= _LONG_MAX:
                code = _fast_setopt_long(rec.gate, option, value)
                if code == 0:
                    return
                if code != _BUSY:
                    raise easy_error(code)
            elif kind == _FUNCTION:
                # Replacing a Python callback whose trampoline is in place
                # only swaps the callable (what set_callback() does then).
                attr = _SWAP_ATTRS.get(option)
                if attr is not None and callable(value) and (
                        option != _WRITEFUNCTION or not isinstance(getattr(value, "__self__", None), _Sink)):
                    gate = rec.gate
                    try:  # _EasyLock.acquire() written out: a hot path
                        while _easy_lock(gate):
                            pass
                    except BaseException:
                        _easy_reclaim(gate)  # released if that call took it
                        raise
                    try:
                        if rec.lock is rec.own_lock and rec.state is IDLE and getattr(rec, attr) is not None:
                            setattr(rec, attr, value)
                            view_attr = _VIEW_ATTRS.get(option)
                            if view_attr is not None:
                                setattr(rec, view_attr, False)
                            return
                    finally:
                        _easy_unlock(gate)
        if rec is None:  # never initialised: _enter raises
            self._enter("setopt")
        lock = rec.lock
        lock.acquire()
        if rec.lock is not lock or rec.state is not IDLE:
            lock.release()
            lock, h = self._enter("setopt")
        else:
            h = rec.h
        try:
            self._setopt(rec, h, option, value, use_memoryview)
        finally:
            lock.release()

    def _setopt(self, rec: _EasyRecord, h: _CData, option: int, value: Any, use_memoryview: bool) -> None:
        if use_memoryview and option not in _VIEW_ATTRS:
            raise TypeError("use_memoryview is only for WRITEFUNCTION and HEADERFUNCTION")
        kind = _KINDS.get(option) if type(option) is int else None
        if kind is None:
            kind = _option_kind(option)
        if value is None:
            if option not in _UNSET_BY_NONE:
                raise TypeError("unsetopt() is not supported for this option: %s" % option_name(option))
            return self._unsetopt(rec, h, option)
        if kind == _STRING:
            # libcurl copies string options: the bytes are passed as they are.
            if type(value) is str:
                value = value.encode("ascii")
            elif type(value) is not bytes:
                value = _to_bytes(value, option)
            if 0 in value:  # a NUL byte (searching for the int is the fast way)
                raise ValueError("%s: value contains a NUL byte" % option_name(option))
            code = _setopt_str(h, option, value)
            if code:
                raise easy_error(code)
        elif kind == _LONG:
            check_easy(lib.cm_easy_setopt_long(h, option, _c_long(value, option)))
        elif kind == _FUNCTION:
            rec.set_callback(h, option, value, use_memoryview)
        elif kind == _SLIST:
            slist = _Slist(value, option)
            check_easy(lib.cm_easy_setopt_ptr(h, option, slist.ptr))
            rec.hold(option, slist)  # libcurl keeps the pointer
        elif kind == _OFF_T:
            if not isinstance(value, int):
                raise TypeError("%s takes an int, not %s" % (option_name(option), type(value).__name__))
            check_easy(lib.cm_easy_setopt_off_t(h, option, value))
        elif kind == _BLOB:
            data = _blob_view(value, option)
            blob = ffi.new("struct curl_blob *", {"data": ffi.from_buffer(data), "len": len(data), "flags": 1})
            check_easy(lib.cm_easy_setopt_blob(h, option, blob))  # CURL_BLOB_COPY
        elif option in _FILE_OPTIONS:
            func_option, method = _FILE_OPTIONS[option]
            func = getattr(value, method, None)
            if not callable(func):
                raise TypeError("%s takes an object with a %s() method" % (option_name(option), method))
            rec.set_callback(h, func_option, func)
        elif option == _HTTPPOST:
            # libcurl sends from the form set now, so replacing it would
            # change a body in flight.
            rec.refuse_attached("set HTTPPOST")
            form = _Form(h, value, option)
            check_easy(lib.cm_easy_setopt_ptr(h, _MIMEPOST, form.ptr))
            rec.hold(option, form)  # libcurl reads it at each transfer
            rec.hold(_MIMEPOST, None)  # a CurlMime set before (the same libcurl option)
        elif option == _POSTFIELDS:
            data = _to_bytes(value, option)
            buf = ffi.new("char[]", data)
            check_easy(lib.cm_easy_setopt_off_t(h, _POSTFIELDSIZE_LARGE, len(data)))
            check_easy(lib.cm_easy_setopt_ptr(h, option, buf))
            rec.hold(option, buf)  # libcurl keeps the pointer
        elif option == _COPYPOSTFIELDS:
            data = _to_bytes(value, option)
            check_easy(lib.cm_easy_setopt_off_t(h, _POSTFIELDSIZE_LARGE, len(data)))
            check_easy(lib.cm_easy_setopt_ptr(h, option, ffi.new("char[]", data)))
        elif option in OBJECT_OPTIONS:
            convert, refuse_attached = OBJECT_OPTIONS[option]
            if refuse_attached:  # libcurl sends from it: a body in flight would change
                rec.refuse_attached("set %s" % option_name(option))
            ptr, kept = convert(value, rec)
            check_easy(lib.cm_easy_setopt_ptr(h, option, ptr))
            rec.hold(option, kept)
            if option == _MIMEPOST:
                rec.hold(_HTTPPOST, None)  # the same libcurl option
        elif option == _SHARE:
            if not isinstance(value, CurlShare):
                raise TypeError("SHARE takes a CurlShare, not %s" % type(value).__name__)
            if value._rec is None or value._rec.s is None:
                raise misuse("CurlShare is closed")  # pycurl's words
            if value is not rec.share:
                rec.use_share(h, value, "set SHARE")
        else:
            raise TypeError("%s is not supported by curlmulti.Curl.setopt" % option_name(option))

    def setopt_string(self, option: int, value: str) -> None:
        """Set a string option (libcurl copies it) without the per-option
        rules of setopt(); only options libcurl lists as strings."""
        if option in _DEPRECATED_SETOPT:
            _deprecations.setopt(option, value)
        lock, h = self._enter("setopt_string")
        try:
            if _option_kind(option) != _STRING:
                raise TypeError("%s is not a string option" % option_name(option))
            check_easy(lib.cm_easy_setopt_ptr(h, option, _c_string(value, option)))
        finally:
            lock.release()

    def unsetopt(self, option: int) -> None:
        """Reset an option to libcurl's default (NULL for pointers)."""
        lock, h = self._enter("unsetopt")
        try:
            self._unsetopt(self._rec, h, option)
        finally:
            lock.release()

    def _unsetopt(self, rec: _EasyRecord, h: _CData, option: int) -> None:
        kind = _option_kind(option)
        if kind == _FUNCTION:
            attr = _CALLBACK_ATTRS.get(option)
            if attr is None:
                raise TypeError("callback option %s is not supported by curlmulti" % option_name(option))
            check_easy(lib.cm_easy_set_callback(h, option, ffi.NULL))
            setattr(rec, attr, None)
            if option == _CLOSESOCKETFUNCTION:
                for closer in rec.closers:
                    closer.closesocket_cb = None
            if option == _WRITEFUNCTION:
                rec.forget_sink()
        elif option in _FILE_OPTIONS:
            self._unsetopt(rec, h, _FILE_OPTIONS[option][0])
        elif option == _HTTPPOST:
            rec.refuse_attached("unset HTTPPOST")
            check_easy(lib.cm_easy_setopt_ptr(h, _MIMEPOST, ffi.NULL))
            rec.hold(option, None)
            rec.hold(_MIMEPOST, None)
        elif kind in (_STRING, _SLIST, _BLOB) or option in (_POSTFIELDS, _COPYPOSTFIELDS):
            check_easy(lib.cm_easy_setopt_ptr(h, option, ffi.NULL))
            if option in (_POSTFIELDS, _COPYPOSTFIELDS):
                check_easy(lib.cm_easy_setopt_off_t(h, _POSTFIELDSIZE_LARGE, -1))
            rec.hold(option, None)
        elif option in OBJECT_OPTIONS:
            if OBJECT_OPTIONS[option][1]:
                rec.refuse_attached("unset %s" % option_name(option))
            check_easy(lib.cm_easy_setopt_ptr(h, option, ffi.NULL))
            rec.hold(option, None)
            if option == _MIMEPOST:
                rec.hold(_HTTPPOST, None)
        elif option == _SHARE:
            if rec.share is not None:
                rec.use_share(h, None, "unset SHARE")
        elif option in _LONG_DEFAULTS:
            check_easy(lib.cm_easy_setopt_long(h, option, _LONG_DEFAULTS[option]))
        elif option in _RESERVED:
            raise TypeError("%s is not supported by curlmulti.Curl.unsetopt" % option_name(option))
        else:
            raise TypeError("unsetopt() is not supported for integer option %s; set its default value"
                            % option_name(option))

    # -- transfer -----------------------------------------------------------

    def perform(self) -> None:
        """Run the transfer (``curl_easy_perform``); raises ``error`` on failure."""
        rec = self._rec
        if rec is None:  # never initialised: _enter raises
            self._enter("perform")
        lock = acquire(rec)
        try:
            if rec.state is not IDLE:
                if rec.state is ATTACHED:
                    raise misuse("cannot invoke perform() - the Curl object is attached to a CurlMulti")
                rec.enter("perform")  # raises: closed, or running
            h = rec.h
            rec.state = PERFORMING
            rec.gate.idle = 0  # under own_lock
            rec.thread = _get_ident()
            rec.callback_error = None
        finally:
            lock.release()
        try:
            code = lib.curl_easy_perform(h)
        finally:
            lock = acquire(rec)
            rec.state = IDLE
            rec.gate.idle = 1  # under own_lock
            rec.thread = None
            lock.release()
        exc = rec.callback_error
        if _callbacks.UNCLAIMED and exc is None:
            exc = _callbacks.take_unclaimed()
        if code or exc is not None:
            raise_from_callback(rec.transfer_error(code), exc)

    def perform_rb(self) -> bytes:
        """Perform and return the body as bytes; the write callback or sink
        set before is restored afterwards."""
        buf = io.BytesIO()
        rec = self._rec
        lock, _ = self._enter("perform_rb")
        try:
            previous = rec.write_cb
            sink = rec.keep.get(_WRITEFUNCTION)
        finally:
            lock.release()
        self.setopt(_WRITEFUNCTION, buf.write)
        try:
            self.perform()
        finally:
            if not self.closed:
                if sink is not None:
                    self.setopt(_WRITEFUNCTION, sink.write)
                elif previous is None:
                    self.unsetopt(_WRITEFUNCTION)
                else:
                    self.setopt(_WRITEFUNCTION, previous)
        return buf.getvalue()

    def perform_rs(self) -> str:
        """Perform and return the body as str: UnicodeDecodeError if it is
        not UTF-8 (as pycurl)."""
        return self.perform_rb().decode("utf-8")

    def pause(self, bitmask: int = _PAUSE_ALL) -> None:
        """``curl_easy_pause``: PAUSE_RECV, PAUSE_SEND, PAUSE_ALL (the
        default), PAUSE_CONT.
        Only from the thread that runs the transfer (or its callbacks):
        unpausing delivers buffered data through the write callback, in the
        calling thread."""
        if not isinstance(bitmask, int):
            raise TypeError("pause() takes an int bitmask")
        lock, h = self._enter("pause", mutating=False)
        rec = self._rec
        try:
            multi = rec.multi
            if rec.state is PERFORMING or (multi is not None and multi.g.depth):
                # This thread runs the transfer (enter() refused any other):
                # libcurl is ours, callbacks included, with no lock held.
                lock.release()
                lock = None
                code = lib.curl_easy_pause(h, bitmask)
            elif multi is not None:
                # Attached, and the multi idle: run it as one of the multi's
                # calls, so that callbacks it runs defer what they close.
                code = multi.call_locked(lib.curl_easy_pause, h, bitmask)
            else:
                code = lib.curl_easy_pause(h, bitmask)
        finally:
            if lock is not None:
                lock.release()
        if code:
            raise error(code, "pause/unpause failed")  # pycurl's words

    def unpause(self) -> None:
        """Same as ``pause(PAUSE_CONT)``."""
        self.pause(lib.CURLPAUSE_CONT)

    # -- information ----------------------------------------------------------

    def getinfo_raw(self, info: int) -> Any:
        """``curl_easy_getinfo``; strings as bytes."""
        return self._getinfo(info, True, "getinfo_raw")

    def getinfo(self, info: int) -> Any:
        """``curl_easy_getinfo``; strings as str."""
        if type(info) is int and info & _INFO_TYPEMASK == _INFO_LONG:
            rec = self._rec
            if rec is None:  # never initialised: _enter raises
                self._enter("getinfo")
            # The fast path: an idle handle, checked and read in one C call.
            value = _fast_getinfo_long(rec.gate, info)
            if value != _LONG_MIN:
                return value
            code = _getinfo_code()
            if code != _BUSY_INFO:
                check_easy(code)
                return value
            lock = rec.lock
            lock.acquire()
            if rec.lock is not lock or (rec.state is not IDLE and (
                    rec.state is not ATTACHED
                    or rec.multi.g.depth)):  # type: ignore[union-attr]  # ATTACHED: multi is set
                lock.release()
                lock, h = self._enter("getinfo", mutating=False)
            else:
                h = rec.h
            try:
                value = lib.cm_easy_getinfo_long_fast(h, info)  # RESPONSE_CODE and co: one C call
            finally:
                lock.release()
            if value == _LONG_MIN:
                check_easy(lib.cm_getinfo_code())
            return value
        return self._getinfo(info, False, "getinfo")

    def _getinfo(self, info: int, raw: bool, method: str) -> Any:
        if not isinstance(info, int):
            raise TypeError("info must be an int, not %s" % type(info).__name__)
        if info in _DEPRECATED_GETINFO:
            _deprecations.warn(_DEPRECATED_GETINFO[info])
        if info == _INFO_PRIVATE:
            raise ValueError("INFO_PRIVATE is reserved by curlmulti")
        lock, h = self._enter(method, mutating=False)
        try:
            return _read_info(h, info, raw)
        finally:
            lock.release()

    def errstr(self) -> str:
        """The message libcurl left in the error buffer by the last transfer."""
        return self.errstr_raw().decode("utf-8", "surrogateescape")

    def errstr_raw(self) -> bytes:
        lock, _ = self._enter("errstr", mutating=False)
        try:
            return ffi.string(self._rec.gate.errbuf)
        finally:
            lock.release()

    # -- CONNECT_ONLY ---------------------------------------------------------

    def recv(self, buffersize: int) -> bytes:
        """``curl_easy_recv`` on a CONNECT_ONLY connection: up to buffersize
        bytes (b"" once the peer has closed).  BlockingIOError when no data
        is there yet."""
        if not isinstance(buffersize, int):
            raise TypeError("recv() takes an int")
        if buffersize < 0:
            raise ValueError("recv(): buffersize must not be negative")
        buf = ffi.new("char[]", buffersize)
        n = ffi.new("size_t *")
        lock, h = self._enter("recv")
        try:
            self._check_io(lib.curl_easy_recv(h, buf, buffersize, n))
        finally:
            lock.release()
        return ffi.unpack(buf, n[0])

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        """``curl_easy_recv`` into a writable buffer; returns the count."""
        try:
            view = ffi.from_buffer(buffer, require_writable=True)
        except (TypeError, BufferError):
            raise TypeError("recv_into() takes a writable bytes-like object, not %s"
                            % type(buffer).__name__) from None
        if not isinstance(nbytes, int):
            raise TypeError("recv_into(): nbytes must be an int")
        if nbytes < 0 or nbytes > len(view):
            raise ValueError("recv_into(): nbytes out of range")
        n = ffi.new("size_t *")
        lock, h = self._enter("recv_into")
        try:
            self._check_io(lib.curl_easy_recv(h, view, nbytes or len(view), n))
        finally:
            lock.release()
        count: int = n[0]
        return count

    def send(self, data: Any) -> int:
        """``curl_easy_send`` on a CONNECT_ONLY connection: returns how many
        bytes were sent.  BlockingIOError when none could be."""
        if isinstance(data, str):
            raise TypeError("send() takes a bytes-like object, not str")
        view = ffi.from_buffer(data)
        n = ffi.new("size_t *")
        lock, h = self._enter("send")
        try:
            self._check_io(lib.curl_easy_send(h, view, len(view), n))
        finally:
            lock.release()
        count: int = n[0]
        return count

    def _check_io(self, code: int) -> None:
        if code == _E_AGAIN:
            raise BlockingIOError(errno.EAGAIN, "no data available now (CURLE_AGAIN)")
        if code:
            raise self._rec.transfer_error(code)

    # -- pycurl extras ----------------------------------------------------------

    def multi(self) -> "Optional[CurlMulti]":
        """The CurlMulti this handle is attached to, or None (also once the
        handle is closed, as in pycurl)."""
        if self.closed:
            return None
        try:
            lock, _ = self._enter("multi", mutating=False)
        except error:
            if self.closed:  # closed by another thread meanwhile
                return None
            raise
        try:
            multi = self._rec.multi
            return multi.public() if multi is not None else None
        finally:
            lock.release()

    def share(self) -> Optional[CurlShare]:
        """The CurlShare this handle uses (SHARE), or None (also once the
        handle is closed, as in pycurl)."""
        if self.closed:
            return None
        lock, _ = self._enter("share", mutating=False)
        try:
            return self._rec.share
        finally:
            lock.release()

    def set_ca_certs(self, certs: Any) -> None:
        """Trust the PEM certificates in ``certs`` (str or bytes) for the
        next connections, through CAINFO_BLOB: unlike pycurl, they replace
        the default CA bundle rather than adding to it."""
        self.setopt(_CAINFO_BLOB, certs)

    # -- life cycle ---------------------------------------------------------

    def reset(self) -> None:
        """``curl_easy_reset``: every option back to its default.  Refused
        while the handle is attached to a CurlMulti: libcurl's reset frees
        the state of a transfer in flight (remove_handle() first).  The
        SHARE stays attached, as libcurl's reset keeps shares."""
        lock, h = self._enter("reset")
        rec = self._rec
        try:
            rec.refuse_attached("invoke reset()")
            lib.curl_easy_reset(h)
            rec.forget_sink()
            rec.keep = {}  # libcurl no longer points at them
            rec.clear_callbacks()
            rec.bind()
            check_easy(_setopt_str(h, _USERAGENT, _DEFAULT_AGENT))
        finally:
            lock.release()

    def duphandle(self) -> "Curl":
        """A copy with the same options (``curl_easy_duphandle``); the copy owns
        its callbacks and shares the buffers libcurl points at.  It has no
        SHARE: libcurl's duphandle does not copy it.  As in pycurl, the copy
        is of the same class and has the attributes set on this object (a
        shallow copy of them)."""
        lock, h = self._enter("duphandle")
        rec = self._rec
        try:
            h2 = lib.curl_easy_duphandle(h)
            if h2 == ffi.NULL:
                raise error(lib.CURLE_OUT_OF_MEMORY, "curl_easy_duphandle() failed")
            cls = type(self)
            dup = cls.__new__(cls)
            dup._adopt(h2)
            try:
                rec2 = dup._rec
                rec2.keep = dict(rec.keep)
                for kept in rec2.keep.values():
                    copied = getattr(kept, "duplicated", None)  # a MIMEPOST's callbacks
                    if copied is not None:
                        copied()
                for option, attr in _CALLBACK_ATTRS.items():
                    func = getattr(rec, attr)
                    if func is not None:
                        view_attr = _VIEW_ATTRS.get(option)
                        rec2.set_callback(h2, option, func,
                                          view_attr is not None and getattr(rec, view_attr))
                sink = rec.keep.get(_WRITEFUNCTION)
                if sink is not None:
                    rec2.keep.pop(_WRITEFUNCTION)
                    rec2.set_callback(h2, _WRITEFUNCTION, sink.write)
                attrs = vars(dup)
                for name, value in vars(self).items():
                    if name not in attrs:  # not the copy's own _rec and _ud
                        attrs[name] = value
            except BaseException:
                dup.close()
                raise
        finally:
            lock.release()
        return dup

    def close(self) -> None:
        """Detach from any CurlMulti and free the handle.  Idempotent.
        Refused while perform() runs; from a callback of a CurlMulti's call,
        the handle reads as closed at once and is freed when the call
        returns."""
        rec = self._rec
        if rec is None:
            return
        while True:
            lock = acquire(rec)
            try:
                state = rec.state
                if state is CLOSED or state is CLOSING:
                    return
                if state is PERFORMING:
                    rec.enter("close")  # raises
                if state is ATTACHED:
                    # detach() may defer the cleanup itself; ATTACHED: multi is set
                    if rec.multi.detach(rec, self, True, "close"):  # type: ignore[union-attr]
                        return
                    continue  # detached by another thread meanwhile: close it as it is now
                h = rec.take_handle()
            finally:
                lock.release()
            rec.free(h)
            return

    def __repr__(self) -> str:
        return "<curlmulti.Curl %s>" % ("closed" if self.closed else "at 0x%x" % id(self))


def _read_info(h: _CData, info: int, raw: bool) -> Any:
    kind = info & _INFO_TYPEMASK
    if kind == lib.CM_INFO_LONG:
        out = ffi.new("long *")
        check_easy(lib.cm_easy_getinfo_long(h, info, out))
        return out[0]
    if kind == lib.CM_INFO_DOUBLE:
        out = ffi.new("double *")
        check_easy(lib.cm_easy_getinfo_double(h, info, out))
        return out[0]
    if kind == lib.CM_INFO_STRING:
        out = ffi.new("char **")
        check_easy(lib.cm_easy_getinfo_string(h, info, out))
        if out[0] == ffi.NULL:
            return None
        data = ffi.string(out[0])
        return data if raw else data.decode("utf-8", "surrogateescape")
    if kind == lib.CM_INFO_OFF_T:
        out = ffi.new("curl_off_t *")
        check_easy(lib.cm_easy_getinfo_off_t(h, info, out))
        return out[0]
    if kind == lib.CM_INFO_SOCKET:
        out = ffi.new("curl_socket_t *")
        check_easy(lib.cm_easy_getinfo_socket(h, info, out))
        return out[0]
    if kind == lib.CM_INFO_SLIST and info == _INFO_CERTINFO:
        out = ffi.new("void **")
        check_easy(lib.cm_easy_getinfo_ptr(h, info, out))
        certinfo = ffi.cast("struct curl_certinfo *", out[0])
        certs = []
        if certinfo != ffi.NULL:
            for i in range(certinfo.num_of_certs):
                fields = []
                for line in _slist_to_list(certinfo.certinfo[i], raw):
                    sep = b":" if raw else ":"
                    key, _, val = line.partition(sep)
                    fields.append((key, val))
                certs.append(fields)
        return certs
    if kind == lib.CM_INFO_SLIST and info in _INFO_SLISTS:
        out = ffi.new("struct curl_slist **")
        check_easy(lib.cm_easy_getinfo_slist(h, info, out))
        try:
            return _slist_to_list(out[0], raw)
        finally:
            lib.curl_slist_free_all(out[0])
    raise error(_E_UNKNOWN_OPTION, "getinfo: unsupported info %d" % info)


for _name, _value in CONSTANTS.items():
    setattr(Curl, _name, _value)
