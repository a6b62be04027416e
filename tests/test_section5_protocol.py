"""The Section 5 protocol on a small problem (scikit-learn's 8x8 digits, the scaled autoencoder):
the loss scale is a step scale for GD, HB and NAG (the reduction `experiments/mnist_protocol.py`
rests on), Fig 6's pipeline run where the network leaves the mean-image plateau, and Fig 6 over
several seeds (`reproduce --seeds`, the claims' verdicts and spread over the seeds)."""

import json

import numpy as np
import pytest
from helpers import record_figure_runs, refuse_figure_runs

import momentum_jax as mj
from momentum_jax._cli import main
from momentum_jax.paper import load_module, mean_image_error, run_experiment, section5_problem


def test_loss_scale_is_a_step_scale():
    """`c Phi` at step `h` is `c' Phi` at `(c/c') h` for GD at the effective rate, HB and NAG
    (float64: the same iterates to rounding); the vanishing-friction schemes are not."""
    prob = section5_problem(dataset="digits", seed=0)
    data = prob.data[:400]
    kw = dict(lams=[0.9], steps=30, data=data, batch_size=100, record_every=10)
    methods = ("gd_effective", "hb", "nag", "wilson")
    a = mj.sweep(mj.Autoencoder(scale=1.0), prob.params0, hs=[0.5, 0.25], methods=methods, **kw)
    b = mj.sweep(mj.Autoencoder(scale=0.25), prob.params0, hs=[2.0, 1.0], methods=methods, **kw)
    errors_a, errors_b = a.curve / 1.0, b.curve / 0.25
    np.testing.assert_allclose(errors_a[:3], errors_b[:3], rtol=1e-9)
    assert not np.allclose(errors_a[3], errors_b[3], rtol=1e-3)  # Wilson: sqrt(h) enters


def test_autoencoder_scale():
    prob = section5_problem(dataset="digits", seed=0)
    x = prob.data[:5]
    full = mj.Autoencoder()(prob.params0, x)
    np.testing.assert_allclose(mj.Autoencoder(scale=1 / 64)(prob.params0, x), full / 64)
    np.testing.assert_allclose(mj.pixel_mean_squared_error(prob.params0, x), full / 64)
    with pytest.raises(ValueError, match="scale"):
        mj.Autoencoder(scale=0.0)


# On the digits with c = 1 the paper's facts about h = 1 and 1/2 come back (measured: HB and
# NAG at h = 1 leave the plateau by step 300 and 200, GD at the effective rate 10 stays on it
# for 1500 steps, GD at the effective rate 5 leaves it by step 1000).
DIGITS_RUNS = [
    {"schemes": ["hb", "nag"], "h_exponents": [0], "steps": 400, "record_every": 50},
    {"schemes": ["gd_effective"], "h_exponents": [1], "steps": 1200, "record_every": 100},
    {
        "schemes": ["gd_effective", "wilson", "hb_mu", "nag_mu"],
        "h_exponents": [0],
        "steps": 400,
        "record_every": 50,
    },
]


@pytest.mark.slow
def test_fig6_leaves_the_plateau_on_the_digits(tmp_path):
    module = load_module("fig6_training")
    s = run_experiment(
        module,
        quick=True,
        out=tmp_path,
        cache_dir=tmp_path / "cache",
        progress=False,
        runs=DIGITS_RUNS,
        seeds=[0],
    )["summary"]
    plateau = mean_image_error(section5_problem(dataset="digits").data)
    assert s["mean_image_plateau"] == pytest.approx(plateau)
    runs = s["protocol_runs"]
    for name in ("hb@128", "nag@128", "gd_effective@64"):
        run = runs[name]
        assert run["diverged_at"] == -1 and run["final_error"] < 0.9 * plateau
        assert run["exit_step"] is not None and run["exit_step"] <= run["steps"]
        # gradient-flow time of the per-image sum: c n h / (1 - lam), c = 1
        h = 1.0 if name != "gd_effective@64" else 0.5
        assert run["exit_t"] == pytest.approx(run["exit_step"] * h / 0.1)
    assert runs["gd_effective@128"]["final_error"] > 0.9 * plateau  # rate 10: on the plateau
    claims = s["claims"]["per_seed"]["0"]
    assert claims["gd_rate10_fails_while_hb_nag_h1_train"] is True
    assert claims["gd_rate5_trains"] is True
    # at equal steps the fixed-momentum clock (10 per step) outruns the vanishing friction
    assert claims["momentum_beats_vanishing_equal_steps"] is True
    on_disk = json.loads((tmp_path / "fig6_training.json").read_text())
    assert on_disk["summary"]["claims"]["survive_every_seed"] == s["claims"]["survive_every_seed"]


