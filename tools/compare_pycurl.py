"""List the pycurl API that curlmulti lacks.

Run it with a Python that has the real pycurl installed, pointing it at a
curlmulti build (the source tree after ``python build_ffi.py`` will do):

    /path/to/pycurl-venv/bin/python tools/compare_pycurl.py [--curlmulti DIR]

(curlmulti needs cffi's _cffi_backend: if that interpreter lacks it, put a
site-packages that has it on PYTHONPATH.)

It prints, in sections, the module-level names, the methods and attributes
of Curl, CurlMulti and CurlShare, and the constants that pycurl has and
curlmulti does not.  Missing constants are split in two: names curlmulti
knows (in curlmulti/_constnames.py) but the libcurl it was built against
lacks, and names curlmulti does not know at all.  The exit status is 0; the
report is for reading.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def public(names):
    return sorted(n for n in names if not n.startswith("_"))


def is_constant(value):
    return isinstance(value, (int, str, bytes, tuple))


def compare_class(title, ours, theirs):
    if theirs is None:
        return []
    if ours is None:
        return ["%s (the whole class)" % title]
    return ["%s.%s" % (title, name) for name in public(dir(theirs))
            if not is_constant(getattr(theirs, name, None)) and not hasattr(ours, name)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curlmulti", default=ROOT,
                        help="directory holding the curlmulti package (default: this checkout)")
    args = parser.parse_args(argv)

    import pycurl
    sys.path.insert(0, args.curlmulti)
    import curlmulti
    from curlmulti import _constnames
    if pycurl is curlmulti or getattr(pycurl, "__file__", "").startswith(os.path.dirname(curlmulti.__file__)):
        sys.exit("compare_pycurl: 'import pycurl' found curlmulti; run this with the real pycurl")

    print("pycurl %s" % pycurl.version)
    print("curlmulti %s (%s)" % (curlmulti.__version__, curlmulti.__file__))

    known = {name for name, _ in _constnames.CONSTANTS}
    functions, lacking_libcurl, unknown = [], [], []
    for name in public(dir(pycurl)):
        value = getattr(pycurl, name)
        if hasattr(curlmulti, name):
            continue
        if is_constant(value):
            (lacking_libcurl if name in known else unknown).append(name)
        elif not isinstance(value, type):
            functions.append(name)

    members = []
    for cls in ("Curl", "CurlMulti", "CurlShare"):
        members += compare_class(cls, getattr(curlmulti, cls, None), getattr(pycurl, cls, None))

    sections = [
        ("Module functions and objects missing", functions),
        ("Classes, methods and attributes missing", members),
        ("Constants curlmulti does not know", unknown),
        ("Constants known to curlmulti but absent from the libcurl it was built against "
         "(%s)" % curlmulti.version.split()[1], lacking_libcurl),
    ]
    for title, names in sections:
        print("\n%s: %d" % (title, len(names)))
        for name in names:
            print("  " + name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
