"""Sphinx extension: each chapter as a notebook download, and launch buttons only when
the book has a repository.

Loaded from _config.yml (``sphinx: local_extensions: {notebook_buttons: tools}``).

* **Download as .ipynb.**  sphinx-book-theme offers a chapter's executed notebook in
  its download menu only as a side effect of building launch buttons.  This extension
  does it on its own: for every page that is a notebook (a MyST Markdown chapter with a
  kernelspec), the notebook myst-nb executed (``_build/jupyter_execute/<page>.ipynb``,
  with its outputs) is copied to ``_build/html/_sources/<page>.ipynb`` and the download
  menu gets a ".ipynb" entry beside ".md" (the source) and ".pdf" (print).

* **Launch buttons only with a repository.**  ``repository: url:`` in _config.yml is the
  one setting.  While it is empty, the Binder/Colab/... URLs of ``launch_buttons`` are
  switched off, so that no page links to a repository that does not exist (and the
  theme, which needs the URL to build those links, is not asked to).  When it is set
  (``https://github.com/<owner>/<repo>``), the launch buttons configured in
  ``launch_buttons`` appear on every chapter, with a link to the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
LAUNCH_KEYS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url",
               "jupyterlite_url")


def repository_url(app: Sphinx) -> str:
    return (app.config.html_theme_options.get("repository_url") or "").strip()


def gate_launch_buttons(app: Sphinx, config) -> None:
    """config-inited: no repository URL, no launch buttons; with one, a repository button."""
    options = config.html_theme_options
    launch = dict(options.get("launch_buttons") or {})
    if repository_url(app):
        options["use_repository_button"] = True
        return
    for key in LAUNCH_KEYS:
        launch[key] = ""
    launch["thebe"] = False
    options["launch_buttons"] = launch
    options["use_repository_button"] = False
    options["use_issues_button"] = False
    options["use_edit_page_button"] = False


def offer_notebook(app: Sphinx, pagename: str, templatename: str, context: dict,
                   doctree) -> None:
    """html-page-context (before the theme's buttons): put the executed .ipynb in _sources."""
    if doctree is None or "kernelspec" not in app.env.metadata.get(pagename, {}):
        return
    source = app.env.doc2path(pagename)
    if Path(source).suffix == ".ipynb":
        return  # the theme offers the source itself
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        LOGGER.warning(f"no executed notebook for {pagename} ({executed}): "
                       "the page offers no .ipynb download", type="notebook_buttons")
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def drop_repeated_scripts(app: Sphinx, pagename: str, templatename: str, context: dict,
                          doctree) -> None:
    """html-page-context: an inline script listed twice runs twice; keep the first copy.

    In this book's build sphinx-thebe's inline configuration (``const THEBE_JS_URL =
    ...``) is listed twice on every page, and the second copy throws "Identifier
    'THEBE_JS_URL' has already been declared" (found by tools/check_book.py).
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        body = (getattr(script, "attributes", None) or {}).get("body")
        if body and not getattr(script, "filename", None):
            if body in seen:
                continue
            seen.add(body)
        kept.append(script)
    context["script_files"] = kept


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", gate_launch_buttons)
    # sphinx-book-theme builds its header buttons at priority 501
    app.connect("html-page-context", offer_notebook, priority=500)
    app.connect("html-page-context", drop_repeated_scripts, priority=500)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
