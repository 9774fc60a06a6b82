"""How the cost of a fit grows with the size of the data (chapter 9, "Large models").

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/scaling.py [--quick] [--json F]

Simulated data sets with the shape of InstEval (three crossed factors with about 4%,
1.5% and 0.02% as many levels as there are observations, random intercepts, a binary
fixed covariate) are timed

* per evaluation of the profiled deviance and its gradient, and its pieces
  (`pls.solve`; what the gradient needs of A^{-1}: the diagonal blocks summed over
  levels, eq-grad-diag, and the selected inverse on A21's pattern, eq-grad-Y; the
  gradient), and per complete ML fit, against n;
* per evaluation against the number of levels of the second factor, at a fixed n: the
  second and third factors make the dense block L22 of the factor;
* by the dense route of chapter 2 (`lmm_ref.marginal.loglik`, which forms the n x n
  V), for the n whose V fits comfortably in memory;

and statsmodels' MixedLM (one all-encompassing group, a variance component per factor)
is fitted to growing subsamples of the real InstEval (its first students), until one fit
takes longer than a cut-off.  The results go to benchmarks/results/scaling.json, with
the machine, the versions and the commit at the start (and whether lmm_ref's code
changed while the script ran); chapter 9 plots them and re-times a few small
cases live.  Times are the best of a few repeats, in seconds, on one BLAS thread.
`--quick` runs a small version (for testing the script).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import lmm_ref
from lmm_ref import gradient, marginal, model_frame, pls, profile
from lmm_ref.products import cross_products

ROOT = Path(__file__).resolve().parents[1]
FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"
# InstEval's shape: levels of s, d and dept as shares of n (2,972, 1,128 and 14 of
# 73,421), and SDs near lme4's estimates for it (s, d, dept, residual).
SHARES = (0.04, 0.015, 0.0002)
SDS = (0.33, 0.51, 0.08, 1.18)
THETA = np.array(SDS[:3]) / SDS[3]          # the true theta of the simulation
SEED = 2015

FULL = {
    "n_eval": [2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000],
    "n_fit": [2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000],
    "n_dense": [500, 1_000, 2_000, 4_000, 8_000],
    "levels_n": 128_000,
    "levels_second": [250, 500, 1_000, 2_000, 4_000],
    "students": [5, 10, 15, 20, 30, 40, 50, 60, 80],
    "statsmodels_cutoff": 60.0,
}
QUICK = {
    "n_eval": [2_000, 4_000, 8_000], "n_fit": [2_000, 4_000],
    "n_dense": [500, 1_000], "levels_n": 16_000, "levels_second": [100, 200, 400],
    "students": [5, 10], "statsmodels_cutoff": 5.0,
}
# The fits of log time on log n use the sizes from these on (where the dense block,
# not the passes over the data, has come to dominate).
SLOPE_FROM = {"evaluation": 32_000, "fit": 32_000, "dense": 1_000, "second": 500}


def levels_of(n, second=None):
    """The numbers of levels of s, d and dept for n observations (at least
    2 each); `second` overrides d's."""
    counts = [max(2, round(share * n)) for share in SHARES]
    if second is not None:
        counts[1] = second
    return counts


def simulate(n, second=None, seed=SEED):
    """A data set with InstEval's shape: n ratings y by students s of
    lecturers d in departments dept (three crossed factors, every level
    used), and a binary covariate service.  `second` overrides the number
    of lecturers.  The same (n, second, seed) gives the same data."""
    rng = np.random.default_rng([seed, n, second or 0])
    factors = {}
    for name, levels, sd in zip(("s", "d", "dept"), levels_of(n, second),
                                SDS):
        codes = rng.permutation(np.arange(n) % levels)  # every level used
        factors[name] = (codes, rng.normal(0.0, sd, levels))
    service = rng.integers(0, 2, n)
    y = (3.3 - 0.1 * service
         + sum(b[codes] for codes, b in factors.values())
         + rng.normal(0.0, SDS[3], n))
    frame = pd.DataFrame({"y": y, "service": service})
    for name, (codes, _) in factors.items():
        frame[name] = pd.Categorical(codes)
    return frame


