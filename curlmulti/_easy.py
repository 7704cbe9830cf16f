"""``Curl``: pycurl's easy handle over libcurl's ``CURL *``."""

import errno
import gc
import io
import threading
import weakref

from . import _callbacks  # noqa: F401  (registers the trampolines)
from ._constants import CONSTANTS
from ._curl import ffi, lib
from ._sinks import _Sink
from ._share import CurlShare
from ._errors import (check_easy, closed_error, easy_error, easy_strerror, error,
                      misuse, no_copy, no_pickle, raise_from_callback)

_LONG_MAX = int(ffi.cast("long", -1 & ((1 << (8 * ffi.sizeof("long") - 1)) - 1)))
_ULONG_SPAN = 1 << (8 * ffi.sizeof("long"))
_ERROR_SIZE = 256  # CURL_ERROR_SIZE
_E_UNKNOWN_OPTION = lib.CURLE_UNKNOWN_OPTION
_E_ABORTED_BY_CALLBACK = lib.CURLE_ABORTED_BY_CALLBACK
_E_AGAIN = CONSTANTS.get("E_AGAIN", 81)
_STATE_LOCK = threading.Lock()  # guards the check-and-set of Curl._busy

_setopt_str = lib.cm_easy_setopt_str
# What a setopt value is, from libcurl's own option table (curl_easy_option_by_id).
_LONG, _OFF_T, _STRING, _SLIST, _BLOB, _FUNCTION, _OBJECT = range(7)
_KINDS = {}


def _option_kind(option):
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


def _opt(name):
    return CONSTANTS.get(name, -1)


