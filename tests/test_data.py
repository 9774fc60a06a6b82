"""lmm_ref.data: the CSV files load with the right shape, types and level order.

The expectations are computed from the CSV files independently of pandas (with the
`csv` module), so a mistake in `data.load` cannot hide behind the same mistake here.
"""

import csv

import numpy as np
import pandas as pd
import pytest

from lmm_ref import data
from lmm_ref.errors import DataError

NAMES = ["sleepstudy", "Dyestuff", "Dyestuff2", "Penicillin", "Pastes"]   # alphabetical levels
MORE = ["sleepstudy_unbalanced", "Orthodont", "ChickWeight", "Oats", "Machines", "InstEval"]

# name -> (rows, {factor column: number of levels}, numeric columns)
EXPECTED = {
    "sleepstudy": (180, {"Subject": 18}, ["Reaction", "Days"]),
    "Dyestuff": (30, {"Batch": 6}, ["Yield"]),
    "Dyestuff2": (30, {"Batch": 6}, ["Yield"]),
    "Penicillin": (144, {"plate": 24, "sample": 6}, ["diameter"]),
    "Pastes": (60, {"batch": 10, "cask": 3, "sample": 30}, ["strength"]),
    "sleepstudy_unbalanced": (150, {"Subject": 18}, ["Reaction", "Days"]),
    "Orthodont": (108, {"Subject": 27, "Sex": 2}, ["distance", "age"]),
    "ChickWeight": (578, {"Chick": 50, "Diet": 4}, ["weight", "Time"]),
    "Oats": (72, {"Block": 6, "Variety": 3}, ["nitro", "yield"]),
    "Machines": (54, {"Worker": 6, "Machine": 3}, ["score"]),
    "InstEval": (73421, {"s": 2972, "d": 1128, "studage": 4, "lectage": 6, "service": 2, "dept": 14},
                 ["y"]),
}

# R's own orders where they are not alphabetical (nlme orders subjects by a summary of
# their responses; lme4's InstEval keeps the departments' original order)
R_ORDER = {
    ("Orthodont", "Sex"): ["Male", "Female"],
    ("Oats", "Block"): ["VI", "V", "III", "IV", "II", "I"],
    ("Machines", "Worker"): ["6", "2", "4", "1", "3", "5"],
    ("InstEval", "dept"): ["15", "5", "10", "12", "6", "7", "4", "8", "9", "14", "1", "3", "11", "2"],
}


def read_csv_plainly(name):
    """Header and rows of data/<name>.csv as strings, via the csv module."""
    with open(data.DATA_DIR / f"{name}.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def test_available_lists_every_data_set():
    assert data.available() == NAMES + MORE


@pytest.mark.parametrize("name", NAMES + MORE)
def test_shape_and_columns_match_the_csv(name):
    header, rows = read_csv_plainly(name)
    frame = data.load(name)
    assert list(frame.columns) == header
    assert frame.shape == (len(rows), len(header))
    assert frame.shape[0] == EXPECTED[name][0]


@pytest.mark.parametrize("name", NAMES + MORE)
def test_factor_columns_are_categoricals_in_rs_level_order(name):
    header, rows = read_csv_plainly(name)
    frame = data.load(name)
    _, factors, _ = EXPECTED[name]
    for column, n_levels in factors.items():
        values = frame[column]
        assert isinstance(values.dtype, pd.CategoricalDtype), column
        raw = [row[header.index(column)] for row in rows]
        if (name, column) in R_ORDER:
            assert list(values.cat.categories) == R_ORDER[name, column]
        elif name in NAMES or column in ("Diet", "Variety", "Machine", "service"):
            # alphabetical (sleepstudy's numeric subject codes sort the same way)
            assert list(values.cat.categories) == sorted(set(raw))
        elif column in ("s", "d", "studage", "lectage"):  # numeric codes, numeric order
            assert list(values.cat.categories) == sorted(set(raw), key=int)
        assert set(values.cat.categories) == set(raw)
        assert len(values.cat.categories) == n_levels
        # the values themselves are unchanged, row by row
        assert list(values.astype(str)) == raw
        assert not values.isna().any()


@pytest.mark.parametrize("name", NAMES + MORE)
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


def test_sleepstudy_unbalanced_is_sleepstudy_less_30_rows():
    full, part = data.load("sleepstudy"), data.load("sleepstudy_unbalanced")
    merged = full.merge(part, on=["Subject", "Days"], how="left", suffixes=("", "_part"))
    kept = merged["Reaction_part"].notna()
    assert kept.sum() == 150
    np.testing.assert_array_equal(merged.loc[kept, "Reaction"], merged.loc[kept, "Reaction_part"])
    # the R row numbers of the dropped rows (data/README.md)
    dropped = [7, 14, 20, 21, 33, 34, 37, 42, 43, 44, 51, 68, 70, 73, 74, 79, 84, 85, 89, 105,
               106, 110, 111, 126, 129, 148, 162, 167, 170, 171]
    assert list(np.flatnonzero(~kept) + 1) == dropped
    sizes = part.groupby("Subject", observed=True).size()
    assert sizes.min() < sizes.max() == 10


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
