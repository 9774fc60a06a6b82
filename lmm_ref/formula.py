"""Reading an lme4 model formula.

An lme4 formula such as ``Reaction ~ Days + (Days | Subject)`` has three parts:

* the **response**, left of ``~``;
* the **fixed part**, every right-hand term outside a ``( ... | ... )`` bar term, which
  becomes the fixed-effects model matrix X (read by formulaic, the formula library
  statsmodels uses);
* one or more **random-effects terms** ``(expr | group)``: the model matrix of
  ``expr`` (``1``, ``x``, ``0 + x``, ...) varies by level of the grouping factor
  ``group``.

Two shorthands are expanded here, as lme4 expands them:

* ``(expr || g)``: uncorrelated effects, one term per column of ``expr``:
  ``(1 + x || g)`` is ``(1 | g) + (0 + x | g)``;
* ``(expr | a/b)``: ``b`` nested in ``a``, i.e. ``(expr | a) + (expr | a:b)``.

`parse` returns a `Formula`; nothing here looks at data (that is `lmm_ref.design`).
"""

from dataclasses import dataclass

from .errors import FormulaError


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)`` after expansion.

    `expr` is the left of the bar as formulaic reads it (``"1"``, ``"Days"``,
    ``"0 + Days"``); `group` the grouping factor, a column name or an interaction
    ``"a:b"`` of column names.
    """

    expr: str
    group: str

    @property
    def group_columns(self):
        """The data columns that make up the grouping factor."""
        return [name.strip() for name in self.group.split(":")]

    def __str__(self):
        return f"({self.expr} | {self.group})"


@dataclass(frozen=True)
class Formula:
    """A parsed lme4 formula: response, fixed part and expanded random terms."""

    text: str
    response: str
    fixed: str
    random: tuple

    def __str__(self):
        return self.text


def parse(text):
    """Split an lme4 formula into response, fixed part and random terms.

    Raises `FormulaError` naming the offending piece when the formula is malformed
    or has no random-effects term.
    """
    if not isinstance(text, str):
        raise FormulaError(
            f"the formula must be a string like 'y ~ x + (1 | g)', not {type(text).__name__}"
        )
    if text.count("~") != 1:
        raise FormulaError(
            f"the formula {text!r} must have exactly one '~' separating the response "
            "from the terms, as in 'y ~ x + (1 | g)'"
        )
    _check_parentheses(text)
    lhs, rhs = (side.strip() for side in text.split("~"))
    if not lhs:
        raise FormulaError(f"the formula {text!r} has no response left of '~'")
    pieces = _split_top_level(rhs, "+", text)
    fixed, random = [], []
    for piece in pieces:
        if _is_bar_term(piece):
            random.extend(_expand_bar_term(piece, text))
        elif "|" in piece:
            raise FormulaError(
                f"the term {piece!r} in {text!r} has a '|' outside parentheses; "
                "write random-effects terms as '(expr | group)'"
            )
        else:
            fixed.append(piece)
    if not random:
        raise FormulaError(
            f"the formula {text!r} has no random-effects term; add one such as "
            "'(1 | group)', or fit a linear model (e.g. statsmodels OLS) instead"
        )
    return Formula(text=text, response=lhs, fixed=" + ".join(fixed) or "1", random=tuple(random))


def _check_parentheses(text):
    depth = 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise FormulaError(
                f"unbalanced parentheses in {text!r}: ')' at position {position} closes nothing"
            )
    if depth:
        raise FormulaError(f"unbalanced parentheses in {text!r}: {depth} '(' never closed")


def _split_top_level(expr, separator, text):
    """Split `expr` at `separator` characters outside any parentheses."""
    pieces, depth, current = [], 0, ""
    for char in expr:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == separator and depth == 0:
            pieces.append(current.strip())
            current = ""
        else:
            current += char
    pieces.append(current.strip())
    if any(not piece for piece in pieces[1:]) or (pieces[0] == "" and len(pieces) > 1):
        raise FormulaError(f"an empty term between '{separator}' signs in {text!r}")
    return [piece for piece in pieces if piece]


def _is_bar_term(piece):
    """True for a whole piece '( ... | ... )' with the bar at its own top level."""
    if not (piece.startswith("(") and piece.endswith(")")):
        return False
    inner = piece[1:-1]
    depth = 0
    for char in inner:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:  # '(a) + (b)' is two groups, not one
            return False
        if char == "|" and depth == 0:
            return True
    return False


def _expand_bar_term(piece, text):
    inner = piece[1:-1]
    double = "||" in inner
    parts = inner.split("||") if double else inner.split("|")
    if len(parts) != 2:
        raise FormulaError(
            f"the random-effects term {piece!r} in {text!r} must have exactly one "
            "'|' (or one '||'), as in '(x | g)'"
        )
    expr, group = (part.strip() for part in parts)
    if not expr:
        raise FormulaError(
            f"the random-effects term {piece!r} has nothing left of the bar; "
            "write '(1 | g)' for a random intercept"
        )
    if not group:
        raise FormulaError(
            f"the random-effects term {piece!r} has no grouping factor right of the bar; "
            "write the column that defines the groups, as in '(1 | g)'"
        )
    groups = _expand_nesting(group, piece)
    exprs = _split_uncorrelated(expr, piece) if double else [expr]
    return [RandomTerm(expr=e, group=g) for g in groups for e in exprs]


def _expand_nesting(group, piece):
    """'a/b/c' -> ['a', 'a:b', 'a:b:c']; 'a:b' and 'a' stay as they are."""
    names = [name.strip() for name in group.split("/")]
    for name in names:
        columns = [column.strip() for column in name.split(":")]
        if not all(column.isidentifier() or column.startswith("`") for column in columns):
            raise FormulaError(
                f"the grouping factor {group!r} in {piece!r} is not a column name, "
                "an interaction 'a:b' or a nesting 'a/b'"
            )
    return [":".join(names[: k + 1]) for k in range(len(names))]


def _split_uncorrelated(expr, piece):
    """'1 + x + z' -> ['1', '0 + x', '0 + z']: one uncorrelated term per column.

    Like lme4, only a sum of terms can be split; the intercept is kept unless the
    expression removes it with '0' or '-1'.
    """
    terms = [term.strip() for term in expr.split("+")]
    if any("(" in term or ":" in term or "*" in term for term in terms):
        raise FormulaError(
            f"'||' in {piece!r} can only split a sum of plain variables such as "
            "'1 + x + z'; write the uncorrelated terms out, e.g. '(1 | g) + (0 + x | g)'"
        )
    no_intercept = "0" in terms or any(term.replace(" ", "") == "-1" for term in terms)
    variables = [t for t in terms if t not in ("0", "1") and not t.startswith("-")]
    split = [] if no_intercept else ["1"]
    split += [f"0 + {variable}" for variable in variables]
    if not split:
        raise FormulaError(f"'||' in {piece!r} leaves no random effect")
    return split
