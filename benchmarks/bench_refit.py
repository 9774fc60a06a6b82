"""What LmmFit.refit costs against a fresh fit of the same model to the same new response.

    .venv/bin/python benchmarks/bench_refit.py [--repeats 15]

For each case a new response is drawn from the fitted model (seeded); the table gives
the median wall time of a fresh `lmm_ref.fit` on a copy of the data with that response,
and of `m.refit(y)`, which reuses the design and X and Z's cross-products and starts
from the fit's theta-hat.  Both must reach the same optimum.
"""

import argparse

import numpy as np
import pandas as pd

import lmm_ref
from bench_fit import median_time, simulated_crossed

CASES = [
    ("sleepstudy (Days|Subject) REML", lambda: lmm_ref.data.load("sleepstudy"),
     "Reaction ~ Days + (Days | Subject)", "Reaction"),
    ("simulated 2000 rows, (x|A)+(1|B) REML", simulated_crossed, "y ~ x + (x | A) + (1 | B)", "y"),
]


def new_response(fit, seed=2015):
    """y from the fitted model: X beta + Z b + e with b and e drawn at the estimates."""
    rng = np.random.default_rng(seed)
    design = fit.design
    u = rng.normal(scale=fit.sigma, size=design.q)
    b = design.Lambda(fit.theta) @ u
    return design.X @ fit.fixef.to_numpy() + design.Z @ b + rng.normal(scale=fit.sigma, size=design.n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rows = []
    for name, load, formula, response in CASES:
        data = load()
        fit = lmm_ref.fit(formula, data)
        y = new_response(fit)
        fresh_data = data.assign(**{response: y})
        fresh_time, fresh = median_time(lambda: lmm_ref.fit(formula, fresh_data), args.repeats)
        refit_time, refitted = median_time(lambda: fit.refit(y), args.repeats)
        assert abs(refitted.objective - fresh.objective) < 1e-8 * abs(fresh.objective)
        rows.append({"case": name, "fresh fit (ms)": 1e3 * fresh_time,
                     "evaluations (fresh)": fresh.optimizer.evaluations,
                     "refit (ms)": 1e3 * refit_time,
                     "evaluations (refit)": refitted.optimizer.evaluations,
                     "refit / fresh": refit_time / fresh_time})
    print(pd.DataFrame(rows).set_index("case").round(2).to_string())
    print(f"\nmedian of {args.repeats} runs each")


if __name__ == "__main__":
    main()
