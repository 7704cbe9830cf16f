"""What type checkers see is what the package has: the generated stub of the
constants is current, and declares every constant the module carries."""

import ast
import os
import subprocess
import sys

import pytest

import curlmulti

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "gen_stubs.py")
STUB = os.path.join(ROOT, "curlmulti", "_constdecl.pyi")


def _declared():
    with open(STUB) as f:
        tree = ast.parse(f.read())
    return {node.target.id: ast.unparse(node.annotation) if hasattr(ast, "unparse") else "int"
            for node in tree.body if isinstance(node, ast.AnnAssign)}


@pytest.mark.skipif(not os.path.exists(TOOL), reason="needs the source tree")
def test_constdecl_is_current():
    proc = subprocess.run([sys.executable, TOOL, "--check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.returncode == 0, proc.stdout.decode()


@pytest.mark.skipif(not os.path.exists(STUB), reason="needs the source tree")
def test_every_constant_is_declared_int():
    declared = _declared()
    assert set(declared.values()) == {"int"}
    constants = {name for name in curlmulti.__all__ if name.isupper() and isinstance(getattr(curlmulti, name), int)}
    missing = constants - set(declared) - {"COMPILE_PY_VERSION_HEX"}
    assert not missing, "not in curlmulti/_constdecl.pyi (run tools/gen_stubs.py): %s" % sorted(missing)


def test_public_names_are_typed_explicitly():
    # The names of __all__ that are not constants are imported by name in
    # __init__.py, where type checkers read them (a name added to __all__
    # but put into the module another way would be invisible to them).
    with open(curlmulti.__file__) as f:
        tree = ast.parse(f.read())
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    listed = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            listed = set(ast.literal_eval(node.value))
    assert listed, "__init__.py lost its literal __all__ list (type checkers read it)"
    assert listed <= imported, sorted(listed - imported)
    assert "Curl" in listed and "py.typed" in os.listdir(os.path.dirname(curlmulti.__file__))
