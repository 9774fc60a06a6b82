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
* ``(expr | a/b)``: ``b`` nested in ``a``, i.e. ``(expr | a) + (expr | b:a)``, named as
  lme4 names them (``a/b/c`` gives ``a``, ``b:a`` and ``c:(b:a)``).

A fixed term ``offset(expr)`` is not a column of X but a known part of the mean, added
to X beta (lme4's offsets); `Formula.offsets` lists them.

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
        """The data columns that make up the grouping factor, in order ('c:(b:a)' is
        c, b, a; backticks and parentheses removed)."""
        flat = self.group.replace("(", "").replace(")", "")
        return [name.strip().strip("`") for name in flat.split(":")]

    def __str__(self):
        return f"({self.expr} | {self.group})"


@dataclass(frozen=True)
class Formula:
    """A parsed lme4 formula: response, fixed part and expanded random terms."""

    text: str
    response: str
    fixed: str
    random: tuple
    offsets: tuple = ()

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
    fixed, random, offsets = [], [], []
    for sign, piece in _flatten_sums(_signed_terms(rhs, text), text):
        bar_term = _strip_redundant_parentheses(piece)
        offset = _offset_expression(piece)
        if offset is not None:
            if sign == "-" or not offset:
                raise FormulaError(
                    f"the term {piece!r} in {text!r} must be added and name an expression, "
                    "as in '+ offset(log(exposure))'"
                )
            offsets.append(offset)
        elif _is_bar_term(bar_term):
            if sign == "-":
                raise FormulaError(
                    f"the random-effects term {piece!r} in {text!r} is subtracted; "
                    "random-effects terms can only be added"
                )
            random.extend(_expand_bar_term(bar_term, text))
        elif "|" in piece:
            raise FormulaError(
                f"the term {piece!r} in {text!r} has a '|' outside parentheses; "
                "write random-effects terms as '(expr | group)', joined by '+'"
            )
        else:
            fixed.append(f"- {piece}" if sign == "-" else f"+ {piece}")
    if not random:
        raise FormulaError(
            f"the formula {text!r} has no random-effects term; add one such as "
            "'(1 | group)', or fit a linear model (e.g. statsmodels OLS) instead"
        )
    fixed_part = " ".join(fixed).removeprefix("+ ") or "1"
    return Formula(text=text, response=lhs, fixed=fixed_part, random=tuple(random),
                   offsets=tuple(offsets))


def _flatten_sums(terms, text):
    """Open parentheses around a sum of random-effects terms, as R writes them:
    '((1 | g) + (0 + x | g))' is the two terms (R's deparse of '(x || g)')."""
    for sign, piece in terms:
        inner = piece[1:-1].strip() if piece.startswith("(") and _encloses(piece) else ""
        parts = _signed_terms(inner, text) if inner and _has_top_level(inner, "+") else []
        if parts and sign == "+" and all(_is_bar_term(_strip_redundant_parentheses(p))
                                         for _, p in parts):
            yield from _flatten_sums(parts, text)
        else:
            yield sign, piece


def _offset_expression(piece):
    """'offset(log(n))' -> 'log(n)'; None for any other term."""
    if piece.startswith("offset(") and piece.endswith(")") and _encloses(piece[len("offset"):]):
        return piece[len("offset("):-1].strip()
    return None


def _depths(text):
    """(position, character, nesting depth after it) for each character of text."""
    depth = 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        yield position, char, depth


def _check_parentheses(text):
    depth = 0
    for position, _, depth in _depths(text):
        if depth < 0:
            raise FormulaError(
                f"unbalanced parentheses in {text!r}: ')' at position {position} closes nothing"
            )
    if depth:
        raise FormulaError(f"unbalanced parentheses in {text!r}: {depth} '(' never closed")


def _signed_terms(expr, text):
    """Split `expr` at '+' and '-' outside parentheses: [(sign, term), ...].

    '-' is kept as the sign of the term that follows it, so 'x + (1 | g) - 1' gives
    [('+', 'x'), ('+', '(1 | g)'), ('-', '1')].
    """
    terms, current, sign = [], "", "+"
    for _, char, depth in _depths(expr):
        if char in "+-" and depth == 0:
            if current.strip():
                terms.append((sign, current.strip()))
            elif terms or char == "+":  # '+ +', '+ -', or a leading '+'
                raise FormulaError(f"an empty term next to '{char}' in {text!r}")
            current, sign = "", char
        else:
            current += char
    if not current.strip():
        raise FormulaError(f"the formula {text!r} ends with '{sign}' and no term after it")
    terms.append((sign, current.strip()))
    return terms


def _strip_redundant_parentheses(piece):
    """'((1 | g))' -> '(1 | g)': lme4 looks inside extra parentheses."""
    while piece.startswith("((") and piece.endswith("))") and _encloses(piece[1:-1]):
        piece = piece[1:-1].strip()
    return piece


def _encloses(piece):
    """True when the '(' at the start of piece is closed by its final ')'."""
    for position, _, depth in _depths(piece):
        if depth == 0:
            return position == len(piece) - 1
    return False


def _is_bar_term(piece):
    """True for a whole piece '( ... | ... )' with the bar at its own top level."""
    if not (piece.startswith("(") and piece.endswith(")")):
        return False
    for _, char, depth in _depths(piece[1:-1]):
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
    """'a/b/c' -> ['a', 'b:a', 'c:(b:a)'], lme4's names; 'a:b' and 'a' stay as they are.

    The levels of 'b:a' are 'b-level:a-level', the last factor varying fastest.
    """
    names = [name.strip() for name in group.split("/")]
    for name in names:
        columns = [column.strip() for column in name.split(":")]
        if not all(column.isidentifier() or column.startswith("`") for column in columns):
            raise FormulaError(
                f"the grouping factor {group!r} in {piece!r} is not a column name, "
                "an interaction 'a:b' or a nesting 'a/b'"
            )
    groups = [names[0]]
    for name in names[1:]:
        inner = groups[-1] if len(groups) == 1 else f"({groups[-1]})"
        groups.append(f"{name}:{inner}")
    return groups


def _split_uncorrelated(expr, piece):
    """'1 + x + log(z)' -> ['1', '0 + x', '0 + log(z)']: one term per column.

    As in lme4, the intercept stays unless the expression removes it with '0' or
    '- 1'.  Only a sum of single-column terms can be split here: an interaction or a
    factor would need its model-matrix columns named, so write those terms out.
    """
    terms = _signed_terms(expr, piece)
    no_intercept = any(t == "0" for _, t in terms) or ("-", "1") in terms
    variables = [t for sign, t in terms if sign == "+" and t not in ("0", "1")]
    if any(sign == "-" and t != "1" for sign, t in terms):
        raise FormulaError(f"'||' in {piece!r} can only remove the intercept with '- 1'")
    for variable in variables:
        if _has_top_level(variable, ":*/^"):
            raise FormulaError(
                f"'||' in {piece!r} can only split a sum of single variables or "
                f"functions of them, not {variable!r}; write the uncorrelated terms "
                "out, e.g. '(1 | g) + (0 + x | g)'"
            )
    split = [] if no_intercept else ["1"]
    split += [f"0 + {variable}" for variable in variables]
    if not split:
        raise FormulaError(f"'||' in {piece!r} leaves no random effect")
    return split


def _has_top_level(expr, characters):
    return any(depth == 0 and char in characters for _, char, depth in _depths(expr))
