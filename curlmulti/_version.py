"""curlmulti's version: the one place it is written.

pyproject.toml reads it (setuptools' dynamic version, parsed without importing
the package), build_ffi.py stamps it into the compiled curlmulti._curl, and
curlmulti/_buildcheck.py checks at import that the two agree.  The CHANGELOG's
newest heading names it too (tests/test_version.py checks all of them).
"""

__version__ = "0.1.0"
