"""Module constants and functions: values from the compiler, names present
exactly when the libcurl curlmulti was built against has them,
version_info(), version, global_init()/global_cleanup()."""

import os
import re
import subprocess
import sys

import pytest

import curlmulti
from curlmulti._constnames import CONSTANTS as NAMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = curlmulti.COMPILE_LIBCURL_VERSION_NUM


def test_constants_are_ints():
    present = [name for name, _ in NAMES if hasattr(curlmulti, name)]
    assert len(present) > 500
    for name in present:
        value = getattr(curlmulti, name)
        assert type(value) is int, name
        assert name in curlmulti.__all__, name


# Fixed by libcurl's ABI; spot checks that the compiler's values arrived.
ABI_VALUES = {
    "URL": 10002, "WRITEFUNCTION": 20011, "WRITEDATA": 10001, "HEADERDATA": 10029,
    "WRITEHEADER": 10029, "READDATA": 10009, "VERBOSE": 41, "TIMEOUT_MS": 155,
    "POSTFIELDS": 10015, "HTTPHEADER": 10023, "MAXFILESIZE_LARGE": 30117,
    "RESUME_FROM_LARGE": 30116, "XFERINFOFUNCTION": 20219,
    "RESPONSE_CODE": 0x200002, "HTTP_CODE": 0x200002, "EFFECTIVE_URL": 0x100001,
    "TOTAL_TIME": 0x300003, "SIZE_DOWNLOAD_T": 0x600008, "INFO_CERTINFO": 0x400022,
    "ACTIVESOCKET": 0x50002C, "SSL_ENGINES": 0x40001B,
    "E_OK": 0, "E_UNSUPPORTED_PROTOCOL": 1, "E_URL_MALFORMAT": 3,
    "E_COULDNT_RESOLVE_HOST": 6, "E_COULDNT_CONNECT": 7, "E_PARTIAL_FILE": 18,
    "E_WRITE_ERROR": 23, "E_OPERATION_TIMEDOUT": 28, "E_ABORTED_BY_CALLBACK": 42,
    "E_UNKNOWN_OPTION": 48, "E_RECV_ERROR": 56, "E_MULTI_OK": 0, "E_MULTI_BAD_HANDLE": 1,
    "READFUNC_ABORT": 0x10000000, "READFUNC_PAUSE": 0x10000001,
    "WRITEFUNC_PAUSE": 0x10000001, "PAUSE_ALL": 5, "PAUSE_CONT": 0,
    "SEEKFUNC_OK": 0, "SEEKFUNC_FAIL": 1, "SEEKFUNC_CANTSEEK": 2,
    "SOCKOPT_OK": 0, "SOCKOPT_ERROR": 1, "SOCKOPT_ALREADY_CONNECTED": 2,
    "IOE_OK": 0, "IOCMD_RESTARTREAD": 1, "INFOTYPE_TEXT": 0, "INFOTYPE_HEADER_OUT": 2,
    "GLOBAL_ALL": 3, "GLOBAL_DEFAULT": 3, "HTTPAUTH_BASIC": 1,
}


def test_abi_values():
    for name, value in ABI_VALUES.items():
        assert getattr(curlmulti, name) == value, name


def test_unsigned_bitmasks_are_c_longs_as_in_pycurl():
    if VERSION >= 0x081300:
        # libcurl 8.19 masks them to 32 bits: positive in a 64-bit long.
        assert curlmulti.HTTPAUTH_ANY == 0xFFFFFFEF
        assert curlmulti.HTTPAUTH_ANYSAFE == 0xFFFFFFEE
        return
    # ~CURLAUTH_DIGEST_IE and ~(BASIC | DIGEST_IE) as signed C longs.
    assert curlmulti.HTTPAUTH_ANY == -17
    assert curlmulti.HTTPAUTH_ANYSAFE == -18


