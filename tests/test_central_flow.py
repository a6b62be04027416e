"""The central flow of the momentum family at the edge of stability (docs/edge_of_stability.md
§6): its field against a hand-written reference and its defining bound, the reference code of
Cohen, Damian et al. (their substep scheme, written for the family) converging to it, the
sharpness the iterates of GD, HB and NAG hold against the threshold it holds, the tracking of
the top eigenvector, a quadratic (no third derivative) leaving it the gradient flow, pytrees,
float32, no recompilation for new hyperparameters, and its use in `solve`, `sweep` and the
command line. Float64 throughout (conftest), so the tolerances below 1e-8 are meaningful."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import central_flow_reference, count_compiles, sharpening_quartic, top_dense

import momentum_jax as mj
from momentum_jax._cli import main


def _method(name, h, lam):
    return mj.gradient_descent(h) if name == "gd" else mj.method_from_name(name, h=h, lam=lam)


def _field_reference(loss, w, v, method, gain, tracking):
    """`(x', v', X)` typed out from the dense Hessian: `S = v^T H v`, `grad S` by differentiating
    `v^T H(w) v` in `w`, `r = H v - S v` (`v` normalised), `v' = tracking lbar |v| r`, and
    `X = max(0, 2 (gain/h (S - q*) + 2 tracking lbar |r|^2 - lbar <grad S, grad L>)
    / (lbar |grad S|^2))`."""
    h, lam, a = float(method.h), float(method.lam), float(method.a)
    lbar, q = 1.0 / (1.0 - lam), 2.0 * (1.0 + lam) / (h * (1.0 + 2.0 * a))
    hess = jax.hessian(loss)
    unit = np.asarray(v / jnp.linalg.norm(v))
    H = np.asarray(hess(w))
    s = float(unit @ H @ unit)
    grad_s = np.asarray(jax.grad(lambda y: unit @ hess(y) @ unit)(w))
    g = np.asarray(jax.grad(loss)(w))
    r = H @ unit - s * unit
    want = 2.0 * (gain / h * (s - q) + 2.0 * tracking * lbar * (r @ r) - lbar * (grad_s @ g))
    var = max(0.0, want / (lbar * (grad_s @ grad_s)))
    dx = -lbar * (g + 0.5 * var * grad_s)
    return dx, tracking * lbar * float(jnp.linalg.norm(v)) * r, var


@pytest.mark.parametrize("name, lam", [("gd", 0.0), ("hb", 0.7), ("nag", 0.7)])
@pytest.mark.parametrize("x1", [0.5, 12.0])  # the curvature along y below and above q*
def test_field_matches_hand_reference(name, lam, x1):
    m = _method(name, 0.1, lam)
    w = jnp.array([x1, 3.0, 0.05])
    _, top = top_dense(sharpening_quartic, w)
    model = mj.CentralFlow(gain=3.0, tracking=5.0)
    f = model.vector_field(sharpening_quartic)
    variances = []
    for v in (top, top + jnp.array([0.1, -0.2, 0.0])):  # the eigenvector, and a direction off it
        dx, dv = f(0.0, (w, v), m)
        ref_x, ref_v, var = _field_reference(sharpening_quartic, w, v, m, 3.0, 5.0)
        np.testing.assert_allclose(np.asarray(dx), ref_x, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.asarray(dv), ref_v, rtol=1e-10, atol=1e-12)
        assert float(model.variance(sharpening_quartic, (w, v), m)) == pytest.approx(var, 1e-12)
        variances.append(var)
    q = float(mj.stability_threshold(m))
    # 15 + x1 against q* (20 for GD, 34 for HB, 14.2 for NAG): the variance is switched on
    # where the curvature is at or above q*, or about to reach it
    if 15.0 + x1 < 0.9 * q:
        assert variances[0] == 0.0
    if 15.0 + x1 > q:
        assert variances[0] > 0.0
    # along the eigenvector the direction stands still
    assert float(jnp.linalg.norm(f(0.0, (w, top), m)[1])) < 1e-12 * q


@pytest.mark.parametrize("name, lam", [("gd", 0.0), ("hb", 0.7), ("nag", 0.7)])
@pytest.mark.parametrize("x1", [0.5, 5.0, 12.0])
def test_variance_is_the_smallest_that_bounds_the_curvature(name, lam, x1):
    """The defining property, checked on the field's output (not on its formula): the rate of
    change of `S = v^T H v` along the flow, `<grad S, x'> + 2 v'^T (H v - S v)` (a finite
    difference of `S` along `(x', v')`), is at most `gamma (q* - S)`, with equality where
    `X > 0`, and `X` is the smallest variance with that property (`X = 0` where the gradient
    flow keeps it)."""
    m = _method(name, 0.1, lam)
    gain, tracking = 4.0, 2.0
    w = jnp.array([x1, 3.0, 0.05])
    _, top = top_dense(sharpening_quartic, w)
    v = top + jnp.array([0.05, -0.1, 0.0])
    model = mj.CentralFlow(gain=gain, tracking=tracking)
    dx, dv = model.vector_field(sharpening_quartic)(0.0, (w, v), m)
    var = float(model.variance(sharpening_quartic, (w, v), m))
    hess = jax.hessian(sharpening_quartic)

    def curvature(x, d):
        unit = d / jnp.linalg.norm(d)
        return unit @ hess(x) @ unit

    eps = 1e-6
    rate = (curvature(w + eps * dx, v + eps * dv) - curvature(w - eps * dx, v - eps * dv)) / (
        2 * eps
    )
    q = float(mj.stability_threshold(m))
    bound = gain / float(m.h) * (q - float(curvature(w, v)))
    scale = abs(bound) + abs(float(rate)) + 1.0
    assert float(rate) <= bound + 1e-7 * scale
    if var > 0:  # the bound is active: any smaller variance would break it
        assert float(rate) == pytest.approx(bound, abs=1e-7 * scale)
    if x1 == 12.0 and name == "gd":
        assert var > 0  # S = 27 > q* = 20


@pytest.mark.parametrize("name, h, lam", [("gd", 0.1, 0.0), ("hb", 0.15, 0.5), ("nag", 0.075, 0.5)])
def test_the_authors_scheme_converges_to_it(name, h, lam):
    """The reference code of Cohen, Damian et al. (`step_central`: per substep, the smallest
    variance that keeps the sharpness one substep ahead at most the threshold; `k` substeps per
    step), written for the family, is forward Euler at the step `h/k` of `CentralFlow(gain=k)`:
    where the sharpness is held (after the first third), its distance to the model falls by 4
    each time `k` is multiplied by 4 (measured for GD: 3.2e-4, 8.1e-5, 2.0e-5), and the model
    itself converges as `gain` grows (gain 16 to 64: 4e-8; 4 to 16: 6e-5-2e-4), to the exact
    projection of the published flow. The gradient flow is 3.4 away."""
    m, n = _method(name, h, lam), int(round(150 / h))
    w0 = jnp.array([3.0, 3.0, 0.1])
    ts = jnp.arange(n + 1.0) * h
    cfg = mj.SolverConfig(rtol=1e-10, atol=1e-12, max_steps=2**16)
    late = slice(n // 3, None)
    flows, dist = {}, []
    for k in (4, 16, 64):
        model = mj.CentralFlow(gain=float(k))
        flows[k] = np.asarray(mj.solve(sharpening_quartic, w0, m, ts, model=model, solver=cfg))
        scheme = central_flow_reference(sharpening_quartic, w0, m, n, substeps=k)[0]
        dist.append(np.abs(flows[k] - scheme)[late].max())
    gf = np.asarray(mj.solve(sharpening_quartic, w0, m, ts, model="gradient_flow", solver=cfg))
    assert dist[0] < 1e-3 and np.abs(gf - flows[4]).max() > 3.0
    np.testing.assert_allclose(np.array(dist[:-1]) / np.array(dist[1:]), 4.0, rtol=0.1)
    assert np.abs(flows[16] - flows[64]).max() < 1e-6
    assert np.abs(flows[4] - flows[16]).max() < 5e-4
    sharp = jax.vmap(lambda w: top_dense(sharpening_quartic, w)[0])
    held = np.asarray(sharp(jnp.asarray(flows[4][2 * n // 3 :])))
    np.testing.assert_allclose(held / float(mj.stability_threshold(m)), 1.0, atol=1e-9)


@pytest.mark.parametrize(
    "name, h, lam, steps, low, high",
    [
        ("gd", 0.1, 0.0, 1500, 1.0, 1.01),
        ("hb", 0.15, 0.5, 1500, 0.999, 1.011),
        ("nag", 0.075, 0.5, 1500, 1.0, 1.01),
        ("hb", 0.17, 0.7, 3000, 0.999, 1.002),
        ("nag", 0.19 / 2.8, 0.9, 3000, 0.99, 1.0),
        ("hb", 0.19, 0.9, 3000, 0.95, 0.955),  # the exception: heavy ball at lam = 0.9
    ],
)
def test_iterates_hold_the_threshold_the_flow_holds(name, h, lam, steps, low, high):
    """What the iterates do (the physics behind the model, not its construction): on the
    sharpening quartic with the threshold `q* = 20`, the sharpness at the two-step average of the
    GD, HB and NAG iterates, over the last third of the run, stays within 1% of the
    linear-stability threshold that `CentralFlow` holds, except heavy ball at `lam = 0.9`,
    whose iterates settle at 0.953 `q*` (measured bounds)."""
    m = _method(name, h, lam)
    assert float(mj.stability_threshold(m)) == pytest.approx(20.0, rel=1e-12)
    us = np.asarray(mj.iterate(sharpening_quartic, jnp.array([3.0, 3.0, 0.1]), m, steps + 1))
    average = jnp.asarray((us[1:] + us[:-1]) / 2)[2 * steps // 3 :]
    held = np.asarray(jax.vmap(lambda w: top_dense(sharpening_quartic, w)[0])(average)) / 20.0
    assert np.all(held >= low) and np.all(held <= high)


def _toy(u):
    """`-c x + (s0 + x) y^2/2 + e y`, `c, s0, e = 0.05, 15, 0.01` (the toy of Fig 15's map):
    the sharpness `s0 + x` grows along the gradient flow without end."""
    return -0.05 * u[0] + 0.5 * (15.0 + u[0]) * u[1] ** 2 + 0.01 * u[1]


@pytest.mark.parametrize(
    "name, lam", [("gd", 0.0), ("hb", 0.3), ("hb", 0.9), ("nag", 0.3), ("nag", 0.9)]
)
def test_held_sharpness_is_the_linear_stability_threshold(name, lam):
    """By construction the central flow holds the curvature along its direction at the
    method's `stability_threshold` (HB `2 (1 + lam)/h`, NAG `2 (1 + lam)/(h (1 + 2 lam))`, GD
    `2/h`: 16.3-38 here); checked: the top eigenvalue at its late positions is that threshold
    to 1e-8 (the direction has found the eigenvector), and before the curvature nears it the
    flow is the rescaled gradient flow to 1e-7."""
    m = _method(name, 0.05 if name == "nag" else 0.1, lam)
    q = float(mj.stability_threshold(m))
    T = 1.5 * (q - 15.0) / (0.05 * float(m.lbar))  # the gradient flow reaches q* at T/1.5
    ts = jnp.linspace(0.0, T, 61)
    cfg = mj.SolverConfig(rtol=1e-10, atol=1e-12, max_steps=2**16)
    u0 = jnp.array([0.0, 0.1])
    cf = np.asarray(mj.solve(_toy, u0, m, ts, model="central_flow", solver=cfg))
    gf = np.asarray(mj.solve(_toy, u0, m, ts, model="gradient_flow", solver=cfg))
    s_cf = np.asarray(jax.vmap(lambda w: top_dense(_toy, w)[0])(jnp.asarray(cf)))
    s_gf = 15.0 + gf[:, 0]
    assert s_gf[-1] - 15.0 > 1.4 * (q - 15.0)  # the stable flow runs past the threshold
    np.testing.assert_allclose(s_cf[-10:] / q, 1.0, atol=1e-8)
    early = s_gf < 0.9 * q
    np.testing.assert_allclose(cf[early], gf[early], rtol=1e-7, atol=1e-9)


def test_quadratic_leaves_it_the_gradient_flow():
    """On a quadratic the Hessian is constant, `grad S = 0`, and no variance can bend the flow:
    `X = 0` and the central flow is the gradient flow `u_i(t) = u_i(0) exp(-lbar q_i t)`, above
    the threshold too (here q = 4 > q* = 3 for the first coordinate): the model of the average
    needs a curvature that changes with the position."""
    m = mj.heavy_ball(1.0, 0.5)  # q* = 3
    ts = jnp.linspace(0.0, 2.0, 9)
    u0 = jnp.array([1.0, -2.0])
    cfg = mj.SolverConfig(rtol=1e-11, atol=1e-13)
    loss = mj.DiagonalQuadratic([4.0, 1.0])
    cf = np.asarray(mj.solve(loss, u0, m, ts, model=mj.CentralFlow(), solver=cfg))
    exact = np.asarray(u0)[None] * np.exp(-2.0 * np.outer(np.asarray(ts), [4.0, 1.0]))
    np.testing.assert_allclose(cf, exact, rtol=1e-8, atol=1e-12)


def test_options_alias_and_command_line(tmp_path):
    assert mj.as_model("central_flow") == mj.CentralFlow()
    assert mj.MODELS["central_flow"] is mj.CentralFlow
    assert mj.CentralFlow(gain=8.0).key == "central_flow[gain=8.0]"
    with pytest.raises(ValueError, match="gain"):
        mj.CentralFlow(gain=0.0)
    with pytest.raises(ValueError, match="tracking"):
        mj.CentralFlow(tracking=-1.0)
    out = tmp_path / "s.json"
    argv = ["sweep", "--loss", "quadratic", "--h", "2^-3", "--lam", "0.5", "--method", "hb"]
    argv += ["--steps", "8", "--record-every", "4", "--model", "central_flow", "--out", str(out)]
    assert main(argv) == 0
    loaded = mj.load_sweep(out)
    # on the quadratic the central flow is the gradient flow: the same distances
    sw = mj.sweep(
        mj.paper_quadratic(10.0),
        jnp.array([1.0, 1.0]),
        hs=[0.125],
        lams=[0.5],
        methods=("hb",),
        steps=8,
        record_every=4,
        models=("gradient_flow",),
    )
    np.testing.assert_allclose(
        np.asarray(loaded.distances["central_flow"]),
        np.asarray(sw.distances["gradient_flow"]),
        rtol=1e-6,
    )


def test_sweep_distance_is_the_solve_distance():
    """In `sweep`, the distance of the iterates to the central flow (the largest over the
    recorded steps) is that of `solve`, `max_k |u_{n_k} - x(n_k h)|`, on the toy past its
    threshold (HB at two `lam`, `q*` 15.3 and 17.6 against the start's 15)."""
    u0 = jnp.array([0.0, 0.1])
    hs, lams, steps = [0.17], [0.3, 0.5], 600
    sw = mj.sweep(
        _toy,
        u0,
        hs=hs,
        lams=lams,
        methods=("hb",),
        steps=steps,
        record_every=200,
        models=("central_flow",),
    )
    dist = np.asarray(sw.distances["central_flow"])
    ts = jnp.arange(0.0, steps + 1.0, 200.0) * hs[0]
    for j, lam in enumerate(lams):
        m = mj.heavy_ball(hs[0], lam)
        us = np.asarray(mj.iterate(_toy, u0, m, steps))[::200]
        cf = np.asarray(mj.solve(_toy, u0, m, ts, model="central_flow"))
        q = float(mj.stability_threshold(m))
        assert 15.0 + cf[-1, 0] == pytest.approx(q, rel=1e-5)  # held at the threshold
        expect = np.linalg.norm(us - cf, axis=1).max()
        assert float(dist[0, j, 0, 0]) == pytest.approx(expect, rel=1e-5)


def _rk4(f, y, m, t, n):
    """`n` classical Runge-Kutta steps of `y' = f(t, y, m)` over `[0, t]` (a reference
    integrator, independent of diffrax)."""
    dt = t / n
    add = lambda y, k, c: jax.tree.map(lambda a, b: a + c * b, y, k)  # noqa: E731
    for _ in range(n):
        k1 = f(0.0, y, m)
        k2 = f(0.0, add(y, k1, dt / 2), m)
        k3 = f(0.0, add(y, k2, dt / 2), m)
        k4 = f(0.0, add(y, k3, dt), m)
        y = jax.tree.map(
            lambda a, b, c, d, e: a + dt / 6 * (b + 2 * c + 2 * d + e), y, k1, k2, k3, k4
        )
    return y


def test_direction_decays_at_the_stated_rate():
    """On a quadratic with curvatures 4 and 1 the direction's part along the lower eigenvector
    decays relative to the top at `tracking lbar (4 - 1)` per unit of `t` (the docstring's
    rate), for HB at `lam = 0.5` (`lbar = 2`) and `tracking = 2`: `exp(-12 t)`."""
    loss = mj.DiagonalQuadratic([4.0, 1.0])
    model = mj.CentralFlow(tracking=2.0)
    y = (jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0]))
    _, v = _rk4(model.vector_field(loss), y, mj.heavy_ball(0.1, 0.5), 0.25, 200)
    assert float(v[1] / v[0]) == pytest.approx(np.exp(-12.0 * 0.25), rel=1e-6)


