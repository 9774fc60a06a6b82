# Build the book and run the tests from a fresh clone.
#
#   make book       executes every chapter and builds _build/html (warnings are errors;
#                   several chapters at a time: tools/build_book.py)
#   make test       unit tests in tests/ + every chapter in book/ under nbval, one pytest run
#   make check-book opens every page of _build/html in headless Chromium and fails on
#                   what a reader would see wrong (tools/check_book.py; run `make book` first)
#   make clean      removes build and test artefacts (keeps .venv)
#   make distclean  also removes .venv
#
# Both `book` and `test` first make sure .venv exists and matches
# requirements.txt and pyproject.toml (re-installed when either is newer than
# the stamp file .venv/.installed).

SHELL  := /bin/bash
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Run the tools of the virtualenv, and let kernels find its `python`.
# One BLAS thread: the book's matrices are small, and on 2 cores a second BLAS
# thread per kernel only adds contention (a 180 x 180 product took 66 ms, not 1 ms).
RUN := PATH="$(CURDIR)/$(BIN):$$PATH" OPENBLAS_NUM_THREADS=1

.PHONY: book test check-book clean distclean venv

book: $(STAMP)
	$(RUN) $(BIN)/python tools/build_book.py build . --all -W -n --keep-going

test: $(STAMP)
	$(RUN) $(BIN)/python -m pytest

# Needs Chromium (Debian: apt-get install -y chromium; or set CHROMIUM=/path/to/chrome).
# Checks the build as it is: it does not rebuild the book.
check-book: $(STAMP)
	$(RUN) $(BIN)/python tools/check_book.py _build/html

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	touch $@

clean:
	rm -rf _build .pytest_cache .hypothesis .jupyter_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
