# setuptools needs this file only to learn about the cffi extension module.
from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])
