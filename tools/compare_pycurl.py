"""Compare curlmulti's API with the real pycurl's: names, classes, methods
and their signatures.

    python tools/compare_pycurl.py [--pycurl-python PY] [--curlmulti DIR] [--strict]

Each library is inspected in its own interpreter (``--dump``): pycurl in
``--pycurl-python`` (default: ``$PYCURL_PYTHON``, else this interpreter),
curlmulti in this interpreter (``--curlmulti DIR`` puts DIR first on its
path, e.g. a source tree after ``python build_ffi.py``).  pycurl's C methods
have no introspectable signature: theirs is read from the first line of
their docstring (``pause(bitmask=PAUSE_ALL) -> None``); curlmulti's come
from ``inspect.signature``.  Two signatures match when they take the same
positional parameters (how many, how many optional) and the same
keyword-only ones; parameter names are compared too, but pycurl's docstrings
name some loosely ("Curl object"), so a name-only difference is listed on
its own.

The report lists, in sections: module names missing (functions and
classes, constants split into those curlmulti knows but the libcurl it was
built against lacks, and those it does not know), class members missing,
signatures that differ, and names that differ.  The exit status is 0, or 1
with ``--strict`` when a class, a method or a signature differs.
"""

import argparse
import inspect
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- inspecting one library (run in its own interpreter) -------------------------

def _is_constant(value):
    return isinstance(value, (int, str, bytes, tuple, float))


_DOC_SIG = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*?)\)\s*(->|$)")


def _doc_params(doc):
    """pycurl's docstring signature as [(name, kind, optional)], or None."""
    first = (doc or "").strip().splitlines()[:1]
    m = _DOC_SIG.match(first[0]) if first else None
    if m is None:
        return None
    spec = m.group(2).strip()
    params, keyword_only, depth = [], False, 0
    for raw in re.split(r",\s*", spec) if spec else []:
        item = raw.strip()
        while item.startswith("["):  # "[, nbytes]": what follows is optional
            depth += 1
            item = item[1:].strip()
        optional = depth > 0
        depth += item.count("[") - item.count("]")  # "buffer[" opens after buffer
        item = item.replace("[", "").replace("]", "").strip()
        if item == "*":
            keyword_only = True
        elif item.startswith("**"):
            params.append((item[2:], "VAR_KEYWORD", True))
        elif item.startswith("*"):
            params.append((item[1:], "VAR_POSITIONAL", True))
        elif item:
            name, _, default = item.partition("=")
            name = name.strip().split()[0].lower()  # "Curl object" -> "curl"
            kind = "KEYWORD_ONLY" if keyword_only else "POSITIONAL_OR_KEYWORD"
            params.append((name, kind, bool(default) or optional))
    return params


def _sig_params(obj, skip_self):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    out = []
    for i, p in enumerate(sig.parameters.values()):
        if skip_self and i == 0 and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        kind = p.kind.name
        if kind == "POSITIONAL_ONLY":
            kind = "POSITIONAL_OR_KEYWORD"
        out.append((p.name, kind, p.default is not p.empty or kind.startswith("VAR_")))
    return out


def _params(obj, skip_self):
    """[(name, kind, optional)] of a callable: inspect first, the docstring
    when inspect cannot tell (C functions) or sees only (*args, **kwargs)."""
    params = _sig_params(obj, skip_self)
    generic = params is not None and [k for _, k, _ in params] == ["VAR_POSITIONAL", "VAR_KEYWORD"]
    if params is None or generic:
        doc = _doc_params(getattr(obj, "__doc__", None))
        if doc is not None:
            return doc, "doc"
    return params, "inspect"


def _constructor(cls):
    params = _sig_params(cls, False) if "__init__" in vars(cls) or "__new__" in vars(cls) else None
    generic = params is None or [k for _, k, _ in params] == ["VAR_POSITIONAL", "VAR_KEYWORD"]
    if generic:
        doc = _doc_params(cls.__doc__)
        if doc is not None:
            if doc and all(p[2] for p in doc) and _takes_no_positional(cls):
                doc = [(name, "KEYWORD_ONLY", True) for name, _, _ in doc]
            return doc
    return params


def _takes_no_positional(cls):
    """A C class whose docstring shows ``Cls(flag=False)`` may still take
    that argument by keyword only: ask it (the object made, if any, is
    dropped at once)."""
    try:
        obj = cls(None)
    except TypeError as e:
        return "positional" in str(e)
    except Exception:
        return False
    close = getattr(obj, "close", None)
    if callable(close):
        close()
    return False


def dump(module_name):
    module = __import__(module_name)
    out = {"version": getattr(module, "version", "?"), "constants": [], "functions": {}, "classes": {}}
    for name in sorted(n for n in dir(module) if not n.startswith("_")):
        value = getattr(module, name)
        if inspect.ismodule(value):
            continue
        if isinstance(value, type):
            members = {}
            for mname in sorted(n for n in dir(value) if not n.startswith("_") or n in (
                    "__contains__", "__enter__", "__exit__", "__aenter__", "__aexit__", "__iter__")):
                try:
                    member = getattr(value, mname)
                except AttributeError:
                    continue
                if _is_constant(member):
                    continue
                if callable(member):
                    params, source = _params(member, True)
                    members[mname] = {"kind": "method", "params": params, "source": source}
                else:
                    members[mname] = {"kind": "attribute"}
            out["classes"][name] = {"init": _constructor(value), "members": members}
        elif callable(value):
            params, source = _params(value, False)
            out["functions"][name] = {"params": params, "source": source}
        elif _is_constant(value):
            out["constants"].append(name)
    return out


