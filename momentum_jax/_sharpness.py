"""Sharpness (the largest Hessian eigenvalue) to a stated tolerance by a Krylov iteration on
Hessian-vector products, and the sharpness at which a method of the momentum family stops being
linearly stable.

Hessian-vector products are forward-over-reverse (`jax.linearize` of `jax.grad`, i.e. `jax.jvp`
of `jax.grad` with the linearisation point computed once); no Hessian is ever formed, so this
works for any pytree of parameters (the MNIST autoencoder has about 2.8 million).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from . import _tree
from ._method import Momentum
from ._types import PyTree
from ._validate import check_loss, check_range, check_u0, check_whole

SHARPNESS_RTOL = 1e-4
"""The default relative residual `||H v - value v|| / |value|` at which the iteration stops."""
SHARPNESS_MAX_ITERS = 500
"""The default cap on the Hessian-vector products of one eigenvalue."""
DROP = 1e-6
"""A unit search direction whose part orthogonal to the others is shorter than this is left
out."""


class TopEigenpair(NamedTuple):
    """What `top_hessian_eigenvalue` returns."""

    value: jax.Array
    """The largest (algebraic) eigenvalue of `Hess Phi(params)`, the sharpness: the Rayleigh
    quotient of `vector`, so never above the true value."""
    vector: PyTree
    """A unit eigenvector for it, shaped like `params`."""
    residual: jax.Array
    """`||H v - value v|| / max(|value|, tiny)`, from a freshly computed `H v`. An eigenvalue of
    `H` lies within `residual * |value|` of `value`, and when that is the top one, with the next
    eigenvalue a gap `delta` below, `0 <= lambda_max - value <= (residual * value)^2 / delta`."""
    converged: jax.Array
    """`residual <= rtol` (a boolean): False when the iteration stopped at `max_iters`."""
    iterations: jax.Array
    """The number of Hessian-vector products used."""


def top_hessian_eigenvalue(
    loss,
    params: PyTree,
    *,
    rtol: float = SHARPNESS_RTOL,
    max_iters: int = SHARPNESS_MAX_ITERS,
    key=None,
    iters: int | None = None,
) -> TopEigenpair:
    r"""The sharpness $\lambda_{\max}(\nabla^2\Phi(u))$, iterated until the relative residual
    $\|Hv - \theta v\| / |\theta|$ is at most `rtol`.

    The iteration is the locally optimal Krylov method with one vector (LOBPCG, Knyazev 2001):
    each step maximises the Rayleigh quotient $\theta = v^\top H v$ over
    $\mathrm{span}\{v, r, p\}$, $r = Hv - \theta v$ the residual and $p$ the previous step, for
    two Hessian-vector products (one batched call). Its rate is set by the square root of the
    relative gap below the top eigenvalue, power iteration's by the gap itself: on the README's
    digits autoencoder at its start it takes 126 products to `rtol = 1e-4`, power iteration 267,
    and 20 power-iteration steps are 2.3% low there (4.8% after 200 HB steps). It maximises, so
    it finds the top eigenvalue even where a negative one is larger in magnitude. Every image of
    a new direction is a fresh product; `H v` is their combination, and when its residual meets
    `rtol` one more fresh `H v` confirms it: `residual` is always that of a fresh product.

    **Arguments:**

    - `loss`: a scalar function of the parameters only (close over the data).
    - `params`: the point, a pytree of float arrays.
    - `rtol`: the relative residual to stop at, in `[0, 1)` (0: run to `max_iters`). The
      Rayleigh quotient is a lower bound whose error is about `rtol^2 |value| / relative gap`.
    - `max_iters`: the largest number of Hessian-vector products, an integer `>= 1`.
    - `key`: a `jax.random` key for the start (default `PRNGKey(0)`).
    - `iters`: deprecated: a fixed number of products (`rtol=0, max_iters=iters`).

    **Returns:** a `TopEigenpair` `(value, vector, residual, converged, iterations)`. `rtol` and
    `max_iters` are traced (new values do not recompile); compiled once per `loss` (a new
    function object recompiles) and per parameter shape; `vmap` over `params` works.
    """
    check_u0(params, "params")
    check_loss(loss, params)
    if iters is not None:
        check_whole("iters", iters, low=1)
        rtol, max_iters = 0.0, iters
    check_range("rtol", rtol, low=0.0, high=1.0, high_open=True)
    check_whole("max_iters", max_iters, low=1)
    key = jax.random.PRNGKey(0) if key is None else key
    return _top(loss, params, jnp.asarray(rtol), jnp.asarray(max_iters), key)


def sharpness(
    loss, params: PyTree, *, rtol=SHARPNESS_RTOL, max_iters=SHARPNESS_MAX_ITERS, key=None
) -> TopEigenpair:
    """`top_hessian_eigenvalue` without the input checks, for use inside compiled code (`jit`,
    `vmap`; `rtol` and `max_iters` may be traced)."""
    key = jax.random.PRNGKey(0) if key is None else key
    return top_eigenpair(loss, params, rtol, max_iters, key)


def top_eigenpair(loss, params, rtol, max_iters, key, sign=1.0) -> TopEigenpair:
    """The top eigenpair of `sign * Hess loss(params)` by the locally optimal Krylov iteration
    (see `top_hessian_eigenvalue`); unchecked, traceable in every argument but `loss`."""
    _, lin_tree = jax.linearize(jax.grad(loss), params)
    dtype = _tree.dtype(params)
    # the iteration on one flat vector: a dot or a norm is one operation, whatever the number of
    # arrays in `params` (a network's layers), which keeps the compiled loop small
    _, unravel = ravel_pytree(params)

    def lin(x):
        return ravel_pytree(lin_tree(unravel(x)))[0]

    sign = jnp.asarray(sign, dtype)
    rtol = jnp.asarray(rtol, dtype)
    tiny = jnp.finfo(dtype).tiny

    def hess_pair(x, y):  # one batched product: one copy of the Hessian-vector product
        both = jax.tree.map(lambda a, b: jnp.stack([a, b]), x, y)
        out = _tree.scale(sign, jax.vmap(lin)(both))
        return jax.tree.map(lambda a: a[0], out), jax.tree.map(lambda a: a[1], out)

    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    v0 = jax.tree.unflatten(
        treedef,
        [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)],
    )
    v0 = ravel_pytree(_tree.scale(1.0 / _tree.norm(v0), v0))[0]

    def residual(v, hv):
        theta = _tree.dot(v, hv)
        r = _tree.axpy(-theta, v, hv)
        return r, _tree.norm(r) / jnp.maximum(jnp.abs(theta), tiny)

    def orthonormal(x, basis):  # x without its parts along `basis` (twice), normalised; |x|
        for _ in range(2):
            for b in basis:
                x = _tree.axpy(-_tree.dot(b, x), b, x)
        n = _tree.norm(x)
        return _tree.scale(jnp.where(n > DROP, 1.0 / jnp.where(n > DROP, n, 1.0), 0.0), x), n

    def body(c):
        k, v, hv, p, fresh, _, _ = c
        r, _ = residual(v, hv)
        q2, n2 = orthonormal(_tree.scale(1.0 / jnp.maximum(_tree.norm(r), tiny), r), (v,))
        q3, n3 = orthonormal(p, (v, q2))
        # Fresh: H v itself, to decide on a residual that owes nothing to the tracked H v.
        # Expand: the images of the two new directions, for Rayleigh-Ritz on span{v, q2, q3}.
        hx, hy = hess_pair(_tree.where(fresh, v, q2), _tree.where(fresh, v, q3))
        _, res_f = residual(v, hx)

        keep = jnp.stack([jnp.asarray(True), n2 > DROP, (n3 > DROP) & (n2 > DROP)])
        basis, images = (v, q2, q3), (hv, hx, hy)
        t = jnp.stack(
            [
                jnp.stack(
                    [(_tree.dot(a, hb) + _tree.dot(b, ha)) / 2 for b, hb in zip(basis, images)]
                )
                for a, ha in zip(basis, images)
            ]
        )
        # A dropped direction gets a diagonal entry below every Ritz value of the others.
        low = t[0, 0] - 1.0 - 2.0 * jnp.sum(jnp.abs(t))
        t = jnp.where(keep[:, None] & keep[None, :], t, 0.0) + jnp.diag(jnp.where(keep, 0.0, low))
        y = jnp.linalg.eigh(t)[1][:, -1]
        y = jnp.where(keep, y, 0.0) * jnp.where(y[0] < 0, -1.0, 1.0)
        v_e = _tree.axpy(y[2], q3, _tree.axpy(y[1], q2, _tree.scale(y[0], v)))
        hv_e = _tree.axpy(y[2], hy, _tree.axpy(y[1], hx, _tree.scale(y[0], hv)))
        n_e = _tree.norm(v_e)
        v_e, hv_e = _tree.scale(1.0 / n_e, v_e), _tree.scale(1.0 / n_e, hv_e)
        p_e = _tree.axpy(y[2], q3, _tree.scale(y[1], q2))  # the step, normalised
        n_p = _tree.norm(p_e)
        p_e = _tree.scale(jnp.where(n_p > 0, 1.0 / jnp.where(n_p > 0, n_p, 1.0), 0.0), p_e)
        _, res_e = residual(v_e, hv_e)

        k = k + jnp.where(fresh, 1, 2)
        # After a fresh product: stop when converged or when no expansion (two products) and
        # fresh product (one) are left. Take a fresh product next when an expansion's residual
        # meets rtol, or when only one would be left after another expansion.
        room = k + 3 <= max_iters
        done = fresh & ((res_f <= rtol) | ~room)
        fresh_next = ~fresh & ((res_e <= rtol) | ~room)
        return (
            k,
            _tree.where(fresh, v, v_e),
            _tree.where(fresh, hx, hv_e),
            _tree.where(fresh, p, p_e),
            fresh_next,
            done,
            jnp.where(fresh, res_f, res_e),
        )

    zero = _tree.zeros_like(v0)
    inf = jnp.asarray(jnp.inf, dtype)
    start = (jnp.asarray(0, jnp.int32), v0, zero, zero, jnp.asarray(True), jnp.asarray(False), inf)
    k, v, hv, _, _, _, res = jax.lax.while_loop(lambda c: ~c[5], body, start)
    return TopEigenpair(_tree.dot(v, hv) * sign, unravel(v), res, res <= rtol, k)


_top = eqx.filter_jit(top_eigenpair)


def stability_threshold(method: Momentum):
    r"""The sharpness above which `method` is linearly unstable on a quadratic.

    On $\Phi(u) = \tfrac q2 u^2$ the family (7) is the recurrence
    $u_{n+1} = (1 + \lambda - (1 + a) h q)\,u_n - (\lambda - a h q)\,u_{n-1}$, whose roots leave
    the unit disc through $z = -1$ when
    $$q > q^* = \frac{2 (1 + \lambda)}{h (1 + 2a)}$$
    (gradient descent: $2/h$; heavy ball: $2(1+\lambda)/h$; Nesterov:
    $2(1+\lambda)/(h(1+2\lambda))$). Gradient descent at the effective rate $h/(1-\lambda)$ has
    $q^* = 2(1-\lambda)/h$, $(1+\lambda)/(1-\lambda)$ times smaller than heavy ball's.
    """
    return 2.0 * (1.0 + method.lam) / (method.h * (1.0 + 2.0 * method.a))
