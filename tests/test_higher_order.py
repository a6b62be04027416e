"""Higher-order invariant manifold and modified flow (`momentum_jax._higher_order`).

The main evidence is the observed order: started on the order-`R` manifold, the iterates of HB
and NAG follow the order-`R` modified flow with error `O(h^{R+1})` on `0 <= n h <= T`.

Choice of the step sizes (tolerance on fitted slopes: 0.25). The series in `h` is asymptotic in
about `h lbar^2 L` (`L` the curvature scale), so `lam = 0.9` (`lbar = 10`) needs steps about
2^-5 times smaller than `lam = 0.5` (`lbar = 2`), and the paper's quadratic (`kappa = 10`) about
2^-3 times smaller than the two nonconvex losses. Each fit uses five steps `h_max 2^-k`,
`k = 0..4`, with `h_max` from `H_MAX`: at the largest step the error is already in its asymptotic
regime, and at the smallest the order-3 error is still above 3e-8, far above the floor of about
1e-11 set by rounding over `T / h` steps and by the `1e-13` ODE tolerance. (Measured on the
double well, HB, `lam = 0.5`, `T = 1`: the order-3 error falls from 1.4e-1 at `h = 2^-3` to
1.1e-7 at `2^-8` with local slopes 4.0-4.1, and stops at about 2e-11 from `h = 2^-11` on.)

References, and the error `E(h)`: the maximum over every iterate `0 <= n h <= T` of the Euclidean
distance to the flow at `t = n h`. On the quadratic the modified flow is linear and diagonal and
is solved exactly (`exp`); on the nonconvex losses it is solved with `diffrax.Dopri8`
(`rtol = atol = 1e-13`), saved at every `n h`.
"""

from __future__ import annotations

import functools
import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

import momentum_jax as mj
from momentum_jax._derivatives import modified_grad
from momentum_jax._higher_order import (
    gregory_weights,
    manifold_coefficients,
    manifold_velocity_series,
    modified_field,
    modified_field_coefficients,
)
from momentum_jax._losses import double_well, paper_quadratic

T = 1.0
METHODS = {"hb": mj.heavy_ball, "nag": mj.nesterov}
CONFIGS = [("hb", 0.5), ("nag", 0.5), ("hb", 0.9), ("nag", 0.9)]


def coupled_wells(p):
    """A double well in `p["x"]` coupled to `p["y"]` (shape (2,)): nonconvex, a dict pytree."""
    x, y = p["x"], p["y"]
    return (
        0.25 * (x**2 - 1.0) ** 2
        + 0.5 * jnp.sum(y**2)
        + 0.3 * jnp.sin(x) * y[0]
        + 0.2 * jnp.cos(y[1] + x)
    )


LOSSES = {
    "quadratic": (paper_quadratic(10.0), jnp.array([1.0, 1.0])),
    "double_well": (double_well, jnp.array([0.3, 1.0])),
    "coupled_wells": (coupled_wells, {"x": jnp.asarray(0.5), "y": jnp.array([0.8, -0.6])}),
}
H_MAX = {  # largest step of each five-step fit, per loss and lam (see the module docstring)
    "quadratic": {0.5: 2.0**-7, 0.9: 2.0**-11},
    "double_well": {0.5: 2.0**-4, 0.9: 2.0**-9},
    "coupled_wells": {0.5: 2.0**-4, 0.9: 2.0**-9},
}


def steps_for(loss_name, lam):
    return [H_MAX[loss_name][lam] * 2.0**-k for k in range(5)]


def tree_err(a, b):
    """Euclidean norm over all leaves, per row of a leading time axis."""
    return jnp.sqrt(
        sum(
            jnp.sum(jnp.reshape(x - y, (x.shape[0], -1)) ** 2, axis=1)
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
        )
    )


def slope(hs, errs):
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


ORDERS = (0, 1, 2, 3)


@functools.partial(jax.jit, static_argnums=0)
def _flows_on_grids(loss, u0, methods, ts):
    """The modified flows of every order in `ORDERS` from `u0`, at the times `ts`, vmapped over
    `methods` and the rows of `ts`. They are solved as one stacked system (one copy of `u` per
    order), so that the solver is compiled once per loss."""

    def rhs(t, ys, method):
        return tuple(modified_field(loss, y, method, order) for order, y in zip(ORDERS, ys))

    def solve(method, ts):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(rhs),
            diffrax.Dopri8(),
            0.0,
            T,
            None,
            tuple(u0 for _ in ORDERS),
            args=method,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=1e-13, atol=1e-13),
            max_steps=4096,
        )
        return sol.ys

    return jax.vmap(solve)(methods, ts)


def _stack(methods):
    return jax.tree.map(lambda *x: jnp.stack([jnp.asarray(v, dtype=float) for v in x]), *methods)


