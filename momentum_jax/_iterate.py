"""Pure-functional momentum steps and the `lax.scan` loops over them: the saved scan (a
trajectory) and the memory-light loop (final state and running reductions, under the one
divergence rule of `momentum_jax._runtime`)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _tree
from ._manifold import manifold_velocity, warn_outside_series_range
from ._method import Momentum, check_single_method
from ._runtime import DIVERGENCE_LIMIT, check_divergence_limit, divergence_bound, guard
from ._types import PyTree
from ._validate import check_finite_start, check_init, check_loss, check_u0, check_whole


class MomentumState(NamedTuple):
    """State of the map in scaled-velocity form (paper eq. 15): `w_n = (u_n - u_{n-1}) / h`."""

    u: PyTree
    w: PyTree


def step(loss, method: Momentum, state: MomentumState) -> MomentumState:
    r"""One step of the family (paper eq. 15):

    $$w_{n+1} = \lambda w_n - \nabla\Phi(u_n + h a w_n),\qquad u_{n+1} = u_n + h w_{n+1}.$$
    """
    g = jax.grad(loss)(_tree.axpy(method.h * method.a, state.w, state.u))
    return _apply(method, state, g)


def step_and_loss(
    loss, method: Momentum, state: MomentumState, lookahead: bool | None = None
) -> tuple[MomentumState, jax.Array]:
    """`(step(loss, method, state), loss(u_n))`: one step and the loss at the iterate it starts
    from. Where the gradient is taken at `u_n` itself (`a = 0`: heavy ball, gradient descent)
    the loss comes with it (`jax.value_and_grad`); a look-ahead method pays one more forward
    pass. `lookahead`: False when `a = 0` is known, True when `a` may be nonzero, None to decide
    from the value of `a` (a `lax.cond`: both branches run under `vmap`)."""
    value, g = jax.value_and_grad(loss)(_tree.axpy(method.h * method.a, state.w, state.u))
    if lookahead is None:
        value = jax.lax.cond(method.a == 0, lambda: value, lambda: loss(state.u))
    elif lookahead:
        value = loss(state.u)
    return _apply(method, state, g), value


def _apply(method: Momentum, state: MomentumState, g) -> MomentumState:
    w = jax.tree.map(lambda wi, gi: method.lam * wi - gi, state.w, g)
    return MomentumState(_tree.axpy(method.h, w, state.u), w)


def initial_state(loss, u0, method: Momentum, init="zero", order: int = 1) -> MomentumState:
    """The state `(u_0, w_0)`. `init="zero"`: `w_0 = 0`, so `u_1 = u_0 - h grad Phi(u_0)` (the
    paper's start); `"manifold"`: `w_0` on the invariant manifold to `order` in `h` (Thm 5,
    docs/theory.md §3); a pytree: taken as `w_0` itself."""
    if isinstance(init, str):
        if init == "zero":
            return MomentumState(u0, _tree.zeros_like(u0))
        return MomentumState(u0, manifold_velocity(loss, u0, method, order))
    return MomentumState(u0, init)


def check_save_every(num_steps: int, save_every: int) -> None:
    """`save_every` must be an integer `>= 1` dividing `num_steps`: a trajectory keeps
    `u_0, u_k, u_2k, ..., u_N` (`k = save_every`, `N = num_steps`), every step is run and the
    last iterate is always kept; `ValueError` naming both otherwise (no step is dropped)."""
    check_whole("save_every", save_every, low=1)
    if num_steps % save_every:
        below = num_steps - num_steps % save_every
        raise ValueError(
            f"num_steps={num_steps} is not a multiple of save_every={save_every}: the kept "
            f"iterates u_0, u_{save_every}, u_{2 * save_every}, ... would miss the last "
            f"{num_steps - below} steps; allowed: a num_steps divisible by save_every (e.g. "
            f"{below or save_every} or {below + save_every}); iterate_final gives the last "
            "state of any number of steps"
        )


def saved_scan(advance: Callable, state, num_steps: int, save_every: int = 1, save=None):
    """Run `state <- advance(n, state)` for `n = 0 .. num_steps - 1` in a `lax.scan`, keeping
    `save(state)` (default: the whole state) every `save_every` steps, the start first: the one
    trajectory loop of the package. `save_every` must divide `num_steps` (`check_save_every`).
    **Returns:** the kept values with a leading axis of `num_steps // save_every + 1` entries,
    the last one after step `num_steps`."""
    check_save_every(num_steps, save_every)
    save = save or (lambda s: s)

    def block(carry, _):
        state, n = carry
        state = jax.lax.fori_loop(0, save_every, lambda j, s: advance(n + j, s), state)
        return (state, n + save_every), save(state)

    _, kept = jax.lax.scan(block, (state, 0), None, length=num_steps // save_every)
    return jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), save(state), kept)


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
    - `save_every`: keep every `save_every`-th iterate, `u_0, u_k, ..., u_{num_steps}`; it
      must divide `num_steps` (`ValueError` otherwise, before anything runs: no step is ever
      dropped silently).
    - `return_velocity`: also return the scaled velocities `w_n`.

    **Returns:** a pytree shaped like `u0` with a leading time axis of
    `num_steps // save_every + 1` entries, `u_0` first and `u_{num_steps}` last (and the `w_n`
    likewise when asked).
    Hyperparameters are traced: new values of `h`, `lam`, `a` reuse the compiled loop. A
    trajectory that would not fit in the memory available raises `MemoryError` before anything
    runs (use `iterate_final`, whose memory does not grow with `num_steps`, or `save_every`).
    """
    check_u0(u0)
    check_single_method(method, "iterate")
    check_loss(loss, u0)
    check_finite_start(loss, u0)
    check_whole("num_steps", num_steps, low=0)
    check_save_every(num_steps, save_every)
    check_init(init, u0)
    if isinstance(init, str) and init == "manifold":
        warn_outside_series_range(loss, u0, method.h, method.lam, "iterate(init='manifold')")
    check_trajectory_size(u0, num_steps, save_every, bool(return_velocity))
    out = _iterate(loss, num_steps, save_every, init, order, bool(return_velocity), u0, method)
    return tuple(out) if return_velocity else out


