"""Sphinx extension: read lmm_ref's docstrings as the plain text they are (book/api.md).

The docstrings are written for a reader of the source, in the notation of the book:
`name` for a name in the code, ``expr`` for code, |x| for an absolute value or a
determinant, x_ for nothing in particular.  reStructuredText, which autodoc parses them
as, gives some of those characters a meaning: |x| is a substitution reference (an error
when no substitution is defined) and `name` is italic "interpreted text".  On each
docstring, before it is parsed, this extension

* shows `name` as code, like ``name`` (a role such as :func:`f` is left alone);
* escapes the bars and the trailing underscores of the prose, so that they print as
  written.

It changes nothing in lmm_ref; chapters are MyST Markdown and are not affected.
"""

from __future__ import annotations

import re

# inline literals and roles are kept; `single` backticks become ``literals``
_TOKENS = re.compile(r"(``.+?``)|(:[\w:.+-]+:`[^`]+`)|`([^`]+)`")
_TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?=\W|$)")


def plain_text_line(line: str) -> str:
    out, last = [], 0
    for match in _TOKENS.finditer(line):
        out.append(_escape(line[last:match.start()]))
        literal, role, single = match.groups()
        out.append(literal or role or f"``{single}``")
        last = match.end()
    out.append(_escape(line[last:]))
    return "".join(out)


def _escape(text: str) -> str:
    text = text.replace("|", "\\|")
    return _TRAILING_UNDERSCORE.sub("\\\\_", text)


def process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    if not name.startswith("lmm_ref"):
        return
    lines[:] = [plain_text_line(line) for line in lines]


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("autodoc-process-docstring", process_docstring)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