# -- comparing ---------------------------------------------------------------------

def _shape(params):
    """What a call can rely on: positional count, optional positional count,
    keyword-only names (required ones marked), *args, **kwargs."""
    if params is None:
        return None
    pos = [p for p in params if p[1] == "POSITIONAL_OR_KEYWORD"]
    kw = sorted((p[0], p[2]) for p in params if p[1] == "KEYWORD_ONLY")
    return (len(pos), sum(1 for p in pos if p[2]), tuple(map(tuple, kw)),
            any(p[1] == "VAR_POSITIONAL" for p in params), any(p[1] == "VAR_KEYWORD" for p in params))


def _format(params):
    if params is None:
        return "(?)"
    parts, star = [], False
    for name, kind, optional in params:
        if kind == "KEYWORD_ONLY" and not star:
            parts.append("*")
            star = True
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind, "")
        parts.append(prefix + name + ("=..." if optional and not prefix else ""))
    return "(%s)" % ", ".join(parts)


def _compare_params(title, theirs, ours, signatures, names):
    if theirs is None or ours is None:
        return
    a, b = _shape(theirs), _shape(ours)
    if a != b:
        # curlmulti accepting more (an extra optional or **kwargs) is not a gap
        # if everything pycurl's signature allows still works.
        signatures.append("%s: pycurl %s, curlmulti %s" % (title, _format(theirs), _format(ours)))
    elif [p[0] for p in theirs if not p[1].startswith("VAR")] != [p[0] for p in ours if not p[1].startswith("VAR")]:
        names.append("%s: pycurl %s, curlmulti %s" % (title, _format(theirs), _format(ours)))


def compare(theirs, ours, known_constants):
    sections = {"functions": [], "members": [], "signatures": [], "names": [], "unknown": [],
                "lacking_libcurl": []}
    for name in theirs["constants"]:
        if name not in ours["constants"] and name not in ours["functions"] and name not in ours["classes"]:
            (sections["lacking_libcurl"] if name in known_constants else sections["unknown"]).append(name)
    for name, info in theirs["functions"].items():
        mine = ours["functions"].get(name)
        if mine is None:
            if name not in ours["classes"]:
                sections["functions"].append(name)
            continue
        _compare_params(name + "()", info["params"], mine["params"], sections["signatures"], sections["names"])
    for cname, cinfo in theirs["classes"].items():
        mine = ours["classes"].get(cname)
        if mine is None:
            sections["members"].append("%s (the whole class)" % cname)
            continue
        _compare_params(cname + "()", cinfo["init"], mine["init"], sections["signatures"], sections["names"])
        for mname, minfo in cinfo["members"].items():
            other = mine["members"].get(mname)
            if other is None:
                sections["members"].append("%s.%s" % (cname, mname))
            elif minfo["kind"] == "method" and other["kind"] == "method":
                _compare_params("%s.%s()" % (cname, mname), minfo["params"], other["params"],
                                sections["signatures"], sections["names"])
    return sections


def _dump_in(python, module_name, path=None):
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([python, os.path.abspath(__file__), "--dump", module_name], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=os.path.dirname(os.path.abspath(__file__)))
    if out.returncode:
        sys.exit("compare_pycurl: inspecting %s with %s failed:\n%s"
                 % (module_name, python, out.stderr.decode(errors="replace")[-2000:]))
    return json.loads(out.stdout.decode())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pycurl-python", default=os.environ.get("PYCURL_PYTHON") or sys.executable,
                        help="interpreter with the real pycurl (default: $PYCURL_PYTHON, else this one)")
    parser.add_argument("--curlmulti", default=None,
                        help="directory holding the curlmulti package (default: the installed one)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 if a class, method or signature differs")
    parser.add_argument("--dump", metavar="MODULE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dump:
        if args.dump == "pycurl":
            import pycurl
            if "PycURL" not in getattr(pycurl, "version", ""):
                sys.exit("compare_pycurl: 'import pycurl' did not find the real pycurl")
        json.dump(dump(args.dump), sys.stdout)
        return 0

    theirs = _dump_in(args.pycurl_python, "pycurl")
    ours = _dump_in(sys.executable, "curlmulti", args.curlmulti)
    sys.path.insert(0, args.curlmulti or ROOT)
    try:
        from curlmulti import _constnames
        known = {name for name, _ in _constnames.CONSTANTS}
    except ImportError:  # no compiled module there: only the names file is needed
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "_constnames", os.path.join(args.curlmulti or ROOT, "curlmulti", "_constnames.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        known = {name for name, _ in module.CONSTANTS}
    sections = compare(theirs, ours, known)

    print("pycurl: %s" % theirs["version"])
    print("curlmulti: %s" % ours["version"])
    titles = [
        ("functions", "Module functions and objects missing"),
        ("members", "Classes, methods and attributes missing"),
        ("signatures", "Signatures that differ"),
        ("names", "Same shape, parameters named differently"),
        ("unknown", "Constants curlmulti does not know"),
        ("lacking_libcurl", "Constants known to curlmulti but absent from the libcurl it was built against"),
    ]
    for key, title in titles:
        print("\n%s: %d" % (title, len(sections[key])))
        for line in sections[key]:
            print("  " + line)
    if args.strict and (sections["functions"] or sections["members"] or sections["signatures"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