def test_pytree_float32_and_no_recompilation():
    """A pytree of parameters gives the flat run's solution; float32 stays float32 and agrees
    with float64 to its own tolerance; a new `h` and `lam` reuse the compiled solve."""

    def tree_toy(p):
        return _toy(jnp.concatenate([p["x"], p["y"]]))

    u0 = jnp.array([0.0, 0.1])
    m = mj.heavy_ball(0.1, 0.3)
    ts = jnp.linspace(0.0, 200.0, 5)  # past the threshold 26 at t = 154
    flat = np.asarray(mj.solve(_toy, u0, m, ts, model="central_flow"))
    tree = mj.solve(tree_toy, {"x": u0[:1], "y": u0[1:]}, m, ts, model="central_flow")
    np.testing.assert_allclose(
        np.concatenate([np.asarray(tree["x"]), np.asarray(tree["y"])], -1),
        flat,
        rtol=1e-6,
        atol=1e-9,
    )
    assert 15.0 + flat[-1, 0] == pytest.approx(float(mj.stability_threshold(m)), rel=1e-5)
    with pytest.warns(RuntimeWarning, match="float32"):  # the library's precision warning
        single = mj.solve(_toy, u0.astype(jnp.float32), m, ts, model="central_flow")
    assert single.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(single), flat, rtol=1e-3, atol=1e-4)
    with count_compiles() as compiled:
        mj.solve(_toy, u0, mj.heavy_ball(0.08, 0.6), ts, model="central_flow")
    assert compiled.n == 0


