import jax
import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj


def test_constructors_set_lookahead():
    assert mj.heavy_ball(0.1, 0.9).a == 0.0
    assert mj.nesterov(0.1, 0.9).a == 0.9
    gd = mj.gradient_descent(0.1)
    assert (gd.lam, gd.a) == (0.0, 0.0)
    lams = jnp.array([0.5, 0.9])
    assert mj.heavy_ball(0.1, lams).a.shape == (2,)


@pytest.mark.parametrize("lam, a", [(0.9, 0.0), (0.9, 0.9), (0.5, 0.5), (0.0, 0.0)])
def test_coefficients_match_theory(lam, a):
    m = mj.Momentum(0.1, lam, a)
    lbar = 1 / (1 - lam)
    alpha = (1 + lam - 2 * a * (1 - lam)) / 2
    assert m.alpha == pytest.approx(alpha, rel=1e-15)
    # corrected constant: c = lbar (lbar - a - 1/2) / 2 = alpha lbar^2 / 2 (docs/theory.md §4)
    assert m.c == pytest.approx(lbar * (lbar - a - 0.5) / 2, rel=1e-14)
    assert m.c_printed == pytest.approx(lbar * (lbar - a + 0.5) / 2, rel=1e-14)


def test_named_constants():
    assert mj.heavy_ball(0.1, 0.9).c == pytest.approx(1.9 / (4 * 0.01))
    assert mj.nesterov(0.1, 0.9).c == pytest.approx((0.1 + 2 * 0.81) / (4 * 0.01))
    assert mj.gradient_descent(0.1).c == pytest.approx(0.25)


@pytest.mark.parametrize(
    "kwargs, name, allowed",
    [
        (dict(h=0.0, lam=0.5, a=0.0), "h", "(0, inf)"),
        (dict(h=-1.0, lam=0.5, a=0.0), "h", "(0, inf)"),
        (dict(h=float("nan"), lam=0.5, a=0.0), "h", "(0, inf)"),
        (dict(h=float("inf"), lam=0.5, a=0.0), "h", "(0, inf)"),
        (dict(h=0.1, lam=1.0, a=0.0), "lam", "[0, 1)"),
        (dict(h=0.1, lam=-0.1, a=0.0), "lam", "[0, 1)"),
        (dict(h=0.1, lam=0.5, a=-1.0), "a", "[0, inf)"),
        (dict(h=0.1, lam=0.5, a=float("inf")), "a", "[0, inf)"),
        (dict(h=np.array([0.1, -0.2]), lam=0.5, a=0.0), "h", "(0, inf)"),
    ],
)
def test_validation_names_parameter_value_and_range(kwargs, name, allowed):
    with pytest.raises(ValueError) as info:
        mj.Momentum(**kwargs)
    msg = str(info.value)
    assert msg.startswith(f"{name}=") and allowed in msg


def test_traced_values_pass_through():
    # Inside jit the values are unknown, so construction must not try to check them.
    @jax.jit
    def f(h):
        return mj.heavy_ball(h, 0.9).h * 2

    assert f(-1.0) == -2.0


def test_momentum_is_a_vmappable_pytree():
    ms = mj.Momentum(jnp.array([0.1, 0.2]), jnp.array([0.5, 0.9]), jnp.array([0.0, 0.9]))
    alphas = jax.vmap(lambda m: m.alpha)(ms)
    np.testing.assert_allclose(alphas, [0.75, (1 - 0.9 + 2 * 0.81) / 2], rtol=1e-15)
