"""`jupyter-book build`, with Sphinx reading several chapters at a time.

    python tools/build_book.py [jupyter-book build arguments]

Each chapter is executed while Sphinx reads it, so parallel reading runs kernels side
by side.  Sphinx hands each worker a chunk of documents in file order, so four workers
(JOBS, default 4) with chunks of four or five documents keep both cores of this
project's machines busy to the end, where two would get one chunk of the slow early
chapters and one of the rest.  Jupyter Book 1's command line has no option for this,
but the function it builds with takes `jobs` (Sphinx's -j); this sets it and otherwise
runs the command line unchanged.  JOBS=1 in the environment restores the serial build.

Sphinx reads in parallel only if every extension says it may (otherwise it reads
serially and warns, an error under -W).  Two of Jupyter Book's own say nothing, and
both are safe, so this declares them:

* sphinx_multitoc_numbering replaces the section numbering, which Sphinx runs once, in
  the main process, after every document is read;
* sphinx_jupyterbook_latex's transforms touch only the doctree of the document being
  read (and the root document's, for LaTeX), never the shared environment.

sphinx-proof declares itself safe but its domain lacks the merge step that parallel
reading calls; the domain holds no data (the proofs live in env.proof_list, which
sphinx-proof merges itself), so its merge has nothing to do.
"""

import importlib
import os

import jupyter_book.sphinx
from sphinx_proof.domain import ProofDomain

JOBS = int(os.environ.get("JOBS", "4"))
SAFE_BUT_UNDECLARED = ("sphinx_multitoc_numbering", "sphinx_jupyterbook_latex")
_build_sphinx = jupyter_book.sphinx.build_sphinx


def build_sphinx(*args, **kwargs):
    return _build_sphinx(*args, **{**kwargs, "jobs": JOBS})


def declare_parallel_safe(name):
    """Make the extension's setup() return Sphinx's parallel-safety flags."""
    module = importlib.import_module(name)
    setup = module.setup

    def declared(app):
        metadata = setup(app) or {}
        return {**metadata, "parallel_read_safe": True, "parallel_write_safe": True}

    module.setup = declared


# the command line imports build_sphinx from the module when it runs
jupyter_book.sphinx.build_sphinx = build_sphinx
for extension in SAFE_BUT_UNDECLARED:
    declare_parallel_safe(extension)
if ProofDomain.initial_data == {}:  # nothing to merge (checked, should that change)
    ProofDomain.merge_domaindata = lambda self, docnames, otherdata: None

if __name__ == "__main__":
    from jupyter_book.cli.main import main

    main()
