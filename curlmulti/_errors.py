"""The one place for errors: the ``error`` class, the checks that turn
libcurl return codes into it, and the fixed messages for misuse."""

from typing import Any, NoReturn, Optional

from ._curl import ffi, lib


class error(Exception):
    """Raised for every libcurl failure.  ``args`` is ``(code, message)`` as in
    pycurl: libcurl's CURLcode/CURLMcode and its message.  When a Python
    callback caused the failure, that exception is ``__cause__``."""


def _text(p: Any) -> str:
    return ffi.string(p).decode("utf-8", "surrogateescape") if p != ffi.NULL else ""


def easy_strerror(code: int) -> str:
    """libcurl's description of a CURLcode (``curl_easy_strerror``)."""
    return _text(lib.curl_easy_strerror(code))


def multi_strerror(code: int) -> str:
    """libcurl's description of a CURLMcode (``curl_multi_strerror``)."""
    return _text(lib.curl_multi_strerror(code))


def share_strerror(code: int) -> str:
    """libcurl's description of a CURLSHcode (``curl_share_strerror``)."""
    return _text(lib.curl_share_strerror(code))


def url_strerror(code: int) -> str:
    """libcurl's description of a CURLUcode (``curl_url_strerror``)."""
    return _text(lib.curl_url_strerror(code))


def easy_error(code: int, message: Optional[str] = None) -> error:
    """An ``error`` for a CURLcode, with libcurl's message unless given."""
    return error(code, message or easy_strerror(code))


def check_easy(code: int) -> None:
    if code != 0:
        raise easy_error(code)


def check_multi(code: int) -> None:
    if code != 0:
        raise error(code, multi_strerror(code))


# The word pycurl uses for each object's C handle in its "closed" message.
_HANDLE_WORDS = {"Curl object": "curl", "CurlMulti object": "multi", "CurlShare object": "share"}


def closed_error(what: str, method: str) -> error:
    """pycurl's message for a method of a closed object, and ours after it."""
    if what == "CurlMulti object" and method in ("add_handle", "remove_handle"):
        return error(0, "cannot add/remove handle - multi-stack is closed")
    if what == "Curl object" and method == "add_handle":
        return error(0, "curl object already closed")
    return error(0, "cannot invoke %s() - no %s handle (the %s is closed)"
                 % (method, _HANDLE_WORDS.get(what, what), what))


def misuse(message: str) -> error:
    """An ``error`` for a call that libcurl would not even be asked to do."""
    return error(0, message)


def raise_from_callback(err: BaseException, exc: Optional[BaseException]) -> NoReturn:
    """Raise ``err`` caused by ``exc``, the exception a callback stored;
    KeyboardInterrupt and SystemExit travel as themselves."""
    if exc is not None and not isinstance(exc, Exception):
        raise exc
    raise err from exc


# Methods of the classes that own a C handle or C memory: a copy or an
# unpickled clone would be a second owner of the same pointer.
def no_copy(self: object, *args: object) -> NoReturn:
    raise TypeError("%s objects do not support copying" % type(self).__name__)


def no_pickle(self: object, *args: object) -> NoReturn:
    raise TypeError("%s objects do not support serialization" % type(self).__name__)
