"""Exact first and second moments of mini-batch momentum and of its SDE, for per-example
gradients affine in `u` (linear least squares): the exact references of the weak-error study
(docs/stochastic.md)."""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._batches import batch_mean, num_examples
from .._iterate import MomentumState, initial_state, step
from .._method import Momentum
from .._validate import check_choice, check_u0
from ._minibatch import noise_factor
from ._noise import example_gradients
from ._sde import DRIFTS, STARTS, sde_drift, sde_start


class Moments(NamedTuple):
    """First and second moments of `u`: `mean` `(..., d)`, `second = E[u u^T]` `(..., d, d)`."""

    mean: jax.Array
    second: jax.Array

    @property
    def covariance(self) -> jax.Array:
        return self.second - self.mean[..., :, None] * self.mean[..., None, :]


def _affine(fn, dim, dtype):
    """`(J, b, residual)` with `fn(x) ~ J x + b`; `residual` is the mismatch at a test point
    (zero when `fn` is affine)."""
    zero = jnp.zeros(dim, dtype)
    b = fn(zero)
    jac = jax.jacfwd(fn)(zero)
    x = jnp.linspace(-1.3, 0.7, dim, dtype=dtype) + 0.1
    residual = jnp.max(jnp.abs(fn(x) - (jac @ x + b))) / (1.0 + jnp.max(jnp.abs(fn(x))))
    return jac, b, residual


def _check_affine(residual, what):
    if float(residual) > 1e-8:
        raise ValueError(
            f"exact moments need {what} affine in u (per-example gradients affine, "
            f"e.g. linear least squares); the mismatch is {float(residual):.2e}"
        )


def minibatch_moments(
    loss,
    u0,
    method: Momentum,
    data,
    num_steps,
    *,
    batch_size: int = 1,
    replace: bool = True,
    init: str = "zero",
) -> Moments:
    r"""Exact `E u_n` and `E[u_n u_n^T]` of mini-batch `method` after `num_steps` steps, for
    per-example gradients affine in `u` (linear least squares).

    The step is then affine in the state, `x_{n+1} = M_\xi x_n` with `x = (u, w, 1)`, and the
    batch map is the mean of per-example maps, so the second moment `P_n = E[x_n x_n^T]` obeys
    `P_{n+1} = Mbar P Mbar^T + f (avg_i M_i P M_i^T - Mbar P Mbar^T)` with `f = noise_factor`.
    `num_steps` is traced. Raises `ValueError` if a per-example step is not affine.
    """
    check_u0(u0)
    if jnp.ndim(u0) != 1:
        raise ValueError("exact moments need a flat parameter vector u0 of shape (d,)")
    check_choice("init", init, ("zero", "manifold"))
    n = num_examples(data)
    f = noise_factor(batch_size, n, replace)
    mom, residual = _minibatch_moments(
        loss, init, u0, method, data, jnp.asarray(num_steps, jnp.int32), f
    )
    _check_affine(residual, "every per-example step")
    return mom


@eqx.filter_jit
def _minibatch_moments(loss, init, u0, method, data, num_steps, f):
    d = u0.shape[0]
    dtype = u0.dtype

    def example_map(example):
        batch = jax.tree.map(lambda x: x[None], example)
        phi = batch_mean(loss, batch)

        def fn(x):
            s = step(phi, method, MomentumState(x[:d], x[d:]))
            return jnp.concatenate([s.u, s.w])

        return _affine(fn, 2 * d, dtype)

    jac, off, residual = jax.vmap(example_map)(data)
    top = jnp.concatenate([jac, off[:, :, None]], axis=2)
    bottom = jnp.zeros((top.shape[0], 1, 2 * d + 1), dtype).at[:, 0, -1].set(1.0)
    ms = jnp.concatenate([top, bottom], axis=1)  # (N, 2d+1, 2d+1)
    mbar = jnp.mean(ms, axis=0)
    s0 = initial_state(batch_mean(loss, data), u0, method, init)
    x0 = jnp.concatenate([s0.u, s0.w, jnp.ones(1, dtype)])

    def body(_, p):
        mean_part = mbar @ p @ mbar.T
        each = jnp.mean(jnp.einsum("nij,jk,nlk->nil", ms, p, ms), axis=0)
        return mean_part + f * (each - mean_part)

    p = jax.lax.fori_loop(0, num_steps, body, jnp.outer(x0, x0))
    return Moments(p[:d, -1], p[:d, :d]), jnp.max(residual)


