"""The invariant manifold (Thm 5, docs/theory.md §3)."""

import closed_form as cf
import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj
from momentum_jax._losses import double_well, paper_quadratic


@pytest.mark.parametrize("make", [mj.heavy_ball, mj.nesterov])
def test_manifold_velocity_matches_formula_on_quadratic(make):
    m = make(2.0**-6, 0.9)
    w = mj.manifold_velocity(paper_quadratic(20.0), jnp.array([1.0, -2.0]), m)
    np.testing.assert_allclose(w, cf.manifold_w0([20, 1], [1, -2], m), rtol=1e-14)


@pytest.mark.parametrize("lam", [0.5, 0.9])
@pytest.mark.parametrize("make", [mj.heavy_ball, mj.nesterov])
def test_distance_contracts_by_about_lam(make, lam):
    # Fig 5: start off the manifold (v_0 = 0), the distance shrinks like (lam + O(h))^n until it
    # reaches the O(h^2) accuracy of the first-order manifold; measure over the first steps.
    m = make(2.0**-10, lam)
    loss = double_well
    steps = 20 if lam == 0.9 else 8
    us, ws = mj.iterate(loss, jnp.array([0.3, 1.0]), m, steps, return_velocity=True)
    e = mj.distances_along(loss, us, ws, m)
    rate = float(mj.contraction_factor(e, skip=1))
    assert abs(rate - lam) < 0.015


def test_fig5_quadratic_distance_envelope():
    # Paper Fig 5 setting: kappa = 20, h = 2^-6, u_0 = (1, 1), v_0 = 0. Here h kappa exceeds
    # (1 - sqrt(lam))^2, the off-manifold roots of the kappa-direction are complex with modulus
    # sqrt(lam), so |e_n| oscillates under an envelope that shrinks like sqrt(lam)^n.
    m = mj.heavy_ball(2.0**-6, 0.9)
    loss = paper_quadratic(20.0)
    us, ws = mj.iterate(loss, jnp.array([1.0, 1.0]), m, 200, return_velocity=True)
    e = np.asarray(mj.distances_along(loss, us, ws, m, order=0))
    envelope = np.array([e[k : k + 20].max() for k in range(0, 200, 20)])
    per_step = (envelope[-1] / envelope[1]) ** (1 / 160)
    assert abs(per_step - np.sqrt(0.9)) < 0.01
