"""pycurl's constants with the values of the libcurl curlmulti was built
against.  Names come from the generated _constnames.py; a name whose C
symbol the build probe dropped is simply absent."""

from typing import Any, Dict

from ._constnames import CONSTANTS as _NAMES
from ._curl import lib

CONSTANTS: Dict[str, int] = {}
for _pyname, _cname in _NAMES:
    try:
        CONSTANTS[_pyname] = getattr(lib, _cname)
    except AttributeError:
        pass
del _pyname, _cname

# Families, for the objects that carry them as attributes.
MULTI_CONSTANTS = {k: v for k, v in CONSTANTS.items() if k.startswith("M_")}

# Option number -> its pycurl name, for messages ("URL takes str or bytes").
# Where two names share a number (WRITEDATA and FILE), the one libcurl
# itself spells CURLOPT_<name> wins.
OPTION_NAMES: Dict[int, str] = {}
for _canonical in (True, False):
    for _pyname, _cname in _NAMES:
        if _cname.startswith("CURLOPT_") and _pyname in CONSTANTS and (
                (_cname == "CURLOPT_" + _pyname) == _canonical):
            OPTION_NAMES.setdefault(CONSTANTS[_pyname], _pyname)
del _canonical, _pyname, _cname


def option_name(option: Any) -> str:
    """The pycurl name of an option number, or "option N"."""
    name = OPTION_NAMES.get(option)
    return name if name is not None else "option %r" % (option,)
