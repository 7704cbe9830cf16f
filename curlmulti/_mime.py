"""``CurlMime`` and ``CurlMimePart``: pycurl's MIME objects over libcurl's
``curl_mime`` tree (``MIMEPOST``).

Lifetimes
---------
1. A ``_MimeRecord`` stands for one ``curl_mime``.  A tree that is no one's
   subparts (a *root*) owns its C memory through an ``ffi.gc`` cdata
   (``curl_mime_free``); a tree attached to a part of another with
   ``subparts()`` is owned by that parent in C, and its record points at
   the root's record, so the whole tree lives while any of its Python
   objects does.  A ``CurlMimePart`` holds its mime's record: a part is kept
   alive by its mime.
2. ``Curl.setopt(MIMEPOST, mime)`` hands libcurl the root; the Curl's record
   keeps a ``_MimeUse`` (as it keeps an slist) holding the root's cdata: a
   mime is kept alive by every handle it is set on, whatever is closed or
   dropped first.
3. ``close()`` on a root marks the tree closed (every later call on it, its
   parts and its subtrees raises ``error``) and frees it at once when no
   handle uses it, else when the last one lets go.  It is refused while a
   handle that uses it runs ``perform()`` (as in pycurl).  ``close()`` on an
   attached subtree only marks it closed: its parent frees it.  Replacing a
   part's content (``data()``, ``filedata()``, ``data_cb()``, another
   ``subparts()``) frees the subtree it held, which reads as closed then.
4. ``data_cb()``: libcurl calls the read/seek/free trampolines of
   ``_callbacks.py`` with the ffi handle of a ``_DataSource``.  libcurl
   calls free once per copy of the content it holds (the part, and each
   ``Curl.duphandle()`` copy of a MIMEPOST), so a source counts them and
   calls the user's ``free(userdata)`` at the last; until then the module's
   ``_LIVE`` table holds its handle.  What read or seek raise is stored on
   the record of the Curl the mime was made for, and raised by the call
   that ran the transfer, with it as ``__cause__``.
5. One lock for every mime tree (``_LOCK``, reentrant: a free callback may
   call back into a mime).  Locks are taken Curl first, then mime.
   Changing a tree while a handle that uses it is in ``perform()`` or
   attached to a ``CurlMulti`` is refused: libcurl reads it from there.
"""

import os
import threading
import weakref
from typing import (Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple, TypeVar, Union)

from ._curl import ffi, lib
from ._easy import OBJECT_OPTIONS, Curl
from ._errors import check_easy, easy_error, error, misuse
from ._owner import ATTACHED, PERFORMING

_LOCK = threading.RLock()
_LIVE: Dict["_DataSource", Any] = {}  # _DataSource -> its ffi handle, while libcurl holds it
_OFF_T_MAX = (1 << (8 * ffi.sizeof("curl_off_t") - 1)) - 1


_Text = Union[str, bytes]
_Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
_M = TypeVar("_M", bound="CurlMime")


def _no_handle(method: str) -> error:
    return error(0, "cannot invoke %s() - no mime handle" % method)


