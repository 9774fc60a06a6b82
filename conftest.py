"""Make the book's chapters part of the test suite.

Each chapter in ``book/`` is a MyST Markdown notebook: a ``.md`` file whose
YAML front matter is a jupytext header with ``format_name: myst``.  nbval only
collects ``.ipynb`` files, so this hook hands it the ``.md`` chapters
themselves (never a stale ``.ipynb`` copy):

* ``pytest_collect_file`` picks out ``book/**/*.md`` files that carry a
  jupytext MyST header (plain Markdown pages such as ``book/intro.md`` are
  ignored, as is anything under ``_build/``, ``.venv/`` or ``_static/``);
* ``MystNotebookFile`` is nbval's own ``IPyNbFile`` collector, except that the
  notebook is read with ``jupytext.read`` instead of ``nbformat.read``.
  Everything else -- one test item per code cell, one kernel per chapter, the
  ``NBVAL_*`` markers and ``raises-exception`` tags -- is nbval's behaviour.

Facts worth knowing (nbval 0.11):

* The kernel's working directory is the chapter's own folder: nbval starts it
  with ``RunningKernel(..., cwd=str(self.fspath.dirname))``.  The book build
  (myst-nb, ``execute.run_in_temp: false``) uses the same folder, so a chapter
  can read ``../data/sleepstudy.csv`` in both.
* Chapters always run in *lax* mode: cells are executed and any exception
  fails the test, but outputs are never compared (chapters store no outputs;
  nbval would skip the comparison for never-run cells anyway).
* The options ``--nbval-lax --nbval-current-env`` come from ``pytest.ini``;
  ``--nbval-current-env`` makes the kernel this virtualenv's Python rather
  than whatever kernelspec named ``python3`` happens to be installed.
* Kernels inherit this process's environment; ``MPLBACKEND=Agg`` lets
  plotting cells run without a display.
"""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbval.plugin as nbval_plugin
import yaml

# Set before any kernel starts: kernels inherit os.environ.  (The book build
# does not read this file, so figures still render inline there.)
os.environ["MPLBACKEND"] = "Agg"

ROOT = Path(__file__).resolve().parent
BOOK = ROOT / "book"
NEVER_COLLECT = {"_build", ".venv", "_static", ".ipynb_checkpoints", ".jupyter_cache"}


def is_myst_notebook(path: Path) -> bool:
    """True if ``path`` starts with a jupytext header declaring the MyST format."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if not text.startswith("---"):
        return False
    end = text.find("\n---", 3)
    if end == -1:
        return False
    try:
        header = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        return False
    if not isinstance(header, dict):
        return False
    jupytext_meta = header.get("jupytext") or {}
    representation = jupytext_meta.get("text_representation") or {}
    return representation.get("format_name") == "myst"


class _PreloadedNbformat:
    """Stand-in for the ``nbformat`` module whose ``read`` returns a given notebook."""

    def __init__(self, module, notebook):
        self._module = module
        self._notebook = notebook

    def read(self, *args, **kwargs):
        return self._notebook

    def __getattr__(self, name):
        return getattr(self._module, name)


class MystNotebookFile(nbval_plugin.IPyNbFile):
    """nbval's notebook collector for a jupytext MyST Markdown chapter."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.compare_outputs = False  # lax, whatever the command line says

    def collect(self):
        notebook = jupytext.read(self.path, fmt="md:myst")
        # IPyNbFile.collect() begins with ``nbformat.read(str(self.fspath))``
        # and then walks the cells.  Swap in the jupytext notebook for the
        # duration of that call so the cell handling stays nbval's own.
        real = nbval_plugin.nbformat
        nbval_plugin.nbformat = _PreloadedNbformat(real, notebook)
        try:
            items = list(super().collect())
        finally:
            nbval_plugin.nbformat = real
        return items


def pytest_collect_file(file_path: Path, parent):
    option = parent.config.option
    if not (option.nbval or option.nbval_lax):
        return None
    if file_path.suffix != ".md":
        return None
    try:
        relative = file_path.resolve().relative_to(BOOK)
    except ValueError:
        return None
    if NEVER_COLLECT.intersection(relative.parts):
        return None
    if not is_myst_notebook(file_path):
        return None
    return MystNotebookFile.from_parent(parent, path=file_path)
