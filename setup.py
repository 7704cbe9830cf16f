# setuptools needs this file to learn about the cffi extension module, and to
# tag CPython wheels abi3.
import platform
import sys
import sysconfig

from setuptools import setup


def limited_api():
    """True when curlmulti._curl is built for CPython's stable ABI: on CPython,
    unless it is a debug or a free-threaded build (cffi then builds a
    version-specific module).  build_ffi.py asks the same question."""
    return (platform.python_implementation() == "CPython" and not hasattr(sys, "gettotalrefcount")
            and not sysconfig.get_config_var("Py_GIL_DISABLED"))


options = {}
if limited_api():
    # build_ffi.py defines Py_LIMITED_API as 0x03090000: one cp39-abi3 wheel
    # serves CPython 3.9 and every later version.
    options["bdist_wheel"] = {"py_limited_api": "cp39"}

setup(cffi_modules=["build_ffi.py:ffibuilder"], options=options)
