"""The version is written once (curlmulti/_version.py) and is the same
everywhere it shows: the installed metadata, curlmulti.__version__,
curlmulti.version, the stamp compiled into curlmulti._curl, pyproject.toml
(which must read it, not repeat it) and the CHANGELOG's newest heading.  A
compiled module from another version stops the import with a message."""

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version as metadata_version

import pytest

import curlmulti
from curlmulti import _curl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_source = pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "pyproject.toml")),
                                  reason="needs the source tree")


def _toml(path):
    try:
        import tomllib
    except ImportError:                         # before 3.11: pytest depends on tomli there
        import tomli as tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def test_installed_versions_agree():
    stamp = _curl.ffi.string(_curl.lib.CM_BUILD_VERSION).decode("ascii")
    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-]?\w+)*", curlmulti.__version__), curlmulti.__version__
    assert metadata_version("curlmulti") == curlmulti.__version__
    assert stamp == curlmulti.__version__
    assert curlmulti.version.startswith("curlmulti/%s libcurl/" % curlmulti.__version__), curlmulti.version


@needs_source
def test_source_tree_names_the_version_once():
    project = _toml(os.path.join(ROOT, "pyproject.toml"))
    assert "version" not in project["project"], "pyproject.toml must read the version, not repeat it"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "curlmulti._version.__version__"}

    scope = {}
    with open(os.path.join(ROOT, "curlmulti", "_version.py")) as f:
        exec(compile(f.read(), "_version.py", "exec"), scope)
    assert scope["__version__"] == curlmulti.__version__, "the installed curlmulti is not this source tree's"

    with open(os.path.join(ROOT, "CHANGELOG.md")) as f:
        headings = re.findall(r"^## (\S+)", f.read(), re.M)
    assert headings and headings[0] == curlmulti.__version__, "CHANGELOG.md's newest heading: %r" % headings[:1]

    # No module of the package writes a version of its own.
    literal = re.compile(r"""(__version__\s*=\s*["']|curlmulti/\d)""")
    for name in sorted(os.listdir(os.path.join(ROOT, "curlmulti"))):
        if name.endswith(".py") and name != "_version.py":
            with open(os.path.join(ROOT, "curlmulti", name)) as f:
                assert not literal.search(f.read()), "curlmulti/%s writes a version" % name


def test_stale_compiled_module_stops_the_import(tmp_path):
    # A copy of the installed package whose Python says another version than
    # the one its compiled _curl was built for: what a partial upgrade leaves.
    pkg = os.path.dirname(os.path.abspath(curlmulti.__file__))
    copy = tmp_path / "curlmulti"
    shutil.copytree(pkg, str(copy), ignore=shutil.ignore_patterns("__pycache__"))
    # A binary wheel's libraries sit beside the package (its extension finds
    # them through $ORIGIN/../curlmulti.libs): they come along.
    libs = os.path.join(os.path.dirname(pkg), "curlmulti.libs")
    if os.path.isdir(libs):
        shutil.copytree(libs, str(tmp_path / "curlmulti.libs"))
    (copy / "_version.py").write_text('__version__ = "0.0.0.dev0"\n')
    proc = subprocess.run([sys.executable, "-c", "import curlmulti"], cwd=str(tmp_path),
                          env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode != 0, out
    assert "ImportError: curlmulti 0.0.0.dev0 found its compiled module" in out, out
    assert "built for %s" % curlmulti.__version__ in out, out
    assert "rebuild" in out, out
