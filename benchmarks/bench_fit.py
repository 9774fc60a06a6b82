"""Time lmm_ref.fit against statsmodels MixedLM (and lme4, if R is installed) on the same data.

    .venv/bin/python benchmarks/bench_fit.py [--repeats 7] [--with-r] [--large] [--json F]

`--large` adds the real InstEval data (73,421 ratings, students and lecturers crossed)
and reports the peak memory of a fresh process that fits it.

Each cell of the table is the median wall time of `--repeats` complete fits (formula
and data in, estimates out).  Before timing, each fitter's result is checked against
the others', so a fast wrong answer cannot win.  `--with-r` also times lme4 through
Rscript (R and lme4 are not needed by the project; `apt-get install r-base-core
r-cran-lme4` provides them).  `--json F` also writes the table, the machine and the
commit to F (chapter 9 reads benchmarks/results/bench_fit.json).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

import lmm_ref


def simulated_crossed(seed=2015, n=2000):
    """2,000 rows, factors A (120 levels) and B (40), unbalanced, a random slope on x."""
    rng = np.random.default_rng(seed)
    weights_a = rng.gamma(2.0, size=120)
    weights_b = rng.gamma(2.0, size=40)
    a = rng.choice(120, size=n, p=weights_a / weights_a.sum())
    b = rng.choice(40, size=n, p=weights_b / weights_b.sum())
    x = rng.uniform(0, 10, size=n)
    intercepts_a = rng.normal(0, 3.0, size=120)
    slopes_a = rng.normal(0, 0.5, size=120)
    intercepts_b = rng.normal(0, 2.0, size=40)
    y = 10 + 1.5 * x + intercepts_a[a] + slopes_a[a] * x + intercepts_b[b] + rng.normal(0, 2.0, size=n)
    return pd.DataFrame({"y": y, "x": x, "A": pd.Categorical(a), "B": pd.Categorical(b)})


# the cases whose geometric-mean time ratio is reported
GEOMETRIC = ("sleepstudy", "Penicillin", "ChickWeight", "simulated 2000 rows, (x|A)")
LARGE_REPEATS = 3
LARGE_FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"
LARGE_CASE = ("InstEval, 73,421 rows, ML", lambda: lmm_ref.data.load("InstEval"),
              LARGE_FORMULA, False, None)


def peak_memory_of_a_fit():
    """Peak resident memory (MB) of a fresh Python process that loads InstEval and fits
    the large model (imports included), from the operating system's own count.

    On Linux this is VmHWM of /proc/self/status, the high-water mark of the process's
    own memory.  getrusage's ru_maxrss is not: Linux carries it across exec, so a
    child started from this (large) benchmark process reports at least the parent's
    size at the fork (452 MB here, against 312 MB for the fit itself)."""
    code = ("import resource, lmm_ref; d = lmm_ref.data.load('InstEval'); "
            f"lmm_ref.fit({LARGE_FORMULA!r}, d, reml=False); "
            "from pathlib import Path; status = Path('/proc/self/status'); "
            "hwm = [l for l in status.read_text().splitlines() if l.startswith('VmHWM')] "
            "if status.exists() else []; "
            "print(hwm[0].split()[1] if hwm else "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    output = subprocess.run([sys.executable, "-c", code], check=True,
                            capture_output=True, text=True).stdout
    return int(output.split()[-1]) / 1024


CASES = [
    # name, data, lmm_ref formula, reml, statsmodels spelling (None: cannot express)
    ("sleepstudy (Days|Subject) REML", lambda: lmm_ref.data.load("sleepstudy"),
     "Reaction ~ Days + (Days | Subject)", True,
     lambda d: smf.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="~Days")),
    ("Penicillin crossed ML", lambda: lmm_ref.data.load("Penicillin"),
     "diameter ~ 1 + (1 | plate) + (1 | sample)", False,
     lambda d: smf.mixedlm("diameter ~ 1", d.assign(all=1), groups="all", re_formula="0",
                           vc_formula={"plate": "0 + C(plate)", "sample": "0 + C(sample)"})),
    ("ChickWeight (Time|Chick) REML", lambda: lmm_ref.data.load("ChickWeight"),
     "weight ~ Time * Diet + (Time | Chick)", True,
     lambda d: smf.mixedlm("weight ~ Time * Diet", d, groups="Chick", re_formula="~Time")),
    ("Pastes nested REML", lambda: lmm_ref.data.load("Pastes"),
     "strength ~ 1 + (1 | batch/cask)", True,
     lambda d: smf.mixedlm("strength ~ 1", d, groups="batch", re_formula="1",
                           vc_formula={"cask": "0 + C(cask)"})),
    ("simulated 2000 rows, (x||A)+(1|B) REML", simulated_crossed,
     "y ~ x + (x || A) + (1 | B)", True,
     lambda d: smf.mixedlm("y ~ x", d.assign(all=1), groups="all", re_formula="0",
                           vc_formula={"A": "0 + C(A)", "Ax": "0 + C(A):x", "B": "0 + C(B)"})),
    ("simulated 2000 rows, (x|A)+(1|B) REML", simulated_crossed,
     "y ~ x + (x | A) + (1 | B)", True, None),
]


def median_time(function, repeats):
    function()  # warm-up, untimed: imports and caches, as lme4's first lmer() below
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def time_lme4(data, formula, reml, repeats):
    """(median seconds per lmer() fit, lme4's objective), timed inside one R process."""
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "data.csv"
        data.to_csv(csv, index=False)
        factors = [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])
                   or isinstance(data[c].dtype, pd.CategoricalDtype)]
        call = f"lmer({formula}, d, REML = {'TRUE' if reml else 'FALSE'})"
        script = f"""
suppressMessages(library(lme4))
options(digits = 15)
d <- read.csv("{csv}")
for (f in c({", ".join(repr(f) for f in factors)})) d[[f]] <- factor(d[[f]])
m <- {call}
times <- replicate({repeats}, system.time({call})[["elapsed"]])
cat(median(times), if (isREML(m)) REMLcrit(m) else deviance(m), "\\n")
"""
        output = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True)
        seconds, objective = map(float, output.stdout.split()[:2])
        return seconds, objective


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--with-r", action="store_true", help="also time lme4 via Rscript")
    parser.add_argument("--large", action="store_true",
                        help="add InstEval (lmm_ref and lme4 only; slow) and its peak memory")
    parser.add_argument("--json", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    if args.with_r and not shutil.which("Rscript"):
        sys.exit("--with-r needs Rscript on the PATH (apt-get install r-base-core r-cran-lme4)")

    rows = []
    for name, load, formula, reml, statsmodels_model in CASES + ([LARGE_CASE] if args.large else []):
        data = load()
        # A large fit takes seconds (minutes in lme4): three repeats are enough there.
        repeats = min(args.repeats, LARGE_REPEATS) if name == LARGE_CASE[0] else args.repeats
        ours, fit = median_time(lambda: lmm_ref.fit(formula, data, reml=reml), repeats)
        row = {"case": name, "lmm_ref (ms)": 1e3 * ours, "evaluations": fit.optimizer.evaluations}
        if statsmodels_model is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs, result = median_time(
                    lambda: statsmodels_model(data).fit(reml=reml, method=["bfgs"]), repeats)
            # a fast wrong answer must not win: both reach the same optimum
            gap = fit.objective - (-2 * result.llf)
            assert gap < 1e-4 * abs(fit.objective), f"{name}: lmm_ref worse than statsmodels by {gap}"
            row["statsmodels (ms)"] = 1e3 * theirs
            row["statsmodels / lmm_ref"] = theirs / ours
        if args.with_r:
            lme4, lme4_objective = time_lme4(data, formula, reml, repeats)
            gap = fit.objective - lme4_objective
            assert gap < 1e-6 * abs(fit.objective), f"{name}: lmm_ref worse than lme4 by {gap}"
            row["lme4 (ms)"] = 1e3 * lme4
            row["lme4 / lmm_ref"] = lme4 / ours
        rows.append(row)
    table = pd.DataFrame(rows).set_index("case")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(2).to_string(na_rep="n/a"))
    print(f"\nmedian of {args.repeats} fits each ({LARGE_REPEATS} for the large case); "
          "ratios > 1 mean lmm_ref is faster")
    if args.with_r:
        # the four: sleepstudy, Penicillin, ChickWeight, the 2,000-row (x|A)
        small = table.loc[[name for name in table.index if name.startswith(GEOMETRIC)]]
        geometric = float(np.exp(np.mean(np.log(1.0 / small["lme4 / lmm_ref"]))))
        print(f"lmm_ref's time / lme4's, geometric mean over {len(small)} cases: "
              f"{geometric:.2f}")
        args.geometric_mean = geometric
    peak = peak_memory_of_a_fit() if args.large else None
    if peak is not None:
        print(f"peak memory of a fresh process fitting InstEval: {peak:.0f} MB")
    if args.json:
        write_json(args.json, table, args, large_repeats=LARGE_REPEATS, peak_memory_mb=peak,
                   lmm_ref_over_lme4_geometric_mean=getattr(args, "geometric_mean", None))


def write_json(path, table, args, **facts):
    """The table with what a reader needs to trust it: when, where, which code;
    `facts` are the script's own (peak memory, ratios)."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=Path(__file__).parent).stdout
    record = {
        "script": f"benchmarks/{Path(sys.argv[0]).name}", "arguments": sys.argv[1:],
        "commit": commit + ("+uncommitted" if dirty.strip() else ""),
        "date": time.strftime("%Y-%m-%d"), "openblas_threads":
        os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "machine": f"{platform.machine()}, "
        f"{os.cpu_count()} cores, {platform.system()}", "python": platform.python_version(),
        "repeats": args.repeats, **facts,
        "rows": json.loads(table.reset_index().to_json(orient="records")),
    }
    if args.with_r:
        version = subprocess.run(["Rscript", "-e", 'cat(R.version.string, "lme4",'
                                  ' as.character(packageVersion("lme4")))'],
                                 capture_output=True, text=True).stdout
        record["lme4"] = version.strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