@functools.cache
def observed_errors(loss_name):
    """`{(order, method, lam): (hs, errors)}`: max-over-time distance between the discrete run
    started on the order-`order` manifold and the order-`order` modified flow."""
    loss, u0 = LOSSES[loss_name]
    runs = [
        (name, lam, h, METHODS[name](h, lam))
        for name, lam in CONFIGS
        for h in steps_for(loss_name, lam)
    ]
    if loss_name != "quadratic":  # all iterate times n h <= T, padded with T to one length
        longest = max(round(T / r[2]) for r in runs) + 1
        grids = jnp.stack([jnp.minimum(r[2] * jnp.arange(float(longest)), T) for r in runs])
        flows = _flows_on_grids(loss, u0, _stack([r[3] for r in runs]), grids)
    out = {}
    for order in ORDERS:
        for i, (name, lam, h, method) in enumerate(runs):
            n = round(T / h)
            w0 = manifold_velocity_series(loss, u0, method, order)
            us = mj.iterate(loss, u0, method, n, init=w0)
            if loss_name == "quadratic":  # du/dt = -m * u exactly, m = -f(1, 1)
                rate = -modified_field(loss, jnp.ones(2), method, order)
                flow = jnp.exp(-rate[None, :] * (h * jnp.arange(n + 1.0))[:, None]) * u0[None, :]
            else:
                flow = jax.tree.map(lambda y, i=i: y[i, : n + 1], flows[order])
            err = jnp.max(tree_err(us, flow))
            hs, errs = out.setdefault((order, name, lam), ([], []))
            hs.append(h)
            errs.append(float(err))
    return out


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("loss_name", ["quadratic", "double_well", "coupled_wells"])
def test_observed_order(loss_name, order):
    """HB and NAG at lam 0.5 and 0.9 follow the order-R modified flow with error O(h^{R+1})."""
    for name, lam in CONFIGS:
        hs, errs = observed_errors(loss_name)[order, name, lam]
        p = slope(hs, errs)
        assert abs(p - (order + 1)) <= 0.25, (name, lam, p, errs)
        assert min(errs) > 1e-9, (name, lam, errs)  # far above rounding and solver error


# -- exact references on the quadratic --------------------------------------------------------


def slow_root(h, q, lam, a):
    """The root near 1 of the characteristic polynomial of the method on `q u^2 / 2`:
    `rho^2 - (1 + lam - h q (1 + a)) rho + (lam - h a q) = 0`."""
    tr, det = 1.0 + lam - h * q * (1.0 + a), lam - h * a * q
    return (tr + jnp.sqrt(tr * tr - 4.0 * det)) / 2.0


@functools.partial(jax.jit, static_argnums=0)
def exact_quadratic_series(degree, q, lam, a):
    """Taylor coefficients in `h` at 0, up to `h^degree`, of `log rho(h)` (row 0) and
    `1 / rho(h)` (row 1), by the test's own nested jvp in `h`."""

    def both(h):
        rho = slow_root(h, q, lam, a)
        return jnp.stack([jnp.log(rho), 1.0 / rho])

    derivs = [both]
    for _ in range(degree):
        derivs.append(lambda h, d=derivs[-1]: jax.jvp(d, (h,), (jnp.ones_like(h),))[1])
    h0 = jnp.zeros(())
    return jnp.stack([d(h0) / math.factorial(k) for k, d in enumerate(derivs)], axis=1)


@pytest.mark.parametrize("name,lam", CONFIGS)
def test_quadratic_coefficients_exact(name, lam):
    """On `q u^2 / 2` the manifold iterates are `rho^n u_0`, so the exact modified field is
    `log(rho(h)) / h u` and the exact manifold velocity `(1 - 1 / rho(h)) / h u`: every
    coefficient `f_k`, `W_k` (k <= 3) equals the Taylor coefficient of those, to rounding."""
    method = METHODS[name](0.01, lam)
    loss, _ = LOSSES["quadratic"]
    order = 3
    f = modified_field_coefficients(loss, jnp.ones(2), method, order)
    w = manifold_coefficients(loss, jnp.ones(2), method, order)
    for i, q in enumerate(loss.q):
        log_rho, inv_rho = exact_quadratic_series(order + 1, q, lam, method.a)
        np.testing.assert_allclose([fk[i] for fk in f], log_rho[1:], rtol=1e-9)
        np.testing.assert_allclose([wk[i] for wk in w], -inv_rho[1:], rtol=1e-9)


# -- agreement with the first-order formulas --------------------------------------------------


