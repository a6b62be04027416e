"""The models in closed form on quadratic losses `Phi(u) = 1/2 u^T A u` (docs/theory.md §2).

On such a loss every model of this package is a linear ODE whose matrix is a function of `A`
(it is built from `grad Phi = A u` and Hessian-vector products), so in an orthonormal eigenbasis
`A = Q diag(q) Q^T` it splits into one equation per eigenvalue `q_i`: a scalar `z' = g_i z` for
first-order models, a 2 x 2 system `(z, z')' = M_i (z, z')` for second-order ones. Their
solutions are exponentials, evaluated here without an ODE solver and without rounding error
growing with `t`.

The coefficients `g_i`, `M_i` are not written out per model: they are read off the model's own
vector field on the diagonal loss `1/2 <z, diag(q) z>`, applied to a vector of ones (each
component of the result is then one coefficient). A model opts in with `linear = True`; a loss
with `spectrum()` returning `(q, Q)` (`Q = None`: the standard basis) qualifies.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._losses import DiagonalQuadratic
from .._method import Momentum
from ._base import AbstractModel

_SERIES_TERMS = 11
"""Terms of the series of `cosh(sqrt(x))` and `sinh(sqrt(x))/sqrt(x)` used for `|x| < 1`
(the first omitted term is below `1 / 22! < 1e-21`)."""
_COSH = tuple(1.0 / math.factorial(2 * k) for k in range(_SERIES_TERMS))
_SINHC = tuple(1.0 / math.factorial(2 * k + 1) for k in range(_SERIES_TERMS))


def has_closed_form(loss, model: AbstractModel) -> bool:
    """Whether `model` on `loss` has the closed form of this module."""
    return callable(getattr(loss, "spectrum", None)) and model.linear


def check_closed_form(loss, u0, models) -> None:
    """Raise `ValueError` naming `closed_form` unless every model has a closed form on `loss`
    from the start `u0` (a flat 1-D array)."""
    if not callable(getattr(loss, "spectrum", None)):
        raise ValueError(
            "closed_form=True needs a quadratic loss with a spectrum() (DiagonalQuadratic, "
            f"DenseQuadratic), got {type(loss).__name__}; use closed_form=False"
        )
    leaves = jax.tree.leaves(u0)
    if len(leaves) != 1 or jnp.ndim(leaves[0]) != 1:
        raise ValueError("closed_form=True needs a flat 1-D start u0")
    for model in models:
        if not model.linear:
            raise ValueError(
                f"closed_form=True needs linear models; model={model.key!r} is not "
                "(its class does not set linear = True); use closed_form=False"
            )


class Eigen(eqx.Module):
    """The eigenbasis of a quadratic loss: eigenvalues `q` and orthonormal eigenvectors `Q`
    (columns; None for the standard basis)."""

    q: jax.Array
    Q: jax.Array | None

    @classmethod
    def of(cls, loss) -> Eigen:
        q, Q = loss.spectrum()
        return cls(jnp.asarray(q), None if Q is None else jnp.asarray(Q))

    def to(self, x):
        """Coordinates of `x` (last axis) in the eigenbasis."""
        return x if self.Q is None else x @ self.Q

    def back(self, z):
        """The vector with eigen-coordinates `z` (last axis)."""
        return z if self.Q is None else z @ self.Q.T


class ClosedForm(eqx.Module):
    """One model at one grid point in eigen-coordinates: `coef` (`(d,)` rates `g_i`, or
    `(d, 2, 2)` matrices `M_i`) and the initial state `z0` (`(d,)`, or `(d, 2)`: `(z, z')`)."""

    coef: jax.Array
    z0: jax.Array

    @classmethod
    def build(cls, model: AbstractModel, loss, eigen: Eigen, u0, method: Momentum, w0=None):
        """The closed form of `model` on `loss` from `u0` (`w0` as for `initial_state`)."""
        diag = eqx.tree_at(lambda f: f.q, DiagonalQuadratic(np.ones(eigen.q.shape)), eigen.q)
        field = model.vector_field(diag)
        ones, zeros = jnp.ones_like(eigen.q), jnp.zeros_like(eigen.q)
        y0 = model.initial_state(loss, u0, method, w0)
        if not model.second_order:
            return cls(field(0.0, ones, method), eigen.to(y0))
        du_u, dv_u = field(0.0, (ones, zeros), method)
        du_v, dv_v = field(0.0, (zeros, ones), method)
        coef = jnp.stack([jnp.stack([du_u, du_v], -1), jnp.stack([dv_u, dv_v], -1)], -2)
        return cls(coef, jnp.stack([eigen.to(y0[0]), eigen.to(y0[1])], -1))

    def rows(self, t):
        """The first row of the propagator `exp(M t)` (first-order models: `exp(g t)`) at the
        times `t` (any shape): a tuple of arrays of shape `t.shape + (d,)`, one per component
        of the state, that `along` combines with a state."""
        t = jnp.asarray(t, self.z0.dtype)[..., None]
        if self.coef.ndim == 1:
            return (jnp.exp(self.coef * t),)
        return propagator(self.coef, t)[0]

    def state(self, t):
        """The state in eigen-coordinates at the times `t`: a tuple `(z,)` or `(z, z')` of
        arrays of shape `t.shape + (d,)`."""
        if self.coef.ndim == 1:
            return (self.rows(t)[0] * self.z0,)
        t = jnp.asarray(t, self.z0.dtype)[..., None]
        rows = propagator(self.coef, t)
        return tuple(along(row, (self.z0[:, 0], self.z0[:, 1])) for row in rows)

    def position(self, t):
        """`z(t)` for the times `t` (any shape): shape `t.shape + (d,)`."""
        return along(self.rows(t), tuple(self.z0.T) if self.coef.ndim > 1 else (self.z0,))


def along(row, state):
    """The position reached from `state` (from `ClosedForm.state`) after the times of `row`
    (from `ClosedForm.rows`): `sum_k row[k] * state[k]`."""
    out = row[0] * state[0]
    for r, x in zip(row[1:], state[1:]):
        out = out + r * x
    return out


def _horner(x, coefficients):
    out = jnp.full_like(x, coefficients[-1])
    for c in coefficients[-2::-1]:
        out = out * x + c
    return out


def propagator(M, t):
    """`exp(M t)` of 2 x 2 matrices `M` (`(..., 2, 2)`) at times `t` (broadcasting against
    `M[..., 0, 0]`), as `((p11, p12), (p21, p22))`.

    `exp(M t) = e^{m t} (C I + S (M - m I))` with `m = tr M / 2`, `r = m^2 - det M`,
    `C = cosh(sqrt(r) t)`, `S = sinh(sqrt(r) t) / sqrt(r)`. For `|r t^2| < 1` by their series;
    for `r t^2 >= 1` (real eigenvalues `m +- sqrt(r)`, the stiff case) from the two
    exponentials, with the smaller eigenvalue as `det M / (m + sign(m) sqrt(r))` (no cancellation,
    and no `e^{m t} cosh(...)` overflow); for `r t^2 <= -1` by `cos` and `sin`.
    """
    a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
    m = (a + d) / 2
    r = jnp.square((a - d) / 2) + b * c
    det = a * d - b * c
    x = r * t * t
    small = jnp.abs(x) < 1
    xs = jnp.where(small, x, 0.0)
    em = jnp.exp(m * t)
    # real eigenvalues, far apart
    root = jnp.sqrt(jnp.maximum(r, 0.0))
    sign = jnp.where(m >= 0, 1.0, -1.0)
    big = m + sign * root
    other = jnp.where(big != 0, det / jnp.where(big != 0, big, 1.0), 0.0)
    e_big, e_other = jnp.exp(big * t), jnp.exp(other * t)
    safe_root = jnp.where(root > 0, root, 1.0)
    # complex eigenvalues, far apart
    omega = jnp.sqrt(jnp.maximum(-r, 0.0))
    safe_omega = jnp.where(omega > 0, omega, 1.0)
    C = jnp.where(
        small,
        em * _horner(xs, _COSH),
        jnp.where(r > 0, (e_big + e_other) / 2, em * jnp.cos(omega * t)),
    )
    S = jnp.where(
        small,
        em * t * _horner(xs, _SINHC),
        jnp.where(
            r > 0,
            sign * (e_big - e_other) / (2 * safe_root),
            em * jnp.sin(omega * t) / safe_omega,
        ),
    )
    return (C + S * (a - m), S * b), (S * c, C + S * (d - m))
