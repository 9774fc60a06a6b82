"""Command line: fit an lme4-style model to a CSV file and print what lme4 would.

    python -m lmm_ref "Reaction ~ Days + (Days | Subject)" data/sleepstudy.csv [options]

prints the summary (REML; --ml for maximum likelihood), then what the options ask for:
--confint [profile|Wald|boot] (with --level, and --nsim/--seed for boot), --anova
FORMULA2 (a likelihood-ratio test against a second model on the same data), --ranef
(conditional modes and their conditional SDs).  --predict NEWDATA.csv writes the new
data with a `fit` column as CSV to stdout (or to --output FILE); --json prints one JSON
object instead of text; --weights COLUMN gives prior weights.  Every number comes from
lmm_ref's API (`LmmFit`, `lmm_ref.anova`); this module only reads, calls and prints.

Bad input (a missing file, a bad formula, an unknown column, a bad option value) is
reported in one line on stderr with exit status 2, without a traceback; warnings go to
stderr as `warning: ...` lines.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import cli_json
from .errors import LmmRefError
from .fitting import fit
from .intervals import METHODS
from .lrt import anova
from .summary import r_format

EPS = np.finfo(float).eps          # R's .Machine$double.eps: smaller p-values print as < 2.2e-16
STARS = [(0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (1.0, " ")]
LEGEND = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


class InputError(Exception):
    """Bad input; its message is the one line the user sees after 'error: '."""


class Parser(argparse.ArgumentParser):
    def error(self, message):      # argparse prints usage and exits; we want one line
        raise InputError(message)


def whole_number(smallest):
    def check(text):
        if not text.isdigit() or int(text) < smallest:
            what = "a positive whole number" if smallest else "a whole number >= 0"
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}")
        return int(text)
    return check


def level_value(text):
    try:
        if 0 < float(text) < 1:
            return float(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 such as 0.95, "
                                     f"not {text!r}")


def method_value(text):
    by_lower = {method.lower(): method for method in METHODS}
    if text.lower() not in by_lower:
        raise argparse.ArgumentTypeError(f"unknown method {text!r}; choose one of "
                                         + ", ".join(METHODS))
    return by_lower[text.lower()]


def build_parser():
    parser = Parser(prog="python -m lmm_ref",
                    description="Fit a linear mixed model (lme4 formula syntax) to a CSV file.")
    add = parser.add_argument
    add("formula", help='lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    add("csv", help="the data, a CSV file with a header row")
    add("--ml", action="store_true", help="maximum likelihood instead of REML")
    add("--weights", metavar="COLUMN", help="prior weights: a column of the CSV")
    add("--confint", nargs="?", const="profile", type=method_value, metavar="METHOD",
        help="confidence intervals: profile (the default), Wald or boot")
    add("--level", type=level_value, help="confidence level for --confint (0.95)")
    add("--nsim", type=whole_number(1), help="bootstrap replicates for --confint boot (500)")
    add("--seed", type=whole_number(0), help="random seed for --confint boot")
    add("--anova", metavar="FORMULA2",
        help="likelihood-ratio test against a second model fitted to the same data")
    add("--ranef", action="store_true",
        help="conditional modes of the random effects and their conditional SDs")
    add("--predict", metavar="NEWDATA", help="predict for the rows of this CSV file")
    add("--output", metavar="FILE", help="write --predict's CSV here instead of stdout")
    add("--allow-new-levels", action="store_true",
        help="predict unseen levels at the population value (b = 0)")
    add("--re-form", metavar="RE_FORM",
        help="random effects to condition on: NA or ~0 for none, or e.g. '~(1 | g)'")
    add("--json", action="store_true", help="print the results as one JSON object")
    return parser


def check_combinations(args):
    """Options that only make sense with others, and outputs that would share stdout."""
    if (args.nsim is not None or args.seed is not None) and args.confint != "boot":
        raise InputError("--nsim and --seed are for --confint boot")
    if args.level is not None and args.confint is None:
        raise InputError("--level is for --confint")
    args.level = 0.95 if args.level is None else args.level
    for given, name in [(args.output, "--output"), (args.allow_new_levels, "--allow-new-levels"),
                        (args.re_form, "--re-form")]:
        if given and args.predict is None:
            raise InputError(f"{name} is for --predict")
    if args.predict is not None and args.output is None:
        others = [name for name, given in [("--json", args.json), ("--confint", args.confint),
                                           ("--anova", args.anova), ("--ranef", args.ranef)]
                  if given]
        if others:
            raise InputError(f"--predict writes its CSV to stdout, which {others[0]} needs "
                             "too; give --output FILE for the predictions")
    if args.confint == "boot" and args.nsim is None:
        args.nsim = 500                  # lme4's default for confint(method = "boot")


def read_csv(path, what):
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path} as CSV ({what}): {error}") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None


def step(where, call, *arguments, **options):
    """call(...), with lmm_ref's errors turned into one line that says where."""
    try:
        return call(*arguments, **options)
    except (LmmRefError, ValueError) as error:
        raise InputError(f"{where}: {error}" if where else str(error)) from None


