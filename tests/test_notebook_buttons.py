"""The book's download and launch buttons (tools/notebook_buttons.py), in a real build.

A one-page book is built with the project's own _config.yml twice: as it is (no
repository URL: no page may link to Binder or Colab) and with ``repository: url:`` set
(the page gets Binder and Colab buttons for that repository).  Both times the page
offers its executed notebook (.ipynb) and its .md source for download.
"""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
REPO = "https://github.com/example-owner/lmm-book"
PAGE = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page

Some math, $\\X\\bbeta$.

```{code-cell} ipython3
print(6 * 7)
```
"""


def build(tmp_path: Path, repository_url: str) -> Path:
    """Build the one-page book with the project's configuration; return its HTML folder."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == "", "the committed _config.yml has no repository"
    config["repository"]["url"] = repository_url
    # paths in the project's config are relative to the repository root
    config["sphinx"]["local_extensions"] = {
        name: str(ROOT / path) for name, path in config["sphinx"]["local_extensions"].items()}
    config["bibtex_bibfiles"] = [str(ROOT / f) for f in config["bibtex_bibfiles"]]
    sphinx_config = config["sphinx"]["config"]
    sphinx_config["html_static_path"] = [str(ROOT / p) for p in sphinx_config["html_static_path"]]
    book = tmp_path / "book"
    book.mkdir()
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    (book / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (book / "page.md").write_text(PAGE)
    run = subprocess.run([str(JUPYTER_BOOK), "build", str(book), "--all", "-W", "-n",
                          "--keep-going"], capture_output=True, text=True, cwd=book)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return book / "_build" / "html"


@pytest.fixture(scope="module")
def without_repository(tmp_path_factory):
    return build(tmp_path_factory.mktemp("no_repo"), "")


@pytest.fixture(scope="module")
def with_repository(tmp_path_factory):
    return build(tmp_path_factory.mktemp("repo"), REPO)


def test_no_repository_no_launch_buttons(without_repository):
    html = (without_repository / "page.html").read_text()
    for needle in ("mybinder.org", "colab.research.google.com", "launch-buttons",
                   "executablebooks/jupyter-book"):
        assert needle not in html, needle


def test_repository_url_turns_launch_buttons_on(with_repository):
    html = (with_repository / "page.html").read_text()
    binder = re.search(r'href="(https://mybinder\.org/[^"]+)"', html)
    colab = re.search(r'href="(https://colab\.research\.google\.com/[^"]+)"', html)
    assert binder and "v2/gh/example-owner/lmm-book/main" in binder.group(1)
    assert "urlpath=lab/tree/page.md" in binder.group(1).replace("%2F", "/")
    assert colab and "/github/example-owner/lmm-book/blob/main/" in colab.group(1)
    assert f'href="{REPO}"' in html  # the repository button


@pytest.mark.parametrize("variant", ["without_repository", "with_repository"])
def test_page_offers_notebook_and_source(variant, request):
    site = request.getfixturevalue(variant)
    html = (site / "page.html").read_text()
    assert 'href="_sources/page.ipynb"' in html
    assert 'href="_sources/page.md"' in html
    notebook = nbformat.read(site / "_sources" / "page.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code[0].source == "print(6 * 7)"
    assert "42" in code[0].outputs[0].text  # executed at build time


def test_inline_scripts_run_once(without_repository):
    html = (without_repository / "page.html").read_text()
    assert html.count("const THEBE_JS_URL") == 1


def test_a_repeated_inline_script_is_dropped():
    from sphinx.builders.html._assets import _JavaScript

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import notebook_buttons
    finally:
        sys.path.remove(str(ROOT / "tools"))
    thebe = "const THEBE_JS_URL = 'x'"
    scripts = [_JavaScript("a.js"), _JavaScript(None, body=thebe), _JavaScript("a.js"),
               _JavaScript(None, body="var y = 1"), _JavaScript(None, body=thebe)]
    context = {"script_files": scripts}
    notebook_buttons.drop_repeated_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] == scripts[:4]
