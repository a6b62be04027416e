"""`sweep` runs every step and its `min_loss` is the minimum over every step; `iterate` never
drops steps: each against a NumPy loop of the HB/NAG recursion written here."""

import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj

KAPPA = 10.0
A = np.diag([KAPPA, 1.0])  # the README's quadratic 1/2 (kappa u_1^2 + u_2^2)
U0 = np.array([1.0, 1.0])
RTOL = 1e-13  # float64 rounding over at most a few hundred steps of a 2-D quadratic


def numpy_run(h, lam, a, steps, grad=lambda u: A @ u, loss=lambda u: 0.5 * u @ A @ u):
    """`(losses L(u_0 .. u_steps), iterates)` of eq. (7) in scaled-velocity form, `w_0 = 0`."""
    u, w = U0.copy(), np.zeros_like(U0)
    us = [u]
    for _ in range(steps):
        w = lam * w - grad(u + h * a * w)
        u = u + h * w
        us.append(u)
    return np.array([loss(u) for u in us]), np.array(us)


def test_sweep_runs_every_step_when_record_every_does_not_divide_steps():
    # the example: 10 steps recorded every 3 reported the loss after step 9 (0.08476)
    sw = mj.sweep(
        mj.paper_quadratic(KAPPA),
        jnp.asarray(U0),
        hs=[0.05],
        lams=[0.5],
        methods=("hb", "nag"),
        steps=10,
        record_every=3,
    )
    assert sw.steps == 10
    np.testing.assert_array_equal(sw.curve_steps, [3, 6, 9])
    for i, a in enumerate((0.0, 0.5)):  # hb, nag
        ref, _ = numpy_run(0.05, 0.5, a, 10)
        np.testing.assert_allclose(sw.final_loss[i, 0, 0, 0], ref[10], rtol=RTOL)
        np.testing.assert_allclose(sw.curve[i, 0, 0, 0], ref[[3, 6, 9]], rtol=RTOL)
        np.testing.assert_allclose(sw.min_loss[i, 0, 0, 0], ref.min(), rtol=RTOL)
    np.testing.assert_allclose(sw.final_loss[0, 0, 0, 0], 0.0627091425, rtol=1e-9)


def test_sweep_with_record_every_keeps_sharpness():
    # sharpness at a recorded step, and the tail of 1 step after the last recorded one
    sw = mj.sweep(
        mj.paper_quadratic(KAPPA),
        jnp.asarray(U0),
        hs=[0.05, 0.1],
        lams=[0.5],
        methods=("hb",),
        steps=10,
        record_every=3,
        sharpness_at=[6],
    )
    np.testing.assert_array_equal(sw.sharpness_steps, [6])
    np.testing.assert_allclose(sw.sharpness, KAPPA, rtol=1e-10)  # constant Hessian diag(10, 1)
    for k, h in enumerate((0.05, 0.1)):
        ref, _ = numpy_run(h, 0.5, 0.0, 10)
        np.testing.assert_allclose(sw.final_loss[0, 0, k, 0], ref[10], rtol=RTOL)


@pytest.mark.parametrize("record_every", [None, 5, 7, 35])
def test_sweep_min_loss_is_the_minimum_over_every_step(record_every):
    # HB at h = 0.15, lam = 0.9, 35 steps: the minimum 0.0122 is at step 33, between the block
    # ends (the old min over block ends gave 0.0464)
    sw = mj.sweep(
        mj.paper_quadratic(KAPPA),
        jnp.asarray(U0),
        hs=[0.15, 0.05],
        lams=[0.9, 0.5],
        methods=("hb", "nag", "gd"),
        steps=35,
        record_every=record_every,
    )
    for i, (name, make) in enumerate(
        (("hb", mj.heavy_ball), ("nag", mj.nesterov), ("gd", lambda h, lam: mj.gradient_descent(h)))
    ):
        for j, lam in enumerate((0.9, 0.5)):
            for k, h in enumerate((0.15, 0.05)):
                m = make(h, lam)
                ref, _ = numpy_run(h, float(m.lam), float(m.a), 35)
                got = sw.min_loss[i, j, k, 0]
                np.testing.assert_allclose(got, ref.min(), rtol=RTOL, err_msg=f"{name} {lam} {h}")
                fin = mj.iterate_final(mj.paper_quadratic(KAPPA), jnp.asarray(U0), m, 35)
                np.testing.assert_allclose(got, fin.min_loss, rtol=RTOL)
                np.testing.assert_allclose(sw.final_loss[i, j, k, 0], ref[35], rtol=RTOL)
    ref, _ = numpy_run(0.15, 0.9, 0.0, 35)
    assert int(np.argmin(ref)) == 33
    np.testing.assert_allclose(sw.min_loss[0, 0, 0, 0], 0.0122079915, rtol=1e-8)


