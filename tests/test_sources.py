"""The text sources hold no control characters, tabs included.

A stray backspace (what "\\b" becomes in a Python string that was meant to write the
macro \\bL) is invisible in an editor and in a terminal, but MathJax fails on the
formula in the browser; Sphinx's -W does not see it.  A tab ("\\t" for \\theta) is
worse: MathJax typesets "heta" without complaint.  (No source here needs a tab; the
Makefile, which does, is not among them.)
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    path.relative_to(ROOT).as_posix()
    for pattern in ("book/*.md", "book/*.bib", "lmm_ref/*.py", "tools/*.py", "tests/*.py",
                    "benchmarks/*.py", "*.md", "*.yml")
    for path in ROOT.glob(pattern))
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def test_sources_are_found():
    assert "book/intro.md" in SOURCES and "lmm_ref/fitting.py" in SOURCES


@pytest.mark.parametrize("name", SOURCES)
def test_no_control_characters(name):
    text = (ROOT / name).read_text()
    found = [(text.count("\n", 0, m.start()) + 1, repr(m.group()))
             for m in CONTROL.finditer(text)]
    assert not found, f"{name}: control characters at (line, char) {found}"
