"""The `momentum-jax` command line: errors are one line and exit status 2, never a traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import fake_study_loop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from momentum_jax._cli import main, parse_hs


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_losses_lists_registry(capsys):
    code, out, _ = run(capsys, "losses")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {
        "quadratic",
        "rosenbrock",
        "double_well",
        "digits_logistic",
        "digits_autoencoder",
        "dense_quadratic",
    } <= set(names)


def test_study_table_and_json(capsys, tmp_path):
    args = [
        "study",
        "--loss",
        "quadratic",
        "--loss-arg",
        "kappa=5",
        "--h",
        "2^-3:2^-6",
        "--lam",
        "0.5,0.9",
        "--model",
        "gradient_flow",
        "--T",
        "1",
    ]
    code, out, err = run(capsys, *args)
    assert code == 0 and "fitted order" in out and "2^-6" in out
    out_file = tmp_path / "s.json"
    code, out, err = run(capsys, *args, "--json", "--out", str(out_file))
    assert code == 0
    doc = json.loads(out)
    assert doc["axes"]["h"] == [2.0**-3, 2.0**-4, 2.0**-5, 2.0**-6]
    assert doc["axes"]["lam"] == [0.5, 0.9]
    assert np.array(doc["errors"]["gradient_flow"]).shape == (2, 2, 4)
    assert json.loads(out_file.read_text())["errors"] == doc["errors"]


def test_study_on_user_function(capsys):
    code, out, _ = run(
        capsys,
        "study",
        "--loss",
        "momentum_jax._losses:rosenbrock",
        "--x0",
        "-1.2,1.0",
        "--h",
        "2^-8:2^-9",
        "--lam",
        "0.5",
        "--model",
        "gradient_flow",
        "--T",
        "0.5",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["config"]["loss"] == "rosenbrock"


def test_parse_hs():
    assert parse_hs("2^-4:2^-6") == [2.0**-4, 2.0**-5, 2.0**-6]
    assert parse_hs("0.1,0.05") == [0.1, 0.05]


@pytest.mark.parametrize(
    "argv, text",
    [
        (["bogus"], "invalid choice"),
        (["study"], "--loss"),
        (["study", "--loss", "nope"], "--loss 'nope' is not registered"),
        (["study", "--loss", "quadratic", "--lam", "1.5"], "lams=[1.5]"),
        (["study", "--loss", "quadratic", "--lam", "x"], "--lam expects"),
        (["study", "--loss", "quadratic", "--h", "2^-4:2^-x"], "--h expects"),
        (["study", "--loss", "quadratic", "--h", "2^-8:2^-4"], "A >= B"),
        (["study", "--loss", "quadratic", "--h", "0.01,0.1"], "strictly decreasing"),
        (["study", "--loss", "quadratic", "--method", "adam"], "--method got adam"),
        (["study", "--loss", "quadratic", "--model", "euler"], "--model got euler"),
        (["study", "--loss", "quadratic", "--init", "random"], "--init got random"),
        (["study", "--loss", "quadratic", "--T", "-1"], "T=-1"),
        (["study", "--loss", "quadratic", "--x0", "1,2,3"], "--x0 has 3 values"),
        (["study", "--loss", "quadratic", "--order", "-2"], "--order expects"),
        (["study", "--loss", "os:nothing_here", "--x0", "1"], "cannot be imported"),
        (["study", "--loss", "momentum_jax._losses:rosenbrock"], "--x0 is required"),
        (["study", "--loss", "quadratic", "--loss-arg", "kappa"], "KEY=VALUE"),
        (["study", "--loss", "quadratic", "--loss-arg", "zeta=3"], "not accepted"),
        (["reproduce", "fig99"], "unknown figure 'fig99'"),
        (["reproduce", "fig2", "--mnist-dir", "/nonexistent/dir"], "--mnist-dir"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, argv, text):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("momentum-jax: error: ")
    assert text in err
    assert "Traceback" not in err


def test_console_script_exit_status():
    proc = subprocess.run(
        [sys.executable, "-m", "momentum_jax", "study", "--loss", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


TOKENS = {
    "--loss": ["quadratic", "double_well", "rosenbrock", "nope", "os:path", ""],
    "--h": ["2^-3:2^-5", "2^-4:2^-4", "0.1,0.05", "2^-5:2^-3", "abc", "0", "-1,0.1", "2^x"],
    "--lam": ["0.5", "0.0,0.9", "1", "-0.1", "nan", "", "0.9,abc"],
    "--method": ["hb", "nag", "hb,nag,gd", "adam", ""],
    "--model": ["gradient_flow", "modified_flow,hamiltonian", "bogus", "hessian_damped"],
    "--T": ["1", "0.5", "0", "-2", "inf", "x"],
    "--init": ["zero", "manifold", "up"],
    "--x0": ["1,1", "0.3,1.0", "1", "a,b", "nan,1"],
    "--order": ["1", "0", "-1", "two"],
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(st.sampled_from(sorted(TOKENS)), st.just(None), min_size=1).flatmap(
        lambda d: st.fixed_dictionaries({k: st.sampled_from(TOKENS[k]) for k in d})
    ),
    st.booleans(),
)
def test_study_never_tracebacks(capsys, monkeypatch, options, as_json):
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    argv = ["study"]
    for key, value in options.items():
        argv += [key, value]
    if as_json:
        argv.append("--json")
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, err)
    assert "Traceback" not in err and "Traceback" not in out
    if code == 2:
        assert err.count("\n") == 1, err
    elif as_json:
        json.loads(out)