def _text(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        try:
            data = value.encode("ascii")
        except UnicodeEncodeError:
            raise TypeError("%s must be a byte string or ascii-unicode string" % what) from None
    else:
        raise TypeError("%s must be a byte string or ascii-unicode string" % what)
    if 0 in data:
        raise ValueError("%s must not contain a NUL byte" % what)
    return data


def _data(value: Any) -> bytes:
    """In-memory content: bytes-like, or ASCII str."""
    if isinstance(value, str):
        try:
            return value.encode("ascii")
        except UnicodeEncodeError:
            raise TypeError("data must be bytes, an ascii-unicode string or a buffer") from None
    try:
        return memoryview(value).tobytes()
    except TypeError:
        raise TypeError("data must be bytes, an ascii-unicode string or a buffer, not %s"
                        % type(value).__name__) from None


def _path(value: object, what: str) -> bytes:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        value = os.fsencode(value)
    return _text(value, what)


class _DataSource(object):
    """The userdata of one data_cb content (see 4. above)."""

    __slots__ = ("read", "seek", "free", "userdata", "erec", "copies", "__weakref__")

    def __init__(self, read: Optional[Callable[..., Any]], seek: Optional[Callable[..., Any]],
                 free: Optional[Callable[[Any], object]], userdata: Any, erec: Any) -> None:
        self.read, self.seek, self.free, self.userdata = read, seek, free, userdata
        self.erec = erec  # weakref to the Curl's record
        self.copies = 1

    def callback_failed(self, exc: BaseException) -> None:
        rec = self.erec()
        if rec is not None:
            rec.callback_failed(exc)

    @property
    def callback_error(self) -> Optional[BaseException]:
        """The exception stored for the Curl's transfer (the trampolines
        stop calling data_cb once it is a KeyboardInterrupt)."""
        rec = self.erec()
        return rec.callback_error if rec is not None else None

    def release(self) -> None:
        """libcurl freed one copy; the last calls free(userdata)."""
        self.copies -= 1
        if self.copies > 0:
            return
        _LIVE.pop(self, None)
        free, self.read, self.seek, self.free = self.free, None, None, None
        userdata, self.userdata = self.userdata, None
        if free is not None:
            free(userdata)


class _MimeUse(object):
    """What a Curl's record keeps while MIMEPOST points at a root."""

    __slots__ = ("cdata", "rec", "erec", "__weakref__")

    def __init__(self, rec: "_MimeRecord", erec: Any) -> None:
        self.cdata = rec.cdata
        self.rec = rec
        self.erec = weakref.ref(erec)

    def duplicated(self) -> None:
        """Curl.duphandle() copied the tree: libcurl frees each data_cb content
        once more."""
        with _LOCK:
            for src in self.rec.sources.values():
                if src.copies > 0:
                    src.copies += 1


class _MimeRecord(object):
    """The owner record of one curl_mime (see 1. above)."""

    __slots__ = ("m", "cdata", "root", "attached", "closed", "uses", "children", "sources",
                 "erec", "curl_ud", "__weakref__")

    def __init__(self, m: Any, erec: Any) -> None:
        self.m: Any = m              # the curl_mime * (None once closed)
        self.cdata: Any = ffi.gc(m, lib.curl_mime_free, size=512)  # a root's C memory
        self.root: _MimeRecord = self        # the record of the tree's root
        self.attached = False   # subparts of another tree's part
        self.closed = False
        self.uses: "weakref.WeakSet[_MimeUse]" = weakref.WeakSet()      # _MimeUse of the handles it is set on
        # part address -> record of the subtree there (weakly: a subtree's
        # record holds its root, never the other way round)
        self.children: "weakref.WeakValueDictionary[int, _MimeRecord]" = weakref.WeakValueDictionary()
        # On a root: part address (anywhere in the tree) -> _DataSource of
        # its data_cb content.
        self.sources: Dict[int, _DataSource] = {}
        self.erec = erec        # weakref to the record of the Curl it was made for
        self.curl_ud: Optional["weakref.ReferenceType[Curl]"] = None

    def tree(self) -> List["_MimeRecord"]:
        """This record and every subtree below it."""
        out = [self]
        for child in list(self.children.values()):
            out.extend(child.tree())
        return out

    def mark_closed(self) -> None:
        for rec in self.tree():
            rec.closed = True
            rec.m = None

    def handle(self, method: str) -> Any:
        """Under _LOCK: the curl_mime *, unless closed."""
        if self.closed:
            raise _no_handle(method)
        return self.m

    def refuse_in_use(self, method: str) -> None:
        for use in list(self.root.uses):
            erec = use.erec()
            if erec is not None and (erec.state is PERFORMING or erec.state is ATTACHED):
                raise misuse("cannot invoke %s() - the mime is used by a Curl object that is "
                             "performing or attached to a CurlMulti" % method)

    def content_replaced(self, key: int) -> None:
        """Under _LOCK, after libcurl replaced the content of the part at key."""
        child = self.children.pop(key, None)
        if child is not None:
            child.mark_closed()  # libcurl freed it
        self.root.sources.pop(key, None)

    def close(self, method: str = "close") -> None:
        with _LOCK:
            if self.closed:
                return
            if self.attached:
                self.mark_closed()  # its parent frees it
                return
            for use in list(self.uses):
                erec = use.erec()
                if erec is not None and erec.state is PERFORMING:
                    raise misuse("cannot invoke %s() - perform() is currently running" % method)
            self.mark_closed()
            cdata, self.cdata = self.cdata, None
            in_use = bool(self.uses)
        if cdata is not None and not in_use:
            ffi.release(cdata)  # curl_mime_free now: the free callbacks run here


class CurlMime(object):
    """A MIME tree (``curl_mime_init``) for ``Curl.setopt(MIMEPOST, mime)``,
    pycurl-compatible: ``addpart()`` and the builders ``add()``,
    ``add_field()``, ``add_file()``, ``add_multipart()``."""

    _rec: Optional[_MimeRecord] = None

    def __init__(self, curl: Curl) -> None:
        if self._rec is not None:
            return
        if not isinstance(curl, Curl):
            raise TypeError("CurlMime() takes a Curl object, not %s" % type(curl).__name__)
        lock, h = curl._enter("CurlMime")
        try:
            m = lib.curl_mime_init(h)
            if m == ffi.NULL:
                raise MemoryError("curl_mime_init failed")
            self._rec = _MimeRecord(m, weakref.ref(curl._rec))
        finally:
            lock.release()
        self._rec.curl_ud = weakref.ref(curl)

    @property
    def closed(self) -> bool:
        """Whether this tree is closed (or was freed by its parent)."""
        return self._rec is None or self._rec.closed

    def close(self) -> None:
        """``curl_mime_free``: now, or when the last handle using it as
        MIMEPOST lets go.  A subtree attached with ``subparts()`` is freed by
        its parent.  Idempotent; refused while perform() uses the tree."""
        if self._rec is not None:
            self._rec.close()

    def __enter__(self: _M) -> _M:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(self) -> NoReturn:
        raise TypeError("CurlMime objects do not support serialization")

    __reduce_ex__ = __getstate__ = __reduce__  # type: ignore[assignment]

    def __copy__(self) -> NoReturn:
        raise TypeError("CurlMime objects do not support copying")

    __deepcopy__ = __copy__

    def _record(self, method: str) -> _MimeRecord:
        if self._rec is None:
            raise _no_handle(method)
        return self._rec

    def addpart(self) -> "CurlMimePart":
        """A new part at the end of this tree (``curl_mime_addpart``)."""
        rec = self._record("addpart")
        with _LOCK:
            m = rec.handle("addpart")
            rec.refuse_in_use("addpart")
            part = lib.curl_mime_addpart(m)
            if part == ffi.NULL:
                raise MemoryError("curl_mime_addpart failed")
        return CurlMimePart._make(rec, part)

    def add(self, name: Optional[_Text] = None, data: Any = None, file: Optional[_Path] = None,
            filename: Optional[_Text] = None, content_type: Optional[_Text] = None,
            headers: Optional[Sequence[_Text]] = None, encoder: Optional[_Text] = None) -> "CurlMimePart":
        """Add a part with the fields given (None: left unset) and return it;
        at most one of data and file."""
        if data is not None and file is not None:
            raise ValueError("add() accepts at most one of data or file")
        # Everything is checked before the part is added.
        args: List[Tuple[str, Any]] = []
        if name is not None:
            args.append(("name", _text(name, "name")))
        if data is not None:
            args.append(("data", _data(data)))
        if file is not None:
            path = _path(file, "file")
            try:
                with open(path, "rb"):  # readable now (libcurl reads it again at the transfer)
                    pass
            except OSError:  # as libcurl's curl_mime_filedata reports it
                raise easy_error(lib.CURLE_READ_ERROR) from None
            args.append(("filedata", path))
        if filename is not None:
            args.append(("filename", _text(filename, "filename")))
        if content_type is not None:
            args.append(("type", _text(content_type, "content_type")))
        if headers is not None:
            args.append(("headers", _headers(headers)))
        if encoder is not None:
            args.append(("encoder", _text(encoder, "encoder")))
        part = self.addpart()
        for method, value in args:
            getattr(part, method)(value)
        return part

    def add_field(self, name: _Text, value: Any, content_type: Optional[_Text] = None,
                  encoder: Optional[_Text] = None, headers: Optional[Sequence[_Text]] = None) -> "CurlMimePart":
        """``add(name=name, data=value, ...)``."""
        return self.add(name=name, data=value, content_type=content_type, encoder=encoder,
                        headers=headers)

    def add_file(self, name: _Text, path: _Path, filename: Optional[_Text] = None,
                 content_type: Optional[_Text] = None, headers: Optional[Sequence[_Text]] = None,
                 encoder: Optional[_Text] = None) -> "CurlMimePart":
        """``add(name=name, file=path, ...)``."""
        return self.add(name=name, file=path, filename=filename, content_type=content_type,
                        headers=headers, encoder=encoder)

    def add_multipart(self, name: Optional[_Text] = None, subtype: Optional[_Text] = "mixed") -> "CurlMime":
        """Add a part holding a nested tree (``multipart/<subtype>``) and
        return that tree, owned by this one."""
        if name is not None:
            name = _text(name, "name")
        if subtype is not None:
            ctype = b"multipart/" + _text(subtype, "subtype")
        rec = self._record("add_multipart")
        curl = rec.curl_ud() if rec.curl_ud is not None else None
        if curl is None:
            raise error(0, "cannot invoke add_multipart() - no curl handle")
        child = CurlMime(curl)
        part = self.addpart()
        try:
            part.subparts(child)
        except BaseException:
            child.close()
            raise
        if name is not None:
            part.name(name)
        if subtype is not None:
            part.type(ctype)
        return child

    def __repr__(self) -> str:
        return "<curlmulti.CurlMime %s>" % ("closed" if self.closed else "at 0x%x" % id(self))


def _headers(headers: object) -> List[bytes]:
    if isinstance(headers, (str, bytes)) or not isinstance(headers, (list, tuple)):
        raise TypeError("headers must be a list or tuple of strings")
    out: List[bytes] = []
    for item in headers:
        if not isinstance(item, (str, bytes)):
            raise TypeError("headers must contain only byte or ascii-unicode strings")
        out.append(_text(item, "a header"))
    return out


class CurlMimePart(object):
    """One part of a CurlMime, usable while its tree is open."""

    __slots__ = ("_mrec", "_part")
    _mrec: _MimeRecord
    _part: Any

    def __init__(self) -> None:
        raise TypeError("CurlMimePart objects are made by CurlMime.addpart() and its builders")

    @classmethod
    def _make(cls, rec: _MimeRecord, part: Any) -> "CurlMimePart":
        self = object.__new__(cls)
        self._mrec = rec
        self._part = part
        return self

    def _call(self, method: str, func: Callable[..., int], *args: Any) -> None:
        rec = self._mrec
        with _LOCK:
            if rec.closed:
                raise error(0, "cannot invoke %s() - no mime handle" % method)
            rec.refuse_in_use(method)
            check_easy(func(self._part, *args))

    def _content(self, method: str, func: Callable[..., int], *args: Any) -> None:
        """A call that replaces the part's content."""
        rec = self._mrec
        with _LOCK:
            if rec.closed:
                raise error(0, "cannot invoke %s() - no mime handle" % method)
            rec.refuse_in_use(method)
            key = int(ffi.cast("uintptr_t", self._part))
            check_easy(func(self._part, *args))
            rec.content_replaced(key)

    def name(self, name: _Text) -> None:
        """The part's name (``curl_mime_name``)."""
        self._call("name", lib.curl_mime_name, _text(name, "name"))

    def data(self, data: Any) -> None:
        """In-memory content, copied (``curl_mime_data``)."""
        data = _data(data)
        self._content("data", lib.curl_mime_data, data, len(data))

    def filedata(self, path: _Path) -> None:
        """Content read from a file at the transfer (``curl_mime_filedata``)."""
        self._content("filedata", lib.curl_mime_filedata, _path(path, "path"))

    def filename(self, name: _Text) -> None:
        """The remote file name (``curl_mime_filename``)."""
        self._call("filename", lib.curl_mime_filename, _text(name, "name"))

    def type(self, content_type: _Text) -> None:
        """The Content-Type (``curl_mime_type``)."""
        self._call("type", lib.curl_mime_type, _text(content_type, "content_type"))

    def encoder(self, encoding: _Text) -> None:
        """The transfer encoding, e.g. "base64" (``curl_mime_encoder``)."""
        self._call("encoder", lib.curl_mime_encoder, _text(encoding, "encoding"))

    def headers(self, headers: Optional[Sequence[_Text]]) -> None:
        """Extra headers of the part, None to clear them (``curl_mime_headers``)."""
        if headers is None:
            self._call("headers", lib.curl_mime_headers, ffi.NULL, 1)
            return
        items = _headers(headers)
        slist = ffi.NULL
        try:
            for item in items:
                nxt = lib.curl_slist_append(slist, item)
                if nxt == ffi.NULL:
                    raise MemoryError("curl_slist_append failed")
                slist = nxt
            self._call("headers", lib.curl_mime_headers, slist, 1)  # libcurl owns it now
        except BaseException:
            if slist != ffi.NULL:
                lib.curl_slist_free_all(slist)
            raise

    def data_cb(self, datasize: Optional[int], read: Callable[..., Any],
                seek: Optional[Callable[..., Any]] = None, free: Optional[Callable[[Any], object]] = None,
                userdata: Any = None) -> None:
        """Content produced by callbacks (``curl_mime_data_cb``):
        ``read(userdata, max_bytes)`` as a READFUNCTION, ``seek(userdata,
        offset, origin)`` returning SEEKFUNC_*, ``free(userdata)`` once
        libcurl lets go of the content.  datasize -1 or None: unknown."""
        if datasize is None:
            datasize = -1
        if isinstance(datasize, bool) or not isinstance(datasize, int):
            raise TypeError("datasize must be an integer >= -1 or None")
        if datasize > _OFF_T_MAX:
            raise OverflowError("datasize does not fit into curl_off_t")
        if datasize < -1:
            raise ValueError("datasize must be >= -1")
        if not callable(read):
            raise TypeError("read must be callable")
        if seek is not None and not callable(seek):
            raise TypeError("seek must be callable or None")
        if free is not None and not callable(free):
            raise TypeError("free must be callable or None")
        rec = self._mrec
        with _LOCK:
            if rec.closed:
                raise error(0, "data_cb() cannot attach to a closed mime object")
            rec.refuse_in_use("data_cb")
            src = _DataSource(read, seek, free, userdata, rec.root.erec)
            ud = _LIVE[src] = ffi.new_handle(src)
            key = int(ffi.cast("uintptr_t", self._part))
            code = lib.cm_mime_data_cb(self._part, datasize, ud, seek is not None)
            if code:
                # libcurl did not take it: it will never call free for it.
                _LIVE.pop(src, None)
                check_easy(code)
            rec.content_replaced(key)
            rec.root.sources[key] = src

    def subparts(self, child: "CurlMime") -> None:
        """Make ``child`` (an open, unattached CurlMime of the same Curl) the
        content of this part; this tree owns it from now on."""
        if not isinstance(child, CurlMime):
            raise TypeError("subparts() expects a CurlMime object")
        rec = self._mrec
        with _LOCK:
            crec = child._rec
            if crec is None or crec.closed:
                raise ValueError("subparts() received a closed mime object")
            if crec.erec() is not rec.root.erec() or crec.erec() is None:
                raise ValueError("subparts() requires both mime objects to use the same Curl handle")
            if rec.root is crec:  # rec is in crec's tree: a loop
                raise ValueError("subparts() does not accept the parent mime object")
            if crec.attached:
                raise ValueError("subparts() received a mime object already attached as subparts")
            if crec.uses:
                raise ValueError("subparts() received a mime object currently set as MIMEPOST")
            if rec.closed:
                raise error(0, "subparts() cannot attach to a closed mime object")
            rec.refuse_in_use("subparts")
            key = int(ffi.cast("uintptr_t", self._part))
            check_easy(lib.curl_mime_subparts(self._part, crec.m))
            rec.content_replaced(key)
            # The parent frees it from now on.
            ffi.gc(crec.cdata, None)
            crec.cdata = None
            crec.attached = True
            rec.root.sources.update(crec.sources)
            crec.sources = {}
            for r in crec.tree():
                r.root = rec.root
            rec.children[key] = crec

    def __repr__(self) -> str:
        return "<curlmulti.CurlMimePart %s>" % ("closed" if self._mrec.closed else "at 0x%x" % id(self))


def _for_setopt(value: object, erec: Any) -> Tuple[Any, _MimeUse]:
    """Curl.setopt(MIMEPOST, value): (the curl_mime *, what the handle keeps)."""
    if not isinstance(value, CurlMime):
        raise TypeError("MIMEPOST takes a CurlMime, not %s" % type(value).__name__)
    rec = value._rec
    with _LOCK:
        if rec is None or rec.closed:
            raise error(0, "cannot invoke setopt() - no mime handle")
        if rec.attached:
            raise ValueError("MIMEPOST takes a top-level CurlMime, not one attached with subparts()")
        use = _MimeUse(rec, erec)
        rec.uses.add(use)
        return rec.m, use


OBJECT_OPTIONS[lib.CURLOPT_MIMEPOST] = (_for_setopt, True)
