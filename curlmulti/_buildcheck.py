"""Imported first by curlmulti/__init__.py: the compiled curlmulti._curl must
have been built from this version of the package.

build_ffi.py stamps the extension with the package version (CM_BUILD_VERSION).
An extension left over from another version (an in-place build, a copy of the
package over an older install, a second curlmulti on sys.path) would otherwise
fail later and obscurely, with a missing symbol or a wrong constant; here it
fails at import, saying what to rebuild.
"""

import sys

from ._version import __version__

try:
    from ._curl import ffi as _ffi, lib as _lib
except ImportError as e:
    raise ImportError("curlmulti %s: its compiled module curlmulti._curl is missing or does not load (%s); "
                      "build and install curlmulti (pip install <source directory or sdist>; libcurl's "
                      "development files and a C compiler are needed)" % (__version__, e)) from e

try:
    _built = _ffi.string(_lib.CM_BUILD_VERSION).decode("ascii", "replace")
except AttributeError:          # built before the stamp existed
    _built = "an unknown version"

if _built != __version__:
    _where = getattr(sys.modules.get(__package__ + "._curl"), "__file__", "curlmulti._curl")
    raise ImportError("curlmulti %s found its compiled module %s built for %s: rebuild and reinstall "
                      "curlmulti from one source (pip install --force-reinstall --no-deps <source "
                      "directory or sdist>), or remove the other copy from sys.path"
                      % (__version__, _where, _built))