def best_of(function, repeat):
    """The smallest wall time of `repeat` calls of function (seconds)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def evaluation_times(P, theta, repeat):
    """Seconds for the pieces of one evaluation: the solve (which factors A); the
    two routes to what the gradient needs of A^{-1}, the diagonal blocks summed over
    levels (eq-grad-diag, used when every T_i is invertible) and the selected inverse
    on A21's pattern (eq-grad-Y, used otherwise); the whole gradient; and the
    criterion with its gradient."""
    solution = pls.solve(P, theta)
    pattern = None if P.xz.rest is None else P.xz.rest.pattern
    rest_terms = P.xz.terms[1:]
    return {
        "solve": best_of(lambda: pls.solve(P, theta), repeat),
        "diagonal_sums": best_of(lambda: solution.L.diagonal_sums(rest_terms),
                                 repeat),
        "selected_inverse": best_of(lambda: solution.L.inverse_blocks(pattern),
                                    repeat),
        "gradient": best_of(lambda: gradient.gradient(P, solution, False), repeat),
        "evaluation": best_of(
            lambda: gradient.criterion_and_gradient(P, theta, False), repeat),
    }


def repeats_for(n):
    return 5 if n <= 16_000 else 3 if n <= 64_000 else 2


def time_evaluations(sizes, second=None, n_fixed=None):
    """One row per size: n, the levels, q - q_1 and the evaluation's pieces."""
    rows = []
    for size in sizes:
        n = n_fixed if n_fixed is not None else size
        frame = simulate(n, second=size if n_fixed is not None else None)
        D = model_frame.build(FORMULA, frame)
        start = time.perf_counter()
        P = cross_products(D)
        products = time.perf_counter() - start
        row = {"n": n, "levels": [t.n_levels for t in D.terms],
               "q": D.q, "q_rest": D.q - D.terms[0].q, "products": products}
        row.update(evaluation_times(P, THETA, repeats_for(n)))
        rows.append(row)
        print(f"  evaluation n={n:,} levels={row['levels']}: "
              f"{row['evaluation']:.4f} s", flush=True)
    return rows


def time_fits(sizes):
    """One row per n: the seconds of a whole ML fit, its evaluations, its deviance."""
    rows = []
    for n in sizes:
        frame = simulate(n)
        start = time.perf_counter()
        fit = lmm_ref.fit(FORMULA, frame, reml=False)
        seconds = time.perf_counter() - start
        rows.append({"n": n, "seconds": seconds,
                     "evaluations": fit.optimizer.evaluations,
                     "objective": fit.objective, "theta": fit.theta.tolist()})
        print(f"  fit n={n:,}: {seconds:.2f} s, {fit.optimizer.evaluations} "
              f"evaluations", flush=True)
    return rows


def time_dense(sizes):
    """Seconds of one dense evaluation (marginal.loglik) and its agreement with PLS."""
    rows = []
    beta = np.array([3.3, -0.1])
    for n in sizes:
        D = model_frame.build(FORMULA, simulate(n))
        dense = -2 * marginal.loglik(D, beta, THETA, SDS[3])
        via_pls = profile.deviance_at(pls.solve(cross_products(D), THETA), beta,
                                      SDS[3])
        seconds = best_of(lambda: marginal.loglik(D, beta, THETA, SDS[3]),
                          3 if n <= 4_000 else 2)
        rows.append({"n": n, "seconds": seconds,
                     "relative_difference": abs(via_pls / dense - 1)})
        print(f"  dense n={n:,}: {seconds:.3f} s", flush=True)
    return rows


def insteval_students(data, students):
    """The ratings of InstEval's students with codes 1 to `students`, unused levels
    dropped: a partially crossed subsample."""
    keep = data["s"].astype(str).astype(int) <= students
    sub = data[keep].copy()
    for name in ("s", "d", "dept"):
        sub[name] = sub[name].cat.remove_unused_categories()
    return sub


def statsmodels_fit(sub, method=None):
    """statsmodels' MixedLM by ML: one group holding every row, and a variance
    component for each factor; its default optimiser unless `method` is given.
    Returns (seconds, result); result.vcomp is in the order result.model's
    exog_vc.names."""
    import statsmodels.formula.api as smf
    frame = sub.assign(service=sub["service"].astype(int), all=1)
    model = smf.mixedlm("y ~ service", frame, groups="all", re_formula="0",
                        vc_formula={"s": "0 + C(s)", "d": "0 + C(d)",
                                    "dept": "0 + C(dept)"})
    options = {} if method is None else {"method": method}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(reml=False, **options)
    return time.perf_counter() - start, result