# pycurl names of libcurl symbols added in a known libcurl version.
ADDED_IN = {
    "AWS_SIGV4": 0x074B00, "CAINFO_BLOB": 0x074D00, "MAXLIFETIME_CONN": 0x075000,
    "PROTOCOLS_STR": 0x075500, "WS_OPTIONS": 0x075600, "CA_CACHE_TIMEOUT": 0x075700,
    "CONN_ID": 0x080200, "XFER_ID": 0x080200, "HAPROXY_CLIENT_IP": 0x080200,
    "QUEUE_TIME_T": 0x080600, "USED_PROXY": 0x080700, "ECH": 0x080800,
    "POSTTRANSFER_TIME_T": 0x080A00, "EARLYDATA_SENT_T": 0x080B00,
}


def test_names_follow_the_libcurl_version():
    for name, added in ADDED_IN.items():
        assert hasattr(curlmulti, name) == (VERSION >= added), (name, hex(added))
        assert hasattr(curlmulti.Curl, name) == (VERSION >= added), name


def _header_tokens():
    try:
        flags = subprocess.check_output(["curl-config", "--cflags"]).decode().split()
    except (OSError, subprocess.CalledProcessError):
        flags = []
    # scripts/test.sh exports the flags of a build against other headers
    # (CURLMULTI_LIBCURL=8.23: the vendored ones): those first.
    flags = os.environ.get("CURLMULTI_CFLAGS", "").split() + flags
    dirs = [f[2:] for f in flags if f.startswith("-I")]
    dirs += ["/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu", "/usr/include",
             "/usr/local/include"]
    for d in dirs:
        path = os.path.join(d, "curl", "curlver.h")
        if os.path.exists(path):
            with open(path) as f:
                m = re.search(r"#define LIBCURL_VERSION_NUM (0x[0-9a-fA-F]+)", f.read())
            if not m or int(m.group(1), 16) != VERSION:
                return None       # headers of another libcurl than the build's
            tokens = set()
            for name in os.listdir(os.path.join(d, "curl")):
                if name.endswith(".h"):
                    with open(os.path.join(d, "curl", name)) as f:
                        tokens.update(re.findall(r"\b[A-Z][A-Za-z0-9_]*\b", f.read()))
            return tokens
    return None


def test_absent_symbols_are_absent_names():
    tokens = _header_tokens()
    if tokens is None:
        pytest.skip("the headers of the libcurl curlmulti was built against are not here")
    absent = [(name, cname) for name, cname in NAMES if cname not in tokens]
    # pycurl 7.49's newest names are libcurl 8.17's: newer headers have them all.
    assert absent or VERSION >= 0x081100, "expected some pycurl names newer than these headers"
    for name, cname in absent:
        assert not hasattr(curlmulti, name), (name, cname)
        assert name not in curlmulti.__all__
    present = [name for name, cname in NAMES if cname in tokens]
    missing = [name for name in present if not hasattr(curlmulti, name)]
    # A header token may be a comment or a removed symbol; nearly all are values.
    assert len(missing) < len(present) // 20, missing


def test_version_info():
    info = curlmulti.version_info()
    assert isinstance(info, tuple) and len(info) == 12
    (age, version, version_num, host, features, ssl_version, ssl_version_num,
     libz_version, protocols, ares, ares_num, libidn) = info
    assert isinstance(age, int) and age >= 0
    assert re.match(r"^\d+\.\d+\.\d+", version)
    major, minor, patch = (int(x) for x in re.match(r"(\d+)\.(\d+)\.(\d+)", version).groups())
    assert version_num == (major << 16) | (minor << 8) | patch
    assert version_num >= VERSION >= 0x074900
    assert isinstance(host, str) and host
    assert isinstance(features, int) and features & curlmulti.VERSION_IPV6 in (0, curlmulti.VERSION_IPV6)
    assert ssl_version is None or isinstance(ssl_version, str)
    assert isinstance(ssl_version_num, int)
    assert libz_version is None or isinstance(libz_version, str)
    assert isinstance(protocols, tuple) and "http" in protocols
    assert all(isinstance(p, str) for p in protocols)
    assert ares is None or isinstance(ares, str)
    assert isinstance(ares_num, int)
    assert libidn is None or isinstance(libidn, str)


