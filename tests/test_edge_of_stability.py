"""The rod flow at the edge of stability (docs/edge_of_stability.md): its field against a NumPy
reference, the gradient-descent reduction (and, at lam = 0, against a hand-written central flow of
Cohen, Damian et al., the published GD model whose equations we could read: §1b of the doc), the
threshold on a quadratic, the period-two orbits of a quartic, self-stabilisation at 2/h with the
loss still falling, and its use in `solve` and `sweep`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_flow_reference, sharpening_quartic, top_dense

import momentum_jax as mj
from momentum_jax._model._edge_flow import rod_field


def _phi(u):
    """A small non-quadratic loss with a closed-form gradient (`_grad_np`)."""
    return 0.5 * (3.0 * u[0] ** 2 + u[1] ** 2) + 0.25 * u[0] ** 4 + 0.1 * u[0] * u[1] ** 2


def _grad_np(u):
    u0, u1 = u
    return np.array([3.0 * u0 + u0**3 + 0.1 * u1**2, u1 + 0.2 * u0 * u1])


def _quartic(u):
    """`q u^2/2 - b u^4/4` with `q = b = 1`: softening, so that GD has period-two orbits."""
    return jnp.sum(u**2 / 2 - u**4 / 4)


def _sharpening(u):
    """`-c x + (s0 + x) y^2 / 2 + e y`, `c, s0, e = 0.05, 15, 0.01`: the sharpness `s0 + x`
    grows along the gradient flow; `e` keeps `y` off its invariant line `y = 0`."""
    return -0.05 * u[0] + 0.5 * (15.0 + u[0]) * u[1] ** 2 + 0.01 * u[1]


def _rod_np(x, delta, h, lam, a):
    """The rod flow typed out by hand (docs/edge_of_stability.md §2)."""
    d = (1 + 2 * a) * delta
    gp, gm = _grad_np(x + d), _grad_np(x - d)
    even, odd = (gp + gm) / 2, (gp - gm) / 2
    kappa = (1 + 4 * a - lam) / (1 + 2 * a)
    return -even / (1 - lam), (odd - 2 * (1 + lam) / h * delta) / kappa


@pytest.mark.parametrize("name, lam", [("gd", 0.0), ("hb", 0.7), ("nag", 0.7)])
def test_field_matches_numpy_reference(name, lam):
    m = mj.method_from_name(name, h=0.3, lam=lam) if name != "gd" else mj.gradient_descent(0.3)
    x, delta = np.array([0.4, -0.7]), np.array([0.05, 0.2])
    ref_x, ref_d = _rod_np(x, delta, 0.3, lam, float(m.a))
    model = mj.RodFlow(floor=0.0)
    y = (jnp.asarray(x), jnp.asarray(delta), jnp.zeros(2))
    dx, dd, daux = model.vector_field(_phi)(0.0, y, m)
    np.testing.assert_allclose(np.asarray(dx), ref_x, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(dd), ref_d, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(daux), [np.pi / 0.3, 0.0], rtol=1e-15)
    # a tiny half-length: the odd part switches to the Hessian-vector product, continuously
    small = 1e-9 * delta
    _, dd_small = rod_field(_phi, jnp.asarray(x), jnp.asarray(small), m)
    np.testing.assert_allclose(np.asarray(dd_small), _rod_np(x, small, 0.3, lam, m.a)[1], 1e-6)


def test_gradient_descent_reduction():
    """lam = a = 0: x' = -G_s, delta' = G_a - (2/h) delta, threshold 2/h; delta = 0 leaves the
    (rescaled) gradient flow."""
    h = 0.25
    gd = mj.gradient_descent(h)
    assert float(mj.rod_threshold(gd)) == pytest.approx(2.0 / h, rel=1e-15)
    x, delta = jnp.array([0.4, -0.7]), jnp.array([0.05, 0.2])
    dx, dd = rod_field(_phi, x, delta, gd)
    gp, gm = _grad_np(np.asarray(x + delta)), _grad_np(np.asarray(x - delta))
    np.testing.assert_allclose(np.asarray(dx), -(gp + gm) / 2, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(dd), (gp - gm) / 2 - 2 / h * np.asarray(delta), 1e-12)
    for m in (gd, mj.heavy_ball(h, 0.8), mj.nesterov(h, 0.8)):
        dx0, dd0 = rod_field(_phi, x, jnp.zeros(2), m)
        np.testing.assert_allclose(np.asarray(dx0), -float(m.lbar) * _grad_np(np.asarray(x)))
        np.testing.assert_allclose(np.asarray(dd0), 0.0, atol=0.0)


def _growth_rate(method, q):
    """The rate of |delta| of the rod flow on Phi = q u^2 / 2, measured from a solve."""
    loss = mj.DiagonalQuadratic([q])  # q is traced: one compilation for every q
    ts = jnp.array([0.0, 2.0, 4.0]) * method.h
    sol = mj.solve(loss, jnp.array([1.0]), method, ts, model=mj.RodFlow(floor=0.0))
    centre = mj.solve(
        loss, jnp.array([1.0]), method, ts, model=mj.RodFlow(track="center", floor=0.0)
    )
    d = np.abs(np.asarray(sol - centre)[:, 0])  # |delta| at even steps (cos = 1)
    return np.log(d[2] / d[1]) / float(ts[2] - ts[1])


@pytest.mark.parametrize("name, lam", [("gd", 0.0), ("hb", 0.5), ("hb", 0.9), ("nag", 0.5)])
def test_threshold_on_quadratic_is_linear_stability(name, lam):
    """delta grows iff q > 2 (1 + lam)/(h (1 + 2a)) (docs/theory.md §5), at the rate
    (1 + 2a)(q - q*)/kappa, which is the method's own growth rate to first order in q - q*
    (for HB only while h (q - q*) << (1 - lam)^2: not checked at lam = 0.9)."""
    h = 0.1
    m = mj.method_from_name(name, h=h, lam=lam) if name != "gd" else mj.gradient_descent(h)
    qs = float(mj.rod_threshold(m))
    assert qs == pytest.approx(float(mj.stability_threshold(m)), rel=1e-15)
    a = float(m.a)
    kappa = (1 + 4 * a - lam) / (1 + 2 * a)
    for ratio in (0.97, 1.001, 1.03):
        q = ratio * qs
        rate = _growth_rate(m, q)
        assert (rate > 0) == (ratio > 1)
        assert rate == pytest.approx((1 + 2 * a) * (q - qs) / kappa, rel=1e-6)
        if ratio == 1.001 and lam < 0.9:  # the method's root beyond -1, per unit time
            S, P = 1 + lam - (1 + a) * h * q, lam - a * h * q
            z = np.min(np.real(np.roots([1.0, -S, P])))
            assert rate == pytest.approx(np.log(-z) / h, rel=0.06)


def test_heavy_ball_near_its_double_root_is_off_by_the_documented_factors():
    """docs/edge_of_stability.md §4: at lam = 0.9 HB's first-order half-length equation misses
    the method's own rate (log|z|/h of its root near -1): 1.28 times its growth at 1.001 q*, 2.47
    times at 1.01 q*, and 7.2 times its decay at 0.99 q* (where the roots are complex, of modulus
    sqrt(lam)). The ratios depend on q/q* and lam only, not on h."""
    h, lam = 0.1, 0.9
    m = mj.heavy_ball(h, lam)
    qs = float(mj.rod_threshold(m))
    for ratio, factor in ((1.001, 1.2818), (1.01, 2.4690), (0.99, 7.2133)):
        q = ratio * qs
        z = np.roots([1.0, -(1 + lam - h * q), lam])
        method_rate = np.log(np.abs(z[np.argmin(z.real)])) / h
        assert _growth_rate(m, q) / method_rate == pytest.approx(factor, rel=1e-3)


@pytest.mark.parametrize("name, lam", [("gd", 0.0), ("hb", 0.5), ("nag", 0.5)])
def test_quartic_self_stabilisation(name, lam):
    """On Phi = q u^2/2 - b u^4/4 above the threshold, the iterates settle on a period-two
    orbit; the rod's half-length settles on the same amplitude, and the rod's fixed point is
    exactly that orbit: h grad Phi((1 + 2a) A) = 2 (1 + lam) A."""
    q, b, loss = 1.0, 1.0, _quartic
    a = lam if name == "nag" else 0.0
    h = 1.2 * 2 * (1 + lam) / ((1 + 2 * a) * q)
    m = mj.Momentum(h, lam, a)
    u0 = jnp.array([0.05])
    n = 400
    us = np.asarray(mj.iterate(loss, u0, m, n))
    ts = jnp.array([n - 1.0, float(n)]) * h
    cfg = mj.SolverConfig(rtol=1e-10, atol=1e-12)
    ys = np.asarray(mj.solve(loss, u0, m, ts, model=mj.RodFlow(), solver=cfg))[:, 0]
    # the orbit: h (q s - b s^3) = 2 (1 + lam) A with s = (1 + 2a) A
    s2 = (q - 2 * (1 + lam) / (h * (1 + 2 * a))) / b
    amp = np.sqrt(s2) / (1 + 2 * a)
    assert abs(us[-1, 0]) == pytest.approx(amp, rel=1e-9)
    assert abs(ys[1] - ys[0]) / 2 == pytest.approx(amp, rel=1e-6)  # the rod's half-length
    assert abs(ys[1] + ys[0]) / 2 < 1e-6  # centred at the origin
    np.testing.assert_allclose(ys, us[-2:, 0], atol=1e-6)  # the same phase as the iterates


def test_progressive_sharpening_toy():
    """Phi = -c x + (s0 + x) y^2 / 2 + e y: the flow sharpens, s = s0 + x. The rescaled gradient
    flow passes the threshold; the iterates and the rod's center stop near it."""
    s0, loss = 15.0, _sharpening
    h = 0.1
    m = mj.gradient_descent(h)
    n = 2000
    u0 = jnp.array([0.0, 0.1])
    us = np.asarray(mj.iterate(loss, u0, m, n))
    ts = jnp.arange(0.0, n + 1.0) * h
    cfg = mj.SolverConfig(rtol=1e-8, atol=1e-10)
    rod = np.asarray(mj.solve(loss, u0, m, ts, model=mj.RodFlow(), solver=cfg))
    gf = np.asarray(mj.solve(loss, u0, m, ts, model="gradient_flow", solver=cfg))
    late = slice(n // 2, None)
    assert s0 + gf[-1, 0] > 1.2 * 2 / h  # the stable flow sharpens past 2/h
    assert np.max(s0 + (us[1:, 0] + us[:-1, 0])[late] / 2) < 1.15 * 2 / h  # iterates stop
    assert np.max(s0 + (rod[1:, 0] + rod[:-1, 0])[late] / 2) < 1.1 * 2 / h  # so does the rod
    d_rod = np.linalg.norm(us - rod, axis=1)[late].mean()
    d_gf = np.linalg.norm(us - gf, axis=1)[late].mean()
    assert d_rod < 0.6 * d_gf


def _smooth(u):
    """A non-polynomial loss (its fifth derivatives do not vanish)."""
    return (
        0.5 * (3.0 * u[0] ** 2 + u[1] ** 2)
        + 0.1 * u[0] * u[1] ** 2
        + 0.3 * jnp.cos(u[0] + 0.5 * u[1])
        + 0.05 * jnp.exp(0.7 * u[1])
    )


def _central_drift(loss, w, variance, u):
    """The published GD central flow's drift (Cohen, Damian et al.; the authors' reference code,
    `step_central` of minimal.py), per unit of `t = n h`, for one oscillating direction `u` of
    variance `X`: `-(grad L(w) + X/2 grad_w (u^T Hess L(w) u))`, `u` held fixed."""
    hess = jax.hessian(loss)
    bend = jax.grad(lambda v: u @ hess(v) @ u)(w)
    return -(jax.grad(loss)(w) + 0.5 * variance * bend)


@pytest.mark.parametrize("h", [0.3, 0.8])  # the sharpness 2.75 below and above 2/h
def test_gd_center_field_is_central_flow_drift(h):
    """lam = 0, delta = sigma u (u the top eigenvector): the rod's center field is the central
    flow's drift with the variance X = |delta|^2, to O(sigma^4): the rod averages the gradient
    over its two ends, the central flow keeps the Taylor series of that average to sigma^2.
    On a quartic polynomial the two are the same function (the remainder has fifth
    derivatives). The half-length's field makes |delta|^2 grow at 2 (S - 2/h) |delta|^2 +
    O(sigma^4): the variance is stationary exactly where the central flow may hold it, at the
    critical sharpness 2/h."""
    gd = mj.gradient_descent(h)
    w = jnp.array([0.4, -0.7])
    sharp, u = top_dense(_smooth, w)
    errs = []
    for sigma in (0.1, 0.05, 0.025, 0.0125):
        dx, dd = rod_field(_smooth, w, sigma * u, gd)
        drift = _central_drift(_smooth, w, sigma**2, u)
        errs.append(float(jnp.linalg.norm(dx - drift)))
        bend = float(jnp.linalg.norm(drift + jax.grad(_smooth)(w)))  # |X/2 grad S|
        assert errs[-1] < 0.02 * sigma**2 * bend  # relative to the sigma^2 term: O(sigma^2)
        rate = 2.0 * float(jnp.dot(sigma * u, dd))
        expect = 2.0 * sigma**2 * (float(sharp) - 2.0 / h)
        assert rate == pytest.approx(expect, rel=0.0, abs=0.2 * sigma**4)
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    np.testing.assert_allclose(ratios, 16.0, rtol=0.01)  # the remainder is O(sigma^4)
    # on a quartic polynomial: equal to roundoff
    w3 = jnp.array([4.0, 3.0, 0.05])
    _, u3 = top_dense(sharpening_quartic, w3)
    dx3, _ = rod_field(sharpening_quartic, w3, 0.1 * u3, gd)
    drift3 = _central_drift(sharpening_quartic, w3, 0.01, u3)
    assert float(jnp.linalg.norm(drift3 + jax.grad(sharpening_quartic)(w3))) > 1e-3  # not 0
    np.testing.assert_allclose(np.asarray(dx3), np.asarray(drift3), rtol=1e-12, atol=1e-15)


def test_gd_self_stabilisation_against_central_flow():
    """GD on the sharpening quartic `sharpening_quartic` at h = 0.1: the sharpness rises to the
    critical 2/h = 20 and is held there (within 1.5% over the last third) while the loss keeps
    falling, window after window, and the gradient flow's sharpness goes on to 1.17 x 2/h. The
    rod flow (lam = 0) predicts the same: its iterate's sharpness within 1.5% of 2/h, its
    iterates within 0.06 of GD's (measured: 0.04 at most; the gradient flow: 3.0 on
    average). Against the hand-written central
    flow: the same held sharpness, the rod's variance |delta|^2 within 6% of the central flow's X
    over the last third, and the two centers within 0.25 (the central flow skips the first
    catapult, so its `x1 + x2` runs about 0.1 ahead)."""
    h, n, loss = 0.1, 1500, sharpening_quartic
    gd = mj.gradient_descent(h)
    w0 = jnp.array([3.0, 3.0, 0.1])
    us = np.asarray(mj.iterate(loss, w0, gd, n))
    ts = jnp.arange(n + 1.0) * h
    cfg = mj.SolverConfig(rtol=1e-8, atol=1e-10, max_steps=2**16)
    rod = np.asarray(mj.solve(loss, w0, gd, ts, model=mj.RodFlow(), solver=cfg))
    centre = np.asarray(mj.solve(loss, w0, gd, ts, model=mj.RodFlow(track="center"), solver=cfg))
    gf = np.asarray(mj.solve(loss, w0, gd, ts, model="gradient_flow", solver=cfg))
    cf, var = central_flow_reference(loss, w0, gd, n)
    sharp = jax.jit(jax.vmap(lambda w: jnp.linalg.eigvalsh(jax.hessian(loss)(w))[-1]))
    late = slice(2 * n // 3, None)
    crit = 2.0 / h
    s_gd, s_rod, s_cf = (np.asarray(sharp(jnp.asarray(x)))[late] / crit for x in (us, rod, cf))
    assert float(sharp(jnp.asarray(gf[-1:]))[0]) > 1.15 * crit  # the stable flow runs past
    for s in (s_gd, s_rod):
        assert np.all(np.abs(s - 1.0) < 0.015)
    np.testing.assert_allclose(s_cf, 1.0, atol=1e-3)  # the central flow holds S = 2/h exactly
    losses = np.asarray(jax.vmap(loss)(jnp.asarray(us)))
    windows = losses[900:1500].reshape(4, 150).mean(axis=1)
    assert np.all(np.diff(windows) < 0)  # the loss keeps falling at the edge of stability
    d_rod = np.linalg.norm(us - rod, axis=1)[late]
    d_gf = np.linalg.norm(us - gf, axis=1)[late]
    assert d_rod.max() < 0.06 and d_gf.mean() > 2.5
    rod_var = np.sum((rod - centre) ** 2, axis=1)[late]
    assert rod_var.mean() == pytest.approx(var[late].mean(), rel=0.06)
    assert np.linalg.norm(centre - cf, axis=1)[late].max() < 0.25


def test_alias_solve_and_sweep():
    assert mj.as_model("rod_flow") == mj.RodFlow()
    assert mj.MODELS["rod_flow"] is mj.RodFlow
    assert mj.RodFlow(track="center").key == "rod_flow[track='center']"
    with pytest.raises(ValueError, match="track"):
        mj.RodFlow(track="edge")
    with pytest.raises(ValueError, match="floor"):
        mj.RodFlow(floor=2.0)
    # below the threshold the rod flow is the gradient flow to O(h), like the stable flow
    loss = lambda u: 0.5 * jnp.sum(jnp.array([4.0, 1.0]) * u**2)  # noqa: E731
    u0 = jnp.array([1.0, 1.0])
    m = mj.heavy_ball(0.01, 0.5)
    ts = jnp.linspace(0.0, 1.0, 11)
    cfg = mj.SolverConfig(rtol=1e-8, atol=1e-10)
    rod = mj.solve(loss, u0, m, ts, model="rod_flow", solver=cfg)
    gf = mj.solve(loss, u0, m, ts, model="gradient_flow", solver=cfg)
    assert float(jnp.max(jnp.abs(rod - gf))) < 0.05


@pytest.mark.slow
def test_sweep_distances():
    """`sweep(models=...)` takes the rod flow (slow: a sweep compiles for about 20 s)."""
    loss = mj.DiagonalQuadratic([4.0, 1.0])
    u0 = jnp.array([1.0, 1.0])
    sw = mj.sweep(
        loss,
        u0,
        hs=[0.01],
        lams=[0.5],
        methods=("hb",),
        steps=100,
        record_every=10,
        models=("gradient_flow", "rod_flow"),
    )
    for model in ("gradient_flow", "rod_flow"):
        dist = np.asarray(sw.distances[model])
        assert np.all(np.isfinite(dist)) and np.all(dist < 0.05)
