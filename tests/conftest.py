"""Shared fixtures for the tests of lmm_ref (the top-level conftest.py handles the book)."""

import warnings
from functools import lru_cache

import pytest

from lmm_ref import data, reference
from lmm_ref.model_frame import build


@pytest.fixture(scope="session")
def sleep():
    """The sleep-study data (shared: treat it as read-only)."""
    return data.load("sleepstudy")


@lru_cache(maxsize=None)
def _reference_design(formula, dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reference models build without any warning
        return build(formula, data.load(dataset))


@pytest.fixture(scope="session")
def reference_design():
    """design_for(fit) -> the (cached) Design of an lme4 reference fit.

    The Design is shared between tests: treat it as read-only.
    """
    def design_for(fit):
        return _reference_design(fit["formula"], reference.dataset_name(fit))
    return design_for
