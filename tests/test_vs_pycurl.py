"""curlmulti side by side with the real pycurl 7.49.

Every scenario of tests/vs_pycurl/ (see driver.py there) runs in two
subprocesses against the same local servers: once with pycurl, once with
``import curlmulti as pycurl``.  Their outcomes must be equal, except for
the differences listed in docs/compat.md between the
``<!-- vs-pycurl differences -->`` markers: a difference not listed there
fails its scenario's test, and so does a listed one that no longer occurs.

pycurl comes from the interpreter named by ``PYCURL_PYTHON`` (the CPython
venv that scripts/pycurl-venv.sh builds from pycurl's source against the
system libcurl), or from this interpreter if it imports the real pycurl
(tox -e vs-pycurl).  Without it the tests are skipped, saying why; under CI
they fail instead, unless ``PYCURL_UNAVAILABLE`` records why pycurl could
not be built.

Equal means equal after normalize (driver.py), with two rules that
docs/compat.md states once instead of per scenario: an ``error`` for misuse
has ``args == (message,)`` in pycurl and ``(0, message)`` in curlmulti, and
curlmulti's message may go on after pycurl's with `` (...)``.  Messages of
other exceptions (TypeError, ValueError, ...) are not compared, only their
types; keys starting with ``~`` are shown, never compared.
"""

import fnmatch
import json
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DRIVER = os.path.join(HERE, "vs_pycurl", "driver.py")
COMPAT = os.path.join(ROOT, "docs", "compat.md")
PYCURL_VERSION = "7.49.0"

sys.path.insert(0, os.path.join(HERE, "vs_pycurl"))
import driver  # noqa: E402

SCENARIOS = [name for name, _ in driver.load_scenarios()]


# -- the documented differences ---------------------------------------------------

_BEGIN, _END = "<!-- vs-pycurl differences: begin -->", "<!-- vs-pycurl differences: end -->"
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def documented_differences(path=COMPAT):
    """{pattern: reason} from the table between the markers of docs/compat.md.
    A pattern is ``scenario/key``, fnmatch wildcards allowed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if _BEGIN not in text or _END not in text:
        raise AssertionError("%s has no %s ... %s table" % (path, _BEGIN, _END))
    table = text.split(_BEGIN, 1)[1].split(_END, 1)[0]
    out = {}
    for line in table.splitlines():
        m = _ROW.match(line.strip())
        if m:
            pattern, reason = m.group(1), m.group(2).strip()
            if pattern in out:
                raise AssertionError("docs/compat.md lists %s twice" % pattern)
            if not reason:
                raise AssertionError("docs/compat.md gives no reason for %s" % pattern)
            out[pattern] = reason
    return out


# -- comparing ------------------------------------------------------------------------

def _visible(value):
    if isinstance(value, dict):
        return {k: _visible(v) for k, v in value.items() if not k.startswith("~")}
    if isinstance(value, list):
        return [_visible(v) for v in value]
    return value


def _same_error(ours, theirs):
    """pycurl's misuse error (code None) is curlmulti's code 0; curlmulti's
    message may add `` (...)`` after pycurl's."""
    if ours.get("raise") != theirs.get("raise"):
        return False
    if set(ours) != set(theirs):
        return False
    for key in ours:
        a, b = ours[key], theirs[key]
        if key == "code" and b is None and a == 0:
            continue
        if key == "message" and isinstance(a, str) and isinstance(b, str) and a.startswith(b + " ("):
            continue
        if not same(a, b):
            return False
    return True


