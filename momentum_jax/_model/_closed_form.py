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


class ClosedForm(eqx.Module):
    """Solve no ODE: evaluate the models' exact solutions on a quadratic loss
    `1/2 u^T A u` (docs/theory.md §2). Pass it where a solver goes:
    `solve(..., solver=ClosedForm())`, `convergence_study(..., solver=ClosedForm())`.

    On such a loss every linear model (`linear = True`: the gradient flow, the damped
    Hamiltonian, the Hessian-damped model, the modified flow) is a linear ODE that splits, in the
    Hessian's eigenbasis, into one scalar or 2 x 2 system per eigenvalue, solved by one
    exponential each: exact to rounding at any time and much faster than an ODE solver. The loss
    must report its spectrum (`DiagonalQuadratic`, `DenseQuadratic`) and the start `u0` be a flat
    1-D array; anything else is refused with a `ValueError` before compiling. `sweep`,
    `vanishing_study` and `solve_limit` always integrate their models and refuse it.
    """


def check_closed_form(loss, u0, models, method: Momentum) -> None:
    """Raise `ValueError` naming `ClosedForm` unless every model has a closed form on `loss`
    from the start `u0` (a flat 1-D array). Besides the declarations (`spectrum()`,
    `linear = True`) this checks their premise concretely, at the first point of `method`: the
    model's field at a random state equals the one the closed form integrates."""
    if not callable(getattr(loss, "spectrum", None)):
        raise ValueError(
            "solver=ClosedForm() needs a quadratic loss with a spectrum() (DiagonalQuadratic, "
            f"DenseQuadratic), got {type(loss).__name__}; solve the ODE instead (solver=None)"
        )
    leaves = jax.tree.leaves(u0)
    if len(leaves) != 1 or jnp.ndim(leaves[0]) != 1:
        raise ValueError("solver=ClosedForm() needs a flat 1-D start u0")
    for model in models:
        if not model.linear:
            raise ValueError(
                f"solver=ClosedForm() needs linear models; model={model.key!r} is not "
                "(its class does not set linear = True); solve the ODE instead (solver=None)"
            )
    dtype = jnp.result_type(leaves[0])
    point = jax.tree.map(lambda x: jnp.ravel(jnp.asarray(x, dtype))[0], method)
    rng = np.random.default_rng(0)
    states = [
        jnp.asarray(rng.standard_normal((2,) + leaves[0].shape), dtype) for _ in range(len(models))
    ]
    gaps, sizes = _premise_gaps(loss, u0, tuple(models), point, states)
    for model, gap, size in zip(models, np.asarray(gaps), np.asarray(sizes)):
        # a wrong premise gives relative differences of order one; rounding (an eigh of a
        # dense matrix, say), about d eps
        if not gap <= 10 * float(jnp.finfo(dtype).eps) ** 0.5 * max(size, 1e-300):
            raise ValueError(
                f"solver=ClosedForm(): the field of model={model.key!r} differs from its closed "
                f"form by {gap:.3g} (relative {gap / max(size, 1e-300):.3g}) at a random state: "
                "the loss is not 1/2 u^T A u with the spectrum() it reports, or the model is "
                "not linear in the state; solve the ODE instead (solver=None)"
            )


@eqx.filter_jit
def _premise_gaps(loss, u0, models, point, states):
    """Per model, the largest difference between its field at the random state (`u`, or
    `(u, u')`, from `states`) and the field the closed form integrates, and the latter's
    size."""
    eigen = Eigen.of(loss, u0.dtype)
    gaps, sizes = [], []
    for model, y in zip(models, states):
        state = (y[0], y[1]) if model.second_order else y[0]
        got = jax.tree.leaves(model.vector_field(loss)(0.0, state, point))
        coef = ExactSolution.build(model, loss, eigen, u0, point).coef
        z = [eigen.to(y[0]), eigen.to(y[1])]
        if model.second_order:
            want = [eigen.back(coef[:, i, 0] * z[0] + coef[:, i, 1] * z[1]) for i in range(2)]
        else:
            want = [eigen.back(coef * z[0])]
        gaps.append(jnp.max(jnp.stack([jnp.max(jnp.abs(g - w)) for g, w in zip(got, want)])))
        sizes.append(jnp.max(jnp.stack([jnp.max(jnp.abs(w)) for w in want])))
    return jnp.stack(gaps), jnp.stack(sizes)


class Eigen(eqx.Module):
    """The eigenbasis of a quadratic loss: eigenvalues `q` and orthonormal eigenvectors `Q`
    (columns; None for the standard basis)."""

    q: jax.Array
    Q: jax.Array | None

    @classmethod
    def of(cls, loss, dtype) -> Eigen:
        """The loss's `spectrum()` in `dtype`."""
        q, Q = loss.spectrum()
        return cls(jnp.asarray(q, dtype), None if Q is None else jnp.asarray(Q, dtype))

    def to(self, x):
        """Coordinates of `x` (last axis) in the eigenbasis."""
        return x if self.Q is None else x @ self.Q

    def back(self, z):
        """The vector with eigen-coordinates `z` (last axis)."""
        return z if self.Q is None else z @ self.Q.T


