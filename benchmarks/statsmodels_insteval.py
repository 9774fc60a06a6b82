"""statsmodels' MixedLM on crossed factors: its cost on growing parts of InstEval.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/statsmodels_insteval.py \
        [--fractions 0.005 0.01 0.02 0.04 0.08] [--cutoff 300]

statsmodels has no crossed random effects; the one way to fit
`y ~ service + (1 | s) + (1 | d) + (1 | dept)` is to put every row in a single
group and make each factor a variance component (the chapter "Case study:
crossed factors" explains the trick).  Each subsample is the first fraction of
InstEval's students (in R's level order) with all their ratings.  For each, the
script times statsmodels (building the model, then `fit(reml=False)`) in a
child process that is stopped after `--cutoff` seconds of wall time, and
lmm_ref's fit of the same model; it stores both sets of estimates.  Times are
wall and CPU seconds of the process (with OPENBLAS_NUM_THREADS=1 the CPU time
is close to the wall time of an unloaded machine; the cut-off is on the wall).  It stops at the first fraction
whose statsmodels fit is cut off.

Writes benchmarks/results/statsmodels_insteval.json with the provenance (date,
commit, machine, load, versions).  Wall times on a shared machine vary; the
book plots them as they were measured, and asserts nothing about them.
"""

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "statsmodels_insteval.json"
FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"
VC = {"s": "0 + C(s)", "d": "0 + C(d)", "dept": "0 + C(dept)"}
FACTORS = ["s", "d", "dept"]


def subsample(data, fraction):
    """The first `fraction` of the students (R's level order), all their rows."""
    students = data["s"].cat.categories
    k = max(1, int(round(fraction * len(students))))
    part = data[data["s"].isin(students[:k])].copy()
    for column in FACTORS:
        part[column] = part[column].cat.remove_unused_categories()
    part["one"] = 1                       # statsmodels' single group
    return part.reset_index(drop=True), k


def statsmodels_fit(part, queue):
    """Child process: build and fit the one-group model, report to queue."""
    import statsmodels.formula.api as smf
    start, cpu_start = time.perf_counter(), time.process_time()
    model = smf.mixedlm("y ~ service", part, groups="one", re_formula="0",
                        vc_formula=VC)
    built, cpu_built = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(reml=False)
    done, cpu_done = time.perf_counter(), time.process_time()
    queue.put({
        "build_seconds": built - start, "fit_seconds": done - built,
        "build_cpu_seconds": cpu_built - cpu_start,
        "fit_cpu_seconds": cpu_done - cpu_built,
        "fixef": {k: float(v) for k, v in result.fe_params.items()},
        "vcomp": dict(zip(model.exog_vc.names, map(float, result.vcomp))),
        "scale": float(result.scale), "llf": float(result.llf),
        "converged": bool(result.converged),
        "warnings": sorted({str(w.message).split("\n")[0] for w in caught}),
    })


def cpu_seconds_of(pid):
    """CPU seconds (user + system) a running process has used (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lmm_ref_fit(part):
    import lmm_ref
    start, cpu_start = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = lmm_ref.fit(FORMULA, part, reml=False)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    names = [term.group for term in fit.design.terms]
    return {"seconds": seconds, "cpu_seconds": cpu_seconds,
            "fixef": {k: float(v) for k, v in fit.fixef.items()},
            "theta": dict(zip(names, map(float, fit.theta))),
            "sigma": float(fit.sigma), "loglik": float(fit.loglik),
            "singular": bool(fit.singular)}


def provenance():
    import numpy
    import pandas
    import scipy
    import statsmodels
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "lmm_ref"],
                           cwd=ROOT, capture_output=True, text=True).stdout
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit, "lmm_ref_modified": bool(dirty.strip()),
        "machine": {"platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(),
                    "load_average_at_start": list(os.getloadavg())},
        "versions": {"python": sys.version.split()[0],
                     "numpy": numpy.__version__, "scipy": scipy.__version__,
                     "pandas": pandas.__version__,
                     "statsmodels": statsmodels.__version__},
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "script": "benchmarks/statsmodels_insteval.py",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fractions", type=float, nargs="+",
                        default=[0.005, 0.01, 0.02, 0.04, 0.08])
    parser.add_argument("--cutoff", type=float, default=300.0,
                        help="seconds before a statsmodels fit is stopped")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import lmm_ref
    data = lmm_ref.data.load("InstEval")
    record = {"provenance": provenance(), "formula": FORMULA,
              "statsmodels_call": "smf.mixedlm('y ~ service', part, "
              "groups='one', re_formula='0', vc_formula=" + repr(VC)
              + ").fit(reml=False)",
              "cutoff_seconds": args.cutoff, "n_students": int(
                  data["s"].nunique()), "runs": []}
    context = multiprocessing.get_context("fork")
    for fraction in args.fractions:
        part, k = subsample(data, fraction)
        levels = {c: int(part[c].nunique()) for c in FACTORS}
        run = {"fraction": fraction, "students": k, "nobs": len(part),
               "levels": levels, "q": int(sum(levels.values())),
               "lmm_ref": lmm_ref_fit(part)}
        queue = context.Queue()
        child = context.Process(target=statsmodels_fit, args=(part, queue))
        start = time.perf_counter()
        child.start()
        try:
            run["statsmodels"] = queue.get(timeout=args.cutoff)
            run["cut_off"] = False
        except Exception:                     # queue.Empty: the cut-off
            run["statsmodels"] = None
            run["cut_off"] = True
            run["statsmodels_cpu_seconds_at_cutoff"] = cpu_seconds_of(
                child.pid)
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()
            child.join()
        run["statsmodels_wall_seconds"] = time.perf_counter() - start
        record["runs"].append(run)
        print(json.dumps({k: run[k] for k in
                          ("fraction", "nobs", "q", "cut_off")}),
              f"{run['statsmodels_wall_seconds']:.1f} s", flush=True)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(record, indent=1) + "\n")
        if run["cut_off"]:
            break
    record["finished"] = datetime.now(timezone.utc).isoformat(
        timespec="seconds")
    record["load_average_at_end"] = list(os.getloadavg())
    OUT.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
