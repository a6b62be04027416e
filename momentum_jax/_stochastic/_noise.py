"""The gradient noise of uniform mini-batch sampling: per-example gradients, their covariance
and its square root (docs/stochastic.md)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._batches import num_examples


def example_gradients(loss, u, data) -> jax.Array:
    """The per-example gradients `grad loss_i(u)`, shape `(N, d)` (flat `u`): forward mode (`d`
    Jacobian-vector products of the `(N,)` losses) when `d <= N`, else one gradient per example."""
    n, d = num_examples(data), u.shape[0]
    if d <= n:
        return jax.jacfwd(lambda v: loss(v, data))(u)

    def one(example):
        batch = jax.tree.map(lambda x: x[None], example)
        return jax.grad(lambda v: loss(v, batch)[0])(u)

    return jax.vmap(one)(data)


def noise_covariance(loss, u, data) -> jax.Array:
    r"""$\Sigma(u) = \frac1N\sum_i z_i z_i^T$ with $z_i = \nabla\ell_i(u) - \nabla\Phi(u)$:
    the covariance of one uniformly drawn per-example gradient, shape `(d, d)` (flat `u`)."""
    g = example_gradients(loss, u, data)
    z = g - jnp.mean(g, axis=0, keepdims=True)
    return z.T @ z / g.shape[0]


def psd_sqrt(s) -> jax.Array:
    """The symmetric square root of a symmetric positive semi-definite matrix: closed form for
    `d <= 2` (`(S + sqrt(det S) I) / sqrt(tr S + 2 sqrt(det S))`, far cheaper than a batched
    `eigh` on CPU), `eigh` otherwise; rounding-level negative eigenvalues are clipped to 0."""
    d = s.shape[-1]
    if d == 1:
        return jnp.sqrt(jnp.maximum(s, 0.0))
    if d == 2:
        root_det = jnp.sqrt(jnp.maximum(s[0, 0] * s[1, 1] - s[0, 1] * s[1, 0], 0.0))
        t = jnp.sqrt(jnp.maximum(s[0, 0] + s[1, 1] + 2.0 * root_det, 0.0))
        safe = jnp.where(t > 0, t, 1.0)
        return jnp.where(t > 0, (s + root_det * jnp.eye(2, dtype=s.dtype)) / safe, 0.0)
    w, v = jnp.linalg.eigh(s)
    return (v * jnp.sqrt(jnp.maximum(w, 0.0))[None, :]) @ v.T
