"""Quadratic losses: the paper's `1/2 <u, diag(kappa, 1) u>` (Figs 1-5) and dense ones."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._types import ArrayLike
from .._validate import concrete
from ._registry import LossSpec, register_loss


def _flat_floats(q):
    return np.asarray(q, dtype=float).ravel()


class DiagonalQuadratic(eqx.Module):
    """`Phi(u) = 1/2 <u, diag(q) u>`: the paper's loss with `q = (kappa, 1)` (Figs 1-5).

    An `equinox.Module` whose array leaf is `q`: compiled functions trace `q`, so studies of
    several `kappa` share one compilation.
    """

    q: np.ndarray | jax.Array

    def __init__(self, q: ArrayLike | Sequence[float]):
        self.q = _flat_floats(q)

    @property
    def name(self) -> str:
        q = concrete(self.q)
        return "quadratic" if q is None else f"quadratic{tuple(q.tolist())}"

    def __call__(self, u):
        """The loss at `u`, an array of `q.size` entries (read flat), in the wider of the
        dtypes of `q` and `u` (NumPy's promotion: float64 for a float32 `u` beside a float64
        `q`)."""
        u, q = jnp.asarray(u), jnp.asarray(self.q)
        dtype = np.promote_types(q.dtype, u.dtype)
        return 0.5 * jnp.sum(q.astype(dtype).reshape(u.shape) * jnp.square(u).astype(dtype))

    def spectrum(self):
        """The Hessian's eigenvalues `q` and eigenvectors (None: the standard basis)."""
        return jnp.asarray(self.q), None


@cache
def paper_quadratic(kappa: float = 10.0) -> DiagonalQuadratic:
    """The paper's `Phi(u) = 1/2 (kappa u_1^2 + u_2^2)`."""
    return DiagonalQuadratic((kappa, 1.0))


@register_loss("quadratic")
def _quadratic(kappa: float = 10.0) -> LossSpec:
    return LossSpec(
        "quadratic",
        paper_quadratic(float(kappa)),
        jnp.array([1.0, 1.0]),
        f"paper's quadratic 1/2 <u, diag(kappa, 1) u>, kappa={kappa:g}, u0=(1, 1) (Figs 1-5)",
    )


class DenseQuadratic(eqx.Module):
    """`Phi(u) = 1/2 u^T A u` with a symmetric matrix `A` (a traced leaf)."""

    A: jax.Array

    name = "dense_quadratic"

    def __call__(self, u):
        return 0.5 * u @ (self.A @ u)

    def spectrum(self):
        """The eigenvalues and orthonormal eigenvectors (columns) of `A` (`jnp.linalg.eigh`)."""
        return jnp.linalg.eigh(self.A)


def dense_quadratic_matrix(dim: int, condition: float, seed: int = 0) -> np.ndarray:
    """`Q diag(geomspace(1, condition, dim)) Q^T` with a random orthogonal `Q` (seeded)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    eig = np.geomspace(1.0, condition, dim)
    return (q * eig) @ q.T


@register_loss("dense_quadratic")
def _dense_quadratic(dim: int = 10, condition: float = 100.0, seed: int = 0) -> LossSpec:
    A = jnp.asarray(dense_quadratic_matrix(dim, condition, seed))
    return LossSpec(
        "dense_quadratic",
        DenseQuadratic(A),
        jnp.ones(dim) / np.sqrt(dim),
        f"1/2 u^T A u, dense A of dimension {dim} with condition number {condition:g}",
    )
