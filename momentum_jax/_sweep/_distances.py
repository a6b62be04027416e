"""The distances of a sweep's runs to the continuous-time models: `max_k |u_{n_k} - u(n_k h)|`
over the recorded steps, with the shared gradient-flow solve once per start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._iterate import initial_state
from .._solve import (
    SolverConfig,
    diffeqsolve,
    solve_shared,
)
from ._methods import _momentum


class _Context(NamedTuple):
    """What the distances to the models need of a sweep's compiled run."""

    full: Callable
    start_of: Callable
    seeds: int
    every: int
    mu: jax.Array
    dtype: Any
    config: SolverConfig
    vectorize_solves: bool
    init: str


def _distances(ctx: _Context, models, name, lam, h, seed, us, div):
    """`(P, len(models))`: `max_k |u_{n_k} - u(n_k h)|` over the recorded steps `n_k`; NaN where
    the run diverged or the model's solve failed. A model shared by every point (the gradient
    flow) is solved once per start."""
    full, start_of, seeds, every, mu, dtype, config, vectorize_solves, init = ctx
    blocks = jax.tree.leaves(us)[0].shape[1]
    n_k = ((jnp.arange(blocks) + 1) * every).astype(dtype)
    points = (
        jax.vmap(lambda lm, hh: _momentum(name, hh, lm, mu))(lam, h) if name != "wilson" else None
    )
    cols = []
    for mod in models:
        if points is None:  # Wilson's scheme is not of the family: no model of this package
            cols.append(jnp.full(lam.shape, jnp.nan, dtype))
            continue
        points = points.astype(dtype)
        field = mod.shared_field(full)
        if field is not None:
            # up to the last time a bounded run needs; a solve whose table is too short still
            # serves the points whose times it reached (the others get NaN, and the sweep runs
            # again with a larger table, `grow_dense_steps`)
            s_end = n_k[-1] * points.h * mod.shared_time_scale(points)
            s_max = jnp.max(jnp.where(div < 0, s_end, 0.0))
            solves = [solve_shared(field, start_of(i), s_max, config) for i in range(seeds)]
            stacked = jax.tree.map(lambda *x: jnp.stack(x), *solves)

            def shared_one(u_traj, m, sd, d, mod=mod, stacked=stacked):
                sol = jax.tree.map(lambda x: x[sd], stacked)
                times = n_k * m.h * mod.shared_time_scale(m)
                covered = times[-1] <= sol.reached
                return jnp.where(covered, _worst(u_traj, sol.evaluate(times), d), jnp.nan)

            cols.append(jax.vmap(shared_one)(us, points, seed, div))
            continue

        def one(u_traj, m, sd, d, mod=mod):
            u0 = start_of(sd)
            w0 = None if init == "zero" else initial_state(full, u0, m, init).w
            y0 = mod.initial_state(full, u0, m, w0)
            sol = diffeqsolve(
                diffrax.ODETerm(mod.vector_field(full)),
                mod.ode_solver(full, config),
                0.0,
                jnp.where(d >= 0, 0.0, n_k[-1] * m.h),  # a diverged run: nothing to solve
                y0,
                args=m,
                saveat=diffrax.SaveAt(ts=jnp.where(d >= 0, 0.0, n_k * m.h)),
                controller=config.controller(),
                max_steps=config.max_steps,
            )
            ok = sol.result == diffrax.RESULTS.successful
            return jnp.where(ok, _worst(u_traj, mod.position(sol.ys), d), jnp.nan)

        if vectorize_solves:
            cols.append(jax.vmap(one)(us, points, seed, div))
        else:  # on a CPU: one point after the other (see momentum_jax._study._kernel)
            cols.append(jax.lax.map(lambda a, one=one: one(*a), (us, points, seed, div)))
    return jnp.stack(cols, axis=1)


def _shared_short(out, models, methods, loss) -> bool:
    """Whether a solve shared by every point (the gradient flow) ran out of its dense table: a
    point of a method of the family that did not diverge has no distance to it."""
    div, dist = np.asarray(out[2]), np.asarray(out[5])
    for i, model in enumerate(models):
        if model.shared_field(loss) is None:
            continue
        for g, name in enumerate(methods):
            if name != "wilson" and np.any((div[g] < 0) & np.isnan(dist[g, :, i])):
                return True
    return False


def _worst(u_traj, values, div):
    """`max_k |u_k - v_k|`, NaN for a run that diverged."""
    d = jax.vmap(lambda a, b: _tree.norm(_tree.sub(a, b)))(u_traj, values)
    return jnp.where(div >= 0, jnp.nan, jnp.max(d))