def test_return_state_gives_the_direction_and_variance():
    """`solve(..., return_state=True)` returns the model's whole state: for the central flow
    `(x, v)`, whose `x` is the position `solve` returns, whose `v` stays a unit vector, and
    along which the curvature is held at `q*` once the edge is reached, with a positive
    variance; for a second-order model the same as `return_velocity=True`."""
    u0 = jnp.array([0.0, 0.1])
    m = mj.heavy_ball(0.1, 0.3)  # q* = 26, reached at t = 154 by the gradient flow
    ts = jnp.linspace(0.0, 200.0, 5)
    x, v = mj.solve(_toy, u0, m, ts, model="central_flow", return_state=True)
    np.testing.assert_array_equal(
        np.asarray(x), np.asarray(mj.solve(_toy, u0, m, ts, model="central_flow"))
    )
    np.testing.assert_allclose(np.asarray(jnp.linalg.norm(v, axis=1)), 1.0, rtol=1e-6)
    held = float(v[-1] @ jax.hessian(_toy)(x[-1]) @ v[-1])
    assert held == pytest.approx(float(mj.stability_threshold(m)), rel=1e-6)
    assert float(mj.CentralFlow().variance(_toy, (x[-1], v[-1]), m)) > 0.0
    assert float(mj.CentralFlow().variance(_toy, (x[0], v[0]), m)) == 0.0
    both = mj.solve(_toy, u0, m, ts, model="hamiltonian", return_state=True)
    vel = mj.solve(_toy, u0, m, ts, model="hamiltonian", return_velocity=True)
    np.testing.assert_array_equal(np.asarray(both[0]), np.asarray(vel[0]))
    np.testing.assert_array_equal(np.asarray(both[1]), np.asarray(vel[1]))
