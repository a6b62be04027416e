"""The measurements the paper's multi-seed figures share (`momentum_jax.paper`): the spread of a
result over seeds, the verdict that needs every seed, the sharpness at a point and `h c` of the
modified loss, each against a value worked out by hand."""

import jax.numpy as jnp
import numpy as np

from momentum_jax import paper_quadratic
from momentum_jax.paper import modified_loss_constant, sharpness, spread, verdict


def test_spread_leaves_out_diverged_seeds():
    out = spread(np.array([1.0, 4.0, 7.0]), np.array([False, True, False]))
    assert out == {"per_seed": [1.0, None, 7.0], "mean": 4.0, "min": 1.0, "max": 7.0}
    none = spread(np.array([1.0, np.nan]), np.array([True, False]))
    assert none == {"per_seed": [None, None], "mean": None, "min": None, "max": None}


def test_verdict_needs_every_seed():
    a = np.array([[1.0, 1.0, 3.0], [1.0, 3.0, 3.0]])  # (seeds, h)
    b = np.full((2, 3), 2.0)
    ok = np.array([[True, True, True], [True, True, False]])
    assert verdict(a, b, ok) == ["yes", "mixed 1/2", "no"]
    assert verdict(a, b, np.zeros_like(ok)) == ["n/a"] * 3


def test_sharpness_is_the_top_eigenvalue_of_a_quadratic():
    # Phi = (kappa u_1^2 + u_2^2) / 2: the Hessian is diag(kappa, 1), its top eigenvalue kappa.
    value, residual = sharpness(
        paper_quadratic(25.0), jnp.array([0.3, -0.7]), rtol=1e-10, max_iters=50
    )
    np.testing.assert_allclose(value, 25.0, rtol=1e-9)
    assert residual <= 1e-10


def test_modified_loss_constant_of_each_scheme():
    # docs/theory.md §2: HB c = (1+lam)/(4(1-lam)^2), NAG c = (1-lam+2lam^2)/(4(1-lam)^2), both
    # at rate h; GD at the effective rate h/(1-lam) with c = 1/4.
    h, lam = 0.1, 0.9
    expected = {
        "gd_effective": h / (1 - lam) / 4,
        "hb": h * (1 + lam) / (4 * (1 - lam) ** 2),
        "nag": h * (1 - lam + 2 * lam**2) / (4 * (1 - lam) ** 2),
    }
    for scheme, hc in expected.items():
        np.testing.assert_allclose(modified_loss_constant(scheme, h, lam), hc, rtol=1e-12)