def time_statsmodels(students_grid, cutoff):
    """statsmodels and lmm_ref on growing subsamples of InstEval; stops after the
    first statsmodels fit that takes longer than `cutoff` seconds."""
    data = lmm_ref.data.load("InstEval")
    rows = []
    for students in students_grid:
        sub = insteval_students(data, students)
        seconds, result = statsmodels_fit(sub)
        start = time.perf_counter()
        fit = lmm_ref.fit(FORMULA, sub, reml=False)
        ours = time.perf_counter() - start
        rows.append({"students": students, "n": len(sub),
                     "levels": [int(sub[c].nunique()) for c in ("s", "d", "dept")],
                     "seconds": seconds, "converged": bool(result.converged),
                     "deviance": float(-2 * result.llf),
                     "lmm_ref_seconds": ours, "lmm_ref_deviance": fit.objective})
        print(f"  statsmodels students={students} n={len(sub):,}: {seconds:.1f} s "
              f"(lmm_ref {ours:.2f} s)", flush=True)
        if seconds > cutoff:
            break
    return rows


def slope(rows, x, y, start):
    """The least-squares slope of log y on log x over the rows with x >= start."""
    points = [(r[x], r[y]) for r in rows if r[x] >= start]
    if len(points) < 2:
        return None
    xs, ys = np.log(np.array(points, dtype=float)).T
    return float(np.polyfit(xs, ys, 1)[0])


def memory_bytes():
    """This machine's physical memory, from the operating system."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def git(*args):
    """A git command's output in the repository (None if git is unavailable)."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def code_state():
    """The commit, and whether lmm_ref's tracked files differ from it."""
    return {"git_commit": git("rev-parse", "HEAD"),
            "lmm_ref_dirty": bool(git("status", "--porcelain",
                                      "--untracked-files=no", "--", "lmm_ref"))}


def provenance(started, code):
    import scipy
    import statsmodels
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return {
        "script": "benchmarks/scaling.py",
        "started": started,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        **code,                 # at the start: the code the measurements ran
        "code_changed_during_run": code != code_state(),
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpus": os.cpu_count(), "memory_bytes": memory_bytes(),
                    "load_average": list(os.getloadavg())},
        "python": sys.version.split()[0], "numpy": np.__version__,
        "scipy": scipy.__version__, "statsmodels": statsmodels.__version__,
        "blas": {"name": blas.get("name"), "version": blas.get("version")},
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "note": ("Wall times on a shared machine that other jobs were using: noisy. "
                 "Re-run on a quiet machine before publishing."),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/scaling.json"))
    args = parser.parse_args(argv)
    grid = QUICK if args.quick else FULL
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds")
    code = code_state()
    print("per evaluation, against n", flush=True)
    evaluations = time_evaluations(grid["n_eval"])
    print("per evaluation, against the levels of the second factor", flush=True)
    second = time_evaluations(grid["levels_second"], n_fixed=grid["levels_n"])
    print("per fit", flush=True)
    fits = time_fits(grid["n_fit"])
    print("dense route", flush=True)
    dense = time_dense(grid["n_dense"])
    print("statsmodels on InstEval's first students", flush=True)
    sm = time_statsmodels(grid["students"], grid["statsmodels_cutoff"])
    out = {
        "provenance": provenance(started, code),
        "design": {"formula": FORMULA, "shares": list(SHARES), "sds": list(SDS),
                   "theta": THETA.tolist(), "seed": SEED, "quick": args.quick,
                   "grid": grid, "slope_from": SLOPE_FROM},
        "evaluation": evaluations, "second_factor": second, "fit": fits,
        "dense": dense, "statsmodels": sm,
        "slopes": {
            "evaluation": slope(evaluations, "n", "evaluation",
                                SLOPE_FROM["evaluation"]),
            "solve": slope(evaluations, "n", "solve", SLOPE_FROM["evaluation"]),
            "fit": slope(fits, "n", "seconds", SLOPE_FROM["fit"]),
            "dense": slope(dense, "n", "seconds", SLOPE_FROM["dense"]),
            "second_factor": slope(second, "q_rest", "evaluation",
                                   SLOPE_FROM["second"]),
        },
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