# -- Fig 6 over several seeds: `reproduce --seeds`, and the claims over the seeds ------------


@pytest.mark.parametrize(
    "seeds, text",
    [
        (["0", "-1"], "--seeds expects an integer >= 0, got -1"),
        (["x"], "--seeds expects an integer >= 0, got 'x'"),
        (["1.5"], "--seeds expects an integer >= 0, got '1.5'"),
        (["0", "2", "2"], "--seeds repeats 2"),
        ([], "--seeds"),
    ],
)
def test_bad_seeds_are_one_line_exit_2_before_computing(capsys, monkeypatch, seeds, text):
    refuse_figure_runs(monkeypatch)
    code = main(["reproduce", "fig6", "--seeds", *seeds, "--out", "unused"])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("momentum-jax: error: ") and text in err


def test_seeds_override_only_the_section5_figures(capsys, monkeypatch, tmp_path):
    calls = record_figure_runs(monkeypatch)
    argv = ["reproduce", "fig6", "fig2", "--out", str(tmp_path), "--dataset", "digits"]
    assert main([*argv, "--seeds", "2", "0", "1"]) == 0
    assert calls["fig6_training"]["seeds"] == [2, 0, 1]
    assert "seeds" not in calls["fig2_rates"]  # no Section 5 data set: not a seeded figure
    assert "fig2_rates: --seeds does not apply" in capsys.readouterr().err
    calls.clear()
    assert main(argv) == 0  # default: the figure's own seeds (Fig 6: seed 0 only)
    assert "seeds" not in calls["fig6_training"]
    assert load_module("fig6_training").CONFIG["seeds"] == [0]
    capsys.readouterr()


