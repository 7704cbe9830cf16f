"""Every Python example of README.md and docs/*.md runs (conventions in
tests/docsnippets.py: one program per page, ``http://127.0.0.1:8000`` is the
test's httpbin server, ``<!-- no-test -->`` leaves a block out)."""

import os
import subprocess
import sys

import pytest

import docsnippets

PAGES = [p for p in docsnippets.pages() if any(not b.skip for b in docsnippets.blocks(p))]


def test_pages_found():
    # The README has examples: finding none means the page moved or the parser broke.
    assert "README.md" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page, httpbin, tmp_path):
    source = docsnippets.program(page, url=httpbin.url)
    assert docsnippets.PLACEHOLDER not in source
    script = tmp_path / (docsnippets.module_name(page) + ".py")
    script.write_text(source, encoding="utf-8")
    # A process of its own, from an empty directory: the installed curlmulti,
    # nothing left behind by one page for the next.
    proc = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    out = proc.stdout.decode("utf-8", "replace")
    # Line numbers in the traceback are the page's own.
    assert proc.returncode == 0, "the examples of %s failed (exit %d):\n%s" % (page, proc.returncode, out)


def test_no_test_marker_is_seen(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "x.md"
    page.write_text("# x\n\n```python\nprint(1)\n```\n\n<!-- no-test -->\n\n```python\nraise SystemExit(1)\n```\n"
                    "\n```sh\nfalse\n```\n", encoding="utf-8")
    found = docsnippets.blocks("docs/x.md", root=str(tmp_path))
    assert [(b.line, b.skip) for b in found] == [(3, False), (9, True)]
    source = docsnippets.program("docs/x.md", root=str(tmp_path))
    assert source.split("\n")[3] == "print(1)" and "SystemExit" not in source


def test_pycurl_style_program_runs(httpbin):
    # tests/typecheck/pycurl_program.py: `import curlmulti as pycurl` in a
    # program mypy --strict checks (tox -e types); here it runs.
    program = os.path.join(os.path.dirname(os.path.abspath(__file__)), "typecheck", "pycurl_program.py")
    proc = subprocess.run([sys.executable, program, httpbin.url], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
    assert proc.returncode == 0, proc.stdout.decode("utf-8", "replace")
