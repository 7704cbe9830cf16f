"""The one place for errors: the ``error`` class, the checks that turn
libcurl return codes into it, and the fixed messages for misuse."""

from ._curl import ffi, lib


class error(Exception):
    """Raised for every libcurl failure.  ``args`` is ``(code, message)`` as in
    pycurl: libcurl's CURLcode/CURLMcode and its message.  When a Python
    callback caused the failure, that exception is ``__cause__``."""


def _text(p):
    return ffi.string(p).decode("utf-8", "surrogateescape") if p != ffi.NULL else ""


def easy_strerror(code):
    """libcurl's description of a CURLcode (``curl_easy_strerror``)."""
    return _text(lib.curl_easy_strerror(code))


def multi_strerror(code):
    """libcurl's description of a CURLMcode (``curl_multi_strerror``)."""
    return _text(lib.curl_multi_strerror(code))


def share_strerror(code):
    """libcurl's description of a CURLSHcode (``curl_share_strerror``)."""
    return _text(lib.curl_share_strerror(code))


def url_strerror(code):
    """libcurl's description of a CURLUcode (``curl_url_strerror``)."""
    return _text(lib.curl_url_strerror(code))


def easy_error(code, message=None):
    """An ``error`` for a CURLcode, with libcurl's message unless given."""
    return error(code, message or easy_strerror(code))


def check_easy(code):
    if code != 0:
        raise easy_error(code)


def check_multi(code):
    if code != 0:
        raise error(code, multi_strerror(code))


# The word pycurl uses for each object's C handle in its "closed" message.
_HANDLE_WORDS = {"Curl object": "curl", "CurlMulti object": "multi", "CurlShare object": "share"}


def closed_error(what, method):
    """pycurl's message for a method of a closed object, and ours after it."""
    if what == "CurlMulti object" and method in ("add_handle", "remove_handle"):
        return error(0, "cannot add/remove handle - multi-stack is closed")
    if what == "Curl object" and method == "add_handle":
        return error(0, "curl object already closed")
    return error(0, "cannot invoke %s() - no %s handle (the %s is closed)"
                 % (method, _HANDLE_WORDS.get(what, what), what))


def misuse(message):
    """An ``error`` for a call that libcurl would not even be asked to do."""
    return error(0, message)


def raise_from_callback(err, exc):
    """Raise ``err`` caused by ``exc``, the exception a callback stored;
    KeyboardInterrupt and SystemExit travel as themselves."""
    if exc is not None and not isinstance(exc, Exception):
        raise exc
    raise err from exc


# Methods of the classes that own a C handle or C memory: a copy or an
# unpickled clone would be a second owner of the same pointer.
def no_copy(self, *args):
    raise TypeError("%s objects do not support copying" % type(self).__name__)


def no_pickle(self, *args):
    raise TypeError("%s objects do not support serialization" % type(self).__name__)