@pytest.mark.parametrize("name,lam", CONFIGS)
@pytest.mark.parametrize("loss_name", ["double_well", "coupled_wells"])
def test_orders_zero_and_one_match_closed_forms(loss_name, name, lam):
    """Order 0: `-lbar grad Phi` (Thm 2, manifold leading term); order 1: the corrected Thm 6
    field `-lbar grad(Phi + h c |grad Phi|^2)` and Thm 5's manifold `manifold_velocity`; all to
    rounding (rtol 1e-12 of the largest entry)."""
    loss, u0 = LOSSES[loss_name]
    method = METHODS[name](0.01, lam)
    minus_lbar = lambda tree: jax.tree.map(lambda x: -method.lbar * x, tree)  # noqa: E731
    expected = {
        ("field", 0): minus_lbar(jax.grad(loss)(u0)),
        ("field", 1): minus_lbar(modified_grad(loss, u0, method.h * method.c)),
        ("manifold", 0): mj.manifold_velocity(loss, u0, method, 0),
        ("manifold", 1): mj.manifold_velocity(loss, u0, method, 1),
    }
    for (kind, order), want in expected.items():
        fn = modified_field if kind == "field" else manifold_velocity_series
        got = fn(loss, u0, method, order)
        scale = max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(want))
        for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-12 * scale, err_msg=f"{kind} {order}")


@pytest.mark.parametrize("loss_name", ["double_well", "coupled_wells"])
def test_gradient_descent_modified_equation(loss_name):
    """`lam = 0`: the known modified equation of gradient descent (explicit Euler on
    `-grad Phi`), `f_1 = -(1/2) H g`, `f_2 = -(1/3) H H g - (1/12) D^3 Phi[g, g]`, derived by
    matching `u + h f + h^2/2 f' f + h^3/6 (f''(f, f) + f' f' f)` with one Euler step, and
    computed here with the test's own Hessian- and third-derivative-vector products."""
    loss, u0 = LOSSES[loss_name]
    gfun = jax.grad(loss)
    g = gfun(u0)
    hg = jax.jvp(gfun, (u0,), (g,))[1]
    hhg = jax.jvp(gfun, (u0,), (hg,))[1]
    d3gg = jax.jvp(lambda x: jax.jvp(gfun, (x,), (g,))[1], (u0,), (g,))[1]
    f1 = jax.tree.map(lambda x: -0.5 * x, hg)
    f2 = jax.tree.map(lambda x, y: -x / 3.0 - y / 12.0, hhg, d3gg)
    got = modified_field_coefficients(loss, u0, mj.gradient_descent(0.01), 2)
    for k, want in ((0, jax.tree.map(jnp.negative, g)), (1, f1), (2, f2)):
        for a, b in zip(jax.tree.leaves(got[k]), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14, err_msg=f"f_{k}")


# -- the manifold itself ----------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 2, 3])
@pytest.mark.parametrize("loss_name", ["double_well", "coupled_wells"])
def test_invariance_defect_order(loss_name, order):
    """One step from `(u, W^R(u))` lands at `(u_1, w_1)` with `w_1 - W^R(u_1) = O(h^{R+1})`."""
    loss, u0 = LOSSES[loss_name]
    for name, lam in CONFIGS[1:3]:
        hs = steps_for(loss_name, lam)
        defects = []
        for h in hs:
            method = METHODS[name](h, lam)
            w0 = manifold_velocity_series(loss, u0, method, order)
            state = mj.step(loss, method, mj.MomentumState(u0, w0))
            w_next = manifold_velocity_series(loss, state.u, method, order)
            defects.append(
                float(
                    tree_err(
                        jax.tree.map(lambda x: x[None], state.w),
                        jax.tree.map(lambda x: x[None], w_next),
                    )[0]
                )
            )
        assert abs(slope(hs, defects) - (order + 1)) <= 0.25, (name, lam, defects)


# -- construction details ---------------------------------------------------------------------


def test_gregory_weights():
    """`log(1 + Delta) / Delta` truncated: weights sum to 1, known low orders."""
    assert gregory_weights(0) == (1,)
    assert [str(b) for b in gregory_weights(2)] == ["11/6", "-7/6", "1/3"]
    for r in range(6):
        assert sum(gregory_weights(r)) == 1


def test_no_recompile_for_new_hyperparameters():
    loss, u0 = LOSSES["double_well"]
    fn = jax.jit(
        lambda m: (modified_field(loss, u0, m, 2), manifold_velocity_series(loss, u0, m, 2))
    )
    first = fn(mj.Momentum(jnp.asarray(0.01), jnp.asarray(0.9), jnp.asarray(0.0)))
    with count_compiles() as compiles:
        second = fn(mj.Momentum(jnp.asarray(0.02), jnp.asarray(0.5), jnp.asarray(0.5)))
    assert compiles.n == 0
    assert not np.allclose(first[0], second[0])


def test_bad_order():
    loss, u0 = LOSSES["double_well"]
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError, match="order"):
            modified_field(loss, u0, mj.heavy_ball(0.1, 0.5), bad)