def test_seeds_for_figures_without_seeds_are_refused(capsys, monkeypatch):
    refuse_figure_runs(monkeypatch)
    code = main(["reproduce", "fig2", "fig3", "--seeds", "1", "--out", "unused"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--seeds applies to the figures with seeds (fig6_training, fig7_training_rates, " in err
    assert "), not to fig2_rates, fig3_hamiltonian" in err


def fake_fig6(finals):
    """Arrays as Fig 6's `compute` writes them, for `finals = {seed: {(scheme, exponent):
    final error (np.inf: diverged at the last step)}}`: every run starts at 195, is at 53 by
    step 50 and falls linearly to its final error from there (the default `runs`' steps,
    recorded every 50)."""
    module = load_module("fig6_training")
    steps_of = {
        (s, e): g["steps"]
        for g in module.CONFIG["runs"]
        for s in g["schemes"]
        for e in g["h_exponents"]
    }
    arrays = {}
    for seed, runs in finals.items():
        for (s, e), final in runs.items():
            steps = np.arange(0, steps_of[(s, e)] + 1, 50)
            err = np.interp(steps, [0, 50, steps[-1]], [195.0, 53.0, min(final, 1e3)])
            div = -1
            if not np.isfinite(final):
                err[-1], div = np.nan, int(steps[-1])
            key = f"{s}/{e}/{seed}"
            arrays |= {f"{key}/steps": steps, f"{key}/errors": err, f"{key}/diverged_at": div}
        arrays[f"sharpness/{seed}"] = np.array([100.0, 1e-4])
    return module, arrays


def finals_of(gd1, hb1, nag1, gd2, hb2, nag2, vanishing):
    """One seed's final errors: GD, HB, NAG at `h = 1` and `1/2`; Wilson, HB-mu, NAG-mu."""
    return {
        ("gd_effective", 0): gd1,
        ("hb", 0): hb1,
        ("nag", 0): nag1,
        ("gd_effective", 1): gd2,
        ("hb", 1): hb2,
        ("nag", 1): nag2,
    } | {(s, 0): vanishing for s in ("wilson", "hb_mu", "nag_mu")}


def test_fig6_claims_over_seeds_on_a_fake_run(tmp_path):
    """Seed 0 satisfies the claims it can; seed 1 has NAG above HB at `h = 1` and GD at the
    effective rate 10 diverging: "on every seed" is False for the first and True for the
    second (a divergence is a failure to train), the numbers' spread is over both seeds."""
    module, arrays = fake_fig6(
        {
            0: finals_of(90.0, 30.0, 25.0, 40.0, 38.0, 37.0, 52.0),
            1: finals_of(np.inf, 28.0, 31.0, 41.0, 39.0, 30.0, 52.0),
        }
    )
    config = dict(module.CONFIG, seeds=[0, 1])
    plateau = 52.8
    s = module.summarise(arrays, config, "fake", "mnist5k", plateau, 25)
    per_seed, over = s["claims"]["per_seed"], s["claims"]["over_seeds"]
    assert per_seed["0"]["nag_below_hb_at_h1"] is True
    assert per_seed["1"]["nag_below_hb_at_h1"] is False
    nag_hb = over["nag_below_hb_at_h1"]
    assert nag_hb["holds"] is False and nag_hb["holds_on"] == 1 and nag_hb["seeds"] == 2
    assert nag_hb["numbers"]["nag_minus_hb"] == {"per_seed": [-5.0, 3.0], "min": -5.0, "max": 3.0}
    fails = over["gd_rate10_fails_while_hb_nag_h1_train"]
    assert fails["holds"] is True and fails["per_seed"] == {"0": True, "1": True}
    assert fails["numbers"]["gd_final_error"]["per_seed"] == [90.0, None]
    assert over["gd_rate10_diverges"]["holds"] is False  # diverges on seed 1 only
    assert over["gd_rate10_diverges"]["numbers"]["gd_diverged_at"]["max"] == 3000
    assert over["gd_rate5_trains"]["holds"] is True
    # |HB - GD|/GD at h = 1/2: 0.05 and 0.075 on seed 0; NAG 0.27 on seed 1 (> 0.16)
    track = over["hb_nag_track_gd_at_h1/2"]
    assert track["per_seed"] == {"0": True, "1": False} and track["holds"] is False
    largest = track["numbers"]["largest_relative_difference"]
    assert largest["min"] == pytest.approx(0.075) and largest["max"] == pytest.approx(11 / 41)
    # the momentum runs at step 1000 (and at the equal-time steps 50, 100) against 52.0
    steps = over["momentum_beats_vanishing_equal_steps"]
    assert (
        steps["holds"] is True and steps["numbers"]["largest_momentum_minus_vanishing"]["max"] < 0
    )
    assert over["momentum_beats_vanishing_equal_time"]["holds"] is False  # 53 at step 50
    assert s["claims"]["survive_every_seed"] == {k: v["holds"] for k, v in over.items()}
    assert s["spread"]["gd_effective@2^0"]["diverged"] == 1
    module.plot(
        {"arrays": arrays | {"plateau": np.array(plateau)}, "summary": s},
        config,
        tmp_path / "fig6.png",
    )
    assert (tmp_path / "fig6.png").stat().st_size > 0


def test_fig6_table_and_headline_take_the_median_of_bimodal_seeds():
    """Three seeds, HB at h = 1 trained on two and on the plateau on one (30, 52, 20): the table
    holds the median 30 (the mean, 34, is a value no seed reached), the headline every seed's
    value and the median, the spread both statistics; a diverged seed is left out of both."""
    module, arrays = fake_fig6(
        {
            0: finals_of(90.0, 30.0, 25.0, 40.0, 38.0, 37.0, 52.0),
            1: finals_of(91.0, 52.0, 24.0, 41.0, 39.0, 36.0, 52.0),
            2: finals_of(np.inf, 20.0, 52.0, 42.0, 37.0, 35.0, 52.0),
        }
    )
    config = dict(module.CONFIG, seeds=[0, 1, 2])
    s = module.summarise(arrays, config, "fake", "mnist5k", 52.8, 25)
    hb = s["spread"]["hb@2^0"]
    assert hb["median"] == pytest.approx(30.0) and hb["mean"] == pytest.approx(34.0)
    assert s["final_training_error"]["hb"][0] == hb["median"]
    assert s["final_training_error"]["nag"][0] == pytest.approx(25.0)  # not 33.67
    gd = s["spread"]["gd_effective@2^0"]
    assert gd["median"] == pytest.approx(90.5) and gd["diverged"] == 1
    assert "HB ends at 30/52/20 (median 30), NAG at 25/24/52 (median 25)" in s["headline"]


def test_every_seed_is_undecided_where_a_seed_cannot_decide():
    module = load_module("fig6_training")
    per_seed = {
        "0": {"a": True, "b": True, "numbers": {"a": {"x": 1.0}}},
        "1": {"a": None, "b": False, "numbers": {"a": {"x": None}}},
        "2": {"a": True, "b": True, "numbers": {"a": {"x": 3.0}}},
    }
    over = module.every_seed(per_seed, claims=("a", "b", "c"))
    assert set(over) == {"a", "b"}  # no seed decides "c"
    assert over["a"]["holds"] is None and over["a"]["holds_on"] == 2
    assert over["a"]["numbers"]["x"] == {"per_seed": [1.0, None, 3.0], "min": 1.0, "max": 3.0}
    assert over["b"]["holds"] is False and over["b"]["holds_on"] == 2