# *FUNCTION option -> the Curl attribute its trampoline calls.
_CALLBACK_ATTRS = {
    _opt(name): attr for name, attr in [
        ("WRITEFUNCTION", "_write_cb"), ("HEADERFUNCTION", "_header_cb"),
        ("READFUNCTION", "_read_cb"), ("XFERINFOFUNCTION", "_xferinfo_cb"),
        ("PROGRESSFUNCTION", "_progress_cb"), ("DEBUGFUNCTION", "_debug_cb"),
        ("SEEKFUNCTION", "_seek_cb"), ("IOCTLFUNCTION", "_ioctl_cb"),
        ("SOCKOPTFUNCTION", "_sockopt_cb"), ("OPENSOCKETFUNCTION", "_opensocket_cb"),
        ("CLOSESOCKETFUNCTION", "_closesocket_cb"),
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
_VIEW_ATTRS = {_WRITEFUNCTION: "_write_view", _opt("HEADERFUNCTION"): "_header_view"}
_CAINFO_BLOB = _opt("CAINFO_BLOB")
_CLOSESOCKETFUNCTION = _opt("CLOSESOCKETFUNCTION")
_POSTFIELDS = _opt("POSTFIELDS")
_COPYPOSTFIELDS = _opt("COPYPOSTFIELDS")
_POSTFIELDSIZE_LARGE = _opt("POSTFIELDSIZE_LARGE")
_HTTPPOST = _opt("HTTPPOST")
_MIMEPOST = _opt("MIMEPOST")
# Options whose pointer curlmulti itself owns.
_RESERVED = {_opt(n) for n in (
    "PRIVATE", "ERRORBUFFER", "WRITEDATA", "HEADERDATA", "READDATA", "XFERINFODATA",
    "PROGRESSDATA", "DEBUGDATA", "SEEKDATA", "IOCTLDATA", "SOCKOPTDATA",
    "OPENSOCKETDATA", "CLOSESOCKETDATA", "STDERR", "MIMEPOST",
)} - {-1}
_SHARE = _opt("SHARE")

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


def _to_bytes(value, option):
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("ascii")  # as pycurl: non-ASCII text raises UnicodeEncodeError
    else:
        raise TypeError("option %d takes str or bytes, not %s" % (option, type(value).__name__))
    return data


def _c_string(value, option):
    data = _to_bytes(value, option)
    if 0 in data:
        raise ValueError("option %d: value contains a NUL byte" % option)
    return ffi.new("char[]", data)


def _c_long(value, option):
    if not isinstance(value, int):
        raise TypeError("option %d takes an int, not %s" % (option, type(value).__name__))
    if not _LONG_MIN <= value <= _LONG_MAX:
        if option in _UNSIGNED_LONGS and _LONG_MAX < value < _ULONG_SPAN:
            return value - _ULONG_SPAN  # an unsigned bitmask such as HTTPAUTH_ANY
        raise OverflowError("option %d: %d does not fit in a C long" % (option, value))
    return value


class _Form(object):
    """pycurl's HTTPPOST list as a curl_mime (libcurl's successor of
    curl_formadd), freed when the last user lets go.  Items are
    ``(name, value)`` or ``(name, (FORM_option, value, ...))`` with
    FORM_CONTENTS, FORM_FILE, FORM_FILENAME, FORM_CONTENTTYPE, FORM_BUFFER
    and FORM_BUFFERPTR."""

    __slots__ = ("ptr",)

    def __init__(self, h, fields, option):
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
    def _data(part, value, option):
        data = _to_bytes(value, option)
        check_easy(lib.curl_mime_data(part, data, len(data)))

    def _options(self, part, pairs, option):
        if len(pairs) % 2:
            raise TypeError("HTTPPOST: a FORM_* tuple holds (option, value) pairs")
        given = {}
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

    def __init__(self, items, option):
        if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
            raise TypeError("option %d takes a list or tuple of str/bytes, not %s" % (option, type(items).__name__))
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


def _slist_to_list(ptr, raw):
    out = []
    while ptr != ffi.NULL:
        data = ffi.string(ptr.data)
        out.append(data if raw else data.decode("utf-8", "surrogateescape"))
        ptr = ptr.next
    return out


class _SocketCloser(object):
    """The owner libcurl is given for a CLOSESOCKETFUNCTION.  libcurl copies it
    into every connection the handle opens, and a connection can outlive its
    Curl in a CurlMulti's connection cache (closed at curl_multi_cleanup), so
    it is a small object of its own, one per Curl: the Curl keeps it until it
    is closed or freed, a CurlMulti those of the handles it detached until its
    cleanup.  Replacing the callback replaces it for every connection (as in
    pycurl); unsetopt() and reset() remove it, and a connection closed after
    that has its socket closed as libcurl would."""

    __slots__ = ("_closesocket_cb", "_curl", "_ud", "__weakref__")

    def __init__(self, func, curl):
        self._closesocket_cb = func
        self._curl = weakref.ref(curl)
        self._ud = ffi.new_handle(self)

    def _callback_failed(self, exc):
        curl = self._curl()
        if curl is not None:
            curl._callback_failed(exc)


class _Attached(object):
    """What ``Curl._multi_ref`` becomes once the Curl, while attached, has
    replaced an object libcurl may still be reading (a POSTFIELDS buffer,
    an HTTPPOST form, a slist of a transfer in flight): it stands for the
    multi's weakref and holds those objects.  Every detach sets
    ``_multi_ref`` to None after ``curl_multi_remove_handle``, so they are
    freed then, and the hot paths never look at them."""

    __slots__ = ("ref", "retired")

    def __init__(self, ref):
        self.ref = ref
        self.retired = []

    def __call__(self):
        return self.ref()


class Curl(object):
    """A libcurl easy handle (``curl_easy_init``), pycurl-compatible.

    Callbacks are called with pycurl's signatures.  An exception raised in a
    callback aborts the transfer; ``perform()`` then raises ``error`` with
    the exception as ``__cause__``, and ``callback_error`` holds it (also for
    transfers run by a ``CurlMulti``)."""

    _h = None
    _ud = None
    _busy = False
    _multi_ref = None  # the multi's weakref, or an _Attached standing for it
    _closers = ()  # every _SocketCloser made for this handle
    _sink_h = ffi.NULL  # the CURL * last given to a C sink
    _share = None  # the CurlShare attached (held strongly: see _share.py)
    _share_s = None  # and its cm_share cdata

    def __init__(self):
        if self._ud is not None:
            return  # already set up (or closed): as in pycurl, a second __init__ does nothing
        h = lib.curl_easy_init()
        if h == ffi.NULL:
            raise error(lib.CURLE_FAILED_INIT, "curl_easy_init() failed")
        self._adopt(h)

    def _adopt(self, h):
        self._h = h
        self._ud = ffi.new_handle(self)
        self._errbuf = ffi.new("char[]", _ERROR_SIZE)
        self._keep = {}
        self._clear_callbacks()
        self.callback_error = None
        self._bind()

    def _bind(self):
        check_easy(lib.cm_easy_bind(self._h, self._ud))
        check_easy(lib.cm_easy_setopt_ptr(self._h, lib.CURLOPT_ERRORBUFFER, self._errbuf))

    def _clear_callbacks(self):
        for attr in _CALLBACK_ATTRS.values():
            setattr(self, attr, None)
        for closer in self._closers:
            closer._closesocket_cb = None
        self._write_view = self._header_view = False

    def _callback_failed(self, exc):
        if self.callback_error is None:
            self.callback_error = exc
        if not isinstance(exc, Exception):
            # KeyboardInterrupt, SystemExit: also raised by the CurlMulti call.
            multi = self._attached_multi()
            if multi is not None:
                multi._callback_failed(exc)

    # -- state checks -------------------------------------------------------

    def _handle(self, method):
        h = self._h
        if h is None:
            raise closed_error("Curl object", method)
        return h

    @property
    def closed(self):
        return self._h is None

    def _attached_multi(self):
        ref = self._multi_ref
        return ref() if ref is not None else None

    def _idle_handle(self, method):
        """The handle, for a method that must not run during a transfer of
        this Curl (from one of its callbacks, or from another thread)."""
        h = self._handle(method)
        if self._busy:
            raise misuse("cannot invoke %s() - perform() is currently running" % method)
        multi = self._attached_multi()
        if multi is not None and getattr(multi, "_depth", 0):
            raise misuse("cannot invoke %s() - perform() is currently running" % method)
        return h

    # -- options ------------------------------------------------------------

    def setopt(self, option, value, *, use_memoryview=False):
        """Set an option (``curl_easy_setopt``); pycurl's value rules.  With
        ``use_memoryview=True`` (WRITEFUNCTION and HEADERFUNCTION only), the
        callback receives a read-only memoryview of libcurl's buffer instead
        of bytes, valid until it returns."""
        h = self._h
        if h is None or self._busy or self._multi_ref is not None:
            h = self._idle_handle("setopt")
        if use_memoryview and option not in _VIEW_ATTRS:
            raise TypeError("use_memoryview is only for WRITEFUNCTION and HEADERFUNCTION")
        kind = _KINDS.get(option) if type(option) is int else None
        if kind is None:
            kind = _option_kind(option)
        if value is None:
            return self.unsetopt(option)
        if kind == _STRING:
            # libcurl copies string options: the bytes are passed as they are.
            if type(value) is str:
                value = value.encode("ascii")
            elif type(value) is not bytes:
                value = _to_bytes(value, option)
            if 0 in value:  # a NUL byte (searching for the int is the fast way)
                raise ValueError("option %d: value contains a NUL byte" % option)
            code = _setopt_str(h, option, value)
            if code:
                raise easy_error(code)
        elif kind == _LONG:
            check_easy(lib.cm_easy_setopt_long(h, option, _c_long(value, option)))
        elif kind == _FUNCTION:
            self._set_callback(h, option, value, use_memoryview)
        elif kind == _SLIST:
            slist = _Slist(value, option)
            check_easy(lib.cm_easy_setopt_ptr(h, option, slist.ptr))
            self._hold(option, slist)  # libcurl keeps the pointer
        elif kind == _OFF_T:
            if not isinstance(value, int):
                raise TypeError("option %d takes an int, not %s" % (option, type(value).__name__))
            check_easy(lib.cm_easy_setopt_off_t(h, option, value))
        elif kind == _BLOB:
            data = _to_bytes(value, option)
            blob = ffi.new("struct curl_blob *", {"data": ffi.from_buffer(data), "len": len(data), "flags": 1})
            check_easy(lib.cm_easy_setopt_blob(h, option, blob))  # CURL_BLOB_COPY
        elif option in _FILE_OPTIONS:
            func_option, method = _FILE_OPTIONS[option]
            func = getattr(value, method, None)
            if not callable(func):
                raise TypeError("option %d takes an object with a %s() method" % (option, method))
            self._set_callback(h, func_option, func)
        elif option == _HTTPPOST:
            if self._multi_ref is not None:
                # libcurl sends from the form set now, so replacing it would
                # change a body in flight.
                self._refuse_attached("set HTTPPOST")
            form = _Form(h, value, option)
            check_easy(lib.cm_easy_setopt_ptr(h, _MIMEPOST, form.ptr))
            self._hold(option, form)  # libcurl reads it at each transfer
        elif option == _POSTFIELDS:
            data = _to_bytes(value, option)
            buf = ffi.new("char[]", data)
            check_easy(lib.cm_easy_setopt_off_t(h, _POSTFIELDSIZE_LARGE, len(data)))
            check_easy(lib.cm_easy_setopt_ptr(h, option, buf))
            self._hold(option, buf)  # libcurl keeps the pointer
        elif option == _COPYPOSTFIELDS:
            data = _to_bytes(value, option)
            check_easy(lib.cm_easy_setopt_off_t(h, _POSTFIELDSIZE_LARGE, len(data)))
            check_easy(lib.cm_easy_setopt_ptr(h, option, ffi.new("char[]", data)))
        elif option == _SHARE:
            if not isinstance(value, CurlShare):
                raise TypeError("SHARE takes a CurlShare, not %s" % type(value).__name__)
            if value._s is None:
                raise closed_error("CurlShare object", "setopt")
            if value is not self._share:
                self._use_share(h, value, "set SHARE")
        else:
            raise TypeError("option %d is not supported by curlmulti.Curl.setopt" % option)

    def _use_share(self, h, share, what):
        """CURLOPT_SHARE: stop using the current share, use share (None:
        none).  Refused while attached to a CurlMulti: libcurl picked the
        connection cache of a transfer there when the handle was added."""
        if self._multi_ref is not None:
            self._refuse_attached(what)
        old, old_s = self._share, self._share_s
        new_s = share._s if share is not None else None
        code = lib.cm_easy_use_share(h, ffi.NULL if old_s is None else old_s,
                                     ffi.NULL if new_s is None else new_s)
        if code:
            if share is not None and share._s is None:
                raise closed_error("CurlShare object", "setopt")  # closed by another thread
            raise easy_error(code)
        self._share, self._share_s = share, new_s
        if share is not None:
            share._users.add(self)
        if old is not None:
            old._users.discard(self)
            if self._closers:
                old._closers.update(self._closers)  # its cache may hold our connections

    def _leave_share(self, share):
        """CurlShare.close(): detach from it unless a transfer may be using it."""
        h = self._h
        if self._share is not share or h is None:
            return
        with _STATE_LOCK:
            if self._busy or self._multi_ref is not None:
                return  # keeps the CURLSH until detached or closed
            self._busy = True
        try:
            self._use_share(h, None, "unset SHARE")
        finally:
            self._busy = False

    def _drop_share(self):
        """After curl_easy_cleanup: the handle no longer uses its share."""
        share, s = self._share, self._share_s
        self._share = self._share_s = None
        if share is not None:
            try:
                share._users.discard(self)
            except TypeError:
                pass  # PyPy: no new weakref to a Curl being finalized (the set drops it itself)
            if self._closers:
                share._closers.update(self._closers)
        lib.cm_share_leave(s)  # share (a local) keeps the closers alive meanwhile

    def _refuse_attached(self, what):
        """For what libcurl cannot take while a transfer may be in flight."""
        if self._attached_multi() is None:
            gc.collect()  # a multi nothing refers to detaches its handles when collected
        if self._multi_ref is not None:
            raise misuse("cannot %s - the Curl object is attached to a CurlMulti "
                         "(remove_handle() it first)" % what)

    def _hold(self, option, obj):
        """Keep obj (None: nothing) as what libcurl points at for option.  The
        object it replaces is freed now, or, while the handle is attached to a
        CurlMulti (a transfer may be reading it), when it is detached."""
        old = self._keep.pop(option, None)
        if obj is not None:
            self._keep[option] = obj
        ref = self._multi_ref
        if old is not None and ref is not None:
            if type(ref) is not _Attached:
                ref = self._multi_ref = _Attached(ref)
            ref.retired.append(old)

    def _set_callback(self, h, option, func, view=False):
        attr = _CALLBACK_ATTRS.get(option)
        if attr is None:
            raise TypeError("callback option %d is not supported by curlmulti" % option)
        if not callable(func):
            raise TypeError("option %d takes a callable, not %s" % (option, type(func).__name__))
        view_attr = _VIEW_ATTRS.get(option)
        if view_attr is not None:
            setattr(self, view_attr, bool(view))
        # A callable in the attribute means the trampoline is in place with
        # this Curl as its owner: then only the callable changes, unless
        # the new one is a C sink's write() (never stored there) or the
        # option is CLOSESOCKETFUNCTION (whose owner is a _SocketCloser).
        if getattr(self, attr) is not None and option != _CLOSESOCKETFUNCTION and (
                option != _WRITEFUNCTION or not isinstance(getattr(func, "__self__", None), _Sink)):
            setattr(self, attr, func)
            return
        if option == _WRITEFUNCTION:
            sink = getattr(func, "__self__", None)
            if isinstance(sink, _Sink) and getattr(func, "__func__", None) is _Sink.write:
                # A C sink: libcurl writes into it with no Python call.
                self._forget_sink()
                check_easy(lib.cm_easy_set_sink(h, sink._sink))
                self._keep[option] = sink
                self._sink_h = h
                self._write_cb = None
                return
            self._forget_sink()
        owner = self._ud
        if option == _CLOSESOCKETFUNCTION:
            if self._closers:
                closer = self._closers[0]
                closer._closesocket_cb = func
            else:
                closer = _SocketCloser(func, self)
                self._closers = (closer,)
            owner = closer._ud
        check_easy(lib.cm_easy_set_callback(h, option, owner))
        setattr(self, attr, func)

    def setopt_string(self, option, value):
        """Set a string option (libcurl copies it) without the per-option
        rules of setopt(); only options libcurl lists as strings."""
        h = self._idle_handle("setopt_string")
        if _option_kind(option) != _STRING:
            raise TypeError("option %d is not a string option" % option)
        check_easy(lib.cm_easy_setopt_ptr(h, option, _c_string(value, option)))

    def unsetopt(self, option):
        """Reset an option to libcurl's default (NULL for pointers)."""
        h = self._idle_handle("unsetopt")
        kind = _option_kind(option)
        if kind == _FUNCTION:
            attr = _CALLBACK_ATTRS.get(option)
            if attr is None:
                raise TypeError("callback option %d is not supported by curlmulti" % option)
            check_easy(lib.cm_easy_set_callback(h, option, ffi.NULL))
            setattr(self, attr, None)
            if option == _CLOSESOCKETFUNCTION:
                for closer in self._closers:
                    closer._closesocket_cb = None
            if option == _WRITEFUNCTION:
                self._forget_sink()
        elif option in _FILE_OPTIONS:
            self.unsetopt(_FILE_OPTIONS[option][0])
        elif option == _HTTPPOST:
            if self._multi_ref is not None:
                self._refuse_attached("unset HTTPPOST")
            check_easy(lib.cm_easy_setopt_ptr(h, _MIMEPOST, ffi.NULL))
            self._hold(option, None)
        elif kind in (_STRING, _SLIST, _BLOB) or option in (_POSTFIELDS, _COPYPOSTFIELDS):
            check_easy(lib.cm_easy_setopt_ptr(h, option, ffi.NULL))
            if option in (_POSTFIELDS, _COPYPOSTFIELDS):
                check_easy(lib.cm_easy_setopt_off_t(h, _POSTFIELDSIZE_LARGE, -1))
            self._hold(option, None)
        elif option == _SHARE:
            if self._share is not None:
                self._use_share(h, None, "unset SHARE")
        elif option in _RESERVED:
            raise TypeError("option %d is not supported by curlmulti.Curl.unsetopt" % option)
        else:
            raise TypeError("unsetopt() is not supported for integer option %d; set its default value" % option)

    # -- transfer -----------------------------------------------------------

    def perform(self):
        """Run the transfer (``curl_easy_perform``); raises ``error`` on failure."""
        h = self._handle("perform")
        with _STATE_LOCK:
            if self._busy:
                raise misuse("cannot invoke perform() - perform() is currently running")
            if self._attached_multi() is not None:
                raise misuse("cannot invoke perform() - the Curl object is attached to a CurlMulti")
            self._busy = True
        self.callback_error = None
        try:
            code = lib.curl_easy_perform(h)
        finally:
            self._busy = False
        if code or self.callback_error is not None:
            raise_from_callback(self._transfer_error(code), self.callback_error)

    def _transfer_error(self, code):
        """The ``error`` for a finished transfer's CURLcode (the message from
        the error buffer when libcurl left one)."""
        if not code:
            code = _E_ABORTED_BY_CALLBACK
        message = ffi.string(self._errbuf).decode("utf-8", "surrogateescape") if self._h is not None else ""
        return easy_error(code, message or None)

    def perform_rb(self):
        """Perform and return the body as bytes; the write callback or sink
        set before is restored afterwards."""
        buf = io.BytesIO()
        self._idle_handle("perform_rb")
        previous = self._write_cb
        sink = self._keep.get(_WRITEFUNCTION)
        self.setopt(_WRITEFUNCTION, buf.write)
        try:
            self.perform()
        finally:
            if self._h is not None:
                if sink is not None:
                    self.setopt(_WRITEFUNCTION, sink.write)
                elif previous is None:
                    self.unsetopt(_WRITEFUNCTION)
                else:
                    self.setopt(_WRITEFUNCTION, previous)
        return buf.getvalue()

    def perform_rs(self):
        """Perform and return the body as str (UTF-8)."""
        return self.perform_rb().decode("utf-8", "replace")

    def pause(self, bitmask):
        """``curl_easy_pause``: PAUSE_RECV, PAUSE_SEND, PAUSE_ALL, PAUSE_CONT."""
        h = self._handle("pause")
        if not isinstance(bitmask, int):
            raise TypeError("pause() takes an int bitmask")
        check_easy(lib.curl_easy_pause(h, bitmask))

    def unpause(self):
        """Same as ``pause(PAUSE_CONT)``."""
        self.pause(lib.CURLPAUSE_CONT)

    # -- information ----------------------------------------------------------

    def getinfo_raw(self, info):
        """``curl_easy_getinfo``; strings as bytes."""
        return self._getinfo(info, True, "getinfo_raw")

    def getinfo(self, info):
        """``curl_easy_getinfo``; strings as str."""
        h = self._h
        if h is not None and type(info) is int and info & _INFO_TYPEMASK == _INFO_LONG:
            value = lib.cm_easy_getinfo_long_fast(h, info)  # RESPONSE_CODE and co: one C call
            if value == _LONG_MIN:
                check_easy(lib.cm_getinfo_code())
            return value
        return self._getinfo(info, False, "getinfo")

    def _getinfo(self, info, raw, method):
        h = self._handle(method)
        if not isinstance(info, int):
            raise TypeError("info must be an int, not %s" % type(info).__name__)
        kind = info & _INFO_TYPEMASK
        if info == _INFO_PRIVATE:
            raise ValueError("INFO_PRIVATE is reserved by curlmulti")
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

    def errstr(self):
        """The message libcurl left in the error buffer by the last transfer."""
        return self.errstr_raw().decode("utf-8", "surrogateescape")

    def errstr_raw(self):
        self._handle("errstr")
        return ffi.string(self._errbuf)

    # -- CONNECT_ONLY ---------------------------------------------------------

    def recv(self, buffersize):
        """``curl_easy_recv`` on a CONNECT_ONLY connection: up to buffersize
        bytes (b"" once the peer has closed).  BlockingIOError when no data
        is there yet."""
        h = self._handle("recv")
        if not isinstance(buffersize, int):
            raise TypeError("recv() takes an int")
        if buffersize < 0:
            raise ValueError("recv(): buffersize must not be negative")
        buf = ffi.new("char[]", buffersize)
        n = ffi.new("size_t *")
        self._check_io(lib.curl_easy_recv(h, buf, buffersize, n))
        return ffi.unpack(buf, n[0])

    def recv_into(self, buffer, nbytes=0):
        """``curl_easy_recv`` into a writable buffer; returns the count."""
        h = self._handle("recv_into")
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
        self._check_io(lib.curl_easy_recv(h, view, nbytes or len(view), n))
        return n[0]

    def send(self, data):
        """``curl_easy_send`` on a CONNECT_ONLY connection: returns how many
        bytes were sent.  BlockingIOError when none could be."""
        h = self._handle("send")
        if isinstance(data, str):
            raise TypeError("send() takes a bytes-like object, not str")
        view = ffi.from_buffer(data)
        n = ffi.new("size_t *")
        self._check_io(lib.curl_easy_send(h, view, len(view), n))
        return n[0]

    def _check_io(self, code):
        if code == _E_AGAIN:
            raise BlockingIOError(errno.EAGAIN, "no data available now (CURLE_AGAIN)")
        if code:
            raise self._transfer_error(code)

    # -- pycurl extras ----------------------------------------------------------

    def multi(self):
        """The CurlMulti this handle is attached to, or None."""
        self._handle("multi")
        return self._attached_multi()

    def share(self):
        """The CurlShare this handle uses (SHARE), or None."""
        self._handle("share")
        return self._share

    def set_ca_certs(self, certs):
        """Trust the PEM certificates in ``certs`` (str or bytes) for the
        next connections, through CAINFO_BLOB: unlike pycurl, they replace
        the default CA bundle rather than adding to it."""
        self.setopt(_CAINFO_BLOB, certs)

    # -- life cycle ---------------------------------------------------------

    def reset(self):
        """``curl_easy_reset``: every option back to its default.  Refused
        while the handle is attached to a CurlMulti: libcurl's reset frees
        the state of a transfer in flight (remove_handle() first).  The
        SHARE stays attached, as libcurl's reset keeps shares."""
        h = self._idle_handle("reset")
        if self._multi_ref is not None:
            self._refuse_attached("invoke reset()")
        lib.curl_easy_reset(h)
        self._forget_sink()
        self._keep = {}  # libcurl no longer points at them
        self._clear_callbacks()
        self._bind()

    def duphandle(self):
        """A copy with the same options (``curl_easy_duphandle``); the copy owns
        its callbacks and shares the buffers libcurl points at.  It has no
        SHARE: libcurl's duphandle does not copy it."""
        h = self._handle("duphandle")
        h2 = lib.curl_easy_duphandle(h)
        if h2 == ffi.NULL:
            raise error(lib.CURLE_OUT_OF_MEMORY, "curl_easy_duphandle() failed")
        dup = Curl.__new__(Curl)
        try:
            dup._adopt(h2)
            dup._keep = dict(self._keep)
            for option, attr in _CALLBACK_ATTRS.items():
                func = getattr(self, attr)
                if func is not None:
                    view_attr = _VIEW_ATTRS.get(option)
                    dup._set_callback(h2, option, func, view_attr is not None and getattr(self, view_attr))
        except BaseException:
            dup.close()
            raise
        return dup

    def close(self):
        """Detach from any CurlMulti and free the handle.  Idempotent."""
        h = self._h
        if h is None:
            return
        if self._busy:
            raise misuse("cannot invoke close() - perform() is currently running")
        multi = self._attached_multi()
        if multi is not None:
            multi._detach(self, closing=True)  # may defer the cleanup itself
        else:
            self._close_now()

    def _close_now(self):
        h, self._h = self._h, None
        lib.curl_easy_cleanup(h)
        self._release()

    def _forget_sink(self):
        """A C sink stops reading this handle's Content-Length."""
        sink = self._keep.pop(_WRITEFUNCTION, None)
        if sink is not None:
            lib.cm_sink_detach(sink._sink, self._sink_h)

    def _release(self):
        if self._share_s is not None:
            self._drop_share()
        self._forget_sink()
        self._keep = {}
        self._closers = ()  # a CurlMulti may still need them: it holds its own
        self._clear_callbacks()
        self._multi_ref = None

    def __del__(self):
        h = self._h
        if h is not None and not self._busy:
            self._h = None
            lib.curl_easy_cleanup(h)
            keep = self.__dict__.get("_keep")
            if keep:
                self._forget_sink()
            if self._share_s is not None:
                self._drop_share()

    # One object per C handle: copying or pickling would make two owners.
    __copy__ = __deepcopy__ = no_copy
    __reduce__ = __reduce_ex__ = __getstate__ = no_pickle

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return "<curlmulti.Curl %s>" % ("closed" if self._h is None else "at 0x%x" % id(self))


for _name, _value in CONSTANTS.items():
    setattr(Curl, _name, _value)
