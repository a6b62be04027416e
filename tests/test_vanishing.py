"""The vanishing-friction regime: HB-mu, NAG-mu, Wilson's split step and Nesterov's
`lam_n = (n-1)/(n+2)` against their ODE limits in the time `t = n sqrt(h)`, with measured orders.

Orders are least-squares slopes of `log E(h)` against `log h` over `h = 2^-9 ... 2^-12`, with
`E(h) = max_{n sqrt(h) <= T} |u_n - X(n sqrt h)|`, `T = 4`. Measured values (the same grid):
HB-mu low 0.505, high/matched 1.014, high/zero 0.512 (paper quadratic, kappa 10); NAG-mu low
0.496, high/matched 0.995, Nesterov low 0.495 (double well); Wilson low 0.500, matched 0.997.
Tolerance: +-0.06 around 1/2 and 1.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

from momentum_jax import heavy_ball, iterate
from momentum_jax._iterate import MomentumState, step
from momentum_jax._losses import double_well, paper_quadratic
from momentum_jax._method import Momentum, nesterov, vanishing_friction_lam
from momentum_jax._schemes import nesterov_lam
from momentum_jax._vanishing import (
    NESTEROV_T0,
    limit_start,
    solve_limit,
    vanishing_iterate,
    vanishing_study,
)

HS = 2.0 ** -np.arange(6, 13)
T = 4.0
QUAD = paper_quadratic(10.0)
U_QUAD = jnp.array([1.0, 1.0])
U_DW = jnp.array([0.3, 1.0])
TOL = 0.06


def test_hb_mu_is_heavy_ball_with_vanishing_friction():
    h = 2.0**-6
    ours = vanishing_iterate(QUAD, U_QUAD, "hb_mu", h, 50)
    ref = iterate(QUAD, U_QUAD, heavy_ball(h, float(vanishing_friction_lam(h))), 50)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-13)


def test_nesterov_momentum_schedule_matches_a_plain_loop():
    h, n_steps = 2.0**-6, 40
    ours = vanishing_iterate(double_well, U_DW, "nesterov", h, n_steps)
    state = MomentumState(U_DW, jnp.zeros(2))
    ref = [U_DW]
    for n in range(n_steps):
        lam = max((n - 1) / (n + 2), 0.0)
        state = step(double_well, Momentum(h, lam, lam), state)
        ref.append(state.u)
    np.testing.assert_allclose(ours, jnp.stack(ref), rtol=0, atol=1e-13)
    assert float(nesterov_lam(1)) == 0.0 and float(nesterov_lam(4)) == pytest.approx(0.5)


def test_wilson_is_a_delayed_heavy_ball():
    """Wilson's scheme is heavy ball with `lam = e^{-2 sqrt(mu h)}`, step `sqrt(h) (1 -
    e^{-2 sqrt(mu h)}) / (2 sqrt(mu))`, started one step late (`u_1 = u_0`): the reason its
    matched velocity is `+sqrt(h)/2 grad f(u_0)` and its low-resolution limit is `O(h)`."""
    h, mu = 2.0**-6, 1.0
    e = np.exp(-2 * np.sqrt(mu * h))
    ours = vanishing_iterate(QUAD, U_QUAD, "wilson", h, 60, mu=mu)
    ref = iterate(QUAD, U_QUAD, heavy_ball(np.sqrt(h) * (1 - e) / (2 * np.sqrt(mu)), e), 59)
    np.testing.assert_allclose(ours[0], ours[1], rtol=0, atol=0)
    np.testing.assert_allclose(ours[1:], ref, rtol=0, atol=1e-13)


def test_nesterov_series_start_solves_the_singular_ode():
    t0, (x, v) = limit_start("nesterov", QUAD, U_QUAD, 0.01)
    assert t0 == NESTEROV_T0
    g = jax.grad(QUAD)(U_QUAD)
    np.testing.assert_allclose(x, U_QUAD - t0**2 / 8 * g, atol=1e-15)
    xs = solve_limit(QUAD, U_QUAD, "nesterov", 0.01, jnp.array([0.0, 0.05]))
    np.testing.assert_allclose(xs[0], U_QUAD, atol=0)
    hg = jnp.asarray(QUAD.q) * g
    np.testing.assert_allclose(xs[1], U_QUAD - 0.05**2 / 8 * g + 0.05**4 / 192 * hg, atol=1e-8)


@pytest.mark.parametrize(
    "limit,velocity,expected",
    [("low", "zero", 0.5), ("high", "matched", 1.0), ("high", "zero", 0.5)],
)
def test_hb_mu_orders_on_the_quadratic(limit, velocity, expected):
    st = vanishing_study(QUAD, U_QUAD, "hb_mu", HS, T, limit=limit, velocity=velocity)
    assert abs(st.order(4) - expected) < TOL, (st.errors, st.order(4))


@pytest.mark.parametrize(
    "scheme,limit,velocity,expected",
    [
        ("nag_mu", "low", "zero", 0.5),
        ("nag_mu", "high", "matched", 1.0),
        ("nesterov", "low", "zero", 0.5),
    ],
)
def test_orders_on_the_nonconvex_double_well(scheme, limit, velocity, expected):
    st = vanishing_study(double_well, U_DW, scheme, HS, T, limit=limit, velocity=velocity)
    assert abs(st.order(4) - expected) < TOL, (st.errors, st.order(4))


@pytest.mark.slow
@pytest.mark.parametrize("velocity,expected", [("zero", 0.5), ("matched", 1.0)])
def test_wilson_orders(velocity, expected):
    st = vanishing_study(QUAD, U_QUAD, "wilson", HS, T, limit="low", velocity=velocity)
    assert abs(st.order(4) - expected) < TOL, (st.errors, st.order(4))


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["hb_mu", "nag_mu", "nesterov", "wilson"])
def test_low_resolution_orders_on_both_losses(scheme):
    for loss, u0 in ((QUAD, U_QUAD), (double_well, U_DW)):
        st = vanishing_study(loss, u0, scheme, HS, T)
        assert abs(st.order(4) - 0.5) < TOL, (scheme, st.errors)


def test_invalid_combinations_are_rejected():
    with pytest.raises(ValueError, match="hb_mu"):
        vanishing_study(QUAD, U_QUAD, "wilson", HS, T, limit="high")
    with pytest.raises(ValueError, match="rest"):
        solve_limit(QUAD, U_QUAD, "nesterov", 0.01, jnp.array([0.0, 1.0]), velocity="matched")
    with pytest.raises(ValueError, match="scheme"):
        vanishing_iterate(QUAD, U_QUAD, "adam", 0.01, 3)
    with pytest.raises(ValueError, match="h="):
        vanishing_iterate(QUAD, U_QUAD, "hb_mu", -0.01, 3)


def test_no_recompile_for_a_new_h():
    vanishing_iterate(QUAD, U_QUAD, "nag_mu", 2.0**-5, 10)
    with count_compiles() as compiles:
        vanishing_iterate(QUAD, U_QUAD, "nag_mu", 2.0**-7, 10)
    assert compiles.n == 0
    np.testing.assert_allclose(nesterov(0.1, 0.5).a, 0.5)


@pytest.mark.slow
def test_fig13_quick_end_to_end(tmp_path):
    import json

    from momentum_jax._cli import main

    code = main(
        [
            "reproduce",
            "fig13",
            "--quick",
            "--out",
            str(tmp_path),
            "--cache",
            str(tmp_path / "cache"),
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "fig13_friction_regimes.json").read_text())["summary"]
    assert (tmp_path / "fig13_friction_regimes.png").stat().st_size < 300_000
    for label, order in summary["orders"].items():
        expected = summary["expected"][label]
        tol = 0.3 if expected == 1.0 and label.startswith("HB vs rescaled") else 0.1
        assert abs(order - expected) < tol, (label, order)
