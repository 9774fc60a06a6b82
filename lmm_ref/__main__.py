"""Command line: fit an lme4-style model to a CSV file and print the summary.

    python -m lmm_ref "Reaction ~ Days + (Days | Subject)" data/sleepstudy.csv [--ml]

Problems with the input (a missing file, a bad formula, an unknown column) are reported
in one line on stderr with exit status 2; no traceback.
"""

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

from .errors import LmmRefError
from .fitting import fit


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lmm_ref",
        description="Fit a linear mixed model (lme4 formula syntax) to a CSV file.",
    )
    parser.add_argument("formula", help='lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    parser.add_argument("csv", help="the data, a CSV file with a header row")
    parser.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    args = parser.parse_args(argv)

    path = Path(args.csv)
    try:
        data = pd.read_csv(path)
    except FileNotFoundError:
        return _fail(f"no such file: {path}")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        return _fail(f"cannot read {path} as CSV: {error}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fit(args.formula, data, reml=not args.ml, data_name=path.stem)
        except LmmRefError as error:
            return _fail(str(error))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(result)
    return 0


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
