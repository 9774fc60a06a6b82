"""lmm_ref.formula.parse: every form of lme4 formula the book uses, and every error.

A parsed formula is compared as (response, fixed part, [(expr, group), ...]) with the
whitespace inside the pieces squeezed out, so the tests do not depend on how the parser
spaces its output.  Each error test checks that the message names the culprit.
"""

import re

import pytest

from lmm_ref.errors import FormulaError, LmmRefError
from lmm_ref.formula import Formula, RandomTerm, parse


def squeeze(text):
    return re.sub(r"\s+", "", text)


def parts(text):
    formula = parse(text)
    return (
        squeeze(formula.response),
        squeeze(formula.fixed),
        [(squeeze(term.expr), squeeze(term.group)) for term in formula.random],
    )


# ---------------------------------------------------------------------------------------
# Valid formulas
# ---------------------------------------------------------------------------------------

VALID = [
    # (formula, response, fixed, [(expr, group), ...])
    ("y ~ (1 | g)", "y", "1", [("1", "g")]),
    ("y ~ x + (x | g)", "y", "x", [("x", "g")]),
    ("y ~ x + (1 + x | g)", "y", "x", [("1+x", "g")]),
    ("y ~ x + (0 + x | g)", "y", "x", [("0+x", "g")]),
    ("y ~ x + (x || g)", "y", "x", [("1", "g"), ("0+x", "g")]),
    ("y ~ x + (1 + x || g)", "y", "x", [("1", "g"), ("0+x", "g")]),
    ("y ~ x + (0 + x || g)", "y", "x", [("0+x", "g")]),
    ("y ~ (1 + x + z || g)", "y", "1", [("1", "g"), ("0+x", "g"), ("0+z", "g")]),
    ("y ~ (0 + x + z || g)", "y", "1", [("0+x", "g"), ("0+z", "g")]),
    ("y ~ (-1 + x || g)", "y", "1", [("0+x", "g")]),
    # a/b: b nested in a, named as lme4 names it: b:a, then c:(b:a)
    ("y ~ 1 + (1 | a/b)", "y", "1", [("1", "a"), ("1", "b:a")]),
    ("y ~ (1 | a/b/c)", "y", "1", [("1", "a"), ("1", "b:a"), ("1", "c:(b:a)")]),
    ("y ~ (x | a/b)", "y", "1", [("x", "a"), ("x", "b:a")]),
    ("y ~ (x || a/b)", "y", "1",
     [("1", "a"), ("0+x", "a"), ("1", "b:a"), ("0+x", "b:a")]),
    ("y ~ 1 + (1 | a:b)", "y", "1", [("1", "a:b")]),
    ("y ~ 1 + (1 | a) + (1 | a:b)", "y", "1", [("1", "a"), ("1", "a:b")]),
    ("y ~ x + (1 | g) + (0 + x | g)", "y", "x", [("1", "g"), ("0+x", "g")]),
    ("y ~ 1 + (1 | plate) + (1 | sample)", "y", "1", [("1", "plate"), ("1", "sample")]),
    ("y ~ x + (x | g) + (1 | h)", "y", "x", [("x", "g"), ("1", "h")]),
    # the fixed part: '1', absent, around and between random terms
    ("y ~ 1 + (1 | g)", "y", "1", [("1", "g")]),
    ("y ~ (1 | g)", "y", "1", [("1", "g")]),
    ("y ~ x + (1 | g) + z", "y", "x+z", [("1", "g")]),
    ("y ~ (1 | g) + x", "y", "x", [("1", "g")]),
    ("y ~ 0 + x + (1 | g)", "y", "0+x", [("1", "g")]),
    ("y ~ -1 + x + (1 | g)", "y", "-1+x", [("1", "g")]),
    ("y ~ x*z + (1 | g)", "y", "x*z", [("1", "g")]),
    ("y ~ I(x^2) + log(z) + (1 | g)", "y", "I(x^2)+log(z)", [("1", "g")]),
    ("log(y) ~ x + (1 | g)", "log(y)", "x", [("1", "g")]),
    # the book's reference models
    ("Reaction ~ Days + (Days | Subject)", "Reaction", "Days", [("Days", "Subject")]),
    ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "Reaction", "Days",
     [("1", "Subject"), ("0+Days", "Subject")]),
    ("strength ~ 1 + (1 | batch/cask)", "strength", "1",
     [("1", "batch"), ("1", "cask:batch")]),
]


@pytest.mark.parametrize("text, response, fixed, random", VALID, ids=[v[0] for v in VALID])
def test_valid_formulas(text, response, fixed, random):
    assert parts(text) == (response, fixed, random)


@pytest.mark.parametrize("text", [
    "y~x+(x|g)",
    "y ~ x + (x | g)",
    "  y   ~   x   +   (  x   |   g  )  ",
    "y ~ x +\n    (x | g)",
    "y\t~\tx\t+\t(x|g)",
    "y ~x+ ( x|g )",
])
def test_whitespace_does_not_matter(text):
    assert parts(text) == ("y", "x", [("x", "g")])


@pytest.mark.parametrize("text", ["y~(x||g)", "y ~ ( x || g )", "y ~ (x ||\n g)"])
def test_whitespace_around_double_bar(text):
    assert parts(text) == ("y", "1", [("1", "g"), ("0+x", "g")])


def test_result_types_and_text():
    text = "Reaction ~ Days + (Days | Subject)"
    formula = parse(text)
    assert isinstance(formula, Formula)
    assert str(formula) == formula.text == text
    assert isinstance(formula.random, tuple)
    (term,) = formula.random
    assert isinstance(term, RandomTerm)
    assert squeeze(str(term)) == "(Days|Subject)"