def run(args):
    """Fit and compute everything asked for: a dict of the pieces to print."""
    path = Path(args.csv)
    data = read_csv(path, "the data")
    model = step("", fit, args.formula, data, reml=not args.ml, weights=args.weights,
                 data_name=path.stem)
    out = {"fit": model}
    if args.confint:
        options = {} if args.confint != "boot" else {"nsim": args.nsim, "seed": args.seed}
        out["confint"] = step("--confint", model.confint, args.confint, args.level, **options)
    if args.anova:
        other = step("--anova FORMULA2", fit, args.anova, data, reml=not args.ml,
                     weights=args.weights, data_name=path.stem)
        table = step("--anova", anova, model, other)
        # lmm_ref.anova orders by npar (a stable sort): name the rows the same way
        named = sorted([(model.df, 0, "m1"), (other.df, 1, "m2")])
        out["anova"] = (table, [name for _, _, name in named], model.reml or other.reml)
    if args.ranef:
        out["ranef"] = cli_json.ranef_frame(model)
    if args.predict:
        newdata = read_csv(Path(args.predict), "--predict's new data")
        try:
            values = step("--predict", model.predict, newdata, re_form=args.re_form,
                          allow_new_levels=args.allow_new_levels)
        except InputError as error:    # lmm_ref names the Python argument; name the flag
            raise InputError(str(error).replace("allow_new_levels=True",
                                                "--allow-new-levels")) from None
        if "fit" in newdata.columns:
            warnings.warn(f"{args.predict} has a column 'fit'; the predictions replace it")
        out["predict"] = newdata.assign(fit=values)
    return out


# ---- text output, laid out as R prints these tables -------------------------------------

def column(values, digits, missing="NA"):
    """R's format(x, digits=) for a column with missing values."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    texts = np.full(len(values), missing, dtype=object)
    texts[finite] = [text.strip() for text in r_format(values[finite], digits)]
    return list(texts)


def layout(row_names, columns):
    """R's print of a matrix or data frame: row names left, columns right-aligned."""
    width = max(map(len, row_names))
    widths = [max(len(header), *map(len, cells)) for header, cells in columns]
    lines = [" " * width + "".join(f" {header:>{w}}" for (header, _), w in zip(columns, widths))]
    for k, name in enumerate(row_names):
        lines.append(f"{name:<{width}}" + "".join(f" {cells[k]:>{w}}"
                                                  for (_, cells), w in zip(columns, widths)))
    return [line.rstrip() for line in lines]


def zapsmall(values, digits):
    """R's zapsmall(x, digits), which printCoefmat applies before formatting a column."""
    values = np.asarray(values, dtype=float)
    largest = np.nanmax(np.abs(values))
    return values if not largest > 0 else np.round(
        values, max(0, int(np.floor(digits - np.log10(largest) + 0.5))))


