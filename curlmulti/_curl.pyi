# Stub for the compiled cffi module built by build_ffi.py.  `lib` carries the
# libcurl functions declared in curlmulti/_decl/*.h, the shims of shims.h and
# one integer attribute per constant of _constnames.py that the installed
# libcurl defines; its exact attributes depend on that libcurl.
from typing import Any

ffi: Any
lib: Any
