"""The compiled loop of `sweep`: the points of the flat grid, `vmap`ped, in a `lax.scan` over
record blocks of bare steps (the methods of the eq. (7) family side by side in one loop where
they run the same code, `_groups`), the divergence bound checked at chunk ends (the crossing
chunk is run again step by step for the exact first divergent step)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _tree
from .._batches import batched_mean_loss, make_batches, masked_batch_mean
from .._iterate import MomentumState, initial_state, step, step_and_loss
from .._method import Momentum
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
    gap_to,
):
    """`(final (M, P), min (M, P), diverged_at (M, P), curve (M, P, B), sharpness (M, P, B),
    distances (M, P, models), gaps (M, P, B))` for the flat points `(lam, h, seed)`: `B` blocks
    of `every` steps, a `lax.scan` over the blocks outside a `vmap` over the points, then the
    remaining `steps - B every` steps. `min` is the minimum of the full loss over every step (inf
    without `every_step_loss`: with mini-batches it is not evaluated at every step). `gaps`: at
    the end of every block, `|u - u_ref|` to the run of the method `gap_to` (a name of
    `methods`; None: an empty `(M, 0, B)`) at the same point, NaN where either run had
    diverged."""
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
    P = lam.shape[0]
    bound = jax.vmap(lambda sd: divergence_bound(limit, start_of(sd)))(seed)
    groups = _groups(methods, every_step_loss)
    order = [name for group in groups for name in group]  # the methods along the point axis
    advances, starts = [], []
    for group in groups:
        G = len(group)
        lookahead = group[0] in _LOOKAHEAD  # the same for the whole group when it matters
        # the flat points of the group: every method's points one after the other
        h_g, seed_g, bound_g = (jnp.tile(x, G) for x in (h, seed, bound))
        meth_g = None if group == ("wilson",) else _stacked_methods(group, lam, h, mu, dtype)

        def start(meth_i, seed_i):
            u0 = start_of(seed_i)
            if meth_i is None:
                return MomentumState(u0, _tree.zeros_like(u0))
            return initial_state(full, u0, meth_i, init)

        def run_steps(carry, first, count, point, bound_i, checked, lookahead=lookahead):
            """`count` steps `first .. first + count - 1` of one point `(Momentum or None for
            Wilson's scheme, h)` with the running minimum of the full loss `loss(u_n)` of
            every step's start `u_n`. `checked`: under the divergence guard (the carry is
            `(state, diverged_at, min)`); otherwise bare, the carry `(state, min)`, with every
            component `u_i` of an iterate beyond about `bound_i / sqrt(d)` (`d` components,
            `_poison`) set to NaN in the step's own update: a norm above the bound needs one,
            so a point whose iterates all stay finite never crossed it, and NaN propagates to
            the end of the chunk for `_advance` to see (componentwise: no reduction and no
            extra pass over the state in the loop)."""
            meth, h_i = point

            def one(j, c):
                n = first + j
                f = batch_loss(n)
                s, best = c[0], c[-1] if checked else c[1]
                value = None
                if meth is None:
                    new = wilson_step(f, h_i.astype(dtype), jnp.asarray(mu, dtype), s)
                    value = full(s.u) if every_step_loss else None
                elif every_step_loss:  # f is the full loss (no data, or one batch)
                    new, value = step_and_loss(f, meth, s, lookahead=lookahead)
                else:
                    new = step(f, meth, s)
                if checked:
                    s, div, _ = guard(new, s, c[1], (n + 1).astype(jnp.int32), bound_i)
                else:
                    new = new._replace(u=_poison(new.u, bound_i))
                best = best if value is None else jnp.minimum(best, value.astype(dtype))
                return (s, div, best) if checked else (new, best)

            return jax.lax.fori_loop(0, count, one, carry)

        def advance(carry, first, count, run_steps=run_steps, points=(meth_g, h_g), bd=bound_g):
            """`count` steps of every point of the group from step `first` (`_advance`)."""
            return _advance(run_steps, carry, first, count, points, bd)

        advances.append(advance)
        starts.append(
            (
                jax.vmap(start)(meth_g, seed_g),
                jnp.full(G * P, -1, jnp.int32),
                jnp.full(G * P, jnp.inf, dtype),
            )
        )

    def advance_all(carry, first, count):
        """Every group `count` steps from step `first`, and the joined `(state, diverged_at,
        min)` of every point (the groups' points one after the other, `order`)."""
        carry = tuple(adv(c, first, count) for adv, c in zip(advances, carry))
        return carry, jax.tree.map(lambda *x: jnp.concatenate(x), *carry)

    def block(carry, b):
        """One record block: the steps, then the full loss and (at the blocks of
        `sharp_blocks`) the sharpness of every point, each written once for all groups."""
        carry, (s, div, _) = advance_all(carry, b * every, every)
        value = jax.vmap(full)(s.u)
        ok = div < 0
        gaps = _gaps(s.u, ok, order, gap_to, P, dtype)

        def measure(u):  # (value, residual) of the top Hessian eigenvalue
            top = top_eigenvalue(full, u, rtol=sharpness_rtol, max_iters=sharpness_max_iters)
            return jnp.stack([top.value, top.residual]).astype(value.dtype)

        sharp = jax.lax.cond(
            jnp.asarray(sharp_blocks)[b],
            lambda: jax.vmap(measure)(s.u),
            lambda: jnp.full(value.shape + (2,), jnp.nan, value.dtype),
        )
        if report_progress:
            report(token, 0, (b + 1) * every * len(methods) * P, total)
        kept = s.u if keep else None
        return carry, (
            jnp.where(ok, value, jnp.nan),
            jnp.where(ok[:, None], sharp, jnp.nan),
            kept,
            gaps,
        )

    carry, (curve, sharp, us, gaps) = jax.lax.scan(
        block, tuple(starts), jnp.arange(blocks, dtype=jnp.int32)
    )
    # the steps after the last recorded one
    carry, (s, div, best) = advance_all(carry, blocks * every, rest)
    if report_progress and rest:
        report(token, 0, steps * len(methods) * P, total)
    final = jax.vmap(full)(s.u)
    best = jnp.minimum(best, final.astype(dtype))
    curve, sharp, gaps = curve.T, jnp.moveaxis(sharp, 0, 1), gaps.T  # (M P, B), (.., 2), (.., B)
    seeds = jax.tree.leaves(params)[0].shape[0] if seeded else 1
    ctx = _Context(full, start_of, seeds, every, mu, dtype, solver, vectorize_solves, init)
    outs = {}
    for k, name in enumerate(order):
        part = slice(k * P, (k + 1) * P)
        if keep:
            us_k = jax.tree.map(lambda x: jnp.moveaxis(x[:, part], 0, 1), us)  # (P, B, ...)
            dists = _distances(ctx, models, name, lam, h, seed, us_k, div[part])
        else:
            dists = jnp.zeros((P, 0), dtype)
        outs[name] = tuple(x[part] for x in (final, best, div, curve, sharp)) + (dists, gaps[part])
    return tuple(jnp.stack(x) for x in zip(*(outs[name] for name in methods)))


def _gaps(u, ok, order, gap_to, P, dtype):
    """`(len(order) P,)`: `|u_k - u_ref|` of every point (the points of the methods `order`
    one after the other) to the point of the method `gap_to` with the same `(lam, h, seed)`,
    NaN where either has diverged; `(0,)` when `gap_to` is None."""
    if gap_to is None:
        return jnp.zeros((0,), dtype)
    r = order.index(gap_to)

    def part(k, tree):
        return jax.tree.map(lambda x: x[k * P : (k + 1) * P], tree)

    ref, ref_ok = part(r, u), part(r, ok)
    gaps = [
        jnp.where(
            part(k, ok) & ref_ok,
            jax.vmap(lambda a, b: _tree.norm(_tree.sub(a, b)))(part(k, u), ref).astype(dtype),
            jnp.nan,
        )
        for k in range(len(order))
    ]
    return jnp.concatenate(gaps)


def _groups(methods, every_step_loss: bool) -> list[tuple[str, ...]]:
    """The methods that run in one `vmap`ped loop (their points side by side, each point with its
    own `Momentum`): the eq. (7) family together, which halves the loop's steps for heavy ball
    and Nesterov; apart by look-ahead when the loss of every step is recorded (a look-ahead
    method pays a forward pass for it that heavy ball does not); Wilson's scheme alone."""
    family = [m for m in methods if m != "wilson"]
    if every_step_loss:
        groups = [tuple(m for m in family if (m in _LOOKAHEAD) == look) for look in (False, True)]
    else:
        groups = [tuple(family)]
    return [g for g in groups if g] + ([("wilson",)] if "wilson" in methods else [])


def _stacked_methods(names, lam, h, mu, dtype) -> Momentum:
    """The `Momentum` of every point of a group: the points of `names[0]`, then those of
    `names[1]`, ... (each field of shape `(len(names) P,)`)."""
    ms = [_momentum(name, h, lam, mu) for name in names]
    assert all(m is not None for m in ms), names  # Wilson's scheme has a group of its own
    return jax.tree.map(
        lambda *x: jnp.concatenate([jnp.broadcast_to(xi, lam.shape) for xi in x]).astype(dtype),
        *ms,
    )


CHECK_EVERY = 64
"""The steps between two checks of the divergence bound in `sweep`'s loop (`_advance`)."""
RERUN = 16
"""How many points that crossed the bound in one chunk `_advance` runs again together."""


def _poison(u, bound):
    """`u` with every component `u_i` beyond `cap` in absolute value set to NaN (NaN and inf
    become NaN), `cap = 0.999 min(bound, sqrt(max)) / sqrt(d)`: `d` the number of components,
    `max` the largest number of `bound`'s dtype (a larger norm is not finite in the guard's sum
    of squares). A norm above the bound needs such a component, so an iterate without one is
    within the bound; the margin covers the rounding of the guard's norm (a point marked for
    nothing is only run again)."""
    d = sum(x.size for x in jax.tree.leaves(u))
    big = jnp.sqrt(jnp.asarray(jnp.finfo(bound.dtype).max, bound.dtype))
    cap = 0.999 * jnp.minimum(bound, big) / jnp.sqrt(jnp.asarray(d, bound.dtype))
    return jax.tree.map(
        lambda x: jnp.where(jnp.abs(x).astype(cap.dtype) <= cap, x, jnp.nan).astype(x.dtype), u
    )


def _advance(run_steps, carry, first, count: int, points, bound):
    """`count` steps of every point from step `first`, the carry `(state, diverged_at, min)`
    with a leading point axis, `points` and `bound` the points' `run_steps` arguments: bare
    steps (`run_steps(..., checked=False)`) in chunks of `CHECK_EVERY`, checked once at the
    end of each: a point whose state is still finite kept every component of every iterate
    within about `bound / sqrt(d)` (`_poison`), so no norm crossed the bound (one near it may run
    its chunk again for nothing, but none is missed). The points that did not (the
    divergence rule of `momentum_jax._runtime`) run that chunk again from its start under the
    per-step guard (`checked=True`), `RERUN` at a time, which finds their first divergent step
    and freezes them at the step before it. States, `diverged_at` and minima are those of the
    guard at every step; the common case (no point crosses) pays one check per chunk."""
    P = bound.shape[0]
    size = min(P, RERUN)

    def chunk(c, first, length):
        s, div, best = c
        new, new_best = jax.vmap(lambda ci, pt, bd: run_steps(ci, first, length, pt, bd, False))(
            (s, best), points, bound
        )
        live = div < 0
        ok = live & jnp.isfinite(jax.vmap(_tree.sq_norm)(new.u))
        s = jax.vmap(_tree.where)(ok, new, s)
        best = jnp.where(ok, new_best, best)

        def rerun(x):
            crossed, s, div, best = x
            idx = jnp.nonzero(crossed, size=size, fill_value=P)[0]

            def take(tree):
                return jax.tree.map(lambda a: a.at[idx].get(mode="clip"), tree)

            sub = jax.vmap(lambda ci, pt, bd: run_steps(ci, first, length, pt, bd, True))(
                take((s, div, best)), take(points), take(bound)
            )
            s, div, best = jax.tree.map(
                lambda a, b: a.at[idx].set(b, mode="drop"), (s, div, best), sub
            )
            return crossed.at[idx].set(False, mode="drop"), s, div, best

        _, s, div, best = jax.lax.while_loop(
            lambda x: jnp.any(x[0]), rerun, (live & ~ok, s, div, best)
        )
        return s, div, best

    chunks, rest = divmod(count, CHECK_EVERY)  # count = 0: the carry as it is
    if chunks:
        carry = jax.lax.fori_loop(
            0, chunks, lambda k, c: chunk(c, first + k * CHECK_EVERY, CHECK_EVERY), carry
        )
    if rest:
        carry = chunk(carry, first + chunks * CHECK_EVERY, rest)
    return carry


_run = eqx.filter_jit(_loop)
