"""The command line, python -m lmm_ref FORMULA CSV [options].

Most tests call `main(argv)` in-process (capsys collects stdout and stderr); two run the
real entry point in a subprocess.  Values are checked against the fit object's own
(computed here through the API) and against lme4's stored values (lmm_ref.reference).
"""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm_ref
from lmm_ref import reference
from lmm_ref.__main__ import main

DATA = Path(__file__).resolve().parent.parent / "data"
SLEEP = str(DATA / "sleepstudy.csv")
PENICILLIN = str(DATA / "Penicillin.csv")
SLOPE = "Reaction ~ Days + (Days | Subject)"
INTERCEPT = "Reaction ~ Days + (1 | Subject)"
NEWDATA = "Days,Subject\n0,308\n5,308\n10,308\n0,999\n5,999\n"


def cli(capsys, *args):
    """main(args) in-process: (exit status, stdout, stderr)."""
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run(*args):
    """The real entry point, python -m lmm_ref, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "lmm_ref", *map(str, args)],
                          capture_output=True, text=True)


def table(lines):
    """Parse a printed table whose row names have no spaces: {row: [numbers or nan]}."""
    rows = {}
    for line in lines:
        name, *cells = line.split()
        rows[name] = [np.nan if cell == "NA" else float(cell) for cell in cells]
    return rows


def section(out, title, length):
    """The `length` lines after the line `title` (the table's header included)."""
    lines = out.splitlines()
    start = lines.index(title) + 1
    return lines[start: start + length]


@pytest.fixture(scope="module")
def sleep_data():
    return pd.read_csv(SLEEP)


@pytest.fixture(scope="module")
def slope(sleep_data):
    return lmm_ref.fit(SLOPE, sleep_data, data_name="sleepstudy")


@pytest.fixture
def newdata(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text(NEWDATA)
    return path


# ---- the summary and --ml ------------------------------------------------------------

def test_entry_point_fits_and_prints_the_summary():
    result = run(SLOPE, SLEEP)
    assert result.returncode == 0, result.stderr
    assert "Linear mixed model fit by REML" in result.stdout
    assert "REML criterion at convergence: 1743.6" in result.stdout
    assert "Data: sleepstudy" in result.stdout
    assert result.stderr == ""


def test_the_summary_is_the_fits_own(capsys, slope):
    code, out, err = cli(capsys, SLOPE, SLEEP)
    assert (code, err) == (0, "")
    assert out == str(slope) + "\n"


def test_ml_flag(capsys, sleep_data):
    code, out, _ = cli(capsys, SLOPE, SLEEP, "--ml")
    assert code == 0
    assert out == str(lmm_ref.fit(SLOPE, sleep_data, reml=False, data_name="sleepstudy")) + "\n"
    assert "fit by maximum likelihood" in out
    assert "1751.9" in out  # lme4's ML deviance, 1751.939


def test_data_warnings_go_to_stderr(capsys, tmp_path):
    csv = tmp_path / "gaps.csv"
    text = Path(SLEEP).read_text().splitlines()
    text[1] = text[1].replace("249.56", "")  # one missing response
    csv.write_text("\n".join(text) + "\n")
    code, out, err = cli(capsys, SLOPE, csv)
    assert code == 0
    assert "warning: dropped 1 of 180 rows" in err
    assert "Number of obs: 179" in out


# ---- --confint ---------------------------------------------------------------------------

def test_confint_profile_is_the_default_and_matches_lme4(capsys, slope):
    code, out, _ = cli(capsys, SLOPE, SLEEP, "--confint")
    assert code == 0
    assert out.startswith(str(slope))
    lines = section(out, "Confidence intervals (profile):", 7)
    assert lines[0].split() == ["2.5", "%", "97.5", "%"]
    printed = table(lines[1:])
    ours = slope.confint()
    assert list(printed) == list(ours.index) == [".sig01", ".sig02", ".sig03", ".sigma",
                                                 "(Intercept)", "Days"]
    lme4 = reference.lme4_inference()["confint"][0]
    assert lme4["id"] == "sleep_slope_REML"
    for name, values in printed.items():
        np.testing.assert_allclose(values, ours.loc[name], rtol=1e-6, atol=1e-7)  # 7 digits
        np.testing.assert_allclose(values, lme4["profile"][name], rtol=1e-4)


def test_confint_wald_prints_NA_for_variance_parameters(capsys, slope):
    code, out, _ = cli(capsys, SLOPE, SLEEP, "--confint", "wald")  # any case, as Wald
    assert code == 0
    lines = section(out, "Confidence intervals (Wald):", 7)
    assert lines[1].split() == [".sig01", "NA", "NA"]
    printed = table(lines[1:])
    ours = slope.confint("Wald")
    lme4 = reference.lme4_inference()["confint"][0]["wald"]
    for name in ["(Intercept)", "Days"]:
        np.testing.assert_allclose(printed[name], ours.loc[name], rtol=1e-6)
        np.testing.assert_allclose(printed[name], lme4[name], rtol=1e-5)
    assert all(np.isnan(printed[name]).all() for name in [".sig01", ".sig02", ".sig03", ".sigma"])


def test_confint_boot_uses_nsim_seed_and_level(capsys, slope):
    code, out, _ = cli(capsys, SLOPE, SLEEP, "--confint", "boot", "--nsim", 12, "--seed", 5,
                       "--level", 0.9)
    assert code == 0
    lines = section(out, "Confidence intervals (boot, 12 replicates, seed 5):", 7)
    assert lines[0].split() == ["5", "%", "95", "%"]
    ours = slope.confint("boot", level=0.9, nsim=12, seed=5)
    for name, values in table(lines[1:]).items():
        np.testing.assert_allclose(values, ours.loc[name], rtol=1e-6, atol=1e-7)


# ---- --anova -----------------------------------------------------------------------------

def test_anova_prints_lme4s_table(capsys):
    # the larger model first: the table still lists the models by number of parameters
    code, out, err = cli(capsys, SLOPE, SLEEP, "--anova", INTERCEPT)
    assert code == 0
    assert "warning: refitting model(s) with ML (instead of REML)" in err
    lines = section(out, "Data: sleepstudy", 8)
    # lme4 1.1-31's print(anova(m1, m2)) in R 4.2.2, trailing blanks stripped
    assert lines == [
        "Models:",
        f"m2: {INTERCEPT}",
        f"m1: {SLOPE}",
        "   npar    AIC    BIC  logLik deviance  Chisq Df Pr(>Chisq)",
        "m2    4 1802.1 1814.8 -897.04   1794.1",
        "m1    6 1763.9 1783.1 -875.97   1751.9 42.139  2  7.072e-10 ***",
        "---",
        "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1",
    ]


def test_anova_p_value_below_machine_epsilon(capsys):
    code, out, _ = cli(capsys, "diameter ~ 1 + (1 | plate) + (1 | sample)", PENICILLIN,
                       "--anova", "diameter ~ 1 + (1 | plate)")
    assert code == 0
    assert "m1    4 340.19 352.07 -166.09   332.19 279.44  1  < 2.2e-16 ***" in out  # lme4's


def test_anova_json_matches_lmm_ref_anova_and_lme4(capsys, sleep_data, slope):
    code, out, err = cli(capsys, SLOPE, SLEEP, "--anova", INTERCEPT, "--json")
    assert code == 0
    document = json.loads(out)
    assert document["anova"]["refitted_ml"] is True
    assert any("refitting" in warning for warning in document["warnings"])
    models = document["anova"]["models"]
    assert [model["model"] for model in models] == ["m2", "m1"]
    assert [model["formula"] for model in models] == [INTERCEPT, SLOPE]
    with pytest.warns(UserWarning, match="refitting"):
        ours = lmm_ref.anova(slope, lmm_ref.fit(INTERCEPT, sleep_data))
    lme4 = reference.lme4_inference()["anova"][0]
    assert lme4["id"] == "sleep_int_vs_slope_ML"
    assert models[0]["Chisq"] is None and models[0]["Pr(>Chisq)"] is None
    for k, model in enumerate(models):
        for column in ["npar", "AIC", "BIC", "logLik", "deviance"]:
            assert model[column] == pytest.approx(ours[column].iloc[k], rel=1e-12)
            assert model[column] == pytest.approx(lme4[column][k], rel=1e-6)
    assert models[1]["Chisq"] == pytest.approx(lme4["Chisq"], rel=1e-5)
    assert models[1]["Df"] == lme4["Df"]
    assert models[1]["Pr(>Chisq)"] == pytest.approx(lme4["p"], rel=1e-4)


# ---- --ranef -----------------------------------------------------------------------------

def test_ranef_prints_modes_and_conditional_sds(capsys, slope):
    code, out, _ = cli(capsys, SLOPE, SLEEP, "--ranef")
    assert code == 0
    lines = section(out, "Conditional modes (condval) and conditional SDs (condsd):", 37)
    assert lines[0].split() == ["grpvar", "term", "grp", "condval", "condsd"]
    rows = [line.split() for line in lines[1:]]
    assert [row[3] for row in rows[:18]] == list(map(str, slope.ranef["Subject"].index))
    assert [row[3] for row in rows[:18]] == [row[3] for row in rows[18:]]
    sds = np.sqrt(np.diagonal(slope.condvar["Subject"], axis1=1, axis2=2))
    for k, term in enumerate(["(Intercept)", "Days"]):
        block = rows[18 * k: 18 * (k + 1)]
        assert {row[2] for row in block} == {term}
        np.testing.assert_allclose([float(row[4]) for row in block],
                                   slope.ranef["Subject"][term], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose([float(row[5]) for row in block], sds[:, k], rtol=1e-6)


def test_ranef_json_matches_lme4s_condvar(capsys):
    code, out, _ = cli(capsys, SLOPE, SLEEP, "--ranef", "--json")
    assert code == 0
    records = json.loads(out)["ranef"]["Subject"]
    lme4 = reference.lme4_inference()["condvar"][0]["groups"]["Subject"]
    postvar = np.asarray(lme4["postvar"])
    for k, term in enumerate(lme4["columns"]):
        mine = [r for r in records if r["term"] == term]
        assert [r["grp"] for r in mine] == lme4["levels"]
        np.testing.assert_allclose([r["condval"] for r in mine], lme4["modes"][k], rtol=1e-4,
                                   atol=1e-3)
        np.testing.assert_allclose([r["condsd"] for r in mine], np.sqrt(postvar[:, k, k]),
                                   rtol=1e-4)


def test_ranef_with_two_grouping_factors(capsys):
    code, out, _ = cli(capsys, "diameter ~ 1 + (1 | plate) + (1 | sample)", PENICILLIN,
                       "--ranef", "--json")
    assert code == 0
    ranef = json.loads(out)["ranef"]
    assert set(ranef) == {"plate", "sample"}
    assert (len(ranef["plate"]), len(ranef["sample"])) == (24, 6)


# ---- --predict ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", reference.lme4_inference()["predict"], ids=lambda c: c["id"])
def test_predict_matches_the_fit_and_lme4(capsys, tmp_path, slope, case):
    path = tmp_path / "new.csv"
    pd.DataFrame(case["newdata"]).to_csv(path, index=False)
    args = [SLOPE, SLEEP, "--predict", path, "--allow-new-levels"]
    if case["re_form"] is not None:
        args += ["--re-form", case["re_form"]]
    code, out, _ = cli(capsys, *args)
    assert code == 0
    written = pd.read_csv(io.StringIO(out))     # stdout is the CSV and nothing else
    newdata = pd.read_csv(path)
    assert list(written.columns) == list(newdata.columns) + ["fit"]
    pd.testing.assert_frame_equal(written[newdata.columns], newdata)
    ours = slope.predict(newdata, re_form=case["re_form"], allow_new_levels=True)
    np.testing.assert_allclose(written["fit"], ours, rtol=1e-12)
    np.testing.assert_allclose(written["fit"], case["values"], rtol=1e-5)


def test_predict_to_an_output_file(capsys, tmp_path, newdata, slope):
    output = tmp_path / "predictions.csv"
    code, out, _ = cli(capsys, SLOPE, SLEEP, "--predict", newdata, "--re-form", "NA",
                       "--output", output)
    assert code == 0
    assert out == str(slope) + "\n"             # the summary, as without --predict
    written = pd.read_csv(output)
    np.testing.assert_allclose(written["fit"],
                               slope.fixef["(Intercept)"] + slope.fixef["Days"] * written["Days"],
                               rtol=1e-12)


def test_predict_rows_with_missing_values(capsys, tmp_path, slope):
    path = tmp_path / "gaps.csv"
    path.write_text("Days,Subject\n1,308\n,308\n")
    code, out, err = cli(capsys, SLOPE, SLEEP, "--predict", path)
    assert code == 0
    assert "warning: 1 row(s) of newdata have missing values" in err
    written = pd.read_csv(io.StringIO(out))
    with pytest.warns(UserWarning, match="missing values"):
        expected = slope.predict(pd.read_csv(path))
    assert written["fit"].iloc[0] == pytest.approx(expected[0], rel=1e-12)
    assert np.isnan(written["fit"].iloc[1])


# ---- --json and --weights ----------------------------------------------------------------

def test_json_is_the_whole_fit(capsys, slope):
    code, out, err = cli(capsys, SLOPE, SLEEP, "--json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["formula"] == SLOPE and document["data"] == "sleepstudy"
    assert document["reml"] is True and document["nobs"] == 180
    assert document["groups"] == {"Subject": 18}
    assert document["criterion"] == {"name": "REML criterion", "value": slope.objective}
    assert document["deviance"] is None                       # a REML fit has none
    for key, value in [("loglik", slope.loglik), ("AIC", slope.aic), ("BIC", slope.bic),
                       ("sigma", slope.sigma)]:
        assert document[key] == pytest.approx(value, rel=1e-15)
    for name, entry in document["fixef"].items():
        assert entry["estimate"] == pytest.approx(slope.fixef[name], rel=1e-15)
        assert entry["std_error"] == pytest.approx(slope.stderr[name], rel=1e-15)
        assert entry["t_value"] == pytest.approx(slope.fixef[name] / slope.stderr[name])
    np.testing.assert_allclose([row["sdcor"] for row in document["varcorr"]],
                               slope.varcorr["sdcor"], rtol=1e-15)
    assert document["varcorr"][2]["var2"] == "Days" and document["varcorr"][3]["var1"] is None
    np.testing.assert_allclose(document["theta"], slope.theta, rtol=1e-15)
    assert document["theta_names"] == ["Subject.(Intercept)", "Subject.Days.(Intercept)",
                                       "Subject.Days"]
    assert document["singular"] is False and document["converged"] is True
    assert document["convergence_warnings"] == [] and document["warnings"] == []
    lme4 = reference.lme4_fit("sleep_slope", reml=True)
    assert document["criterion"]["value"] == pytest.approx(lme4["objective"], rel=1e-6)
    np.testing.assert_allclose(document["theta"], lme4["theta"], rtol=1e-4)


def test_json_of_an_ml_fit_with_confint(capsys):
    code, out, _ = cli(capsys, SLOPE, SLEEP, "--ml", "--json", "--confint", "Wald")
    assert code == 0
    document = json.loads(out)
    assert document["criterion"]["name"] == "deviance"
    assert document["deviance"] == document["criterion"]["value"]
    assert document["deviance"] == pytest.approx(reference.lme4_fit("sleep_slope", False)
                                                 ["objective"], rel=1e-6)
    confint = document["confint"]
    assert (confint["method"], confint["level"]) == ("Wald", 0.95)
    assert confint["intervals"][".sig01"] == {"lower": None, "upper": None}  # NaN -> null
    days = confint["intervals"]["Days"]
    estimate, se = document["fixef"]["Days"]["estimate"], document["fixef"]["Days"]["std_error"]
    assert days["lower"] == pytest.approx(estimate - 1.959963984540054 * se, rel=1e-12)


def test_json_of_a_singular_fit(capsys):
    code, out, _ = cli(capsys, "Yield ~ 1 + (1 | Batch)", DATA / "Dyestuff2.csv", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["singular"] is True
    assert document["varcorr"][0]["sdcor"] == pytest.approx(0, abs=1e-6)


def test_weights_column(capsys, tmp_path):
    path = tmp_path / "weighted.csv"
    frame = reference.reference_data("sleepstudy")  # w = 1 + Days %% 3, as in lme4's fit
    frame.to_csv(path, index=False)
    code, out, _ = cli(capsys, SLOPE, path, "--weights", "w", "--json")
    assert code == 0
    document = json.loads(out)
    ours = lmm_ref.fit(SLOPE, frame, weights="w")
    lme4 = next(case for case in reference.lme4_inference()["weights"]
                if case["id"] == "sleep_weights_REML")
    assert document["criterion"]["value"] == pytest.approx(ours.objective, rel=1e-12)
    assert document["criterion"]["value"] == pytest.approx(lme4["objective"], rel=1e-6)
    assert document["sigma"] == pytest.approx(lme4["sigma"], rel=1e-4)


# ---- errors: one line on stderr, exit status 2 -------------------------------------------

def test_entry_point_error_is_one_line_without_traceback():
    result = run(SLOPE, SLEEP, "--weights", "wt")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == ("error: unknown column 'wt' given as weights; the data has "
                             "columns: Reaction, Days, Subject\n")


@pytest.fixture
def files(tmp_path, newdata):
    (tmp_path / "days_only.csv").write_text("Days\n0\n1\n")
    (tmp_path / "empty.csv").write_text("")
    text = Path(SLEEP).read_text().splitlines()
    text = [text[0] + ",x"] + [line + ("," if k == 0 else ",1") for k, line in enumerate(text[1:])]
    (tmp_path / "gap_in_x.csv").write_text("\n".join(text) + "\n")
    return {"NEW": str(newdata), "DAYS_ONLY": str(tmp_path / "days_only.csv"),
            "EMPTY": str(tmp_path / "empty.csv"), "GAP": str(tmp_path / "gap_in_x.csv"),
            "NODIR": str(tmp_path / "no" / "such" / "out.csv")}


ERRORS = [
    # (the arguments after FORMULA, files named by the `files` fixture's keys; the message)
    (["no/such/file.csv"], "no such file: no/such/file.csv"),
    (["EMPTY"], "cannot read"),
    (["SLEEP", "--weights", "wt"],
     "unknown column 'wt' given as weights; the data has columns: Reaction, Days, Subject"),
    (["SLEEP", "--weights", "Days"], "18 row(s) of the weights column 'Days' are zero or negative"),
    (["SLEEP", "--confint", "bogus"],
     "argument --confint: unknown method 'bogus'; choose one of profile, Wald, boot"),
    (["SLEEP", "--confint", "boot", "--nsim", "0"],
     "argument --nsim: expected a positive whole number, not '0'"),
    (["SLEEP", "--confint", "boot", "--nsim", "many"],
     "argument --nsim: expected a positive whole number, not 'many'"),
    (["SLEEP", "--confint", "boot", "--seed", "-3"],
     "argument --seed: expected a whole number >= 0, not '-3'"),
    (["SLEEP", "--confint", "--level", "95"],
     "argument --level: expected a number between 0 and 1 such as 0.95, not '95'"),
    (["SLEEP", "--nsim", "10"], "--nsim and --seed are for --confint boot"),
    (["SLEEP", "--confint", "Wald", "--seed", "1"], "--nsim and --seed are for --confint boot"),
    (["SLEEP", "--level", "0.9"], "--level is for --confint"),
    (["SLEEP", "--level", "0.95"], "--level is for --confint"),
    (["SLEEP", "--anova", "Reaction ~ Days + (1 | Subject"],
     "--anova FORMULA2: unbalanced parentheses"),
    (["SLEEP", "--anova", "Reaction ~ Days + (1 | Subjekt)"],
     "--anova FORMULA2: unknown column 'Subjekt'"),
    (["GAP", "--anova", "Reaction ~ Days + x + (1 | Subject)"],
     "--anova: the models were not fitted to the same data"),
    (["SLEEP", "--predict", "no/such/new.csv"], "no such file: no/such/new.csv"),
    (["SLEEP", "--predict", "DAYS_ONLY"],
     "--predict: newdata has no column 'Subject', which the model uses; it has: Days"),
    (["SLEEP", "--predict", "NEW"],
     "--predict: newdata has level(s) 999 of the grouping factor 'Subject' that the fit "
     "never saw; pass --allow-new-levels"),
    (["SLEEP", "--predict", "NEW", "--allow-new-levels", "--re-form", "~(1 | Batch)"],
     "--predict: re_form '~(1 | Batch)' names the grouping factor 'Batch'"),
    (["SLEEP", "--predict", "NEW", "--allow-new-levels", "--output", "NODIR"],
     "cannot write --output"),
    (["SLEEP", "--predict", "NEW", "--json"],
     "--predict writes its CSV to stdout, which --json needs too; give --output FILE"),
    (["SLEEP", "--predict", "NEW", "--ranef"],
     "--predict writes its CSV to stdout, which --ranef needs too"),
    (["SLEEP", "--output", "out.csv"], "--output is for --predict"),
    (["SLEEP", "--re-form", "NA"], "--re-form is for --predict"),
    (["SLEEP", "--allow-new-levels"], "--allow-new-levels is for --predict"),
    (["SLEEP", "--bogus"], "unrecognized arguments: --bogus"),
    ([], "the following arguments are required: csv"),
]
FORMULA_ERRORS = [
    ("Reaction ~ Days + (Days | Subject", "unbalanced parentheses"),
    ("Reaction ~ Dayz + (Days | Subject)", "unknown column 'Dayz'"),
    ("Reaction ~ Days", "the formula 'Reaction ~ Days' has no random-effects term"),
]


def check_error(code, out, err, message):
    assert code == 2
    assert out == ""
    assert err.startswith("error: " + message), err
    assert len(err.splitlines()) == 1 and err.endswith("\n")


@pytest.mark.parametrize("formula, message", FORMULA_ERRORS, ids=[m for _, m in FORMULA_ERRORS])
def test_formula_errors(capsys, formula, message):
    check_error(*cli(capsys, formula, SLEEP), message)


@pytest.mark.parametrize("args, message", ERRORS, ids=[m[:50] for _, m in ERRORS])
def test_errors_are_one_line_with_status_2(capsys, files, args, message):
    paths = dict(files, SLEEP=SLEEP)
    check_error(*cli(capsys, SLOPE, *[paths.get(arg, arg) for arg in args]), message)


def test_json_names_the_predictions_file(capsys, tmp_path, newdata):
    output = tmp_path / "predictions.csv"
    code, out, _ = cli(capsys, SLOPE, SLEEP, "--predict", newdata, "--allow-new-levels",
                       "--output", output, "--json")
    assert code == 0
    assert json.loads(out)["predictions_file"] == str(output)
    assert len(pd.read_csv(output)) == 5
