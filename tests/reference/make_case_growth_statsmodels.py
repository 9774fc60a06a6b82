"""statsmodels MixedLM fits of the ChickWeight models of book/10_case_growth.md.

They take several seconds each, too long for the book's build, so they are
stored here: for each model and optimiser, -2 log-likelihood (REML), the
fixed effects, cov_re, vcomp, scale, whether statsmodels says it converged,
and the seconds the fit took.  Writes statsmodels_case_growth.json next
to this script.

    .venv/bin/python tests/reference/make_case_growth_statsmodels.py
"""

import json
import platform
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import statsmodels
import statsmodels.formula.api as smf

from lmm_ref.reference import reference_data

chick = reference_data("ChickWeight")
MODELS = {
    "chick_slope": dict(formula="weight ~ Time * Diet", re_formula="~Time"),
    "chick_zerocorr": dict(formula="weight ~ Time * Diet", re_formula="1",
                           vc_formula={"Time": "0 + Time"}),
    "chick_main": dict(formula="weight ~ Time + Diet", re_formula="~Time"),
}
records = []
for model_id, spec in MODELS.items():
    spec = dict(spec)
    model = smf.mixedlm(spec.pop("formula"), chick, groups="Chick", **spec)
    for method in (None, "lbfgs"):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = model.fit(reml=True, method=method)
        seconds = time.perf_counter() - start
        records.append({
            "id": model_id, "method": method or "default",
            "objective": float(-2 * result.llf),
            "fixef": {k: float(v) for k, v in result.fe_params.items()},
            "cov_re": np.asarray(result.cov_re).tolist(),
            "vcomp": [float(v) for v in result.vcomp],
            "scale": float(result.scale),
            "converged": bool(result.converged), "seconds": seconds})
        print(model_id, method, records[-1]["objective"],
              result.converged, f"{seconds:.1f}s")
out = {"provenance": {"statsmodels": statsmodels.__version__,
                      "python": platform.python_version(),
                      "script": "tests/reference/"
                                "make_case_growth_statsmodels.py",
                      "date": date.today().isoformat()},
       "fits": records}
path = Path(__file__).with_name("statsmodels_case_growth.json")
path.write_text(json.dumps(out, indent=1) + "\n")