def _least_squares_data():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 3))
    return x, x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(8)


def per_example(p, batch):
    x, y = batch
    return 0.5 * jnp.square(x @ p - y)


def test_sweep_min_loss_with_data_in_one_batch_and_none_with_mini_batches():
    x, y = _least_squares_data()
    p0 = jnp.zeros(3)
    kw = dict(hs=[0.3], lams=[0.8], methods=("hb", "nag"), steps=40, data=(x, y))
    full = mj.sweep(per_example, p0, **kw)  # batch_size: every example, the full loss

    def loss(p):
        return 0.5 * np.mean((x @ p - y) ** 2)

    def grad(p):
        return x.T @ (x @ p - y) / len(y)

    for i, a in enumerate((0.0, 0.8)):
        u, w, values = np.zeros(3), np.zeros(3), []
        for _ in range(40):
            values.append(loss(u))
            w = 0.8 * w - grad(u + 0.3 * a * w)
            u = u + 0.3 * w
        values.append(loss(u))
        assert 0 < int(np.argmin(values)) < 40  # an interior minimum
        np.testing.assert_allclose(full.min_loss[i, 0, 0, 0], min(values), rtol=1e-12)
        np.testing.assert_allclose(full.final_loss[i, 0, 0, 0], values[-1], rtol=1e-12)
    mini = mj.sweep(per_example, p0, batch_size=4, record_every=10, **kw)
    assert mini.min_loss is None  # the full loss is not evaluated at every step
    assert mini.curve.shape == (2, 1, 1, 1, 4)
    back = mini.to_xarray()
    assert "min_loss" not in back.data_vars and "final_loss" in back.data_vars


def test_iterate_refuses_steps_that_save_every_would_drop():
    loss, m = mj.paper_quadratic(KAPPA), mj.heavy_ball(0.05, 0.5)
    with pytest.raises(ValueError, match=r"num_steps=10 is not a multiple of save_every=3"):
        mj.iterate(loss, jnp.asarray(U0), m, 10, save_every=3)
    _, us = numpy_run(0.05, 0.5, 0.0, 12)
    kept = mj.iterate(loss, jnp.asarray(U0), m, 12, save_every=3)
    np.testing.assert_allclose(kept, us[::3], rtol=RTOL, atol=1e-15)  # u_0, u_3, ..., u_12


def test_sweep_without_min_loss_runs_the_same_steps_in_one_loop():
    """`min_loss=False` runs HB, NAG, GD and the effective-rate scheme in one loop (Wilson's
    scheme apart): every recorded number but the minimum is the default's, to rounding, and
    invalid values are refused before compiling."""
    kw = dict(
        hs=[0.15, 0.05, 0.4],
        lams=[0.9, 0.5],
        methods=("hb", "wilson", "nag", "gd", "gd_effective"),
        steps=50,
        record_every=10,
        sharpness_at=[20],
        models=("gradient_flow",),
    )
    loss, u0 = mj.paper_quadratic(KAPPA), jnp.asarray(U0)
    ref = mj.sweep(loss, u0, **kw)
    got = mj.sweep(loss, u0, min_loss=False, **kw)
    assert got.min_loss is None and ref.min_loss is not None
    assert np.any(ref.diverged_at >= 0) and np.any(ref.diverged_at < 0)
    np.testing.assert_array_equal(got.diverged_at, ref.diverged_at)
    for name in ("final_loss", "curve", "sharpness"):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-13, atol=0)
    np.testing.assert_allclose(
        got.distances["gradient_flow"], ref.distances["gradient_flow"], rtol=1e-12
    )
    for k, h in enumerate((0.15, 0.05)):  # NAG against the NumPy loop (h = 0.4 diverges)
        ref_np, _ = numpy_run(h, 0.5, 0.5, 50)
        np.testing.assert_allclose(got.final_loss[2, 1, k, 0], ref_np[50], rtol=RTOL)
    with pytest.raises(TypeError, match="min_loss must be True or False"):
        mj.sweep(loss, u0, hs=[0.1], lams=[0.5], steps=5, min_loss="no")