class ExactSolution(eqx.Module):
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

    def _propagator(self, t):
        """The rows of `exp(M t)` (first-order models: the one row `exp(g t)`) at the times `t`
        (any shape), each a tuple of arrays of shape `t.shape + (d,)`."""
        t = jnp.asarray(t, self.z0.dtype)
        shape = t.shape + self.z0.shape[:1]  # one time per eigen-direction
        t = jnp.broadcast_to(t[..., None], shape)
        if self.coef.ndim == 1:
            return ((jnp.exp(jnp.broadcast_to(self.coef, shape) * t),),)
        return propagator(jnp.broadcast_to(self.coef, shape + (2, 2)), t)

    def _start(self):
        """The initial state as a tuple `(z,)` or `(z, z')` of arrays of shape `(d,)`."""
        return (self.z0,) if self.coef.ndim == 1 else tuple(self.z0.T)

    def rows(self, t):
        """The first row of the propagator at the times `t` (any shape): a tuple of arrays of
        shape `t.shape + (d,)`, one per component of the state, that `along` combines with a
        state."""
        return self._propagator(t)[0]

    def state(self, t):
        """The state in eigen-coordinates at the times `t`: a tuple `(z,)` or `(z, z')` of
        arrays of shape `t.shape + (d,)`."""
        return tuple(along(row, self._start()) for row in self._propagator(t))

    def position(self, t):
        """`z(t)` for the times `t` (any shape): shape `t.shape + (d,)`."""
        return along(self.rows(t), self._start())


def along(row: tuple[jax.Array, ...], state: tuple[jax.Array, ...]) -> jax.Array:
    """The position reached from `state` (from `ExactSolution.state`) after the times of `row`
    (from `ExactSolution.rows`): `sum_k row[k] * state[k]`."""
    out = row[0] * jnp.broadcast_to(state[0], row[0].shape)
    for r, x in zip(row[1:], state[1:]):
        out = out + r * jnp.broadcast_to(x, r.shape)
    return out


def _horner(x, coefficients):
    out = jnp.full_like(x, coefficients[-1])
    for c in coefficients[-2::-1]:
        out = out * x + c
    return out


def propagator(M: jax.Array, t: jax.Array):
    """`exp(M t)` of real 2 x 2 matrices at times `t`.

    **Arguments:** `M` of shape `(..., 2, 2)`; `t` of the shape of `M[..., 0, 0]`.

    **Returns:** `((p11, p12), (p21, p22))`, the entries of `exp(M t)`.

    With `m = tr M / 2`, `delta = (M_11 - M_22) / 2` and `r = delta^2 + M_12 M_21` (the
    eigenvalues are `m +- sqrt(r)`), `exp(M t) = e^{m t} (C I + S (M - m I))` where
    `C = cosh(sqrt(r) t)` and `S = sinh(sqrt(r) t) / sqrt(r)`:

    - `|r t^2| < 1`: `C` and `S` by their series in `r t^2` (no singularity at `r = 0`,
      critical damping);
    - `r t^2 >= 1` (real eigenvalues, the stiff case): from the two exponentials
      `exp(lambda_+- t)`, never `e^{m t} cosh(...)`, which overflows. The eigenvalue of smaller
      magnitude is `det M / lambda`, `lambda` the other one, and the coefficients
      `(sqrt(r) +- delta) / (2 sqrt(r))` are formed without cancellation;
    - `r t^2 <= -1` (complex eigenvalues): by `cos` and `sin`.
    """
    a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
    m, delta = (a + d) / 2, (a - d) / 2
    bc = b * c
    r = jnp.square(delta) + bc
    x = r * t * t
    small = jnp.abs(x) < 1
    xs = jnp.where(small, x, 0.0)
    em = jnp.exp(m * t)
    # series
    C_small, S_small = em * _horner(xs, _COSH), em * t * _horner(xs, _SINHC)
    # real eigenvalues, far apart (square roots of positive numbers only, so that gradients of
    # the unused branches stay finite)
    root = jnp.sqrt(jnp.where(r > 0, r, 1.0))
    big = m + jnp.where(m >= 0, root, -root)
    other = (a * d - bc) / jnp.where(big != 0, big, 1.0)
    plus, minus = jnp.where(m >= 0, big, other), jnp.where(m >= 0, other, big)
    e_plus, e_minus = jnp.exp(plus * t), jnp.exp(minus * t)
    # (root + delta) and (root - delta), one of them as bc / (root -+ delta)
    up = jnp.where(delta >= 0, root + delta, bc / jnp.where(root - delta != 0, root - delta, 1.0))
    down = jnp.where(delta <= 0, root - delta, bc / jnp.where(root + delta != 0, root + delta, 1.0))
    S_real = (e_plus - e_minus) / (2 * root)
    p11_real = (up * e_plus + down * e_minus) / (2 * root)
    p22_real = (down * e_plus + up * e_minus) / (2 * root)
    # complex eigenvalues, far apart
    omega = jnp.sqrt(jnp.where(r < 0, -r, 1.0))
    C_osc, S_osc = em * jnp.cos(omega * t), em * jnp.sin(omega * t) / omega

    def pick(small_value, real_value, osc_value):
        return jnp.where(small, small_value, jnp.where(r > 0, real_value, osc_value))

    S = pick(S_small, S_real, S_osc)
    p11 = pick(C_small + S_small * delta, p11_real, C_osc + S_osc * delta)
    p22 = pick(C_small - S_small * delta, p22_real, C_osc - S_osc * delta)
    return (p11, S * b), (S * c, p22)
