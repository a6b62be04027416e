"""A synthetic linear least-squares problem with non-vanishing gradient noise at its minimum
(the exact reference of the stochastic code)."""

from __future__ import annotations

from functools import cache

import jax.numpy as jnp
import numpy as np

from ._registry import LossSpec, register_loss


def least_squares_example(u, batch):
    """Per-example losses `(1/2) (a_i . u - b_i)^2`, shape `(B,)`, of a batch `(a, b)` with
    `a` `(B, d)` and `b` `(B,)`: the `(params, batch)` loss of the mini-batch code."""
    a, b = batch
    return 0.5 * jnp.square(a @ u - b)


@cache
def _least_squares_arrays(n: int, dim: int, seed: int, scales: tuple, sigma: float):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, dim)) * np.resize(np.asarray(scales, dtype=float), dim)
    e = rng.standard_normal(n)
    e -= a @ np.linalg.lstsq(a, e, rcond=None)[0]  # residual orthogonal to a's columns
    b = sigma * np.sqrt(n) * e / np.linalg.norm(e)
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


def least_squares_data(
    n: int = 32, dim: int = 2, seed: int = 0, scales=(1.0, 0.8), sigma: float = 1.0
):
    """A small synthetic regression data set `(a, b)`: `a_i ~ N(0, diag(scales)^2)` (`n x dim`),
    labels `b` chosen orthogonal to the columns of `a` with mean square `sigma^2`, so the
    least-squares loss `Phi(u) = (1/2n) sum_i (a_i . u - b_i)^2` has its minimiser exactly at
    `u* = 0` with residual noise `sigma` there (mini-batch gradient noise does not vanish at
    the minimum). Deterministic in `seed`; float64 NumPy arrays."""
    if n < dim + 1:
        raise ValueError(f"n={n} must exceed dim={dim} (labels need a nonzero residual)")
    a, b = _least_squares_arrays(
        int(n), int(dim), int(seed), tuple(float(s) for s in np.ravel(scales)), float(sigma)
    )
    return a.copy(), b.copy()


@register_loss("least_squares")
def _least_squares(n: int = 32, dim: int = 2, seed: int = 0, sigma: float = 1.0) -> LossSpec:
    a, b = (jnp.asarray(x) for x in least_squares_data(n, dim, seed, sigma=sigma))

    def least_squares(u):
        return jnp.mean(least_squares_example(u, (a, b)))

    return LossSpec(
        "least_squares",
        least_squares,
        jnp.ones(dim),
        f"linear least squares on {n} synthetic points in dimension {dim} (minimiser 0, residual "
        f"noise {sigma:g}); per-example form least_squares_example for mini-batches",
    )
