"""The exponentially attractive invariant manifold of the momentum map (paper Thm 5,
docs/theory.md §3).

In the scaled-velocity variables `w_n = (u_n - u_{n-1}) / h` (paper eq. 15) the map has an
invariant manifold `w = -lbar grad Phi(u) + h g(u) + O(h^2)` with
`g(u) = lbar^2 (a - lbar) Hess Phi(u) grad Phi(u)`. Off-manifold distances shrink by about `lam`
per step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _tree
from ._derivatives import grad_and_hess_grad
from ._method import Momentum


def manifold_velocity(loss, u, method: Momentum, order: int = 1):
    """The scaled velocity `w` on the invariant manifold at `u`, to `order` in `h`.

    `order=0`: `-lbar grad Phi(u)`; `order=1`: `-lbar grad Phi(u) + h g(u)` (Thm 5). Higher
    orders are computed automatically from Taylor expansions of the map
    (`momentum_jax.manifold_velocity_series`, docs/higher_order.md).
    """
    if order == 0:
        return _tree.scale(-method.lbar, jax.grad(loss)(u))
    if order == 1:
        g, hg = grad_and_hess_grad(loss, u)
        coef = method.h * method.lbar**2 * (method.a - method.lbar)
        return _tree.axpy(coef, hg, _tree.scale(-method.lbar, g))
    from ._higher_order import manifold_velocity_series

    return manifold_velocity_series(loss, u, method, order)


def manifold_distance(loss, u, w, method: Momentum, order: int = 1):
    """`|e| = |w - w_manifold(u)|`, the Euclidean distance of `(u, w)` from the manifold."""
    return _tree.norm(_tree.sub(w, manifold_velocity(loss, u, method, order)))


def distances_along(loss, us, ws, method: Momentum, order: int = 1):
    """`|e_n|` for a trajectory `(us, ws)` with a leading time axis (vectorised over time)."""
    return jax.vmap(lambda u, w: manifold_distance(loss, u, w, method, order))(us, ws)


def contraction_factor(distances, *, skip: int = 1, above_floor: float = 100.0):
    """Geometric-mean contraction per step `(|e_m| / |e_skip|)^(1 / (m - skip))` of a distance
    sequence; about `lam` for the momentum map (Thm 5). The distance to the first-order manifold
    stops shrinking at its `O(h^2)` accuracy floor, so `m` is the last step whose distance is
    still `above_floor` times the smallest one: the factor measures the contraction, not the
    floor."""
    d = jnp.asarray(distances)
    idx = jnp.arange(d.shape[0])
    last = jnp.max(jnp.where((d > above_floor * jnp.min(d)) & (idx > skip), idx, skip + 1))
    return (d[last] / d[skip]) ** (1.0 / (last - skip))
