"""pycurl's constants with the values of the libcurl curlmulti was built
against.  Names come from the generated _constnames.py; a name whose C
symbol the build probe dropped is simply absent."""

from ._constnames import CONSTANTS as _NAMES
from ._curl import lib

CONSTANTS = {}
for _pyname, _cname in _NAMES:
    try:
        CONSTANTS[_pyname] = getattr(lib, _cname)
    except AttributeError:
        pass
del _pyname, _cname

# Families, for the objects that carry them as attributes.
MULTI_CONSTANTS = {k: v for k, v in CONSTANTS.items() if k.startswith("M_")}
