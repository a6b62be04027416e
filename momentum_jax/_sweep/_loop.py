"""The compiled loop of `sweep`: every point of the flat grid, `vmap`ped, in a `lax.scan` over
record blocks of bare steps, the divergence bound checked at chunk ends (the crossing chunk is
run again step by step for the exact first divergent step)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _tree
from .._batches import batched_mean_loss, make_batches, masked_batch_mean
from .._iterate import MomentumState, initial_state, step, step_and_loss
from .._runtime import (
    divergence_bound,
    guard,
    report,
)
from .._schemes import wilson_step
from .._sharpness import sharpness as top_eigenvalue
from ._distances import _Context, _distances
from ._methods import _LOOKAHEAD, _momentum


def _loop(
    loss,
    params,
    static,
    data,
    *,
    methods,
    lam,
    h,
    seed,
    mu,
    limit,
    token,
    total,
    steps,
    every,
    batch_size,
    sharp_blocks,
    sharpness_rtol,
    sharpness_max_iters,
    models,
    init,
    seeded,
    report_progress,
    solver,
    vectorize_solves,
    every_step_loss,
):
    """`(final (M, P), min (M, P), diverged_at (M, P), curve (M, P, B), sharpness (M, P, B),
    distances (M, P, models))` for the flat points `(lam, h, seed)`: `B` blocks of `every`
    steps, a `lax.scan` over the blocks outside a `vmap` over the points, then the remaining
    `steps - B every` steps. `min` is the minimum of the full loss over every step (inf without
    `every_step_loss`: with mini-batches it is not evaluated at every step)."""
    if data is not None:
        batches, mask = make_batches(data, batch_size)
        n_batches = mask.shape[0]

        def per_example(q, b):
            return loss(eqx.combine(q, static), b)

        def full(p):
            return batched_mean_loss(per_example, p, batches, mask)

        def batch_loss(n):
            k = n % n_batches
            return masked_batch_mean(per_example, mask[k], jax.tree.map(lambda x: x[k], batches))
    else:

        def full(p):
            return loss(eqx.combine(p, static))

        def batch_loss(n):
            return full

    def start_of(i):
        return jax.tree.map(lambda x: x[i], params) if seeded else params

    dtype = _tree.dtype(params)
    blocks = steps // every
    rest = steps - blocks * every
    keep = bool(models)
    bound = jax.vmap(lambda sd: divergence_bound(limit, start_of(sd)))(seed)
    outs = []
    for g, name in enumerate(methods):

        def method(lam_i, h_i, name=name):
            m = _momentum(name, h_i, lam_i, mu)
            return None if m is None else m.astype(dtype)

        def start(lam_i, h_i, seed_i, method=method):
            u0, meth = start_of(seed_i), method(lam_i, h_i)
            if meth is None:
                return MomentumState(u0, _tree.zeros_like(u0))
            return initial_state(full, u0, meth, init)

        def run_steps(carry, first, count, lam_i, h_i, bound_i, checked, method=method, name=name):
            """`count` steps `first .. first + count - 1` of one point with the running minimum
            of the full loss `loss(u_n)` of every step's start `u_n`. `checked`: under the
            divergence guard (the carry is `(state, diverged_at, min)`); otherwise bare, the
            carry `(state, min, peak)` with `peak` the largest squared norm of the iterates
            (NaN or inf once one is not finite), for `_advance` to check at the end."""
            meth = method(lam_i, h_i)

            def one(j, c):
                n = first + j
                f = batch_loss(n)
                s, best = c[0], c[-1] if checked else c[1]
                value = None
                if meth is None:
                    new = wilson_step(f, h_i.astype(dtype), jnp.asarray(mu, dtype), s)
                    value = full(s.u) if every_step_loss else None
                elif every_step_loss:  # f is the full loss (no data, or one batch)
                    new, value = step_and_loss(f, meth, s, lookahead=name in _LOOKAHEAD)
                else:
                    new = step(f, meth, s)
                if checked:
                    s, div, _ = guard(new, s, c[1], (n + 1).astype(jnp.int32), bound_i)
                else:
                    peak = jnp.maximum(c[2], _tree.sq_norm(new.u))
                best = best if value is None else jnp.minimum(best, value.astype(dtype))
                return (s, div, best) if checked else (new, best, peak)

            return jax.lax.fori_loop(0, count, one, carry)

        def advance(carry, first, count, run_steps=run_steps):
            """`count` steps of every point from step `first` (`_advance`)."""
            return _advance(run_steps, carry, first, count, lam, h, bound)

        def block(carry, b, advance=advance, g=g):
            s, div, best = advance(carry, b * every, every)
            value = jax.vmap(full)(s.u)
            ok = div < 0

            def measure(u):  # (value, residual) of the top Hessian eigenvalue
                top = top_eigenvalue(full, u, rtol=sharpness_rtol, max_iters=sharpness_max_iters)
                return jnp.stack([top.value, top.residual]).astype(value.dtype)

            sharp = jax.lax.cond(
                jnp.asarray(sharp_blocks)[b],
                lambda: jax.vmap(measure)(s.u),
                lambda: jnp.full(value.shape + (2,), jnp.nan, value.dtype),
            )
            if report_progress:
                report(token, 0, (g * steps + (b + 1) * every) * lam.shape[0], total)
            kept = s.u if keep else None
            return (s, div, best), (
                jnp.where(ok, value, jnp.nan),
                jnp.where(ok[:, None], sharp, jnp.nan),
                kept,
            )

        s0 = jax.vmap(start)(lam, h, seed)
        best0 = jnp.full(lam.shape, jnp.inf, dtype)
        div0 = jnp.full(lam.shape, -1, jnp.int32)
        (s, div, best), (curve, sharp, us) = jax.lax.scan(
            block, (s0, div0, best0), jnp.arange(blocks, dtype=jnp.int32)
        )
        if rest:  # the steps after the last recorded one
            s, div, best = advance((s, div, best), blocks * every, rest)
            if report_progress:
                report(token, 0, (g + 1) * steps * lam.shape[0], total)
        final = jax.vmap(full)(s.u)
        best = jnp.minimum(best, final.astype(dtype))
        curve, sharp = curve.T, jnp.moveaxis(sharp, 0, 1)  # (P, B), (P, B, 2)
        if keep:
            us = jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), us)  # (P, B, ...)
            seeds = jax.tree.leaves(params)[0].shape[0] if seeded else 1
            ctx = _Context(full, start_of, seeds, every, mu, dtype, solver, vectorize_solves, init)
            dists = _distances(ctx, models, name, lam, h, seed, us, div)
        else:
            dists = jnp.zeros((lam.shape[0], 0), dtype)
        outs.append((final, best, div, curve, sharp, dists))
    return tuple(jnp.stack(x) for x in zip(*outs))


CHECK_EVERY = 64
"""The steps between two checks of the divergence bound in `sweep`'s loop (`_advance`)."""
RERUN = 16
"""How many points that crossed the bound in one chunk `_advance` runs again together."""