@eqx.filter_jit
def _iterate(loss, num_steps, save_every, init, order, return_velocity, u0, method):
    method = method.astype(_tree.dtype(u0))
    state = initial_state(loss, u0, method, init, order)
    save = None if return_velocity else (lambda s: s.u)  # no velocities kept unless asked
    return saved_scan(lambda n, s: step(loss, method, s), state, num_steps, save_every, save)


def _memory_available() -> float:
    """Bytes the default device can still allocate: its allocator's limit where it reports one
    (GPUs, TPUs), else the host's available memory (`MemAvailable`, else the physical memory)."""
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # a backend without memory statistics
        stats = None
    if stats and "bytes_limit" in stats:
        return float(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return math.inf


def _bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} bytes"


def check_trajectory_size(u0, num_steps: int, save_every: int, velocities: bool) -> None:
    """Refuse (`MemoryError`, before compiling) a trajectory whose kept iterates would not fit in
    the memory available: `num_steps // save_every + 1` copies of `u0` (twice that with the
    velocities), and as much again while the scan's output is joined to the start."""
    kept = num_steps // save_every + 1
    per = sum(np.size(x) * np.dtype(jnp.result_type(x)).itemsize for x in jax.tree.leaves(u0))
    per *= 2 if velocities else 1
    peak, available = 2.0 * kept * per, _memory_available()
    if peak <= available:
        return
    what = "positions and velocities (return_velocity=True)" if velocities else "positions"
    raise MemoryError(
        f"num_steps={num_steps} with save_every={save_every} keeps {kept} iterates of {what}, "
        f"{_bytes(kept * per)} ({_bytes(peak)} at peak), more than the {_bytes(available)} of "
        "memory available: use iterate_final(loss, u0, method, num_steps) for the last state "
        "and running reductions (its memory does not grow with num_steps), or a larger "
        "save_every (allowed: num_steps // save_every + 1 iterates that fit in memory)"
    )


class FinalState(NamedTuple):
    """What the memory-light loop keeps: the last state and running reductions."""

    u: PyTree
    """The last state (`u_N`, or `u_{n-1}` for a run that diverged at step `n`)."""
    w: PyTree
    loss: jax.Array
    """The loss of `u`."""
    min_loss: jax.Array
    """`min_k loss(u_k)` over every step `k = 0 .. N` (`0 .. n-1` for a run that diverged)."""
    diverged_at: jax.Array
    """The first step `n` whose iterate `u_n` is not finite or has norm above
    `divergence_limit * max(1, |u_0|)`; -1 if none (the rule of every loop of the package)."""


def iterate_final(
    loss,
    u0: PyTree,
    method: Momentum,
    num_steps: int,
    *,
    init="zero",
    order: int = 1,
    divergence_limit: float = DIVERGENCE_LIMIT,
) -> FinalState:
    """Like `iterate`, but keep only the final state and running reductions (the minimum loss
    over every step and the step at which the run diverged), so memory does not grow with
    `num_steps`. `jax.vmap` it over a `Momentum` of arrays for a sweep.

    `divergence_limit`: the run diverges at the first step `n` whose iterate is not finite or
    has norm above `divergence_limit * max(1, |u0|)` (the rule of `sweep`, `train` and
    `convergence_study`); the state is then frozen at `u_{n-1}`, the last bounded iterate, so
    `u`, `loss` and `min_loss` are those of the steps before `n`. Traced: a new value does not
    recompile. `min_loss` costs nothing for heavy ball and gradient descent (the loss comes
    with the gradient at `u_n`) and one forward pass a step for a look-ahead method.
    """
    check_u0(u0)
    check_single_method(method, "iterate_final")
    check_loss(loss, u0)
    check_finite_start(loss, u0)
    check_whole("num_steps", num_steps, low=0)
    check_init(init, u0)
    check_divergence_limit(divergence_limit)
    if isinstance(init, str) and init == "manifold":
        warn_outside_series_range(loss, u0, method.h, method.lam, "iterate_final(init='manifold')")
    limit = jnp.asarray(divergence_limit, _tree.dtype(u0))
    return _iterate_final(loss, num_steps, init, order, u0, method, limit)


@eqx.filter_jit
def _iterate_final(loss, num_steps, init, order, u0, method, divergence_limit):
    method = method.astype(_tree.dtype(u0))
    state = initial_state(loss, u0, method, init, order)
    bound = divergence_bound(divergence_limit, u0)
    out = jax.eval_shape(loss, u0)

    def body(n, carry):
        state, min_loss, diverged_at = carry
        new, value = step_and_loss(loss, method, state)  # value: loss(u_n), u_n bounded
        state, diverged_at, _ = guard(new, state, diverged_at, n + 1, bound)
        return state, jnp.minimum(min_loss, value), diverged_at

    start = (state, jnp.full(out.shape, jnp.inf, out.dtype), jnp.asarray(-1, dtype=jnp.int32))
    state, min_loss, diverged_at = jax.lax.fori_loop(0, num_steps, body, start)
    final = loss(state.u)
    return FinalState(state.u, state.w, final, jnp.minimum(min_loss, final), diverged_at)
