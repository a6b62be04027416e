"""`sweep(..., gap_to=...)`: the parameter gap between the runs of two methods at the same point
(the distance of the paper's Fig 7), against NumPy recurrences and `parameter_gaps`."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj

RNG = np.random.default_rng(7)
X = RNG.standard_normal((24, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * RNG.standard_normal(24)
P0 = np.array([0.3, 0.2, -0.1])
HS = np.array([0.4, 0.1, 0.025])
LAMS = np.array([0.5, 0.9])


def per_example(p, batch):
    x, y = batch
    return 0.5 * (x @ p - y) ** 2


def numpy_runs(h, lam, steps, batch):
    """HB, NAG (eq. 7 with a = 0, 1) and GD at `h / (1 - lam)` by hand, on the batches
    `n mod n_batches` of `batch` consecutive examples: `(3, steps + 1, d)`."""
    nb = len(X) // batch

    def grad(p, n):
        k = n % nb
        xb, yb = X[k * batch : (k + 1) * batch], Y[k * batch : (k + 1) * batch]
        return xb.T @ (xb @ p - yb) / batch

    out = np.zeros((3, steps + 1, P0.size))
    out[:, 0] = P0
    for n in range(steps):
        for m, a in ((0, 0.0), (1, 1.0)):
            u, prev = out[m, n], out[m, max(n - 1, 0)]
            y = u + a * lam * (u - prev)
            out[m, n + 1] = u + lam * (u - prev) - h * grad(y, n)
        out[2, n + 1] = out[2, n] - h / (1 - lam) * grad(out[2, n], n)
    return out


@pytest.mark.parametrize("every", [1, 3])
def test_gaps_equal_numpy_recurrences_on_mini_batches(every):
    steps, batch = 10, 8
    sw = mj.sweep(
        per_example,
        jnp.asarray(P0),
        hs=HS,
        lams=LAMS,
        methods=("hb", "nag", "gd_effective"),
        steps=steps,
        data=(X, Y),
        batch_size=batch,
        record_every=every,
        gap_to="gd_effective",
    )
    assert sw.gaps.shape == (3, 2, 3, 1, steps // every)
    assert sw.config["gap_to"] == "gd_effective"
    for j, lam in enumerate(LAMS):
        for k, h in enumerate(HS):
            runs = numpy_runs(h, lam, steps, batch)[:, sw.curve_steps]
            for m in range(3):
                want = np.linalg.norm(runs[m] - runs[2], axis=-1)
                np.testing.assert_allclose(sw.gaps[m, j, k, 0], want, rtol=1e-12, atol=1e-15)
    assert np.all(sw.gaps[2] == 0.0)


def test_gaps_to_wilson_equal_parameter_gaps():
    """Every step recorded: the largest gap and its step are those of `parameter_gaps` (the
    per-step loop of the training module), for the vanishing-friction pairs."""
    steps, batch = 12, 6
    sw = mj.sweep(
        per_example,
        jnp.asarray(P0),
        hs=HS,
        lams=[0.9],
        methods=("hb_mu", "nag_mu", "wilson"),
        mu=2.0,
        steps=steps,
        data=(X, Y),
        batch_size=batch,
        record_every=1,
        gap_to="wilson",
    )
    for k, h in enumerate(HS):
        ref = mj.parameter_gaps(
            ("hb_mu", "nag_mu"),
            "wilson",
            jnp.asarray(P0),
            (X, Y),
            h,
            steps=steps,
            batch_size=batch,
            lam=0.9,
            mu=2.0,
            loss=per_example,
        )
        gaps = sw.gaps[:2, 0, k, 0]
        np.testing.assert_allclose(gaps.max(axis=-1), ref.max_gap, rtol=1e-12)
        np.testing.assert_array_equal(sw.curve_steps[gaps.argmax(axis=-1)], ref.max_gap_step)


def test_gaps_are_nan_once_either_run_diverged_and_survive_a_file(tmp_path):
    def loss(u):
        return 0.5 * 50.0 * jnp.sum(u**2)

    sw = mj.sweep(
        loss,
        jnp.ones(2),
        hs=[0.002, 0.05],  # GD at h / (1 - lam): h q / (1 - lam) = 1 (stable), 25 (not)
        lams=[0.9],
        methods=("hb", "gd_effective"),
        steps=40,
        record_every=5,
        gap_to="gd_effective",
    )
    div = sw.diverged_at[:, 0, 1, 0]
    assert div[0] < 0 <= div[1]
    after = sw.curve_steps >= div[1]
    assert np.all(np.isnan(sw.gaps[:, 0, 1, 0, after]))
    assert np.all(np.isfinite(sw.gaps[:, 0, 1, 0, ~after]))
    assert np.all(np.isfinite(sw.gaps[:, 0, 0, 0]))
    sw.save(tmp_path / "s.json")
    back = mj.load_sweep(tmp_path / "s.json")
    np.testing.assert_array_equal(back.gaps, sw.gaps)


def test_gap_to_is_checked_and_gives_the_final_gap_without_a_record():
    kw = dict(hs=[0.1], lams=[0.5], methods=("hb", "nag"), steps=4)
    with pytest.raises(ValueError, match=r"gap_to='gd' is not one of 'hb', 'nag'"):
        mj.sweep(lambda u: jnp.sum(u**2), jnp.ones(2), gap_to="gd", **kw)
    sw = mj.sweep(lambda u: jnp.sum(u**2), jnp.ones(2), gap_to="hb", **kw)
    np.testing.assert_array_equal(sw.curve_steps, [4])
    assert sw.gaps.shape == (2, 1, 1, 1, 1) and sw.gaps[1, 0, 0, 0, 0] > 0


def test_a_manifold_start_outside_the_series_range_warns_as_iterate_does():
    """`init="manifold"` far outside `h L / (1 - lam)^2 <= 0.1` starts far off the manifold
    (here with a velocity of -881 on a start of norm 1.4): `sweep` says so, as `iterate` does."""

    def loss(u):
        return 0.5 * (u[0] ** 2 + 10.0 * u[1] ** 2)

    kw = dict(lams=[0.9], methods=("hb", "gd_effective"), steps=2, init="manifold")
    with pytest.warns(RuntimeWarning, match=r"sweep\(init='manifold'\): the manifold start"):
        mj.sweep(loss, jnp.ones(2), hs=[2.0**-7], **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mj.sweep(loss, jnp.ones(2), hs=[1e-5], **kw)  # h L / (1 - lam)^2 = 0.01
        x = jnp.asarray(RNG.standard_normal((6, 3)))
        mj.sweep(lambda p, b: (b @ p) ** 2, jnp.ones(3), hs=[1e-5], data=x, batch_size=2, **kw)
