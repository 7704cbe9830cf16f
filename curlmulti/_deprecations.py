"""The DeprecationWarnings pycurl 7.49 emits, for the same calls.

pycurl warns for a fixed set, not for every option libcurl deprecates:
setting HTTPPOST, PROGRESSFUNCTION or IOCTLFUNCTION (each names its
successor), setting one of a few string options, reading one of the double
size/speed infos (their ``*_T`` forms are not deprecated), and
``CurlMulti.socket_all()``.  Unsetting (a None value, ``unsetopt``) does not
warn.  Each warning points at the line that called curlmulti."""

import sys
import warnings
from types import FrameType
from typing import Any, Callable, Dict, Optional, Tuple

from ._constants import CONSTANTS

def _is_list(value: object) -> bool:
    return isinstance(value, (list, tuple))


def _is_text(value: object) -> bool:
    return isinstance(value, (str, bytes))


# name -> (message, which values warn: pycurl warns once the value has
# passed its type check, so a value of the wrong type gets only the error)
_SETOPT: Dict[str, Tuple[str, Callable[[Any], bool]]] = {
    "HTTPPOST": ("HTTPPOST is deprecated; use MIMEPOST", _is_list),
    "PROGRESSFUNCTION": ("PROGRESSFUNCTION is deprecated; use XFERINFOFUNCTION", callable),
    "IOCTLFUNCTION": ("IOCTLFUNCTION is deprecated; use SEEKFUNCTION", callable),
}
_SETOPT_STRINGS = ("EGDSOCKET", "KRBLEVEL", "RANDOM_FILE", "SOCKS5_GSSAPI_SERVICE",
                   "TLSAUTH_TYPE", "TLSAUTH_USERNAME", "TLSAUTH_PASSWORD",
                   "PROXY_TLSAUTH_TYPE", "PROXY_TLSAUTH_USERNAME", "PROXY_TLSAUTH_PASSWORD")
_GETINFO = ("CONTENT_LENGTH_DOWNLOAD", "CONTENT_LENGTH_UPLOAD", "SIZE_DOWNLOAD", "SIZE_UPLOAD",
            "SPEED_DOWNLOAD", "SPEED_UPLOAD")

# option number -> message
_Check = Tuple[str, Callable[[Any], bool]]
SETOPT: Dict[int, _Check] = {CONSTANTS[name]: message for name, message in _SETOPT.items() if name in CONSTANTS}
SETOPT.update((CONSTANTS[name], ("setopt option is deprecated: " + name, _is_text))
              for name in _SETOPT_STRINGS if name in CONSTANTS)
GETINFO: Dict[int, str] = {CONSTANTS[name]: "getinfo option is deprecated: " + name
           for name in _GETINFO if name in CONSTANTS}


def setopt(option: int, value: object) -> None:
    """Warn if setting option to value is deprecated."""
    message, applies = SETOPT[option]
    if applies(value):
        warn(message)


def warn(message: str) -> None:
    """A DeprecationWarning attributed to the first caller outside
    curlmulti (Curl.setopt called by the request protocol's handle, or by
    the user directly: the user's line either way)."""
    frame: Optional[FrameType] = sys._getframe(0)
    level = 1
    while frame is not None and _ours(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        level += 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def _ours(module: str) -> bool:
    return module == "curlmulti" or module.startswith("curlmulti.")