def sde_moments(
    loss,
    u0,
    method: Momentum,
    data,
    ts,
    *,
    batch_size: int = 1,
    replace: bool = True,
    drift: str = "modified",
    start: str = "plain",
    diffusion: bool = True,
) -> Moments:
    r"""Exact `E U(t)` and `E[U U^T]` of the SDE of `solve_sde` at the times `ts`, for
    per-example gradients affine in `u`.

    The drift is then affine, `F U + f_0`, and each centred per-example gradient is affine,
    `z_i = Z_i (U, 1)`; with `P = E[(U,1)(U,1)^T]`,
    `P' = Ft P + P Ft^T + h f lbar^2 avg_i [Z_i P Z_i^T]` (padded), a linear ODE solved by a
    matrix exponential. `diffusion=False` gives the noise-free flow.
    """
    check_u0(u0)
    if jnp.ndim(u0) != 1:
        raise ValueError("exact moments need a flat parameter vector u0 of shape (d,)")
    check_choice("drift", drift, DRIFTS)
    check_choice("start", start, STARTS)
    f = noise_factor(batch_size, num_examples(data), replace) if diffusion else 0.0
    mom, residual = _sde_moments(
        loss, drift, start, u0, method, data, jnp.asarray(ts, dtype=u0.dtype), f
    )
    _check_affine(residual, "the drift and the per-example gradients")
    return mom


@eqx.filter_jit
def _sde_moments(loss, drift, start, u0, method, data, ts, f):
    d = u0.shape[0]
    dtype = u0.dtype
    b = sde_drift(loss, data, drift)
    fj, f0, r1 = _affine(lambda u: b(0.0, u, method), d, dtype)

    def centred(u):
        g = example_gradients(loss, u, data)
        return (g - jnp.mean(g, axis=0, keepdims=True)).reshape(-1)

    zj, z0, r2 = _affine(centred, d, dtype)
    n = zj.shape[0] // d
    zs = jnp.concatenate([zj.reshape(n, d, d), z0.reshape(n, d, 1)], axis=2)  # (N, d, d+1)
    ft = jnp.zeros((d + 1, d + 1), dtype).at[:d, :d].set(fj).at[:d, d].set(f0)
    kappa = method.h * f * method.lbar**2

    def rhs(p):
        noise = jnp.mean(jnp.einsum("nij,jk,nlk->nil", zs, p, zs), axis=0)
        return ft @ p + p @ ft.T + kappa * jnp.zeros_like(p).at[:d, :d].set(noise)

    k = d + 1
    op = jax.jacfwd(lambda v: rhs(v.reshape(k, k)).reshape(-1))(jnp.zeros(k * k, dtype))
    y0 = jnp.concatenate([sde_start(loss, data, u0, method, start), jnp.ones(1, dtype)])
    p0 = jnp.outer(y0, y0).reshape(-1)
    ps = jax.vmap(lambda t: jax.scipy.linalg.expm(op * t) @ p0)(ts).reshape(-1, k, k)
    return Moments(ps[:, :d, -1], ps[:, :d, :d]), jnp.maximum(r1, r2)


def quadratic_expectation(g, moments: Moments) -> jax.Array:
    """`E g(u) = tr(Q E[u u^T]) + l . E u + g(0)` for a quadratic `g(u) = u^T Q u + l . u + g(0)`
    (read off by autodiff at 0); vectorised over the leading axes of `moments`. Raises
    `ValueError` if `g` is not quadratic."""
    d = moments.mean.shape[-1]
    dtype = moments.mean.dtype
    zero = jnp.zeros(d, dtype)
    q = 0.5 * jax.hessian(g)(zero)
    lin = jax.grad(g)(zero)
    c0 = g(zero)
    x = jnp.linspace(-0.9, 1.1, d, dtype=dtype)
    mismatch = abs(float(g(x) - (x @ q @ x + lin @ x + c0)))
    if mismatch > 1e-9 * (1.0 + abs(float(g(x)))):
        raise ValueError(f"quadratic_expectation needs a quadratic g; mismatch {mismatch:.2e}")
    return jnp.einsum("ij,...ij->...", q, moments.second) + moments.mean @ lin + c0
