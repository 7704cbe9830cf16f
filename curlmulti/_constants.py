"""pycurl's constants with the values of the libcurl curlmulti was built
against.  Names come from the generated _constnames.py; a name whose C
symbol the build probe dropped is simply absent."""

from typing import Any, Dict

from ._constnames import CONSTANTS as _NAMES
from ._curl import ffi, lib

# Every name the build found, before the adjustments below (for the
# library's own use: option numbers it refuses by name).
ALL_CONSTANTS: Dict[str, int] = {}
for _pyname, _cname in _NAMES:
    try:
        ALL_CONSTANTS[_pyname] = getattr(lib, _cname)
    except AttributeError:
        pass
del _pyname, _cname

# Options pycurl does not have and Curl.setopt refuses, so that hasattr()
# answers truthfully: the *DATA pointers curlmulti sets itself for its own
# trampolines, the callbacks without a Python form (SSL_CTX_FUNCTION hands
# over an SSL_CTX *, the CONV_* callbacks are gone from libcurl, chunk and
# RTSP interleave callbacks are not wrapped), handle pointers
# (STREAM_DEPENDS*, ERRORBUFFER) and options libcurl no longer knows.  The
# *DATA names pycurl does have (FNMATCH_DATA, TRAILERDATA, ...) stay: its
# setopt refuses them too.
UNSUPPORTED = frozenset((
    "CHUNK_BGN_FUNCTION", "CHUNK_END_FUNCTION", "CHUNK_DATA", "INTERLEAVEFUNCTION", "INTERLEAVEDATA",
    "CONV_FROM_NETWORK_FUNCTION", "CONV_FROM_UTF8_FUNCTION", "CONV_TO_NETWORK_FUNCTION",
    "SSL_CTX_FUNCTION", "SSL_CTX_DATA", "CLOSESOCKETDATA", "DEBUGDATA", "IOCTLDATA", "OPENSOCKETDATA",
    "PREREQDATA", "PROGRESSDATA", "SEEKDATA", "SOCKOPTDATA", "SSH_HOSTKEYDATA", "SSH_KEYDATA",
    "XFERINFODATA", "ERRORBUFFER", "STREAM_DEPENDS", "STREAM_DEPENDS_E", "CLOSEPOLICY", "WRITEINFO",
))
# Options only a libcurl built with c-ares takes (pycurl has none of them;
# its DNS_SERVERS stays whatever the resolver, as in pycurl).
_ARES_ONLY = ("DNS_INTERFACE", "DNS_LOCAL_IP4", "DNS_LOCAL_IP6")
# As pycurl: these names are the numbers of their 64-bit (_LARGE) forms.
_LARGE_FORMS = ("INFILESIZE", "MAXFILESIZE", "POSTFIELDSIZE", "RESUME_FROM")

_LONG_BITS = 8 * ffi.sizeof("long")

CONSTANTS: Dict[str, int] = {}
for _pyname, _value in ALL_CONSTANTS.items():
    if _pyname in UNSUPPORTED:
        continue
    if _value >= 1 << (_LONG_BITS - 1):
        # pycurl holds every constant as a C long: libcurl's unsigned long
        # bitmasks past LONG_MAX (HTTPAUTH_ANY, HTTPAUTH_ANYSAFE) are negative.
        _value -= 1 << _LONG_BITS
    CONSTANTS[_pyname] = _value
for _pyname in _LARGE_FORMS:
    if _pyname + "_LARGE" in CONSTANTS:
        CONSTANTS[_pyname] = CONSTANTS[_pyname + "_LARGE"]
if ffi.NULL == lib.curl_version_info(lib.CURLVERSION_NOW).ares:
    for _pyname in _ARES_ONLY:
        CONSTANTS.pop(_pyname, None)
del _pyname, _value

# Families, for the objects that carry them as attributes.
MULTI_CONSTANTS = {k: v for k, v in CONSTANTS.items() if k.startswith("M_")}

# Option number -> its pycurl name, for messages ("URL takes str or bytes").
# Where two names share a number (WRITEDATA and FILE), the one libcurl
# itself spells CURLOPT_<name> wins.
OPTION_NAMES: Dict[int, str] = {}
for _canonical in (True, False):
    for _pyname, _cname in _NAMES:
        if _cname.startswith("CURLOPT_") and _pyname in ALL_CONSTANTS and (
                (_cname == "CURLOPT_" + _pyname) == _canonical):
            OPTION_NAMES.setdefault(ALL_CONSTANTS[_pyname], _pyname)
del _canonical, _pyname, _cname


def option_name(option: Any) -> str:
    """The pycurl name of an option number, or "option N"."""
    name = OPTION_NAMES.get(option)
    return name if name is not None else "option %r" % (option,)
