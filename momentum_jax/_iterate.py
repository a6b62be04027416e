"""Pure-functional momentum steps and `lax.scan` loops over them."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _tree
from ._manifold import manifold_velocity
from ._methods import Momentum
from ._types import PyTree
from ._validate import check_init, check_loss, check_u0, check_whole

DIVERGENCE_THRESHOLD = 1e100
"""An iterate whose norm exceeds this (or is not finite) counts as diverged."""


class MomentumState(NamedTuple):
    """State of the map in scaled-velocity form (paper eq. 15): `w_n = (u_n - u_{n-1}) / h`."""

    u: PyTree
    w: PyTree


def step(loss, method: Momentum, state: MomentumState) -> MomentumState:
    r"""One step of the family (paper eq. 15):

    $$w_{n+1} = \lambda w_n - \nabla\Phi(u_n + h a w_n),\qquad u_{n+1} = u_n + h w_{n+1}.$$
    """
    h, lam, a = method.h, method.lam, method.a
    g = jax.grad(loss)(_tree.axpy(h * a, state.w, state.u))
    w = jax.tree.map(lambda wi, gi: lam * wi - gi, state.w, g)
    return MomentumState(_tree.axpy(h, w, state.u), w)


def initial_state(loss, u0, method: Momentum, init="zero", order: int = 1) -> MomentumState:
    """The state `(u_0, w_0)`. `init="zero"`: `w_0 = 0`, so `u_1 = u_0 - h grad Phi(u_0)` (the
    paper's start); `"manifold"`: `w_0` on the invariant manifold to `order` in `h` (THEORY §3);
    a pytree: taken as `w_0` itself."""
    if isinstance(init, str):
        if init == "zero":
            return MomentumState(u0, _tree.zeros_like(u0))
        return MomentumState(u0, manifold_velocity(loss, u0, method, order))
    return MomentumState(u0, init)


def iterate(
    loss,
    u0: PyTree,
    method: Momentum,
    num_steps: int,
    *,
    init="zero",
    save_every: int = 1,
    order: int = 1,
    return_velocity: bool = False,
):
    """Run `num_steps` steps of `method` on `loss` from `u0` and return the trajectory.

    **Arguments:**

    - `loss`: any JAX-differentiable scalar function of a pytree (a registered loss's `fn`, or
      your own function).
    - `u0`: the start, a pytree of float arrays.
    - `method`: a `Momentum` (`heavy_ball`, `nesterov`, `gradient_descent`).
    - `num_steps`: number of steps (a Python int; it fixes the output's shape).
    - `init`: `"zero"` (the paper's zero initial velocity), `"manifold"` (start on the invariant
      manifold to `order` in `h`), or a pytree shaped like `u0` taken as `w_0`.
    - `save_every`: keep every `save_every`-th iterate.
    - `return_velocity`: also return the scaled velocities `w_n`.

    **Returns:** a pytree shaped like `u0` with a leading time axis of
    `num_steps // save_every + 1` entries, `u_0` first (and the `w_n` likewise when asked).
    Hyperparameters are traced: new values of `h`, `lam`, `a` reuse the compiled loop.
    """
    check_u0(u0)
    check_loss(loss, u0)
    check_whole("num_steps", num_steps, low=0)
    check_whole("save_every", save_every, low=1)
    check_init(init, u0)
    init_kind, w0 = (init, None) if isinstance(init, str) else ("explicit", init)
    us, ws = _iterate(loss, num_steps, save_every, init_kind, order, u0, method, w0)
    return (us, ws) if return_velocity else us


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _iterate(loss, num_steps, save_every, init_kind, order, u0, method, w0):
    method = method.astype(_tree.dtype(u0))
    state = initial_state(loss, u0, method, w0 if init_kind == "explicit" else init_kind, order)

    def block(state, _):
        state = jax.lax.fori_loop(0, save_every, lambda _, s: step(loss, method, s), state)
        return state, state

    _, saved = jax.lax.scan(block, state, None, length=num_steps // save_every)
    stack = lambda first, rest: jnp.concatenate([first[None], rest])  # noqa: E731
    return jax.tree.map(stack, state, saved)


class FinalState(NamedTuple):
    """What the memory-light loop keeps: the last state and running reductions."""

    u: PyTree
    w: PyTree
    loss: jax.Array
    min_loss: jax.Array
    diverged_at: jax.Array
    """First step whose iterate is not finite or exceeds `DIVERGENCE_THRESHOLD`; -1 if none."""


def iterate_final(
    loss, u0: PyTree, method: Momentum, num_steps: int, *, init="zero", order: int = 1
) -> FinalState:
    """Like `iterate`, but keep only the final state and running reductions (the minimum loss
    and the step at which the run diverged), so memory does not grow with `num_steps`. After
    divergence the state is frozen at its last finite value. `jax.vmap` it over a `Momentum`
    of arrays for a sweep."""
    check_u0(u0)
    check_loss(loss, u0)
    check_whole("num_steps", num_steps, low=0)
    check_init(init, u0)
    init_kind, w0 = (init, None) if isinstance(init, str) else ("explicit", init)
    return _iterate_final(loss, num_steps, init_kind, order, u0, method, w0)


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _iterate_final(loss, num_steps, init_kind, order, u0, method, w0):
    method = method.astype(_tree.dtype(u0))
    state = initial_state(loss, u0, method, w0 if init_kind == "explicit" else init_kind, order)
    l0 = loss(u0)

    def body(n, carry):
        state, min_loss, diverged_at = carry
        new = step(loss, method, state)
        ok = is_bounded(new.u) & (diverged_at < 0)
        state = jax.tree.map(lambda x, y: jnp.where(ok, x, y), new, state)
        diverged_at = jnp.where(ok | (diverged_at >= 0), diverged_at, n + 1)
        min_loss = jnp.where(ok, jnp.minimum(min_loss, loss(state.u)), min_loss)
        return state, min_loss, diverged_at

    state, min_loss, diverged_at = jax.lax.fori_loop(
        0, num_steps, body, (state, l0, jnp.asarray(-1, dtype=jnp.int32))
    )
    return FinalState(state.u, state.w, loss(state.u), min_loss, diverged_at)


def is_bounded(u, limit=DIVERGENCE_THRESHOLD) -> jax.Array:
    """True when `u` is finite and its norm is below `limit`."""
    return _tree.all_finite(u) & (_tree.norm(u) < limit)
