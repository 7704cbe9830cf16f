"""Running a test file's lifetime scenarios in a subprocess of the same
interpreter (``-X dev`` on CPython), so that a crash fails one test instead
of ending the run.  The scenario file runs as ``python FILE NAME URL`` and
imports the same curlmulti as the test run."""

import os
import subprocess
import sys

IS_PYPY = sys.implementation.name == "pypy"


def run(test_file, name, url):
    """(exit code, stdout, stderr) of scenario ``name`` of ``test_file``."""
    args = [sys.executable]
    if not IS_PYPY:
        args += ["-X", "dev"]
    args += [os.path.abspath(test_file), name, url]
    import curlmulti
    where = os.path.dirname(os.path.dirname(os.path.abspath(curlmulti.__file__)))
    env = dict(os.environ, PYTHONPATH=where + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          cwd=os.path.dirname(os.path.abspath(test_file)), timeout=120)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


def check(test_file, name, url):
    """Run the scenario: it must exit 0, print ``OK name`` last, and write
    nothing to stderr (no "Exception ignored", ResourceWarning or traceback
    from a finalizer)."""
    code, out, err = run(test_file, name, url)
    assert code == 0, "%s: exit %d\nstdout:\n%s\nstderr:\n%s" % (name, code, out, err[-4000:])
    assert out.strip().endswith("OK " + name), out
    assert err == "", err[-4000:]
