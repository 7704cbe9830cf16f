/* The version of the Python package this module was built from: build_ffi.py
   defines it from curlmulti/_version.py, curlmulti/_buildcheck.py compares it
   with the package's __version__ at import. */
static const char CM_BUILD_VERSION[];
