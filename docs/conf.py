# Sphinx configuration: the documentation site, built from the Markdown pages
# of this directory (myst-parser) and the docstrings of the installed package.
#
#   tox -e docs        sphinx-build -W (warnings are errors) into .tox/docs/tmp/html
#
# A new docs/*.md page needs nothing here: the "*" line of index.md's toctree
# becomes every page it does not list (below).  A new
# public class needs nothing either: api.md documents curlmulti.__all__.
# Every ```python block of these pages runs in tests/test_docs_snippets.py.
import os

import curlmulti  # the installed package: autodoc reads its docstrings

project = "curlmulti"
author = "the curlmulti authors"
copyright = "the curlmulti authors"
release = version = curlmulti.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": False}

html_theme = "alabaster"
html_title = "curlmulti %s" % release
html_theme_options = {"description": "libcurl's multi interface for CPython and PyPy, pycurl-compatible"}


def _list_every_page(app, docname, source):
    """index.md's toctree: its "*" line becomes the pages not listed above it
    (a glob would warn, an error under -W, when there are none)."""
    if docname != root_doc:
        return
    text = source[0]
    start = text.index("```{toctree}")
    end = text.index("```", start + 3)
    lines = text[start:end].split("\n")
    listed = {line.strip() for line in lines[1:] if line.strip() and not line.startswith(":")}
    here = os.path.dirname(os.path.abspath(__file__))
    rest = sorted(name[:-3] for name in os.listdir(here)
                  if name.endswith(".md") and name[:-3] not in listed and name[:-3] != root_doc)
    lines = [line for line in lines if line.strip() != "*"] + rest + [""]
    source[0] = text[:start] + "\n".join(lines) + text[end:]


def _skip_constants(app, what, name, obj, skip, options):
    """pycurl's ~800 constants (module attributes, and class attributes of
    Curl, CurlMulti and CurlShare as in pycurl) are described in api.md, not
    listed one by one."""
    if isinstance(obj, (int, str)) and (what == "module" or name.isupper()):
        return True
    return None


def setup(app):
    app.connect("source-read", _list_every_page)
    app.connect("autodoc-skip-member", _skip_constants)
