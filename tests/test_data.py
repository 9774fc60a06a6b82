"""lmm_ref.data: the five CSV files load with the right shape, types and level order.

The expectations are computed from the CSV files independently of pandas (with the
`csv` module), so a mistake in `data.load` cannot hide behind the same mistake here.
"""

import csv

import numpy as np
import pandas as pd
import pytest

from lmm_ref import data
from lmm_ref.errors import DataError

NAMES = ["sleepstudy", "Dyestuff", "Dyestuff2", "Penicillin", "Pastes"]

# name -> (rows, {factor column: number of levels}, numeric columns)
EXPECTED = {
    "sleepstudy": (180, {"Subject": 18}, ["Reaction", "Days"]),
    "Dyestuff": (30, {"Batch": 6}, ["Yield"]),
    "Dyestuff2": (30, {"Batch": 6}, ["Yield"]),
    "Penicillin": (144, {"plate": 24, "sample": 6}, ["diameter"]),
    "Pastes": (60, {"batch": 10, "cask": 3, "sample": 30}, ["strength"]),
}


def read_csv_plainly(name):
    """Header and rows of data/<name>.csv as strings, via the csv module."""
    with open(data.DATA_DIR / f"{name}.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def test_available_lists_the_five_data_sets():
    assert data.available() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_shape_and_columns_match_the_csv(name):
    header, rows = read_csv_plainly(name)
    frame = data.load(name)
    assert list(frame.columns) == header
    assert frame.shape == (len(rows), len(header))
    assert frame.shape[0] == EXPECTED[name][0]


@pytest.mark.parametrize("name", NAMES)
def test_factor_columns_are_categoricals_with_sorted_levels(name):
    header, rows = read_csv_plainly(name)
    frame = data.load(name)
    _, factors, _ = EXPECTED[name]
    for column, n_levels in factors.items():
        values = frame[column]
        assert isinstance(values.dtype, pd.CategoricalDtype), column
        raw = [row[header.index(column)] for row in rows]
        # lme4's order: alphabetical (sleepstudy's numeric subject codes sort the same way)
        assert list(values.cat.categories) == sorted(set(raw))
        assert len(values.cat.categories) == n_levels
        # the values themselves are unchanged, row by row
        assert list(values.astype(str)) == raw
        assert not values.isna().any()


@pytest.mark.parametrize("name", NAMES)
def test_numeric_columns_are_floats_or_ints_equal_to_the_csv(name):
    header, rows = read_csv_plainly(name)
    frame = data.load(name)
    _, factors, numeric = EXPECTED[name]
    assert set(numeric) | set(factors) == set(header)
    for column in numeric:
        assert pd.api.types.is_numeric_dtype(frame[column]), column
        assert not pd.api.types.is_bool_dtype(frame[column])
        raw = np.array([float(row[header.index(column)]) for row in rows])
        np.testing.assert_array_equal(frame[column].to_numpy(dtype=float), raw)


def test_sleepstudy_subjects_in_numeric_order():
    subjects = data.load("sleepstudy")["Subject"].cat.categories
    numbers = [int(s) for s in subjects]
    assert numbers == sorted(numbers)
    assert numbers[0] == 308 and numbers[-1] == 372
    # for these three-digit codes the numeric order is also the alphabetical one
    assert list(subjects) == sorted(subjects)


def test_sleepstudy_is_balanced():
    frame = data.load("sleepstudy")
    assert frame["Days"].dtype.kind in "iu"
    table = pd.crosstab(frame["Subject"], frame["Days"])
    assert table.shape == (18, 10)
    assert (table.to_numpy() == 1).all()


def test_penicillin_is_fully_crossed():
    frame = data.load("Penicillin")
    table = pd.crosstab(frame["plate"], frame["sample"])
    assert table.shape == (24, 6)
    assert (table.to_numpy() == 1).all()


def test_pastes_sample_is_batch_cask():
    frame = data.load("Pastes")
    combined = frame["batch"].astype(str) + ":" + frame["cask"].astype(str)
    assert (frame["sample"].astype(str) == combined).all()
    assert list(frame["sample"].cat.categories) == [
        f"{b}:{c}" for b in "ABCDEFGHIJ" for c in "abc"
    ]
    assert (frame.groupby("sample", observed=True).size() == 2).all()


@pytest.mark.parametrize("name", NAMES)
def test_load_returns_a_fresh_copy(name):
    first = data.load(name)
    first.iloc[0, 0] = first.iloc[1, 0]
    del first[first.columns[-1]]
    second = data.load(name)
    assert second.shape == (EXPECTED[name][0], len(read_csv_plainly(name)[0]))


@pytest.mark.parametrize("bad", ["sleep", "dyestuff", "penicillin.csv", ""])
def test_unknown_name_raises_data_error_listing_the_names(bad):
    with pytest.raises(DataError) as info:
        data.load(bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in NAMES:
        assert name in message
    assert isinstance(info.value, ValueError)