def p_value(p, digits=4):
    """R's format.pval(p, digits=4): fixed or scientific, whichever is shorter."""
    if p < EPS:
        return "< 2.2e-16"
    significant = f"{p:.{digits}g}"
    needed = next(k for k in range(1, digits + 1) if float(f"{p:.{k}g}") == float(significant))
    scientific = f"{float(significant):.{needed - 1}e}"
    fixed = f"{float(significant):.{max(0, needed - 1 - int(np.floor(np.log10(p))))}f}"
    return fixed if len(fixed) <= len(scientific) else scientific


def confint_text(table, args):
    what = args.confint + (f", {args.nsim} replicates" if args.confint == "boot" else "")
    if args.confint == "boot" and args.seed is not None:
        what += f", seed {args.seed}"
    columns = [(name, column(table[name], 7)) for name in table.columns]
    return [f"Confidence intervals ({what}):"] + layout(list(table.index), columns)


def anova_text(table, names, data_name):
    """lme4's print of anova(m1, m2): the models, then printCoefmat's table."""
    lines = [f"Data: {data_name}", "Models:"]
    lines += [f"{name}: {formula}" for name, formula in zip(names, table.index)]
    p = table["Pr(>Chisq)"].to_numpy()
    chisq = np.round(table["Chisq"].to_numpy(), 4)
    columns = [(name, column(zapsmall(table[name], 5), 5, ""))
               for name in ["npar", "AIC", "BIC", "logLik", "deviance"]]
    columns += [("Chisq", column(chisq, 5, "")), ("Df", column(table["Df"], 5, "")),
                ("Pr(>Chisq)", [p_value(v) if np.isfinite(v) else "" for v in p]),
                ("", [next(s for cut, s in STARS if v <= cut).ljust(3) if np.isfinite(v) else ""
                      for v in p])]
    lines += layout(names, columns)
    if np.isfinite(p).any():
        lines += ["---", LEGEND]
    return lines


def ranef_text(frame):
    columns = [(name, list(frame[name])) for name in ["grpvar", "term", "grp"]]
    columns += [(name, column(frame[name], 7)) for name in ["condval", "condsd"]]
    rows = [str(k + 1) for k in range(len(frame))]
    return ["Conditional modes (condval) and conditional SDs (condsd):"] + layout(rows, columns)


def print_text(out, args):
    sections = [] if args.predict and args.output is None else [str(out["fit"]).splitlines()]
    if "confint" in out:
        sections.append(confint_text(out["confint"], args))
    if "anova" in out:
        sections.append(anova_text(*out["anova"][:2], out["fit"].data_name))
    if "ranef" in out:
        sections.append(ranef_text(out["ranef"]))
    if sections:
        print("\n\n".join("\n".join(lines) for lines in sections))


def print_json(out, args, caught):
    confint = None
    if "confint" in out:
        confint = (out["confint"], args.confint, args.level, args.nsim, args.seed)
    print(cli_json.dumps(cli_json.document(
        out["fit"], confint=confint, anova=out.get("anova"), ranef=out.get("ranef"),
        predictions_file=args.output, warnings=[str(w.message) for w in caught])))


def write_predictions(frame, output):
    if output is None:
        frame.to_csv(sys.stdout, index=False)
        return
    try:
        frame.to_csv(output, index=False)
    except OSError as error:
        raise InputError(f"cannot write --output {output}: {error.strerror or error}") from None


def main(argv=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            args = build_parser().parse_args(argv)
            check_combinations(args)
            out = run(args)
            if "predict" in out:
                write_predictions(out["predict"], args.output)
        except InputError as error:
            return _fail(error)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if args.json:
        print_json(out, args, caught)
    else:
        print_text(out, args)
    return 0


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
