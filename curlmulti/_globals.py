"""Module-level functions of pycurl: version information and global init."""

import sys
from typing import Any, List, Optional, Tuple

from ._constants import CONSTANTS
from ._curl import ffi, lib
from ._errors import check_easy
from ._version import __version__

COMPILE_PY_VERSION_HEX = sys.hexversion
# global_init() takes any combination of the GLOBAL_* flags, nothing else.
_GLOBAL_FLAGS = 0
for _name, _value in CONSTANTS.items():
    if _name.startswith("GLOBAL_"):
        _GLOBAL_FLAGS |= _value


def _s(p: Any) -> Optional[str]:
    return ffi.string(p).decode("ascii", "replace") if p != ffi.NULL else None


def _str(p: Any) -> str:
    """A string libcurl never leaves NULL."""
    return ffi.string(p).decode("ascii", "replace")


# (age, version, version_num, host, features, ssl_version, ssl_version_num,
#  libz_version, protocols, ares, ares_num, libidn)
VersionInfo = Tuple[int, str, int, str, int, Optional[str], int, Optional[str], Tuple[str, ...],
                    Optional[str], int, Optional[str]]


def version_info() -> VersionInfo:
    """``curl_version_info`` as pycurl's 12-tuple: (age, version, version_num,
    host, features, ssl_version, ssl_version_num, libz_version, protocols,
    ares, ares_num, libidn)."""
    d = lib.curl_version_info(lib.CURLVERSION_NOW)
    protocols: List[str] = []
    i = 0
    while d.protocols[i] != ffi.NULL:
        protocols.append(_str(d.protocols[i]))
        i += 1
    return (d.age, _str(d.version), d.version_num, _str(d.host), d.features,
            _s(d.ssl_version), d.ssl_version_num, _s(d.libz_version), tuple(protocols),
            _s(d.ares), d.ares_num, _s(d.libidn))


def global_init(flags: int) -> None:
    """``curl_global_init``; libcurl also does this by itself."""
    if not isinstance(flags, int):
        raise TypeError("global_init() takes an int")
    if flags < 0 or flags & ~_GLOBAL_FLAGS:
        raise ValueError("invalid option to global_init")
    check_easy(lib.curl_global_init(flags))


def global_cleanup() -> None:
    """``curl_global_cleanup``."""
    lib.curl_global_cleanup()


version = "curlmulti/%s %s" % (__version__, _s(lib.curl_version()))


def _ssl_lib() -> str:
    """pycurl's name of the TLS library: "openssl", "gnutls", ... or "none"."""
    name = _s(lib.curl_version_info(lib.CURLVERSION_NOW).ssl_version)
    if not name:
        return "none"
    name = name.lstrip("(").split("/")[0].lower()
    for prefix, ours in (("openssl", "openssl"), ("libressl", "openssl"), ("boringssl", "openssl"),
                         ("quictls", "openssl"), ("gnutls", "gnutls"), ("nss", "nss"),
                         ("mbedtls", "mbedtls"), ("wolfssl", "wolfssl"), ("schannel", "schannel"),
                         ("securetransport", "sectransp"), ("rustls", "rustls")):
        if name.startswith(prefix):
            return ours
    return name


COMPILE_SSL_LIB = _ssl_lib()
