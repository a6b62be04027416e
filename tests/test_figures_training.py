"""The Section 5 figures (6, 7) and the implicit-regularisation figure (10), end to end at tiny
configurations: outputs exist, the summary's tables have the right shapes, flags are booleans."""

import gzip
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from momentum_jax._method import gradient_descent, heavy_ball, nesterov
from momentum_jax.paper import (
    Context,
    _checkpoints,
    checkpoints,
    load_module,
    off_plateau,
    run_experiment,
    section5_problem,
)


def run(name, tmp_path, **overrides):
    module = load_module(name)
    summary = run_experiment(
        module, quick=True, out=tmp_path, cache_dir=tmp_path / "cache", progress=False, **overrides
    )
    assert (tmp_path / f"{module.NAME}.png").stat().st_size > 0
    on_disk = json.loads((tmp_path / f"{module.NAME}.json").read_text())
    assert on_disk["summary"]["headline"] == summary["summary"]["headline"]
    return module, summary["summary"]


def test_fig6(tmp_path):
    module, s = run("fig6_training", tmp_path, seeds=[0, 1])
    assert s["dataset"] == "digits" and "digits" in s["data"]
    assert s["seeds"] == [0, 1] and s["h"] == ["2^0", "2^-1"]
    table = s["final_training_error"]
    assert set(table) == {"gd_effective", "hb", "nag", "wilson", "hb_mu", "nag_mu"}
    assert all(len(v) == 2 for v in table.values())
    assert table["wilson"][1] is None  # the vanishing-friction schemes run at h = 1 only
    for key, row in s["final_training_error_per_seed"].items():
        assert len(row["per_seed"]) == 2 and row["steps"] in (40, 60)
        assert all(v is None or (math.isfinite(v) and v > 0) for v in row["per_seed"])
        spread = s["spread"][key]
        assert spread["min"] <= spread["mean"] <= spread["max"]
        finite = [v for v in row["per_seed"] if v is not None]
        assert spread["median"] == pytest.approx(np.median(finite), rel=1e-12)
        s_, e = key.split("@")
        assert table[s_][s["h"].index(e)] == spread["median"]  # the table holds the median
    for seed in ("0", "1"):
        claims = s["claims"]["per_seed"][seed]
        for key in ("gd_rate10_diverges", "gd_rate5_trains", "nag_below_hb_at_h1"):
            assert isinstance(claims[key], bool)
        # equal steps: the vanishing-friction runs' 40 steps, HB/NAG recorded there too
        eq = claims["momentum_vs_vanishing_equal_steps"]["hb-wilson"]
        assert eq["step"] == 40 and eq["hb"] is not None
        # equal gradient-flow time: Wilson's 40 steps of sqrt(h)/2 are HB's 2 steps of 10
        eq_t = claims["momentum_vs_vanishing_equal_time"]["hb-wilson"]
        assert eq_t["t"] == pytest.approx(20.0) and eq_t["step_hb"] == pytest.approx(2.0)
    assert set(s["claims"]["survive_every_seed"]) <= set(module.CLAIMS)
    # the runs of the first seed, keyed by the step at the reference scale 1/128
    assert set(s["protocol_runs"]) >= {"hb@128", "nag@128", "gd_effective@64"}
    paper = s["paper_qualitative"]  # the published table satisfies the paper's claims
    assert paper["hb_nag_track_gd"] and paper["momentum_beats_vanishing_friction"]
    assert paper["nag_best_at_largest_h"] and paper["gd_diverges_at_largest_h"]


def test_fig6_epochs_run_every_group_for_that_many_epochs():
    module = load_module("fig6_training")
    config = dict(module.CONFIG, epochs=3)
    assert [g[3] for g in module.groups(config, 25)] == [75, 75, 75]
    assert [g[4] for g in module.groups(config, 25)] == [25, 25, 25]
    assert [g[3] for g in module.groups(module.CONFIG, 25)] == [1000, 3000, 1500]


def test_fig6_flow_rates():
    module = load_module("fig6_training")
    assert module.flow_rate("hb", 0.5, 0.9, 1.0) == pytest.approx(5.0)
    assert module.flow_rate("wilson", 0.25, 0.9, 1.0) == pytest.approx(0.25)
    # HB-mu at h = 1, mu = 1 has lam = 0: plain GD at rate 1
    assert module.flow_rate("hb_mu", 1.0, 0.9, 1.0) == pytest.approx(1.0)
    # and sqrt(h)/(2 sqrt(mu)) to first order as h -> 0
    assert module.flow_rate("nag_mu", 1e-8, 0.9, 1.0) == pytest.approx(0.5e-4, rel=1e-3)