def test_version_string():
    assert isinstance(curlmulti.version, str)
    assert "libcurl/" + curlmulti.version_info()[1] in curlmulti.version
    assert curlmulti.version.startswith("curlmulti/" + curlmulti.__version__)


def test_compile_constants():
    assert curlmulti.COMPILE_LIBCURL_VERSION_NUM == VERSION
    assert curlmulti.COMPILE_PY_VERSION_HEX == sys.hexversion


def test_global_init_and_cleanup_in_a_fresh_process(httpbin):
    script = (
        "import curlmulti as p\n"
        "p.global_init(p.GLOBAL_DEFAULT)\n"
        "c = p.Curl(); c.setopt(c.URL, %r); body = c.perform_rb(); c.close()\n"
        "p.global_cleanup()\n"
        "p.global_init(p.GLOBAL_ALL)\n"
        "c = p.Curl(); c.setopt(c.URL, %r); body2 = c.perform_rb(); c.close()\n"
        "p.global_cleanup()\n"
        "print(len(body), len(body2))\n" % (httpbin("/bytes/10"), httpbin("/bytes/20")))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(curlmulti.__file__))] + sys.path))
    out = subprocess.check_output([sys.executable, "-c", script], env=env, timeout=60)
    assert out.split() == [b"10", b"20"]


def test_global_init_bad_arguments():
    with pytest.raises(TypeError):
        curlmulti.global_init("all")
    with pytest.raises(TypeError):
        curlmulti.global_init(None)
    # As pycurl: only combinations of the GLOBAL_* flags.
    known = 0
    for name in dir(curlmulti):
        if name.startswith("GLOBAL_"):
            known |= getattr(curlmulti, name)
    for bad in (12345, known + 1 if not known & (known + 1) else 1 << 20, 1 << 70, -1):
        with pytest.raises(ValueError, match="invalid option to global_init"):
            curlmulti.global_init(bad)
    curlmulti.global_init(curlmulti.GLOBAL_DEFAULT)   # counted: balanced below
    curlmulti.global_cleanup()


def test_mixed_case_and_aliased_names():
    # SSLVERSION_TLSv1_2 is mixed case in C as in pycurl; FORM_CONTENTS is
    # CURLFORM_COPYCONTENTS.  All fixed by libcurl's ABI.
    assert (curlmulti.SSLVERSION_TLSv1, curlmulti.SSLVERSION_SSLv2, curlmulti.SSLVERSION_SSLv3,
            curlmulti.SSLVERSION_TLSv1_0, curlmulti.SSLVERSION_TLSv1_1,
            curlmulti.SSLVERSION_TLSv1_2, curlmulti.SSLVERSION_TLSv1_3) == (1, 2, 3, 4, 5, 6, 7)
    assert curlmulti.SSLVERSION_MAX_TLSv1_2 == 6 << 16
    assert curlmulti.FORM_CONTENTS == 4
    c = curlmulti.Curl()
    c.setopt(c.SSLVERSION, c.SSLVERSION_TLSv1_2 | c.SSLVERSION_MAX_TLSv1_3)
    c.close()


def test_compile_ssl_lib():
    ssl_version = curlmulti.version_info()[5]
    assert isinstance(curlmulti.COMPILE_SSL_LIB, str) and curlmulti.COMPILE_SSL_LIB
    if ssl_version and ssl_version.lower().lstrip("(").startswith("openssl"):
        assert curlmulti.COMPILE_SSL_LIB == "openssl"
    if not ssl_version:
        assert curlmulti.COMPILE_SSL_LIB == "none"


def test_share_and_url_strerror():
    assert curlmulti.share_strerror(0) == "No error"
    assert curlmulti.share_strerror(1) == "Unknown share option"
    assert curlmulti.url_strerror(0) == "No error"
    assert curlmulti.url_strerror(1) == "An invalid CURLU pointer was passed as argument"
