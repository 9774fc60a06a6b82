"""The browser check of the built book (tools/check_book.py) finds what it claims to find.

The fixture site tests/check_book_site/ has one clean page (index.html, with a link to
other.html) and one page per defect (defect_*.html).  The check must pass the clean
pages and report, on each defect page, the kind of problem that page has.  It needs
Chromium; without it these tests fail (they do not skip) and say how to install it.
"""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "check_book_site"
SCRIPT = ROOT / "tools" / "check_book.py"

_spec = importlib.util.spec_from_file_location("check_book", SCRIPT)
check_book = importlib.util.module_from_spec(_spec)
sys.modules["check_book"] = check_book  # (dataclasses look their module up there)
_spec.loader.exec_module(check_book)

CLEAN = ["index.html", "other.html"]
# defect page -> the kinds it must produce (and no others)
DEFECTS = {
    "defect_math_error.html": {"math-error"},
    "defect_untypeset.html": {"math-untypeset"},
    "defect_raw_tex.html": {"raw-tex"},
    "defect_missing_image.html": {"missing-image"},
    "defect_broken_link.html": {"broken-link", "broken-anchor"},
    "defect_wide_math.html": {"too-wide"},
    "defect_wide_code.html": {"too-wide"},
    "defect_wide_table.html": {"too-wide"},
}


@pytest.fixture(scope="module")
def chromium():
    try:
        return check_book.find_chromium()
    except check_book.CheckError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory, chromium):
    """The fixture pages with the book's vendored MathJax beside them, as in a build."""
    root = tmp_path_factory.mktemp("site") / "html"
    shutil.copytree(FIXTURES, root)
    shutil.copytree(ROOT / "book" / "_static" / "mathjax", root / "_static" / "mathjax")
    return root


@pytest.fixture(scope="module")
def defect_problems(site):
    return check_book.check_site(site, pages=sorted(DEFECTS))


def test_every_fixture_page_is_listed():
    pages = {p.name for p in FIXTURES.glob("*.html")}
    assert pages == set(CLEAN) | set(DEFECTS)


def test_clean_pages_pass(site):
    assert check_book.check_site(site, pages=CLEAN) == []


@pytest.mark.parametrize("page", sorted(DEFECTS))
def test_each_defect_is_found(defect_problems, page):
    kinds = {p.kind for p in defect_problems if p.page == page}
    assert kinds == DEFECTS[page], [str(p) for p in defect_problems if p.page == page]


def test_problems_say_what_and_where(defect_problems):
    details = "\n".join(map(str, defect_problems))
    assert "undefined control sequence \\undefinedmacro" in details   # the macro's name
    assert "Double exponent" in details                               # MathJax's message
    assert "$\\sigma^2$" in details and "\\begin{pmatrix}" in details  # both raw-TeX forms
    assert "_images/not-there.png does not exist" in details
    assert "no-such-page.html (no such file)" in details
    assert "no id 'no-such-id' on other.html" in details
    for page in ("defect_wide_math.html", "defect_wide_code.html", "defect_wide_table.html"):
        assert any(p.page == page and "(in #wide-" in p.detail for p in defect_problems)


def test_command_line_exit_status(site):
    run = [sys.executable, str(SCRIPT), str(site), "--quiet"]
    clean = subprocess.run(run + [f"--page={p}" for p in CLEAN], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    broken = subprocess.run(run + ["--page=defect_broken_link.html"],
                            capture_output=True, text=True)
    assert broken.returncode == 1
    assert "defect_broken_link.html: broken-link:" in broken.stdout
    missing = subprocess.run(run[:2] + [str(site / "no-build-here")], capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "make book" in missing.stderr


def test_without_chromium_the_message_says_how_to_install(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "")
    monkeypatch.setattr(check_book.shutil, "which", lambda name: None)
    with pytest.raises(check_book.CheckError, match="apt-get install -y chromium"):
        check_book.find_chromium()