def test_fig6_qualitative_flags_react():
    module = load_module("fig6_training")
    table = {k: list(v) for k, v in module.PAPER_TABLE.items()}
    table["wilson"][3] = 5.0  # now Wilson beats GD/HB/NAG at h = 2^-3
    flags = module.qualitative(table, module.PAPER_EXPONENTS)
    assert not flags["momentum_beats_vanishing_friction"]
    assert flags["momentum_beats_vanishing_friction_per_h"][3] is False
    table["hb"][1] = None  # a diverged HB run neither tracks GD nor beats anything
    flags = module.qualitative(table, module.PAPER_EXPONENTS)
    assert flags["hb_nag_track_gd_per_h"][0] is False  # per h where GD ran: 2^-1 first
    assert flags["momentum_beats_vanishing_friction_per_h"][1] is False
    assert "2^-1" not in flags["hb_nag_track_gd_h"]
    table["gd_effective"][0] = 1.0  # GD trained at h = 1: no longer "diverges at the largest h"
    assert not module.qualitative(table, module.PAPER_EXPONENTS)["gd_diverges_at_largest_h"]


def test_fig7(tmp_path, monkeypatch):
    small = dict(images=60, checkpoint_steps=20, checkpoint_chunk=10)
    _, s = run(
        "fig7_training_rates",
        tmp_path,
        h_exponents=[4, 5],
        horizon=0.5,
        horizon_sqrt=2.0,
        records=3,
        seeds=[0, 1],  # two seeds: a row each, both drawn (the second paler)
        **small,
    )
    assert s["h"] == ["2^-4", "2^-5"] and s["rate_h"] == ["2^-4"]
    assert s["seeds"] == [0, 1] and s["seeds_not_run_from"] == []  # none off: every seed runs
    assert all(len(p["delta"]) == 2 for p in s["pairs"].values())
    assert (tmp_path / "fig7_training_rates.png").stat().st_size > 10_000
    assert set(s["pairs"]) == {
        "hb-gd_effective",
        "nag-gd_effective",
        "hb_mu-wilson",
        "nag_mu-wilson",
    }
    for name, pair in s["pairs"].items():
        assert pair["paper_rate"] == (1.0 if "-gd_effective" in name else 0.5)
        assert len(pair["delta"][0]) == 1 and len(pair["step_of_max_gap"][0]) == 2
        assert math.isfinite(pair["delta_at_smallest_h"][0]) and pair["smallest_h"] == "2^-4"
        assert all(1 <= n <= m for n, m in zip(pair["step_of_max_gap"][0], pair["steps"]))
        assert all(a >= b > 0 for a, b in zip(pair["max_gap"][0], pair["gap_at_T"][0]))
        assert len(pair["paper_delta"]) == 1 and pair["paper_delta"][0] > 0
    # A fixed horizon: T / h steps on the clock t = n h, T_sqrt / sqrt(h) on t = n sqrt(h).
    assert s["pairs"]["hb-gd_effective"]["steps"] == [8, 16]
    assert s["pairs"]["hb_mu-wilson"]["steps"] == [8, 11]
    # The vanishing-friction pairs converge like sqrt(h) already at these h (paper: ~1/2).
    assert abs(s["pairs"]["hb_mu-wilson"]["delta_at_smallest_h"][0] - 0.5) < 0.1
    # The start is Fig 10's checkpoint, cached once under Fig 10: Fig 10 finds it there.
    fig10 = load_module("fig10_implicit_regularisation")
    config = fig10.CONFIG | fig10.QUICK | small | {"seeds": [0]}

    def computed_again(*args, **kwargs):
        raise AssertionError("Fig 10 computed the checkpoint that Fig 7 had cached")

    monkeypatch.setattr(_checkpoints, "off_plateau_checkpoint", computed_again)
    ctx = Context(fig10.NAME, cache_dir=tmp_path / "cache", quick=True, progress=False, options={})
    _, arrays, _ = checkpoints(config, ctx)
    assert arrays["checkpoint/errors"][0, -1] == pytest.approx(s["checkpoint_error"][0])


