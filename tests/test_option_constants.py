"""Every exported option constant is one Curl.setopt takes (hasattr never
misleads), names mapped as pycurl maps them, bitmasks as C longs."""

import io
import os
import warnings

import pytest

import curlmulti
from curlmulti import Curl, CurlShare, error
from curlmulti._constants import UNSUPPORTED, option_name
from curlmulti._constnames import CONSTANTS as NAMES
from curlmulti._easy import _BLOB, _FUNCTION, _LONG, _OBJECT, _OFF_T, _SLIST, _STRING, _option_kind

E = curlmulti
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "tools", "pycurl-names.txt")) as f:
    PYCURL_NAMES = set(f.read().split())

# Names pycurl 7.49 has whose setopt pycurl refuses too: its own trampolines'
# data pointers, and STDERR.  CURLU and MIMEPOST until their classes exist.
PYCURL_REFUSED = {"FNMATCH_DATA", "HSTSREADDATA", "HSTSWRITEDATA", "RESOLVER_START_DATA",
                  "TRAILERDATA", "STDERR", "CURLU", "MIMEPOST"}
# What a libcurl build may refuse by its own choice (a feature left out).
BUILD_REFUSALS = {E.E_NOT_BUILT_IN, E.E_UNKNOWN_OPTION, E.E_SSL_ENGINE_NOTFOUND}
# libcurl 7.88 refuses every value of PROXY_TLSAUTH_TYPE, "SRP" included.
LIBCURL_REFUSES = {"PROXY_TLSAUTH_TYPE": E.E_BAD_FUNCTION_ARGUMENT}

# A valid value, for the options where the kind's default is not one.
VALUES = {
    "PROTOCOLS_STR": "http,https", "REDIR_PROTOCOLS_STR": "http", "TLSAUTH_TYPE": "SRP",
    "PROXY_TLSAUTH_TYPE": "SRP", "ALTSVC_CTRL": 1 << 3, "POSTFIELDS": "a=b", "COPYPOSTFIELDS": "a=b",
    "HTTPPOST": [("a", "b")],
    "OPT_RTSP_REQUEST": 1,  # CURL_RTSPREQ_OPTIONS: libcurl 8 refuses 0 (NONE)
}
KIND_VALUES = {_LONG: 0, _OFF_T: 0, _STRING: "x", _SLIST: ["x"], _BLOB: b"x", _FUNCTION: lambda *a: 0}


def _object_value(name):
    if name in ("WRITEDATA", "FILE", "HEADERDATA", "WRITEHEADER", "READDATA", "INFILE"):
        return io.BytesIO()
    if name == "SHARE":
        return CurlShare()
    return VALUES.get(name)


OPTIONS = sorted({py for py, c in NAMES if c.startswith("CURLOPT_") and hasattr(E, py)})


@pytest.mark.parametrize("name", OPTIONS)
def test_every_exported_option_is_taken(name):
    option = getattr(E, name)
    c = Curl()
    kind = _option_kind(option)
    value = VALUES.get(name, KIND_VALUES.get(kind))
    if kind == _OBJECT:
        value = _object_value(name)
        assert value is not None or name in PYCURL_REFUSED, "no test value for %s" % name
        if value is None:
            value = object()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            c.setopt(option, value)
    except error as e:
        # libcurl's own refusal, for a pycurl name only (its build lacks the feature).
        assert name in PYCURL_NAMES, (name, e.args)
        assert e.args[0] in BUILD_REFUSALS or e.args[0] == LIBCURL_REFUSES.get(name), (name, e.args)
    except TypeError:
        assert name in PYCURL_REFUSED, name
    else:
        if kind not in (_LONG, _OFF_T):  # integers are not unset (as in pycurl): set to default
            try:
                c.unsetopt(option)
            except error as e:  # libcurl refuses NULL for a few (PROTOCOLS_STR, TLSAUTH_TYPE)
                assert e.args[0] == E.E_BAD_FUNCTION_ARGUMENT, (name, e.args)
    c.close()


def test_unsupported_names_are_absent():
    for name in UNSUPPORTED:
        assert not hasattr(E, name), name
        assert not hasattr(Curl, name), name
        assert name not in E.__all__
    assert not hasattr(E, "SSL_CTX_FUNCTION") and not hasattr(E, "CHUNK_BGN_FUNCTION")


def test_refused_option_numbers_keep_their_names_in_messages():
    from curlmulti._constants import ALL_CONSTANTS
    if "SSL_CTX_FUNCTION" not in ALL_CONSTANTS:
        pytest.skip("libcurl without SSL_CTX_FUNCTION")
    c = Curl()
    with pytest.raises(TypeError, match="SSL_CTX_FUNCTION"):
        c.setopt(ALL_CONSTANTS["SSL_CTX_FUNCTION"], lambda *a: 0)
    c.close()


@pytest.mark.parametrize("name", ["INFILESIZE", "MAXFILESIZE", "POSTFIELDSIZE", "RESUME_FROM"])
def test_size_names_are_their_large_forms(name):
    assert getattr(E, name) == getattr(E, name + "_LARGE")
    assert option_name(getattr(E, name)) == name + "_LARGE"
    c = Curl()
    c.setopt(getattr(E, name), 1 << 40)  # a curl_off_t: past 32 bits
    c.close()


def test_infilesize_upload(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/put"))
    c.setopt(c.UPLOAD, 1)
    body = io.BytesIO(b"x" * 1000)
    c.setopt(c.READDATA, body)
    c.setopt(c.INFILESIZE, 1000)
    out = c.perform_rb()
    assert b'"Content-Length": "1000"' in out
    c.close()


def test_resume_from(httpbin):
    c = Curl()
    c.setopt(c.URL, httpbin("/range/100"))
    c.setopt(c.RESUME_FROM, 90)
    assert len(c.perform_rb()) == 10
    c.close()


def test_httpauth_any_is_negative_and_works(httpbin):
    assert E.HTTPAUTH_ANY < 0 and E.HTTPAUTH_ANY & E.HTTPAUTH_BASIC
    c = Curl()
    c.setopt(c.URL, httpbin("/basic-auth/u/p"))
    c.setopt(c.USERPWD, "u:p")
    c.setopt(c.HTTPAUTH, c.HTTPAUTH_ANY)
    c.perform_rb()
    assert c.getinfo(c.RESPONSE_CODE) == 200
    c.close()
