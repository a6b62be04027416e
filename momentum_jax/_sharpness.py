"""Sharpness (the largest Hessian eigenvalue) by power iteration on Hessian-vector products, and
the sharpness at which a method of the momentum family stops being linearly stable.

Hessian-vector products are forward-over-reverse (`jax.linearize` of `jax.grad`, i.e. `jax.jvp`
of `jax.grad` with the linearisation point computed once); no Hessian is ever formed, so this
works for any pytree of parameters (the MNIST autoencoder has about 2.8 million).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from . import _tree
from ._method import Momentum
from ._types import PyTree
from ._validate import check_loss, check_u0, check_whole


class TopEigenpair(NamedTuple):
    """What `top_hessian_eigenvalue` returns."""

    value: jax.Array
    """The largest (algebraic) eigenvalue of `Hess Phi(params)`, the sharpness."""
    vector: PyTree
    """A unit eigenvector for it, shaped like `params`."""
    residual: jax.Array
    """`||H v - value v|| / max(|value|, tiny)`: small when the iteration has converged."""


def top_hessian_eigenvalue(loss, params: PyTree, *, iters: int = 100, key=None) -> TopEigenpair:
    r"""The sharpness $\lambda_{\max}(\nabla^2\Phi(u))$ by power iteration on Hessian-vector
    products.

    Power iteration $v \leftarrow Hv / \|Hv\|$ from a random unit start converges to the
    eigenvalue of largest *magnitude*; the Rayleigh quotient $v^\top H v$ estimates it with error
    $O((\lambda_2/\lambda_1)^{2k})$ after $k$ steps. Away from a minimum a nonconvex loss can have
    a negative eigenvalue of larger magnitude than the top one; when the first run finds a
    negative value $\sigma$, a second run on the shifted operator $H - \sigma I$ (all of whose
    eigenvalues are $\geq 0$) returns $\lambda_{\max} - \sigma$, and $\sigma$ is added back.

    **Arguments:**

    - `loss`: a scalar function of the parameters only (close over the data).
    - `params`: the point, a pytree of float arrays.
    - `iters`: power-iteration steps (per run).
    - `key`: a `jax.random` key for the start (default `PRNGKey(0)`).

    **Returns:** a `TopEigenpair` `(value, vector, residual)`. Compiled once per `loss` (a new
    function object recompiles) and per parameter shape; `vmap` over `params` works.
    """
    check_u0(params, "params")
    check_loss(loss, params)
    check_whole("iters", iters, low=1)
    key = jax.random.PRNGKey(0) if key is None else key
    return _top(loss, iters, params, key)


def sharpness(loss, params: PyTree, iters: int = 20, key=None) -> jax.Array:
    """The top Hessian eigenvalue of `loss` at `params` (`top_hessian_eigenvalue(...).value`),
    without the input checks, for use inside compiled code (`jit`, `vmap`)."""
    return _top(loss, iters, params, jax.random.PRNGKey(0) if key is None else key).value


@eqx.filter_jit
def _top(loss, iters, params, key):
    _, hess = jax.linearize(jax.grad(loss), params)
    dtype = _tree.dtype(params)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    v0 = treedef.unflatten(
        [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)]
    )
    v0 = _tree.scale(1.0 / _tree.norm(v0), v0)

    # One loop (one copy of the Hessian-vector product to compile) of `iters` steps on H, and,
    # when its Rayleigh quotient is negative, `iters` more on H - sigma I restarted from v0.
    def body(carry):
        i, v, shift, total = carry
        hv = _tree.axpy(-shift, v, hess(v))
        n = _tree.norm(hv)
        # An exactly zero H v (a zero Hessian) keeps v: the eigenvalue is then 0.
        v_next = jax.tree.map(lambda a, b: jnp.where(n > 0, a / jnp.where(n > 0, n, 1.0), b), hv, v)
        rq = _tree.dot(v, hv)  # the Rayleigh quotient of v (shift is 0 in the first run)
        restart = (i + 1 == iters) & (total == iters) & (rq < 0)
        v_next = jax.tree.map(lambda a, b: jnp.where(restart, a, b), v0, v_next)
        shift = jnp.where(restart, rq, shift)
        total = jnp.where(restart, 2 * iters, total)
        return i + 1, v_next, shift, total

    start = (jnp.asarray(0), v0, jnp.zeros((), dtype), jnp.asarray(iters))
    _, v, _, _ = jax.lax.while_loop(lambda c: c[0] < c[3], body, start)
    hv = hess(v)
    value = _tree.dot(v, hv)
    r = _tree.norm(_tree.axpy(-value, v, hv))
    tiny = jnp.finfo(dtype).tiny
    return TopEigenpair(value, v, r / jnp.maximum(jnp.abs(value), tiny))


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