def test_fig10(tmp_path):
    _, s = run(
        "fig10_implicit_regularisation",
        tmp_path,
        h_exponents=[1, 2],
        images=50,
        checkpoint_steps=6,
        steps=4,
        record_every=2,
        seeds=[0, 1],
        sharpness_max_iters=20,
        toy_steps=40,
        toy_grid=21,
    )
    assert s["h"] == ["2^-1", "2^-2"] and s["steps_from_checkpoint"] == 4
    assert s["seeds"] == [0, 1] and "first 50 images" in s["data"]
    ck = s["checkpoint"]
    assert ck["scheme"] == "hb" and ck["max_steps"] == 6 and len(ck["error"]["per_seed"]) == 2
    assert all(0 < n <= 6 for n in ck["steps"]) and len(ck["left_plateau"]) == 2
    assert isinstance(ck["left_plateau_every_seed"], bool)
    assert s["compared_seeds"] == [x for x, o in zip((0, 1), ck["left_plateau"]) if o]
    per = s["per_scheme"]
    for scheme, method in (
        ("gd_effective", gradient_descent),
        ("hb", heavy_ball),
        ("nag", nesterov),
    ):
        row = per[scheme]
        assert all(len(row[k]) == 2 for k in ("error", "sharpness", "sharpness_residual", "h_c"))
        for i, h in enumerate((0.5, 0.25)):
            m = gradient_descent(h / 0.1) if scheme == "gd_effective" else method(h, 0.9)
            np.testing.assert_allclose(row["h_c"][i], float(m.h * m.c), rtol=1e-12)
            err = row["error"][i]["per_seed"]
            assert len(err) == 2 and err[0] != err[1]  # two initialisations
            # A sharpness is used only where it converged, from a start off the plateau.
            residuals = row["sharpness_residual"][i]
            for value, r, off in zip(
                row["sharpness"][i]["per_seed"], residuals, ck["left_plateau"]
            ):
                assert (value is not None) == (off and r is not None and r <= 1e-3)
    # GD at rate h/(1-lam) has c = 1/4; HB's h c is (1+lam)/(1-lam) = 19 times larger.
    np.testing.assert_allclose(per["gd_effective"]["h_c"][0], 0.25 * 0.5 / 0.1)
    np.testing.assert_allclose(per["hb"]["h_c"][0] / per["gd_effective"]["h_c"][0], 19.0)
    for v in s["momentum_flatter_than_gd_per_h"].values():
        assert len(v) == 2 and all(x in ("yes", "no", "mixed 1/2", "n/a") for x in v)
    assert set(s["flatter_than_gd_for_every_seed_and_h"]) == {"hb", "nag"}
    assert len(s["toy"]["max_dist_hb_to_modified_flow"]) == 4


def write_idx(path, array, gz=False):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def test_section5_problem_reads_mnist(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (7, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 7), gz=True)
    prob = section5_problem(tmp_path, mnist_sizes=(784, 5, 784), limit=5, dtype=jnp.float32)
    assert prob.dataset == "mnist" and prob.data.shape == (5, 784)
    assert prob.data.dtype == jnp.float32 and prob.params0[0][0].dtype == jnp.float32
    assert "MNIST" in prob.description and float(prob.data.max()) <= 1.0
    digits = section5_problem()
    assert digits.dataset == "digits" and digits.data.shape == (1797, 64)
    with pytest.raises(ValueError, match="must start and end with the 64 pixels"):
        section5_problem(digits_sizes=(784, 5, 784))


def test_fig10_seeds_left_on_the_plateau_are_not_run_from():
    """The runs from the checkpoints go to their seeds' rows; a seed not run gets NaN (and no
    divergence), the recorded steps stay as they are."""
    fig10 = load_module("fig10_implicit_regularisation")
    loss = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)  # (scheme, run seed, h)
    rows = [1, None, 0]  # seeds 0 and 2 were run (in the order 2, 0), seed 1 was not
    out = fig10._seed_rows(loss, rows, "loss")
    np.testing.assert_array_equal(out[:, 0], loss[:, 1])
    np.testing.assert_array_equal(out[:, 2], loss[:, 0])
    assert np.all(np.isnan(out[:, 1]))
    div = fig10._seed_rows(np.zeros((2, 2, 3), int), rows, "diverged_at")
    assert div.dtype.kind == "i" and np.all(div[:, 1] == -1) and np.all(div[:, [0, 2]] == 0)
    steps = np.array([0, 10, 20])
    assert fig10._seed_rows(steps, rows, "curve_steps") is steps
    arrays = {
        "checkpoint/errors": np.array([[60.0, 40.0], [60.0, 50.0], [60.0, np.nan]]),
        "checkpoint/diverged_at": np.array([-1, -1, 1]),
    }
    data = np.array([[0.0, 10.0], [10.0, 0.0]])  # the mean image's error: 50
    got = off_plateau(arrays, {"trained_below": 0.9}, data)
    np.testing.assert_array_equal(got, [True, False, False])
