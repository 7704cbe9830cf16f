"""curlmulti: libcurl's easy and multi interfaces for CPython and PyPy,
pycurl-compatible (``import curlmulti as pycurl``)."""

from typing import TYPE_CHECKING

from ._version import __version__  # noqa: F401  (the one place it is written)
from . import _buildcheck  # noqa: F401  (first: a stale compiled _curl fails here, saying so)
from ._constants import CONSTANTS as _CONSTANTS
from ._cbtypes import CurlSockAddr, HstsEntry, HstsIndex, KhKey
from ._easy import Curl
from ._multi import CurlMulti
from ._share import CurlShare
from ._url import CurlUrl
from ._mime import CurlMime, CurlMimePart
from . import _ws
from ._async import AsyncCurlMulti
from ._stream import ResponseHead, Stream
from ._request import HTTPRequest, HTTPResult
from ._sinks import Buffer, FileSink
from . import async_multi  # noqa: F401  (pycurl.async_multi)
from ._errors import easy_strerror, error, multi_strerror, share_strerror, url_strerror
from ._globals import (COMPILE_PY_VERSION_HEX, COMPILE_SSL_LIB, global_cleanup, global_init, version,
                       version_info)

globals().update(_CONSTANTS)

if TYPE_CHECKING:  # the constants as `int`, for type checkers (generated: tools/gen_stubs.py)
    from ._constdecl import *  # noqa: F403

__all__ = [
    "Curl", "CurlMulti", "CurlShare", "CurlUrl", "CurlMime", "CurlMimePart", "AsyncCurlMulti", "Stream", "ResponseHead",
    "HTTPRequest", "HTTPResult",
    "Buffer", "FileSink", "error", "version", "version_info", "global_init", "global_cleanup",
    "easy_strerror", "multi_strerror", "share_strerror", "url_strerror",
    "COMPILE_PY_VERSION_HEX", "COMPILE_SSL_LIB", "CurlSockAddr", "KhKey", "HstsEntry", "HstsIndex",
]
__all__ += sorted(_CONSTANTS)  # apart, so that type checkers read the list above
if _ws.HAS_WS:  # only where the libcurl loaded speaks WebSockets
    WsFrame = _ws.WsFrame
    __all__.append("WsFrame")

