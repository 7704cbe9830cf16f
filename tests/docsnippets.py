"""The Python examples of README.md and docs/*.md, as programs.

Conventions for writers of the docs (CONTRIBUTING.md repeats them):

* Every fenced block whose info string is ``python`` is an example that runs
  in tests/test_docs_snippets.py and is type-checked with ``mypy --strict``
  (tox -e types).  ``pycon``, ``sh``, plain fences are not.
* The blocks of one page form one program, run top to bottom in one
  namespace: a later block may use what an earlier one defined.
* The examples talk to a local server written ``http://127.0.0.1:8000``; the
  test replaces that with the base URL of its httpbin server (paths such as
  ``/get``, ``/bytes/1024``, ``/status/404`` work).
* ``<!-- no-test -->`` on the line before a fence leaves that block out of
  both (use it sparingly: an example that needs a network or a file the test
  has not got).

Usage:  python tests/docsnippets.py --write DIR   one module per page in DIR,
        for mypy (tox -e types).
"""

import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEHOLDER = "http://127.0.0.1:8000"
NO_TEST = "<!-- no-test -->"
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


class Block(object):
    def __init__(self, path, line, code, skip):
        self.path = path   # relative to the root
        self.line = line   # of the opening fence, 1-based
        self.code = code
        self.skip = skip

    def __repr__(self):
        return "%s:%d" % (self.path, self.line)


def pages(root=ROOT):
    """README.md and every docs/*.md, as paths relative to root."""
    out = ["README.md"] if os.path.exists(os.path.join(root, "README.md")) else []
    docs = os.path.join(root, "docs")
    if os.path.isdir(docs):
        out += ["docs/" + name for name in sorted(os.listdir(docs)) if name.endswith(".md")]
    return out


def blocks(path, root=ROOT):
    """The ``python`` blocks of one page, in order."""
    with open(os.path.join(root, path), encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = []
    i = 0
    previous = ""
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        fence, info, indent = m.group("fence"), m.group("info").strip(), len(m.group("indent"))
        start = i
        body = []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence)
                                      and lines[i].strip().strip(fence[0]) == ""):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        if info.split()[:1] == ["python"]:
            out.append(Block(path, start + 1, "\n".join(body) + "\n", previous == NO_TEST))
        previous = ""
    return out


def program(path, root=ROOT, url=None):
    """The page's blocks that run, joined into one module's source; each block
    keeps its line numbers (padding with blank lines), so a traceback or a
    mypy message points at the line of the page."""
    out = []
    for b in blocks(path, root):
        if b.skip:
            continue
        code = b.code if url is None else b.code.replace(PLACEHOLDER, url)
        out += [""] * (b.line - len(out))   # the block's first line is the page's line b.line + 1
        out += code.rstrip("\n").split("\n")
    return "\n".join(out) + "\n" if out else ""


def module_name(path):
    return re.sub(r"\W", "_", os.path.splitext(path)[0].lower())


def main(argv=None):
    parser = argparse.ArgumentParser(description="write the docs' examples as modules")
    parser.add_argument("--write", metavar="DIR", required=True)
    args = parser.parse_args(argv)
    os.makedirs(args.write, exist_ok=True)
    for path in pages():
        source = program(path)
        if source.strip():
            with open(os.path.join(args.write, module_name(path) + ".py"), "w", encoding="utf-8") as f:
                f.write(source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