def _advance(run_steps, carry, first, count: int, lam, h, bound):
    """`count` steps of every point from step `first`, the carry `(state, diverged_at, min)`
    with a leading point axis: bare steps (`run_steps(..., checked=False)`) in chunks of
    `CHECK_EVERY`, the bound checked once at the end of each on the largest norm of the chunk's
    iterates; the points that crossed it in a chunk (the divergence rule of
    `momentum_jax._runtime`) run that chunk again from its start under the per-step guard
    (`checked=True`), `RERUN` at a time, which finds their first divergent step and freezes
    them at the step before it. States, `diverged_at` and minima are those of the guard at
    every step; the common case (no point crosses) pays one check per chunk."""
    P = lam.shape[0]
    size = min(P, RERUN)

    def chunk(c, first, length):
        s, div, best = c
        peak0 = jnp.zeros(P, _tree.dtype(s.u))
        new, new_best, peak = jax.vmap(
            lambda ci, lm, hh, bd: run_steps(ci, first, length, lm, hh, bd, False)
        )((s, best, peak0), lam, h, bound)
        norm = jnp.sqrt(peak)
        live = div < 0
        ok = live & jnp.isfinite(norm) & (norm <= bound)
        s = jax.vmap(_tree.where)(ok, new, s)
        best = jnp.where(ok, new_best, best)

        def rerun(x):
            crossed, s, div, best = x
            idx = jnp.nonzero(crossed, size=size, fill_value=P)[0]

            def take(tree):
                return jax.tree.map(lambda a: a.at[idx].get(mode="clip"), tree)

            sub = jax.vmap(lambda ci, lm, hh, bd: run_steps(ci, first, length, lm, hh, bd, True))(
                take((s, div, best)), take(lam), take(h), take(bound)
            )
            s, div, best = jax.tree.map(
                lambda a, b: a.at[idx].set(b, mode="drop"), (s, div, best), sub
            )
            return crossed.at[idx].set(False, mode="drop"), s, div, best

        _, s, div, best = jax.lax.while_loop(
            lambda x: jnp.any(x[0]), rerun, (live & ~ok, s, div, best)
        )
        return s, div, best

    chunks, rest = divmod(count, CHECK_EVERY)
    if chunks:
        carry = jax.lax.fori_loop(
            0, chunks, lambda k, c: chunk(c, first + k * CHECK_EVERY, CHECK_EVERY), carry
        )
    if rest:
        carry = chunk(carry, first + chunks * CHECK_EVERY, rest)
    return carry


_run = eqx.filter_jit(_loop)
