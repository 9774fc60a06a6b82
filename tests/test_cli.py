"""The command line: python -m lmm_ref FORMULA CSV [--ml]."""

import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


def run(*args):
    return subprocess.run([sys.executable, "-m", "lmm_ref", *args], capture_output=True, text=True)


def test_fits_and_prints_the_summary():
    result = run("Reaction ~ Days + (Days | Subject)", str(DATA / "sleepstudy.csv"))
    assert result.returncode == 0, result.stderr
    assert "Linear mixed model fit by REML" in result.stdout
    assert "REML criterion at convergence: 1743.6" in result.stdout
    assert "Data: sleepstudy" in result.stdout
    assert result.stderr == ""


def test_ml_flag():
    result = run("Reaction ~ Days + (Days | Subject)", str(DATA / "sleepstudy.csv"), "--ml")
    assert result.returncode == 0, result.stderr
    assert "fit by maximum likelihood" in result.stdout
    assert "1751.9" in result.stdout  # lme4's ML deviance, 1751.939


@pytest.mark.parametrize("formula, csv, message", [
    ("Reaction ~ Days + (Days | Subject)", "no/such/file.csv", "error: no such file: no/such/file.csv"),
    ("Reaction ~ Days + (Days | Subject", "sleepstudy.csv", "error: unbalanced parentheses"),
    ("Reaction ~ Dayz + (Days | Subject)", "sleepstudy.csv", "error: unknown column 'Dayz'"),
    ("Reaction ~ Days", "sleepstudy.csv", "error: the formula 'Reaction ~ Days' has no random-effects term"),
])
def test_errors_are_one_line_without_traceback(formula, csv, message):
    path = csv if "/" in csv else str(DATA / csv)
    result = run(formula, path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_data_warnings_go_to_stderr(tmp_path):
    csv = tmp_path / "gaps.csv"
    text = (DATA / "sleepstudy.csv").read_text().splitlines()
    text[1] = text[1].replace("249.56", "")  # one missing response
    csv.write_text("\n".join(text) + "\n")
    result = run("Reaction ~ Days + (Days | Subject)", str(csv))
    assert result.returncode == 0
    assert "warning: dropped 1 of 180 rows" in result.stderr
    assert "Number of obs: 179" in result.stdout