def test_interaction_group_columns():
    formula = parse("y ~ (1 | a/b/c)")
    assert [term.group for term in formula.random] == ["a", "b:a", "c:(b:a)"]
    assert [term.group_columns for term in formula.random] == [
        ["a"], ["b", "a"], ["c", "b", "a"]
    ]


def test_double_bar_matches_written_out_form():
    assert parts("y ~ Days + (Days || Subject)")[2] == parts(
        "y ~ Days + (1 | Subject) + (0 + Days | Subject)")[2]


# ---------------------------------------------------------------------------------------
# Errors: every one is a FormulaError (a ValueError) whose message names the culprit
# ---------------------------------------------------------------------------------------

ERRORS = [
    # (formula, regular expression the message must match)
    ("y (1 | g)", r"'y \(1 \| g\)' must have exactly one '~'"),
    ("y ~ x ~ (1 | g)", r"'y ~ x ~ \(1 \| g\)' must have exactly one '~'"),
    ("~ (1 | g)", r"no response left of '~'"),
    ("   ~ x + (1 | g)", r"no response"),
    ("y ~ x + (1 | g", r"unbalanced parentheses.*'\(' never closed"),
    ("y ~ x + ((1 | g)", r"unbalanced parentheses.*1 '\(' never closed"),
    ("y ~ x + 1 | g)", r"unbalanced parentheses.*'\)' at position 13 closes nothing"),
    ("y ~ x + (1 | g))", r"unbalanced parentheses.*'\)' at position 15"),
    ("y ~ x + ( | g)", r"'\( \| g\)' has nothing left of the bar"),
    ("y ~ x + (|| g)", r"'\(\|\| g\)' has nothing left of the bar"),
    ("y ~ x + (1 | )", r"'\(1 \| \)' has no grouping factor right of the bar"),
    ("y ~ x + (x || )", r"'\(x \|\| \)' has no grouping factor"),
    ("y ~ x | g", r"'x \| g'.*'\|' outside parentheses"),
    ("y ~ (1 | g) + x | h", r"'x \| h'.*'\|' outside parentheses"),
    ("y ~ x", r"'y ~ x' has no random-effects term"),
    ("y ~ x + z", r"no random-effects term"),
    ("y ~ (x)", r"no random-effects term"),
    ("y ~ (a | b | c)", r"'\(a \| b \| c\)'.*exactly one '\|'"),
    ("y ~ (a || b || c)", r"'\(a \|\| b \|\| c\)'.*exactly one"),
    ("y ~ (1 | g + h)", r"grouping factor 'g \+ h' in '\(1 \| g \+ h\)'"),
    ("y ~ (1 | g*h)", r"grouping factor 'g\*h'"),
    ("y ~ (1 | 2g)", r"grouping factor '2g'"),
    ("y ~ (1 | a/)", r"grouping factor 'a/'"),
    ("y ~ (x*z || g)", r"'\|\|' in '\(x\*z \|\| g\)'"),
    ("y ~ (x:z || g)", r"'\|\|' in '\(x:z \|\| g\)'"),
    ("y ~ (0 || g)", r"'\|\|' in '\(0 \|\| g\)' leaves no random effect"),
    ("y ~ x + + (1 | g)", r"empty term next to '\+' in 'y ~ x \+ \+ \(1 \| g\)'"),
    ("y ~ x + (1 | g) +", r"ends with '\+' and no term after it"),
]


@pytest.mark.parametrize("text, pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_culprit(text, pattern):
    with pytest.raises(FormulaError, match=pattern) as info:
        parse(text)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LmmRefError)


@pytest.mark.parametrize("bad", [None, 3, ["y ~ (1 | g)"]])
def test_formula_must_be_a_string(bad):
    with pytest.raises(FormulaError, match=f"must be a string.*not {type(bad).__name__}"):
        parse(bad)


# ---------------------------------------------------------------------------------------
# Valid lme4 formulas that need care: '- 1', function calls and extra parentheses
# ---------------------------------------------------------------------------------------


def test_double_bar_with_minus_one():
    # lme4: (x - 1 || g) is (0 + x | g); lmm_ref gives (1 | g) + (0 + x-1 | g)
    assert parts("y ~ x + (x - 1 || g)")[2] == [("0+x", "g")]


def test_minus_one_after_a_random_term():
    # lme4 accepts 'y ~ x + (1 | g) - 1' (no fixed intercept); lmm_ref raises
    # "the term '(1 | g) - 1' ... has a '|' outside parentheses", which is misleading.
    response, fixed, random = parts("y ~ x + (1 | g) - 1")
    assert random == [("1", "g")]
    assert fixed in ("x-1", "x+-1", "-1+x")


def test_double_bar_with_a_function_call():
    # lme4 expands (log(x) || g) to (1 | g) + (0 + log(x) | g)
    assert parts("y ~ (log(x) || g)")[2] == [("1", "g"), ("0+log(x)", "g")]


def test_redundant_parentheses_around_a_random_term():
    # lme4's findbars looks inside '(' calls, so ((1 | g)) is (1 | g)
    assert parts("y ~ x + ((1 | g))")[2] == [("1", "g")]


def test_backticked_grouping_columns_are_plain_names():
    formula = parse("y ~ (1 | `class`:`if`)")
    assert [term.group_columns for term in formula.random] == [["class", "if"]]
