"""The warning for a manifold start far outside the range of the manifold series (Thm 5)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import TS, U0, count_compiles, fake_study_loop, scaled_quadratic

import momentum_jax as mj
from momentum_jax._losses import paper_quadratic

# -- 3. init="manifold" far outside the range of the manifold series --------------------------


def test_manifold_start_outside_the_series_range_warns(monkeypatch):
    # the README example: lam = 0.9, h = 2^-4 on kappa = 10 gives h L / (1 - lam)^2 = 62.5 and
    # w0 = (-6350, -72.5); at h = 2^-14 the parameter is 0.061 and nothing is said
    loss = paper_quadratic(10.0)
    far, near = mj.heavy_ball(2.0**-4, 0.9), mj.heavy_ball(2.0**-14, 0.9)
    match = r"h L / \(1 - lam\)\^2 = 62\.5, which is not small \(L = 10 "
    with pytest.warns(RuntimeWarning, match=match):
        mj.iterate(loss, U0, far, 3, init="manifold")
    with pytest.warns(RuntimeWarning, match=match):
        mj.iterate_final(loss, U0, far, 3, init="manifold")
    with pytest.warns(RuntimeWarning, match=match):
        mj.solve(loss, U0, far, TS, model=mj.Hamiltonian(velocity="manifold"))
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)  # (warned before)
    with pytest.warns(RuntimeWarning, match=r"at 2 of 4 grid points .* up to 62\.5"):
        mj.convergence_study(
            loss,
            U0,
            hs=[2.0**-4, 2.0**-14],
            lams=[0.0, 0.9],
            methods=("hb",),
            T=2.0**-3,
            models=("gradient_flow",),
            init="manifold",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mj.iterate(loss, U0, near, 3, init="manifold")
        mj.iterate(loss, U0, far, 3)  # the zero start has no series


def test_manifold_range_check_does_not_recompile_for_new_values():
    loss = paper_quadratic(10.0)
    with pytest.warns(RuntimeWarning):
        mj.iterate(loss, U0, mj.heavy_ball(2.0**-4, 0.9), 3, init="manifold")
    other, u0 = paper_quadratic(20.0), jnp.array([0.5, 2.0])
    with count_compiles() as compiles, pytest.warns(RuntimeWarning, match="L = 20"):
        mj.iterate(other, u0, mj.heavy_ball(2.0**-5, 0.8), 3, init="manifold")
    assert compiles.n == 0


def test_manifold_range_check_inside_jit_is_skipped():
    # the loss's data are traced here: the range cannot be known and nothing is checked
    def run(k):
        return mj.iterate(
            jax.tree_util.Partial(scaled_quadratic, k=k),
            U0,
            mj.heavy_ball(0.1, 0.5),
            3,
            init="manifold",
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        us = jax.jit(run)(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(us, run(jnp.array([0.1, 0.2])), rtol=1e-14)