def same(ours, theirs):
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if "raise" in ours and "code" in ours:
            return _same_error(ours, theirs)
        return set(ours) == set(theirs) and all(same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(same(a, b) for a, b in zip(ours, theirs))
    return ours == theirs and type(ours) is type(theirs)


def differences(ours, theirs):
    """{key: (curlmulti's, pycurl's)} of one scenario's outcomes."""
    out = {}
    for key in list(theirs) + [k for k in ours if k not in theirs]:
        if key.startswith("~"):
            continue
        a, b = _visible(ours.get(key, "<missing>")), _visible(theirs.get(key, "<missing>"))
        if not same(a, b):
            out[key] = (ours.get(key, "<missing>"), theirs.get(key, "<missing>"))
    return out


# -- running ----------------------------------------------------------------------------

def _pycurl_python():
    """(interpreter with the real pycurl, None) or (None, why not)."""
    python = os.environ.get("PYCURL_PYTHON")
    if not python:
        try:
            import pycurl
        except ImportError:
            pycurl = None
        if pycurl is not None and not getattr(pycurl, "__name__", "").startswith("curlmulti") \
                and "PycURL" in getattr(pycurl, "version", ""):
            python = sys.executable
    if not python:
        why = os.environ.get("PYCURL_UNAVAILABLE")
        if why:
            return None, "pycurl %s could not be built: %s" % (PYCURL_VERSION, why)
        if os.environ.get("CI", "") not in ("", "0", "false"):
            pytest.fail("CI: PYCURL_PYTHON is not set and no PYCURL_UNAVAILABLE reason was recorded "
                        "(scripts/pycurl-venv.sh)")
        return None, ("no real pycurl: set PYCURL_PYTHON to a Python with pycurl %s "
                      "(bash scripts/pycurl-venv.sh builds one)" % PYCURL_VERSION)
    out = subprocess.run([python, "-c", "import pycurl; print(pycurl.version)"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    version = out.stdout.decode(errors="replace").strip()
    if out.returncode or not version.startswith("PycURL/%s " % PYCURL_VERSION):
        pytest.fail("PYCURL_PYTHON=%s does not give pycurl %s: %s %s"
                    % (python, PYCURL_VERSION, version, out.stderr.decode(errors="replace")[-500:]))
    return python, None


def _run_driver(python, library, servers, env=None):
    proc = subprocess.run([python, DRIVER, library, json.dumps(servers)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=600, cwd=os.path.dirname(DRIVER))
    results = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            results[item["name"]] = item["outcome"]
    return results, proc.returncode, proc.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def both(httpbin, fast_server, fault_server):
    python, why = _pycurl_python()
    if python is None:
        pytest.skip(why)
    servers = {"httpbin": httpbin.url, "fast": fast_server.url, "fault": fault_server.url,
               "tls": fault_server.tls_url, "ca_file": fault_server.ca_file}
    import curlmulti
    where = os.path.dirname(os.path.dirname(os.path.abspath(curlmulti.__file__)))
    env = dict(os.environ, PYTHONPATH=where)
    env.pop("PYTHONWARNINGS", None)
    theirs = _run_driver(python, "pycurl", servers, dict(env, PYTHONPATH=""))
    ours = _run_driver(sys.executable, "curlmulti", servers, env)
    return ours, theirs


def test_documented_differences_name_scenarios():
    for pattern in documented_differences():
        scenario = pattern.split("/", 1)[0]
        assert "/" in pattern and fnmatch.filter(SCENARIOS, scenario), (
            "docs/compat.md: %r names no scenario of tests/vs_pycurl/" % pattern)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(both, name):
    (ours, our_rc, our_err), (theirs, their_rc, their_err) = both
    assert name in theirs, "pycurl's run stopped before %s (exit %s):\n%s" % (name, their_rc, their_err[-3000:])
    assert name in ours, "curlmulti's run stopped before %s (exit %s):\n%s" % (name, our_rc, our_err[-3000:])
    found = differences(ours[name], theirs[name])
    documented = {p: r for p, r in documented_differences().items()
                  if fnmatch.fnmatchcase(name, p.split("/", 1)[0])}
    undocumented = {key: pair for key, pair in found.items()
                    if not any(fnmatch.fnmatchcase("%s/%s" % (name, key), p) for p in documented)}
    stale = [p for p in documented if not any(fnmatch.fnmatchcase("%s/%s" % (name, key), p) for key in found)]
    report = []
    for key, (a, b) in sorted(undocumented.items()):
        report.append("undocumented difference %s/%s\n    curlmulti: %s\n    pycurl:    %s"
                      % (name, key, json.dumps(a), json.dumps(b)))
    for p in stale:
        report.append("docs/compat.md lists %s, which no longer differs" % p)
    assert not report, "\n".join(report)


def test_compare_tool_reports_classes_and_signatures():
    """tools/compare_pycurl.py inspects both libraries, each in its own
    interpreter, down to the signatures of the methods."""
    python, why = _pycurl_python()
    if python is None:
        pytest.skip(why)
    import curlmulti
    where = os.path.dirname(os.path.dirname(os.path.abspath(curlmulti.__file__)))
    tool = os.path.join(ROOT, "tools", "compare_pycurl.py")
    proc = subprocess.run([sys.executable, tool, "--pycurl-python", python, "--curlmulti", where],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert "pycurl: PycURL/%s " % PYCURL_VERSION in out
    for title in ("Classes, methods and attributes missing", "Signatures that differ",
                  "Same shape, parameters named differently"):
        assert "\n%s: " % title in out, out
    # What this branch made pycurl's: CurlMulti's keyword-only close_handles, pause()'s default.
    signatures = out.split("Signatures that differ")[1].split("\n\n")[0]
    assert "CurlMulti()" not in signatures and "Curl.pause()" not in signatures, signatures
    # Every missing member and differing signature is listed in docs/compat.md.
    listed = compare_tool_differences()
    reported = []
    for title in ("Module functions and objects missing", "Classes, methods and attributes missing",
                  "Signatures that differ"):
        section = out.split("\n%s: " % title, 1)[1].split("\n\n")[0]
        reported += [line.strip() for line in section.splitlines()[1:] if line.strip()]
    unlisted = [line for line in reported
                if not any(line == name or line.startswith(name + " ") or line.startswith(name + ":")
                           for name in listed)]
    assert not unlisted, "docs/compat.md does not list: %s" % unlisted


_TOOL_BEGIN = "<!-- compare-pycurl differences: begin -->"
_TOOL_END = "<!-- compare-pycurl differences: end -->"


def compare_tool_differences(path=COMPAT):
    """The names docs/compat.md lists as reported by tools/compare_pycurl.py
    (each with a reason)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    table = text.split(_TOOL_BEGIN, 1)[1].split(_TOOL_END, 1)[0]
    out = []
    for line in table.splitlines():
        m = _ROW.match(line.strip())
        if m:
            assert m.group(2).strip(), "docs/compat.md gives no reason for %s" % m.group(1)
            out.append(m.group(1))
    return out
