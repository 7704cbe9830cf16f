"""Assemble the cffi declarations of curlmulti._curl and compile it against
the libcurl installed on this machine (cffi API mode, out of line).

This script only assembles.  The declarations live in curlmulti/_decl/, one
fragment per libcurl area, read in this order:

  types.h      integer types, structs and opaque handles
  easy.h       global and easy-handle functions
  multi.h      multi-handle functions
  share.h      share-handle constants (the CURLSH is reached through shims)
  url.h        the URL API (CurlUrl)
  mime.h       the MIME API beyond what HTTPPOST needs (CurlMime, objects.c)
  ws.h         WebSockets, present or stubbed (CM_HAS_WS, objects.c)
  shims.h      typed shims over the variadic calls, and the C sinks
               (C in shims.c and sinks.c)
  eventcore.h  the native event core: libcurl's socket and timer
               callbacks in C over an epoll set (C in eventcore.c)
  multigate.h  the lock and busy mark of a CurlMulti's record, and the
               hot multi calls that check, mark and call libcurl in one
               C call (C in multigate.c)
  callbacks.h  every extern "Python" trampoline (Python in _callbacks.py)
  version.h    CM_BUILD_VERSION, the package version this module is built
               from (curlmulti/_version.py), checked at import

followed by the constants: curlmulti/_constnames.py names them (names only),
the C compiler supplies their values, and a symbol the installed libcurl
lacks is dropped by a one-shot compiler probe before it is declared.

Where libcurl is found, first match wins:
  CURLMULTI_CURL_CONFIG  path of a curl-config script
  CURLMULTI_CFLAGS / CURLMULTI_LIBS  flags given directly
  curl-config, then pkg-config libcurl, on PATH

CURLMULTI_EXTRA_CFLAGS / CURLMULTI_EXTRA_LDFLAGS are added to the compile and
link flags, whichever way libcurl was found (scripts/asan.sh builds with
-fsanitize=address through them).
"""
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
DECL = os.path.join(HERE, "curlmulti", "_decl")
FRAGMENTS = ["types.h", "easy.h", "multi.h", "share.h", "url.h", "mime.h", "ws.h", "shims.h",
             "eventcore.h", "multigate.h", "callbacks.h", "version.h"]
MISSING = (
    "libcurl's development files were not found.  Install them "
    "(Debian/Ubuntu: apt-get install libcurl4-openssl-dev; Fedora: "
    "dnf install libcurl-devel) or point CURLMULTI_CURL_CONFIG at curl-config."
)


def _read(name):
    with open(os.path.join(DECL, name)) as f:
        return f.read()


def _run(argv):
    try:
        return subprocess.check_output(argv, stderr=subprocess.DEVNULL).decode()
    except (OSError, subprocess.CalledProcessError):
        return None


def libcurl_flags():
    """(compile flags, link flags) for the installed libcurl."""
    if os.environ.get("CURLMULTI_CFLAGS") is not None or os.environ.get("CURLMULTI_LIBS"):
        return (shlex.split(os.environ.get("CURLMULTI_CFLAGS", "")),
                shlex.split(os.environ.get("CURLMULTI_LIBS", "-lcurl")))
    configs = [os.environ["CURLMULTI_CURL_CONFIG"]] if os.environ.get("CURLMULTI_CURL_CONFIG") else []
    configs.append(shutil.which("curl-config") or "curl-config")
    for config in configs:
        cflags, libs = _run([config, "--cflags"]), _run([config, "--libs"])
        if cflags is not None and libs is not None:
            return shlex.split(cflags), shlex.split(libs)
    cflags, libs = _run(["pkg-config", "--cflags", "libcurl"]), _run(["pkg-config", "--libs", "libcurl"])
    if cflags is not None and libs is not None:
        return shlex.split(cflags), shlex.split(libs)
    sys.exit("curlmulti: " + MISSING)


def package_version():
    """__version__ of curlmulti/_version.py, read without importing the package."""
    scope = {}
    with open(os.path.join(HERE, "curlmulti", "_version.py")) as f:
        exec(compile(f.read(), "_version.py", "exec"), scope)
    version = scope["__version__"]
    if not re.fullmatch(r"[0-9A-Za-z.+!_-]+", version):
        sys.exit("curlmulti: unexpected characters in the version %r" % (version,))
    return version


def constant_names():
    scope = {}
    with open(os.path.join(HERE, "curlmulti", "_constnames.py")) as f:
        exec(compile(f.read(), "_constnames.py", "exec"), scope)
    return sorted({cname for _, cname in scope["CONSTANTS"]})


def present_constants(cnames, cflags):
    """The names in cnames that the installed headers define as integer
    constants: one compile, each name on its own #line, errors name the
    line numbers to drop."""
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    lines = ["#include <curl/curl.h>", '#line 1 "cm-names"']
    lines += ["_Static_assert((%s) == (%s) || 1, \"\");" % (n, n) for n in cnames]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("\n".join(lines) + "\n")
        proc = subprocess.run(cc + cflags + ["-fsyntax-only", "-fmax-errors=0", "-w", src],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.decode(errors="replace")
    if "curl/curl.h" in out and ("No such file" in out or "not found" in out):
        sys.exit("curlmulti: " + MISSING)
    bad = {int(m) for m in re.findall(r"cm-names:(\d+):(?:\d+:)? error", out)}
    if proc.returncode != 0 and not bad:
        sys.exit("curlmulti: probing libcurl's headers failed:\n" + out[-4000:])
    return [n for i, n in enumerate(cnames, 1) if i not in bad]


def limited_api_macros():
    """Py_LIMITED_API pinned to Python 3.9 where the module is built for the
    stable ABI (setup.py tags those wheels cp39-abi3; same test there).
    Without it cffi would still define Py_LIMITED_API, unversioned."""
    if (platform.python_implementation() == "CPython" and not hasattr(sys, "gettotalrefcount")
            and not sysconfig.get_config_var("Py_GIL_DISABLED")):
        return [("Py_LIMITED_API", "0x03090000")]
    return []


def make_ffibuilder():
    cflags, libs = libcurl_flags()
    cdef = "\n".join(_read(name) for name in FRAGMENTS)
    present = present_constants(constant_names(), cflags)
    cdef += "\n/* Constants: generated from curlmulti/_constnames.py at build time. */\n"
    cdef += "".join("#define %s ...\n" % n for n in present)
    builder = FFI()
    builder.cdef(cdef)
    builder.set_source(
        "curlmulti._curl",
        "#include <curl/curl.h>\n"
        'static const char CM_BUILD_VERSION[] = "%s";\n' % package_version()
        + _read("shims.c") + _read("cwrite.c") + _read("sinks.c") + _read("objects.c") + _read("eventcore.c")
        + _read("multigate.c"),
        define_macros=limited_api_macros(),
        extra_compile_args=(cflags + ["-Wno-deprecated-declarations"]
                            + shlex.split(os.environ.get("CURLMULTI_EXTRA_CFLAGS", ""))),
        extra_link_args=libs + shlex.split(os.environ.get("CURLMULTI_EXTRA_LDFLAGS", "")),
    )
    return builder


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
