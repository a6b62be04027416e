"""The exponentially attractive invariant manifold of the momentum map (paper Thm 5,
docs/theory.md §3).

In the scaled-velocity variables `w_n = (u_n - u_{n-1}) / h` (paper eq. 15) the map has an
invariant manifold `w = -lbar grad Phi(u) + h g(u) + O(h^2)` with
`g(u) = lbar^2 (a - lbar) Hess Phi(u) grad Phi(u)`. Off-manifold distances shrink by about `lam`
per step.
"""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _tree
from ._derivatives import grad_and_hess_grad
from ._method import Momentum
from ._sharpness import top_eigenpair
from ._validate import check_range, concrete

MANIFOLD_SERIES_LIMIT = 0.1
"""The largest `h L / (1 - lam)^2` at which a manifold start is taken without a warning. The
series of Thm 5 is an expansion in this number (its first-order term is about this fraction of
the leading one; on a quadratic with `lam = 0.9` the first-order velocity is 2% off the exact
manifold at 0.1, 12% at 0.2, and there is no real manifold beyond about 0.26)."""


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


def contraction_factor(distances, *, skip: int = 1, above_floor: float = 100.0, tail: float = 0.5):
    """The asymptotic contraction per step of a distance sequence `|e_n|`: `exp` of the
    least-squares slope of `log |e_n|` against `n` over the tail of the sequence, through the
    peaks of `|e_n|` there when it oscillates. About `lam` for the momentum map where the
    off-manifold root is real (Thm 5); where the roots are complex, `|e_n|` oscillates under an
    envelope that shrinks by the root modulus `sqrt(lam - a h q)` per step (docs/theory.md §5),
    and the fit through the peaks measures that modulus.

    The tail is the last fraction `tail` of the steps from `skip` to `m`, `m` the last step whose
    distance is still `above_floor` times the smallest one: the distance to the first-order
    manifold stops shrinking at its `O(h^2)` accuracy floor, and the factor measures the
    contraction, not the floor. A peak is a step at least as large as the one before and larger
    than the one after; with fewer than two peaks in the tail (a monotone contraction) every step
    of the tail enters the fit. A ratio of two steps, or of the largest values in two halves,
    measures the phase of an oscillation as much as its decay (on Fig 5's Nesterov run, 0.857
    against the root modulus 0.941).

    **Arguments:**

    - `distances`: a 1-D sequence of distances (at least 3 steps).
    - `skip`: steps left out at the start (the start itself is often special).
    - `above_floor`: the tail ends at the last step above this multiple of the smallest distance.
    - `tail`: the fraction of the steps from `skip` to that step that are fitted, in `(0, 1]`.

    **Returns:** the factor per step, a scalar array (traceable: `jit` and `vmap` work).
    """
    d = jnp.asarray(distances)
    if d.ndim != 1 or d.shape[0] < 3:
        raise ValueError(f"distances must be 1-D with at least 3 steps, got shape {d.shape}")
    if not 0 <= skip <= d.shape[0] - 3:
        raise ValueError(f"skip={skip} is outside the allowed range [0, {d.shape[0] - 3}]")
    check_range("tail", tail, low=0.0, low_open=True, high=1.0)
    n = d.shape[0]
    idx = jnp.arange(n)
    last = jnp.max(jnp.where((d > above_floor * jnp.min(d)) & (idx > skip), idx, skip + 1))
    first = skip + jnp.floor((1.0 - tail) * (last - skip).astype(float)).astype(idx.dtype)
    window = (idx >= jnp.minimum(first, last - 1)) & (idx <= last) & (d > 0)
    inf = jnp.full((1,), jnp.inf, d.dtype)
    before, after = jnp.concatenate([inf, d[:-1]]), jnp.concatenate([d[1:], inf])
    peaks = window & (d >= before) & (d > after)
    w = jnp.where(jnp.sum(peaks) >= 2, peaks, window).astype(d.dtype)
    y = jnp.log(jnp.where(w > 0, d, 1.0))
    x = idx.astype(d.dtype)
    xm, ym = jnp.sum(w * x) / jnp.sum(w), jnp.sum(w * y) / jnp.sum(w)
    slope = jnp.sum(w * (x - xm) * (y - ym)) / jnp.sum(w * (x - xm) ** 2)
    return jnp.exp(slope)


HESSIAN_SCALE_RTOL = 1e-3
"""The relative residual of `_hessian_scale`: the scale only decides a warning."""


@eqx.filter_jit
def _hessian_scale(loss, iters, u):
    """`L`, the largest magnitude of an eigenvalue of `Hess Phi(u)` (the local Lipschitz constant
    of `grad Phi`): the larger of `|lambda_max|` and `|lambda_min|`, each by the Krylov iteration
    of `top_hessian_eigenvalue` (on `H` and on `-H`, one batched loop) to a relative residual of
    `HESSIAN_SCALE_RTOL`, at most `iters` (a traced integer) Hessian-vector products each."""

    def extreme(sign):
        return top_eigenpair(loss, u, HESSIAN_SCALE_RTOL, iters, jax.random.PRNGKey(0), sign).value

    return jnp.max(jnp.abs(jax.vmap(extreme)(jnp.array([1.0, -1.0], _tree.dtype(u)))))


def warn_outside_series_range(loss, u0, h, lam, what: str, stacklevel: int = 3) -> None:
    """Warn (`RuntimeWarning`) when a manifold start at the learning rates `h` and momenta `lam`
    (arrays of one shape: one method, or the points of a grid) has `h L / (1 - lam)^2` above
    `MANIFOLD_SERIES_LIMIT`, `L` the Hessian scale at `u0`: there the series of Thm 5 does not
    describe the manifold, the start is far off it, and errors from it measure the start rather
    than a model. Traced values are not checked."""
    h_np, lam_np = concrete(h), concrete(lam)
    if h_np is None or lam_np is None or any(concrete(x) is None for x in jax.tree.leaves(u0)):
        return
    scale = _hessian_scale(loss, jnp.asarray(100), u0)
    if isinstance(scale, jax.core.Tracer):  # inside a transformation the loss is traced
        return
    L = float(scale)
    x = np.broadcast_to(
        h_np * L / (1.0 - lam_np) ** 2, np.broadcast_shapes(h_np.shape, lam_np.shape)
    )
    bad = x > MANIFOLD_SERIES_LIMIT
    if not np.any(bad):
        return
    worst = np.unravel_index(np.argmax(x), x.shape)
    h_w = float(np.broadcast_to(h_np, x.shape)[worst])
    lam_w = float(np.broadcast_to(lam_np, x.shape)[worst])
    where = (
        f"at h={h_w:g}, lam={lam_w:g} has h L / (1 - lam)^2 = {x[worst]:.3g}"
        if x.size == 1
        else f"at {int(bad.sum())} of {x.size} grid points has h L / (1 - lam)^2 above "
        f"{MANIFOLD_SERIES_LIMIT:g}, up to {x[worst]:.3g} at h={h_w:g}, lam={lam_w:g}"
    )
    h_max = MANIFOLD_SERIES_LIMIT * (1.0 - lam_w) ** 2 / L
    warnings.warn(
        f"{what}: the manifold start {where}, which is not small (L = {L:.3g} is the largest "
        f"Hessian eigenvalue magnitude at u0; allowed: <= {MANIFOLD_SERIES_LIMIT:g}). The manifold "
        "series (Thm 5) is an expansion in this number: the start is far from the invariant "
        "manifold, and errors from it measure the start, not the model. Use "
        f"h <= {MANIFOLD_SERIES_LIMIT:g} (1 - lam)^2 / L (here {h_max:.3g}) or a zero start.",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
