"""The rod flow at the edge of stability (docs/edge_of_stability.md): its field against a NumPy
reference, the gradient-descent reduction, the threshold on a quadratic, the period-two orbits of
a quartic, and its use in `solve` and `sweep`."""

import jax.numpy as jnp
import numpy as np
import pytest

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
