"""Fast evaluation of diffrax's dense output at many times.

The engine evaluates every model at every discrete time `n h` of every point: millions of
evaluations. diffrax's `DenseInterpolation.evaluate` rebuilds the step's local interpolant for
every query; here each step's interpolant, a polynomial of degree `p` in the step's local time
`theta in [0, 1]` for the solvers used here, is converted once into its monomial coefficients
(by evaluating it at `p + 1` nodes), after which a query is a binary search and a Horner
evaluation of one gathered row. The conversion is exact for polynomials of degree `<= p`; for
Tsitouras' method the values agree with diffrax's to rounding (tested). `evaluate_sorted` finds
the steps of a sorted chunk of times without a binary search per time.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ._model._stiff import DampedESDIRK

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
    """The dense output of one solve as monomial coefficients, one row per solver step.

    `ts` `(S + 1,)` are the step boundaries (padded with `+inf`) and `size` the number of steps
    in use. Row `i` of `rows` `(S, 2 + (degree + 1) D)` holds the step's start and end and then
    the coefficients of `theta^0, ..., theta^degree`, each the state flattened to `D` numbers,
    so that a query gathers one row. Static: `layout` rebuilds the state's pytree (its treedef
    and the shape and dtype of every leaf), `degree` is the interpolant's."""

    def __init__(self, ts, rows, size, layout, degree: int):
        self.ts, self.rows, self.size = ts, rows, size
        self.layout, self.degree = layout, degree


jax.tree_util.register_pytree_node(
    Table,
    lambda t: ((t.ts, t.rows, t.size), (t.layout, t.degree)),
    lambda aux, c: Table(*c, *aux),
)


def _layout(y, batch: int = 0):
    """The static layout of the state `y` (leaves with `batch` leading axes not included)."""
    leaves, treedef = jax.tree.flatten(y)
    return (
        treedef,
        tuple(tuple(x.shape[batch:]) for x in leaves),
        tuple(jnp.result_type(x) for x in leaves),
    )


def _flatten(y, lead: int):
    """The leaves of `y` as one array `(*leading, D)` (`lead` leading axes kept)."""
    leaves = jax.tree.leaves(y)
    return jnp.concatenate([x.reshape(x.shape[:lead] + (-1,)) for x in leaves], axis=-1)


def _unflatten(layout, flat):
    """`flat` `(D, *batch)` (the state's numbers on the leading axis) as the state's pytree
    with leaves `(*batch, *shape)`."""
    treedef, shapes, dtypes = layout
    out, offset = [], 0
    for shape, dtype in zip(shapes, dtypes):
        size = int(np.prod(shape))
        part = flat[offset : offset + size]
        offset += size
        part = jnp.moveaxis(part, 0, -1).reshape(flat.shape[1:] + shape)
        out.append(part.astype(dtype))
    return jax.tree.unflatten(treedef, out)


def empty(y, steps: int, degree: int) -> Table:
    """A table of `steps` zero steps for every lane of the batched state `y` (leaves with one
    leading lane axis)."""
    leaves = jax.tree.leaves(y)
    layout = _layout(y, batch=1)
    width = 2 + (degree + 1) * sum(int(np.prod(shape)) for shape in layout[1])
    lanes, dtype = leaves[0].shape[0], jnp.result_type(*leaves)
    return Table(
        jnp.zeros((lanes, steps + 1), dtype),
        jnp.zeros((lanes, steps, width), dtype),
        jnp.ones((lanes,), jnp.int32),
        layout,
        degree,
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
    # `stacked`: leaves (S, degree + 1, *shape)
    powers = [_flatten(jax.tree.map(lambda c, j=j: c[:, j], stacked), 1) for j in range(degree + 1)]
    rows = jnp.concatenate([ts[:-1, None], ts[1:, None], *powers], axis=1)
    return Table(ts, rows, size, _layout(stacked, batch=2), degree)


def _at(tab: Table, t, idx):
    """The solution at the times `t` in the steps `idx` (same shape): one row gather, then
    Horner's scheme with the state's numbers on the leading axis (faster on a CPU for small
    states than with them on the last axis)."""
    row = jnp.moveaxis(tab.rows.at[idx].get(mode="clip"), -1, 0)
    t0, t1 = row[0], row[1]
    theta = jnp.where(t1 > t0, (t - t0) / jnp.where(t1 > t0, t1 - t0, 1.0), 0.0)
    degree = tab.degree
    coeffs = row[2:].reshape((degree + 1, -1) + row.shape[1:])
    out = coeffs[degree]
    for j in range(degree - 1, -1, -1):
        out = out * theta[None] + coeffs[j]
    return _unflatten(tab.layout, out)


def _locate(tab: Table, t):
    """The step of every time `t` (any shape), clamped to the steps in use."""
    return jnp.clip(jnp.searchsorted(tab.ts, t, side="right") - 1, 0, tab.size - 1)


def evaluate(tab: Table, t):
    """The solution at the times `t` (any shape): a pytree like the state with leading axes
    `t.shape`. Times outside the solve are clamped to its first and last steps."""
    return _at(tab, t, _locate(tab, t))


def locate_sorted(tab: Table, t, window: int):
    """The steps of times `t` `(..., n)` that are nondecreasing along the last axis (a chunk
    of `n h`), as `_locate` finds them, where the row `fits`.

    Instead of a binary search of the whole table per time, the `window` step boundaries after
    the step of each row's first time are located among the row's times (a binary search per
    boundary) and the step of every time is a running count. `fits` (shape `t.shape[:-1]`) is
    False where a row spans more than `window` steps.

    **Returns:** `(idx, fits)`."""
    ts = tab.ts
    padded = jnp.concatenate([ts, jnp.full((window,), jnp.inf, ts.dtype)])

    def one(row):
        i0 = _locate(tab, row[0])
        bounds = jax.lax.dynamic_slice(padded, (i0 + 1,), (window,))
        before = jnp.searchsorted(row, bounds, side="left")  # times before each boundary
        count = jnp.zeros(row.shape[0] + 1, jnp.int32).at[before].add(1)
        idx = jnp.clip(i0 + jnp.cumsum(count)[:-1], 0, tab.size - 1)
        return idx, row[-1] < bounds[-1]

    idx, fits = jax.vmap(one)(t.reshape((-1, t.shape[-1])))
    return idx.reshape(t.shape), fits.reshape(t.shape[:-1])


def evaluate_sorted(tab: Table, t, window: int):
    """`evaluate` for times `t` `(..., n)` nondecreasing along the last axis, with the same
    values, bit for bit: the steps come from `locate_sorted`, or, when a row spans more than
    `window` steps, from the binary search of `evaluate` for every row (a `lax.cond`). (It
    pays for a long table, the shared solve's 4096 steps: the Fig 2 grid is 4% faster,
    `benchmarks/RESULTS.md`; not for a window's 64 steps, whose search is as short.)"""
    idx, fits = locate_sorted(tab, t, window)
    idx = jax.lax.cond(jnp.all(fits), lambda: idx, lambda: _locate(tab, t))
    return _at(tab, t, idx)
