"""Runs the side-by-side scenarios with one library and prints what happened.

    python driver.py pycurl|curlmulti SERVERS_JSON [SCENARIO ...]

``pycurl`` imports the real pycurl; ``curlmulti`` makes ``import pycurl``
give curlmulti (``sys.modules["pycurl"]``), so a scenario is written once,
for pycurl.  SERVERS_JSON maps names to the local servers' base URLs
(``httpbin``, ``fast``, ``fault``, ``tls``) and ``ca_file``.  The output is
one JSON line per scenario, ``{"name": ..., "outcome": {...}}``, printed as
soon as it has run (a crash loses only the scenarios after it).

Scenarios live in the ``scenarios_*.py`` files next to this one: every
function ``scenario_NAME(pycurl, o, servers)`` is the scenario
``FILE.NAME`` (``scenarios_easy.py``'s ``scenario_pause`` is
``easy.pause``).  It records what a program could observe with ``o``
(an ``Outcome``): ``o.call(key, func, *args)`` runs a call and records its
result or exception (with the callback exception and the warnings it
caused), ``o[key] = value`` records a value.  Values are made comparable
by ``normalize``: bytes, tuples, the library's own objects, the servers'
URLs and the library's name and version in strings.  Adding a scenario is
adding a function (or a ``scenarios_*.py`` file); tests/test_vs_pycurl.py
finds it.
"""

import contextlib
import glob
import importlib.util
import io
import json
import os
import re
import sys
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "scenario_"


def load_scenarios():
    """[(name, function)] of every scenarios_*.py here, in file order."""
    out = []
    for path in sorted(glob.glob(os.path.join(HERE, "scenarios_*.py"))):
        group = os.path.basename(path)[len("scenarios_"):-len(".py")]
        spec = importlib.util.spec_from_file_location("vs_pycurl_scenarios_" + group, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        funcs = [(name, value) for name, value in vars(module).items()
                 if name.startswith(PREFIX) and callable(value)]
        funcs.sort(key=lambda item: item[1].__code__.co_firstlineno)
        out += [("%s.%s" % (group, name[len(PREFIX):]), func) for name, func in funcs]
    return out


class Normalizer(object):
    """Turns what a scenario saw into JSON that does not depend on which
    library ran it, nor on the servers' ports or memory addresses."""

    def __init__(self, pycurl, servers):
        self.pycurl = pycurl
        self.replacements = []
        for name, url in sorted(servers.items(), key=lambda item: -len(str(item[1]))):
            if isinstance(url, str) and url:
                self.replacements.append((url, "<%s>" % name))
        # The default User-Agent: pycurl's is its whole version string,
        # curlmulti's the first two words of it (listed in docs/compat.md's
        # main table): either is <DEFAULT-AGENT> here.
        words = pycurl.version.split()
        agent = pycurl.version if words[0].startswith("PycURL/") else " ".join(words[:2])
        self.replacements.append((agent, "<DEFAULT-AGENT>"))
        # "PycURL/7.49.0" or "curlmulti/0.1.0": the first word of version.
        lib = words[0]
        self.replacements.append((lib, "<LIB>"))
        self.own_types = tuple(t for t in (getattr(pycurl, n, None) for n in (
            "Curl", "CurlMulti", "CurlShare", "CurlUrl", "CurlMime", "CurlMimePart", "AsyncCurlMulti"))
            if isinstance(t, type))

    def text(self, s):
        for old, new in self.replacements:
            s = s.replace(old, new)
        s = re.sub(r"0x[0-9a-fA-F]+", "0x?", s)
        # libcurl's messages carry times ("after 2001 milliseconds", "after 0 ms").
        return re.sub(r"\b(after|in) \d+ (milliseconds|ms)\b", r"\1 N \2", s)

    def __call__(self, value):
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return {"bytes": self.text(bytes(value).decode("latin-1"))}
        if isinstance(value, self.own_types):
            for t in self.own_types:  # the pycurl class it is (or derives from)
                if isinstance(value, t):
                    return "<%s>" % t.__name__
        if isinstance(value, BaseException):
            return self.exception(value)
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {str(k): self(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
        return "<%s>" % type(value).__name__

    def exception(self, exc):
        """``{"raise": type}``; for the library's ``error`` also ``code``
        and ``message`` (pycurl's misuse errors have the message alone as
        args).  Keys starting with ``~`` are shown, not compared."""
        out = {"raise": type(exc).__name__}
        if isinstance(exc, self.pycurl.error):
            args = exc.args
            out["code"] = args[0] if args and isinstance(args[0], int) else None
            out["message"] = self(args[-1]) if args and isinstance(args[-1], str) else None
        else:
            out["~message"] = self(str(exc))
        return out


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def _printed_exception(text):
    """The type of the last exception a library printed (pycurl prints a
    callback's exception instead of raising it)."""
    name = None
    for line in text.splitlines():
        m = _EXC_LINE.match(line)
        if m and (m.group(1).endswith(("Error", "Exception", "Interrupt", "Exit", "Warning"))
                  or m.group(1) in ("error", "pycurl.error")):
            name = m.group(1).rsplit(".", 1)[-1]
    return name


class Outcome(object):
    """What one scenario observed, key by key, in order."""

    def __init__(self, normalize):
        self.normalize = normalize
        self.values = {}

    def __setitem__(self, key, value):
        if key in self.values:
            raise KeyError("key %r recorded twice" % key)
        self.values[key] = self.normalize(value)

    def call(self, key, func, *args, **kwargs):
        """Run func(*args, **kwargs) and record what it gave: ``{"ok": result}``
        or the exception; ``callback`` is the type of the exception a callback
        raised during the call (curlmulti: the error's __cause__; pycurl: the
        one it printed), ``warnings`` the categories of the warnings issued.
        Returns the result (None if it raised)."""
        out = {}
        stderr = io.StringIO()
        result = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with contextlib.redirect_stderr(stderr):
                try:
                    result = func(*args, **kwargs)
                    out["ok"] = self.normalize(result)
                except BaseException as exc:  # KeyboardInterrupt too: it is an outcome
                    out.update(self.normalize.exception(exc))
                    cause = exc.__cause__
                    if cause is not None:
                        out["callback"] = type(cause).__name__
        printed = _printed_exception(stderr.getvalue())
        if printed is not None and "callback" not in out:
            out["callback"] = printed
        if caught:
            out["warnings"] = sorted(w.category.__name__ for w in caught)
            out["~warnings"] = [self.normalize(str(w.message)) for w in caught]
        self[key] = out
        return result


def main(argv):
    library, servers = argv[1], json.loads(argv[2])
    wanted = set(argv[3:])
    if library == "curlmulti":
        import curlmulti
        sys.modules["pycurl"] = curlmulti
        sys.modules["pycurl.async_multi"] = curlmulti.async_multi
    elif library != "pycurl":
        raise SystemExit("driver.py: the library is pycurl or curlmulti, not %r" % library)
    import pycurl
    normalize = Normalizer(pycurl, servers)
    for name, func in load_scenarios():
        if wanted and name not in wanted:
            continue
        o = Outcome(normalize)
        try:
            func(pycurl, o, servers)
        except BaseException as exc:  # the scenario itself failed: that is its outcome
            o.values["~scenario failed"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            o.values["scenario failed"] = normalize.exception(exc)
        sys.stdout.write(json.dumps({"name": name, "outcome": o.values}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv)
