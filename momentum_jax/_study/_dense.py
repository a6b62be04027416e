"""Fast evaluation of diffrax's dense output at many times.

The engine evaluates every model at every discrete time `n h` of every point: millions of
evaluations. diffrax's `DenseInterpolation.evaluate` rebuilds the step's local interpolant for
every query; here each step's interpolant, a polynomial of degree `p` in the step's local time
`theta in [0, 1]` for the solvers used here, is converted once into its monomial coefficients
(by evaluating it at `p + 1` nodes), after which a query is a binary search and a Horner
evaluation. The conversion is exact for polynomials of degree `<= p`; for Tsitouras' method the
values agree with diffrax's to rounding (tested).
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .._model._stiff import DampedESDIRK

INTERPOLANT_DEGREE: dict[type, int] = {
    diffrax.Tsit5: 4,
    diffrax.Dopri5: 4,
    diffrax.Heun: 3,
    diffrax.Bosh3: 3,
    DampedESDIRK: 5,
}
"""Degree in `theta` of the dense output of each solver; other solvers get 7 (Chebyshev nodes)."""


def _tsit5_monomials() -> np.ndarray:
    """`M[i, j]`: the coefficient of `theta^j` in the weight `b_{i+1}(theta)` of the stage
    `k_{i+1}` in Tsitouras' dense output (diffrax's `_Tsit5Interpolation`), expanded exactly."""
    P = np.polynomial.polynomial
    t = np.array([0.0, 1.0])
    t2 = P.polymul(t, t)

    def lin(r):
        return np.array([-r, 1.0])

    rows = [
        -1.0530884977290216
        * P.polymul(
            P.polymul(t, lin(1.3299890189751412)), [0.7139816917074209, -1.4364028541716351, 1.0]
        ),
        0.1017 * P.polymul(t2, [1.2949852507374631, -2.1966568338249754, 1.0]),
        2.490627285651252793 * P.polymul(t2, [1.57803468208092486, -2.38535645472061657, 1.0]),
        -16.54810288924490272
        * P.polymul(P.polymul(lin(1.21712927295533244), lin(0.61620406037800089)), t2),
        47.37952196281928122
        * P.polymul(P.polymul(lin(1.203071208372362603), lin(0.658047292653547382)), t2),
        -34.87065786149660974 * P.polymul(P.polymul(lin(1.2), lin(0.666666666666666667)), t2),
        2.5 * P.polymul(P.polymul(lin(1.0), lin(0.6)), t2),
    ]
    out = np.zeros((7, 5))
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


TSIT5_MONOMIALS = _tsit5_monomials()


def interpolant_degree(solver) -> int:
    return INTERPOLANT_DEGREE.get(type(solver), 7)


def _nodes(degree: int) -> np.ndarray:
    if degree <= 4:
        return np.linspace(0.0, 1.0, degree + 1)
    k = np.arange(degree + 1)
    return 0.5 - 0.5 * np.cos(np.pi * (k + 0.5) / (degree + 1))


class Table:
    """The dense output of one solve as monomial coefficients: `ts` `(S + 1,)` step boundaries
    (padded with `+inf`), `coeffs` a tuple (one per power of `theta`, lowest first) of pytrees
    like the state with leaves `(S, ...)`, `size` the number of steps in use. (One array per
    power: a query gathers each with the same index, which is cheaper than one gather of a
    `(degree + 1, ...)` block followed by a transpose.)"""

    def __init__(self, ts, coeffs, size):
        self.ts, self.coeffs, self.size = ts, coeffs, size


jax.tree_util.register_pytree_node(
    Table, lambda t: ((t.ts, t.coeffs, t.size), None), lambda _, c: Table(*c)
)


def table(sol: diffrax.Solution, degree: int) -> Table:
    """The monomial table of a dense `sol` (made with `SaveAt(dense=True)`)."""
    interp = sol.interpolation
    assert isinstance(interp, diffrax.DenseInterpolation)
    ts = interp.ts
    n = ts.shape[0] - 1
    nodes_np = _nodes(degree)
    nodes = jnp.asarray(nodes_np, ts.dtype)
    # coefficients = inverse Vandermonde @ values at the nodes (a constant matrix)
    inverse = jnp.asarray(np.linalg.inv(np.vander(nodes_np, degree + 1, increasing=True)), ts.dtype)
    size = jnp.maximum(interp.ts_size - 1, 1)

    def one(i):
        t0, t1 = ts[i], ts[i + 1]
        width = jnp.where(jnp.isfinite(t1 - t0), t1 - t0, 0.0)
        info = jax.tree.map(lambda x: x[i], interp.infos)
        local = interp.interpolation_cls(t0=t0, t1=t0 + width, **info)
        values = jax.vmap(lambda th: local.evaluate(t0 + th * width))(nodes)
        return jax.tree.map(lambda v: jnp.tensordot(inverse, v, axes=1), values)

    if interp.interpolation_cls is diffrax.Tsit5.interpolation_cls:
        # exact: y(theta) = y0 + sum_i b_i(theta) k_i, b_i expanded in monomials
        M = jnp.asarray(TSIT5_MONOMIALS, ts.dtype)

        def leaf(y0, k):
            c = jnp.einsum("ij,si...->sj...", M, k)
            return c.at[:, 0].add(y0)

        stacked = jax.tree.map(leaf, interp.infos["y0"], interp.infos["k"])
    else:
        stacked = jax.vmap(one)(jnp.arange(n))
    coeffs = tuple(jax.tree.map(lambda c, j=j: c[:, j], stacked) for j in range(degree + 1))
    return Table(ts, coeffs, size)


def evaluate(tab: Table, t):
    """The solution at the times `t` (any shape): a pytree like the state with leading axes
    `t.shape`. Times outside the solve are clamped to its first and last steps."""
    ts = tab.ts
    idx = jnp.clip(jnp.searchsorted(ts, t, side="right") - 1, 0, tab.size - 1)
    t0, t1 = ts[idx], ts[idx + 1]
    theta = jnp.where(t1 > t0, (t - t0) / jnp.where(t1 > t0, t1 - t0, 1.0), 0.0)

    def power(j):
        return jax.tree.map(lambda c: c[idx], tab.coeffs[j])

    def times_theta(x):
        return x * theta.reshape(theta.shape + (1,) * (x.ndim - theta.ndim))

    out = power(len(tab.coeffs) - 1)
    for j in range(len(tab.coeffs) - 2, -1, -1):
        out = jax.tree.map(lambda o, c: times_theta(o) + c, out, power(j))
    return out
