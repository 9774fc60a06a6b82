"""The code the book shows from lmm_ref fits its page, and is public.

Every `literalinclude` of a `:pyobject:` in book/*.md must name an object that exists,
whose lines are at most 79 characters once dedented (wider lines scroll sideways in the
HTML at 1280 px), and whose name has no leading underscore.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INCLUDES = sorted({
    (match.group(1), match.group(2), chapter.name)
    for chapter in (ROOT / "book").glob("*.md")
    for match in re.finditer(r"```\{literalinclude\} \.\./lmm_ref/(\w+\.py)\n:pyobject: ([\w.]+)",
                             chapter.read_text())
})


def find(tree, dotted):
    node = tree
    for part in dotted.split("."):
        node = next(child for child in ast.walk(node)
                    if isinstance(child, (ast.FunctionDef, ast.ClassDef)) and child.name == part)
    return node


def test_the_book_shows_code():
    assert len(INCLUDES) > 20


@pytest.mark.parametrize("module, name, chapter", INCLUDES, ids=[f"{c}:{n}" for _, n, c in INCLUDES])
def test_shown_code_fits_the_page_and_is_public(module, name, chapter):
    source = (ROOT / "lmm_ref" / module).read_text()
    node = find(ast.parse(source), name)
    assert not any(part.startswith("_") and not part.startswith("__") for part in name.split("."))
    lines = source.splitlines()[node.lineno - 1: node.end_lineno]
    indent = len(lines[0]) - len(lines[0].lstrip())
    wide = [(node.lineno + k, len(line) - indent) for k, line in enumerate(lines)
            if len(line) - indent > 79]
    assert not wide, f"{module}:{name} shown in {chapter} has lines wider than 79: {wide}"
