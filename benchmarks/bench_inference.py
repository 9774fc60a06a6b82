"""Time inference and prediction: lmm_ref against lme4, side by side in one run.

    .venv/bin/python benchmarks/bench_inference.py [--with-r] [--nsim 500] [--repeats 3]
                                                    [--json F]

* profile intervals, `m.confint(method="profile")`, on sleepstudy (Days | Subject) by
  REML, against lme4's `confint(fm, method = "profile")`;
* the parametric bootstrap, `m.bootstrap(nsim)`, against lme4's `bootMer(fm, ..., nsim)`
  with the same statistics (fixed effects, sigma, the SDs and the correlation);
* conditional variances (`m.condvar`) on InstEval against the fit itself, and
  predictions for 100,000 new rows of InstEval.

Each cell is the median wall time of `--repeats` runs (one for the InstEval fit and
condvar), after an untimed warm-up run.  Before timing, the profile intervals are checked against lme4's to 1e-3 of
their width.  `--with-r` needs Rscript and lme4 (apt-get install r-base-core
r-cran-lme4); the project itself does not.  `--json F` also writes the table, the
machine and the commit to F (benchmarks/results/bench_inference.json).
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import lmm_ref
from bench_fit import median_time, write_json

SLEEP = "Reaction ~ Days + (Days | Subject)"
INSTEVAL = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"


R_SCRIPT = """
suppressMessages(library(lme4))
d <- read.csv("{csv}")
d$Subject <- factor(d$Subject)
fm <- lmer(Reaction ~ Days + (Days | Subject), d)
ci <- confint(fm, method = "profile")           # warm-up, untimed
t_profile <- median(replicate({repeats}, system.time(
  suppressMessages(confint(fm, method = "profile")))[["elapsed"]]))
stat <- function(m) c(fixef(m), sigma = sigma(m), as.data.frame(VarCorr(m))$sdcor[1:3])
t_boot <- median(replicate({repeats}, system.time(
  bootMer(fm, stat, nsim = {nsim}, seed = 1))[["elapsed"]]))
cat(t_profile, t_boot, "\\n")
write.csv(ci, "{out}")
"""


def lme4_times(nsim, repeats):
    """(seconds of lme4's profile confint, seconds of bootMer(nsim), lme4's intervals)."""
    with tempfile.TemporaryDirectory() as folder:
        csv, out = Path(folder) / "sleep.csv", Path(folder) / "ci.csv"
        lmm_ref.data.load("sleepstudy").to_csv(csv, index=False)
        script = R_SCRIPT.format(csv=csv, out=out, nsim=nsim, repeats=repeats)
        done = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True,
                              check=True)
        profile_seconds, boot_seconds = map(float, done.stdout.split()[:2])
        return profile_seconds, boot_seconds, pd.read_csv(out, index_col=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-r", action="store_true", help="also time lme4 via Rscript")
    parser.add_argument("--nsim", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    if args.with_r and not shutil.which("Rscript"):
        sys.exit("--with-r needs Rscript on the PATH (apt-get install r-base-core r-cran-lme4)")

    sleep = lmm_ref.data.load("sleepstudy")
    fit = lmm_ref.fit(SLEEP, sleep)
    profile_seconds, intervals = median_time(lambda: fit.confint(), args.repeats)
    boot_seconds, replicates = median_time(lambda: fit.bootstrap(args.nsim, seed=1),
                                           args.repeats)
    rows = [{"task": "confint(profile), sleepstudy REML", "lmm_ref (s)": profile_seconds},
            {"task": f"bootstrap({args.nsim}), sleepstudy REML", "lmm_ref (s)": boot_seconds}]
    if args.with_r:
        lme4_profile, lme4_boot, lme4_ci = lme4_times(args.nsim, args.repeats)
        width = (lme4_ci.iloc[:, 1] - lme4_ci.iloc[:, 0]).to_numpy()
        gap = np.max(np.abs(intervals.to_numpy() - lme4_ci.to_numpy()) / width[:, None])
        assert gap < 1e-3, f"profile intervals differ from lme4's by {gap:.1e} of the width"
        rows[0].update({"lme4 (s)": lme4_profile, "lmm_ref / lme4": profile_seconds / lme4_profile})
        rows[1].update({"lme4 (s)": lme4_boot, "lmm_ref / lme4": boot_seconds / lme4_boot})

    insteval = lmm_ref.data.load("InstEval")
    fit_seconds, big = median_time(lambda: lmm_ref.fit(INSTEVAL, insteval, reml=False), 1)
    condvar_seconds, _ = median_time(lambda: big.condvar, 1)
    rng = np.random.default_rng(2015)
    new = insteval.iloc[rng.integers(0, len(insteval), 100_000)].reset_index(drop=True)
    predict_seconds, values = median_time(lambda: big.predict(new), args.repeats)
    assert np.all(np.isfinite(values))
    rows += [{"task": "fit, InstEval ML", "lmm_ref (s)": fit_seconds},
             {"task": "condvar, InstEval", "lmm_ref (s)": condvar_seconds,
              "lmm_ref / lme4": np.nan},
             {"task": "predict 100,000 rows, InstEval", "lmm_ref (s)": predict_seconds}]
    table = pd.DataFrame(rows).set_index("task")
    with pd.option_context("display.width", 200):
        print(table.round(3).to_string(na_rep=""))
    print(f"\nmedian of {args.repeats} runs (one for the InstEval fit and condvar)")
    if args.json:
        write_json(args.json, table, args, nsim=args.nsim,
                   bootstrap_singular=int(replicates["singular"].sum()),
                   bootstrap_failed=int(replicates["failed"].sum()))


if __name__ == "__main__":
    main()
