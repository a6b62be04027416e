"""`momentum-jax reproduce --set KEY=VALUE`: one configuration key of the named figures, read as
JSON, checked against the key's default before anything is computed."""

import pytest
from helpers import record_figure_runs, refuse_figure_runs

from momentum_jax._cli import main
from momentum_jax.paper import load_module


@pytest.mark.parametrize(
    "sets, text",
    [
        (["h_exponents"], "--set expects KEY=VALUE, got 'h_exponents'"),
        (["=3"], "--set expects KEY=VALUE"),
        (["h_exponent=[2, 10]"], "--set h_exponent: not a configuration key of fig7_training"),
        (["h_exponents=[2, 10"], "--set h_exponents: the value '[2, 10' is not JSON"),
        (["h_exponents=2"], "--set h_exponents: expects a list like [2, 7], got 2"),
        (['horizon="long"'], "--set horizon: expects a number like 1.25"),
        (["horizon=true"], "--set horizon: expects a number like 1.25, got true"),
        (["seeds=[0, 1]"], "--set seeds: use --seeds"),
        (['dataset="digits"'], "--set dataset: use --dataset"),
        (["horizon=2", "horizon=3"], "--set horizon is given twice"),
    ],
)
def test_bad_settings_are_one_line_exit_2_before_computing(capsys, monkeypatch, sets, text):
    refuse_figure_runs(monkeypatch)
    argv = ["reproduce", "fig7"]
    for s in sets:
        argv += ["--set", s]
    code = main([*argv, "--out", "unused"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("momentum-jax: error: ") and text in err, err


def test_settings_reach_the_figures_that_have_the_key_after_full(capsys, monkeypatch, tmp_path):
    calls = record_figure_runs(monkeypatch)
    argv = ["reproduce", "fig7", "fig10", "fig2", "--out", str(tmp_path), "--dataset", "digits"]
    sets = ["--set", "horizon=2", "--set", "images=100"]
    assert main([*argv, *sets]) == 0
    assert calls["fig7_training_rates"]["horizon"] == 2
    assert calls["fig7_training_rates"]["images"] == 100  # Fig 7 takes Fig 10's images
    assert calls["fig10_implicit_regularisation"]["images"] == 100
    assert "horizon" not in calls["fig10_implicit_regularisation"]
    assert "horizon" not in calls["fig2_rates"] and "images" not in calls["fig2_rates"]
    err = capsys.readouterr().err
    assert "fig2_rates: --set horizon does not apply (not a key of the figure)" in err
    # after --full: the value given wins over the figure's full settings
    fig7 = ["reproduce", "fig7", "--out", str(tmp_path), "--dataset", "digits"]
    assert main([*fig7, "--full", "--set", "h_exponents=[3, 9]"]) == 0
    full = load_module("fig7_training_rates").FULL
    assert full["h_exponents"] == [2, 10] and calls["fig7_training_rates"]["h_exponents"] == [3, 9]
    assert calls["fig7_training_rates"]["images"] == full["images"]  # the rest of --full stays
    capsys.readouterr()


def test_a_key_two_named_figures_use_differently_needs_one_figure(capsys, monkeypatch):
    """`h_exponents` is Fig 2's `[4, 18]` and Fig 7's `[2, 7]` (and with no figure named, Fig
    14's `[-1.0, -8.0]` too): one value for all of them is refused, naming each default."""
    refuse_figure_runs(monkeypatch)
    for argv in (["reproduce", "fig7", "fig2"], ["reproduce"]):
        code = main([*argv, "--set", "h_exponents=[2, 10]", "--out", "unused"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert "--set h_exponents: the figures use it differently (" in err
        assert "fig2_rates: [4, 18]" in err and "fig7_training_rates: [2, 7]" in err
        assert "; name one of them" in err
