"""`sweep`: train any loss with HB / NAG / GD (and the Section 5 schemes) over a grid of learning
rates, momenta and seeds, in one compiled, sharded call with the memory-light loop."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._batches import batched_mean_loss, make_batches, masked_batch_mean, num_examples
from .._distributed import default_devices, pad_to, shard_grid, to_host
from .._divergence import DIVERGENCE_LIMIT, check_divergence_limit, divergence_bound, guard
from .._io import provenance
from .._iterate import MomentumState, initial_state, step, step_and_loss
from .._method import METHODS, Momentum, method_from_name
from .._model import AbstractModel, as_model
from .._report import register_progress, release_progress, report
from .._schemes import scheme_method, wilson_step
from .._sharpness import SHARPNESS_MAX_ITERS, SHARPNESS_RTOL
from .._sharpness import sharpness as top_eigenvalue
from .._solve import SolverConfig, as_solver_config, check_ode_solver
from .._study._dense import evaluate, interpolant_degree, table
from .._types import PyTree
from .._validate import (
    as_names,
    check_choice,
    check_loss,
    check_range,
    check_u0,
    check_whole,
    loss_name,
)
from ._result import Sweep

SCHEME_METHODS = ("gd_effective", "wilson", "hb_mu", "nag_mu")
"""The Section 5 schemes a sweep runs besides the method table (`METHODS`): gradient descent at
the effective rate `h/(1-lam)`, Wilson's split step, HB-mu and NAG-mu (docs/theory.md §6)."""
SWEEP_METHODS = tuple(METHODS) + SCHEME_METHODS
_LOOKAHEAD = ("nag", "nag_mu")
"""The methods whose gradient is taken away from `u_n` (`a != 0`): their per-step loss
`loss(u_n)` costs one more forward pass (`step_and_loss`)."""


def _momentum(name: str, h, lam, mu) -> Momentum | None:
    """The `Momentum` of a method or scheme of the eq. (7) family (None for Wilson's)."""
    if name in METHODS:
        return method_from_name(name, h, lam)
    if name == "wilson":
        return None
    return scheme_method(name, h, lam, mu)


def sweep(
    loss: Callable,
    params0,
    *,
    hs,
    lams,
    methods: Sequence[str] = ("hb", "nag"),
    steps: int,
    seeds: Sequence[int] | None = None,
    data: PyTree | None = None,
    batch_size: int | None = None,
    record_every: int | None = None,
    sharpness_at: Sequence[int] = (),
    sharpness_rtol: float = SHARPNESS_RTOL,
    sharpness_max_iters: int = SHARPNESS_MAX_ITERS,
    models: Sequence[str | AbstractModel] = (),
    init: str = "zero",
    mu: float = 1.0,
    divergence_limit: float = DIVERGENCE_LIMIT,
    solver=None,
    devices=None,
    progress: Callable[[int, int], object] | None = None,
) -> Sweep:
    """Run every method on `loss` at every `(lam, h, seed)` of a grid, from one compiled call.

    **Arguments:**

    - `loss`: `loss(params) -> scalar`, or with `data`, `loss(params, batch) -> (B,)`
      per-example losses (a batch's loss is their mean).
    - `params0`: the start, any pytree of float arrays (a dict, an `equinox.Module` network:
      its inexact arrays are trained, the rest is kept as it is, `eqx.partition`); with `seeds`,
      a function `key -> params` called with `jax.random.key(seed)` for every seed.
    - `hs`, `lams`: learning rates `> 0` and momenta in `[0, 1)` (1-D; any order).
    - `methods`: names of `METHODS` (`"hb"`, `"nag"`, `"gd"`) or of the Section 5 schemes
      (`"gd_effective"`, `"wilson"`, `"hb_mu"`, `"nag_mu"`, with `mu`).
    - `steps`: steps per run (an integer >= 1); every point runs all of them (unless it
      diverges), whatever `record_every`.
    - `seeds`: integers, one start per seed (default: the one `params0`).
    - `data`, `batch_size`: a pytree of arrays with a leading example axis; step `n` uses the
      batch `n mod n_batches` of `batch_size` consecutive examples (all of them by default): the
      paper's fixed-order mini-batches.
    - `record_every`: record the full loss after the steps `record_every, 2 record_every, ...
      <= steps` (the `curve`, on the coarse time grid `t = n h`); it need not divide `steps`:
      the remaining steps are run after the last recorded one.
    - `sharpness_at`: steps after which to record the top Hessian eigenvalue of the full loss
      (multiples of `record_every` when given), by `top_hessian_eigenvalue` to the relative
      residual `sharpness_rtol` in `[0, 1)` with at most `sharpness_max_iters` Hessian-vector
      products (both traced: new values do not recompile). The residual is kept in
      `Sweep.sharpness_residual`; a `RuntimeWarning` names the points that did not converge.
    - `models`: continuous-time models (objects or aliases) to measure the distance to: the
      largest `|u_n - u(n h)|` over the recorded steps (the final step without a curve), for the
      full loss. The gradient flow is solved once per start; other models once per point.
    - `init`: `"zero"` or `"manifold"` (the invariant-manifold velocity of the full loss).
    - `divergence_limit`: a run diverges at the first step `n` whose parameters are not finite
      or have norm above `divergence_limit * max(1, |params0|)` (its own start's norm with
      `seeds`); it is then frozen at step `n - 1` (its final and minimum loss are those of the
      steps before `n`) and its curve and sharpness are NaN from step `n` on. The rule of
      `iterate_final`, `train` and `convergence_study` (`momentum_jax._divergence`).
    - `solver`: a `SolverConfig` (or a diffrax solver) for the models' solves; default: the
      tolerances of the parameters' dtype with at most `2^14` steps a solve (a point whose model
      needs more, typically a stiff one far outside the model's regime, gets NaN).
    - `devices`: devices to split the grid over (default: every device of every process).
    - `progress`: `progress(done_steps, total_steps)`, called from the host once per record
      block; a new callback does not recompile.

    **Returns:** a `Sweep` with axes `(method, lam, h, seed)`.
    """
    methods = as_names("methods", methods)
    hs_np = np.asarray(hs, dtype=float).ravel()
    lams_np = np.asarray(lams, dtype=float).ravel()
    if hs_np.size == 0 or lams_np.size == 0:
        raise ValueError("hs and lams must each hold at least one value")
    check_range("hs", hs_np, low=0.0, low_open=True)
    check_range("lams", lams_np, low=0.0, high=1.0, high_open=True)
    if not methods:
        raise ValueError(f"methods must name at least one of {', '.join(SWEEP_METHODS)}")
    for name in methods:
        check_choice("method", name, SWEEP_METHODS)
    check_whole("steps", steps, low=1)
    check_range("mu", mu, low=0.0, low_open=True)
    check_divergence_limit(divergence_limit)
    check_choice("init", init, ("zero", "manifold"))
    check_range("sharpness_rtol", sharpness_rtol, low=0.0, high=1.0, high_open=True)
    check_whole("sharpness_max_iters", sharpness_max_iters, low=1)
    every = _check_record(steps, record_every, sharpness_at)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable (done, total) or None, got {progress!r}")
    seeds_np, params, static = _starts(params0, seeds)
    check_u0(params, "params0")
    single = jax.tree.map(lambda x: x[0], params) if seeds is not None else params
    if data is None:
        check_loss(lambda p: loss(eqx.combine(p, static)), single)
    else:
        n_data = num_examples(data)
        batch_size = n_data if batch_size is None else batch_size
        check_whole("batch_size", batch_size, low=1)
        first = jax.tree.map(lambda x: x[: min(batch_size, n_data)], data)
        try:
            out = jax.eval_shape(lambda p: loss(eqx.combine(p, static), first), single)
        except Exception as e:  # the user's function failed to trace: report it with its name
            raise TypeError(
                f"loss {loss_name(loss)!r} cannot be evaluated on (params0, a "
                f"batch): {type(e).__name__}: {e}"
            ) from e
        if getattr(out, "shape", None) != (min(batch_size, n_data),):
            raise TypeError(
                "with data, loss must return one loss per example of a batch, shape "
                f"({min(batch_size, n_data)},), got {getattr(out, 'shape', type(out).__name__)}"
            )
    models = as_names("models", models)
    objects = tuple(as_model(m).for_start(init) for m in models)
    solver_config = (
        SolverConfig.for_dtype(_tree.dtype(params), max_steps=2**14)
        if solver is None
        else as_solver_config(solver, _tree.dtype(params))
    )
    check_ode_solver(solver_config, "sweep")
    keys = tuple(m if isinstance(m, str) else m.key for m in models)

    M, L, H, S = len(methods), lams_np.size, hs_np.size, seeds_np.size
    lam_g, h_g, seed_g = (
        x.ravel() for x in np.meshgrid(lams_np, hs_np, np.arange(S), indexing="ij")
    )
    devices = list(devices) if devices is not None else default_devices()
    if not devices:
        raise ValueError("devices must name at least one device (default: jax.devices())")
    (lam_p, h_p, seed_p), P = pad_to([lam_g, h_g, seed_g], len(devices))
    lam_d, h_d, seed_d = shard_grid([lam_p, h_p, seed_p.astype(np.int32)], devices)
    blocks = steps // every
    curve_at = np.arange(1, blocks + 1) * every
    # the full loss of every step comes with the steps' gradients unless there are mini-batches
    every_step_loss = data is None or (batch_size or 0) >= num_examples(data)
    sharp_set = np.isin(curve_at, np.asarray(sharpness_at, dtype=int))
    token = register_progress(progress) if progress is not None else -1
    try:
        out = _run(
            loss,
            params,
            static,
            data,
            methods=methods,
            lam=lam_d,
            h=h_d,
            seed=seed_d,
            mu=jnp.asarray(mu),
            limit=jnp.asarray(divergence_limit, _tree.dtype(params)),
            token=jnp.asarray(token, jnp.int32),
            total=jnp.asarray(M * P * steps),
            steps=steps,
            every=every,
            batch_size=batch_size,
            sharp_blocks=tuple(bool(x) for x in sharp_set),
            sharpness_rtol=jnp.asarray(sharpness_rtol),
            sharpness_max_iters=jnp.asarray(sharpness_max_iters),
            models=objects,
            init=init,
            seeded=seeds is not None,
            report_progress=progress is not None,
            solver=solver_config,
            vectorize_solves=devices[0].platform != "cpu",
            every_step_loss=every_step_loss,
        )
        out = jax.tree.map(lambda x: to_host(x)[:, :P], out)
    finally:
        release_progress(token)

    def grid(x):  # (M, P, ...) -> (M, L, H, S, ...)
        return np.asarray(x).reshape((M, L, H, S) + x.shape[2:])

    final, best, div, curve, sharp, dist = out
    curve_steps = curve_at if record_every is not None or sharpness_at else None
    sharp_steps = curve_at[sharp_set] if np.any(sharp_set) else None
    config = {
        "loss": loss_name(loss),
        "steps": steps,
        "record_every": record_every,
        "sharpness_at": list(map(int, sharpness_at)),
        "sharpness_rtol": sharpness_rtol,
        "sharpness_max_iters": sharpness_max_iters,
        "data": None
        if data is None
        else {"examples": num_examples(data), "batch_size": batch_size},
        "init": init,
        "mu": mu,
        "divergence_limit": divergence_limit,
        "devices": len(devices),
        "models": list(keys),
        "labels": {k: obj.key for k, obj in zip(keys, objects)},
    }
    residual = grid(sharp)[..., sharp_set, 1] if sharp_steps is not None else None
    _warn_unconverged(residual, sharpness_rtol, sharpness_max_iters)
    return Sweep(
        methods,
        lams_np,
        hs_np,
        seeds_np,
        steps,
        grid(final),
        grid(best) if every_step_loss else None,
        grid(div).astype(int),
        curve_steps,
        grid(curve) if curve_steps is not None else None,
        sharp_steps,
        grid(sharp)[..., sharp_set, 0] if sharp_steps is not None else None,
        {k: grid(dist[:, :, i]) for i, k in enumerate(keys)} if keys else None,
        config,
        provenance(),
        sharpness_residual=residual,
    )


def _warn_unconverged(residual, rtol, max_iters) -> None:
    """A `RuntimeWarning` when a sharpness (NaN residuals are diverged points) did not reach
    the relative residual `rtol` within `max_iters` Hessian-vector products."""
    if residual is None:
        return
    bad = np.isfinite(residual) & (residual > rtol)
    if np.any(bad):
        warnings.warn(
            f"sweep: the sharpness did not converge at {int(bad.sum())} of "
            f"{int(np.isfinite(residual).sum())} recorded points (relative residual up to "
            f"{float(np.max(residual[bad])):.3g} > sharpness_rtol={rtol:g} after "
            f"sharpness_max_iters={max_iters} Hessian-vector products): those values are lower "
            "bounds; they are flagged by Sweep.sharpness_converged. Raise sharpness_max_iters.",
            RuntimeWarning,
            stacklevel=3,
        )


def _check_record(steps, record_every, sharpness_at) -> int:
    """The block length of the loop: `record_every`, or the gcd of the sharpness steps, or
    `steps` (one block)."""
    sharpness_at = list(sharpness_at)
    for n in sharpness_at:
        check_whole("sharpness_at", n, low=1)
        if n > steps:
            raise ValueError(f"sharpness_at={n} is outside the allowed range [1, steps={steps}]")
    if record_every is None:
        every = int(np.gcd.reduce(sharpness_at + [steps])) if sharpness_at else steps
        return every
    check_whole("record_every", record_every, low=1)
    if record_every > steps:
        raise ValueError(
            f"record_every={record_every} is outside the allowed range [1, steps={steps}]"
        )
    bad = [n for n in sharpness_at if n % record_every]
    if bad:
        raise ValueError(f"sharpness_at={bad} must be multiples of record_every={record_every}")
    return int(record_every)


def _starts(params0, seeds):
    """`(seeds, params, static)`: the trained arrays of every start (stacked on a leading seed
    axis with `seeds`) and the rest of the pytree (`eqx.partition`)."""
    if seeds is None:
        if callable(params0) and not isinstance(params0, eqx.Module):
            raise TypeError("params0 is a function: pass seeds=[...] to call it with each key")
        params, static = eqx.partition(params0, eqx.is_inexact_array)
        return np.asarray([0]), params, static
    seeds_np = np.asarray(list(seeds), dtype=int).ravel()
    if seeds_np.size == 0:
        raise ValueError("seeds must hold at least one integer (or be None)")
    if not callable(params0) or isinstance(params0, eqx.Module):
        raise TypeError("with seeds, params0 must be a function key -> params")
    parts = [eqx.partition(params0(jax.random.key(int(s))), eqx.is_inexact_array) for s in seeds_np]
    if any(jax.tree.structure(p) != jax.tree.structure(parts[0][0]) for p, _ in parts):
        raise ValueError("params0(key) must return the same structure for every seed")
    return seeds_np, jax.tree.map(lambda *xs: jnp.stack(xs), *[p for p, _ in parts]), parts[0][1]


@eqx.filter_jit
def _run(
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

        def run_steps(carry, first, count, lam_i, h_i, bound_i, method=method, name=name):
            """`count` steps `first .. first + count - 1` of one point, under the divergence
            guard, with the running minimum of the full loss `loss(u_n)` of every step's start
            `u_n` (a bounded iterate: the frozen state after a divergence is one)."""
            meth = method(lam_i, h_i)

            def one(j, c):
                s, div, best = c
                n = first + j
                f = batch_loss(n)
                value = None
                if meth is None:
                    new = wilson_step(f, h_i.astype(dtype), jnp.asarray(mu, dtype), s)
                    value = full(s.u) if every_step_loss else None
                elif every_step_loss:  # f is the full loss (no data, or one batch)
                    new, value = step_and_loss(f, meth, s, lookahead=name in _LOOKAHEAD)
                else:
                    new = step(f, meth, s)
                s, div, _ = guard(new, s, div, (n + 1).astype(jnp.int32), bound_i)
                best = best if value is None else jnp.minimum(best, value.astype(dtype))
                return s, div, best

            return jax.lax.fori_loop(0, count, one, carry)

        def block(carry, b, run_steps=run_steps, g=g):
            s, div, best = jax.vmap(
                lambda c, lm, hh, bd: run_steps(c, b * every, every, lm, hh, bd)
            )(carry, lam, h, bound)
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
            s, div, best = jax.vmap(
                lambda c, lm, hh, bd, run_steps=run_steps: run_steps(
                    c, blocks * every, rest, lm, hh, bd
                )
            )((s, div, best), lam, h, bound)
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
    n_k = (jnp.arange(blocks) + 1) * every
    degree = interpolant_degree(config.solver())
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
            # (up to the last time a bounded run needs; a solve that runs out of steps still
            # serves the points whose times it reached)
            s_end = n_k[-1] * points.h * mod.shared_time_scale(points)
            s_max = jnp.max(jnp.where(div < 0, s_end, 0.0))
            tabs, reached = [], []
            for i in range(seeds):
                sol = diffrax.diffeqsolve(
                    diffrax.ODETerm(field),
                    config.solver(),
                    0.0,
                    s_max,
                    None,
                    start_of(i),
                    saveat=diffrax.SaveAt(dense=True, t1=True),
                    stepsize_controller=config.controller(),
                    max_steps=config.dense_steps,
                    throw=False,
                    adjoint=diffrax.ForwardMode(),
                )
                tabs.append(table(sol, degree))
                done = sol.result == diffrax.RESULTS.successful
                reached.append(jnp.where(done, s_max, sol.ts[-1]))
            stacked = jax.tree.map(lambda *x: jnp.stack(x), *tabs)
            reach = jnp.stack(reached)

            def shared_one(u_traj, m, sd, d, mod=mod, stacked=stacked, reach=reach):
                tab = jax.tree.map(lambda x: x[sd], stacked)
                times = n_k * m.h * mod.shared_time_scale(m)
                covered = times[-1] <= reach[sd]
                return jnp.where(covered, _worst(u_traj, evaluate(tab, times), d), jnp.nan)

            cols.append(jax.vmap(shared_one)(us, points, seed, div))
            continue

        def one(u_traj, m, sd, d, mod=mod):
            u0 = start_of(sd)
            w0 = None if init == "zero" else initial_state(full, u0, m, init).w
            y0 = mod.initial_state(full, u0, m, w0)
            sol = diffrax.diffeqsolve(
                diffrax.ODETerm(mod.vector_field(full)),
                mod.ode_solver(full, config),
                0.0,
                jnp.where(d >= 0, 0.0, n_k[-1] * m.h),  # a diverged run: nothing to solve
                None,
                y0,
                args=m,
                saveat=diffrax.SaveAt(ts=jnp.where(d >= 0, 0.0, n_k * m.h)),
                stepsize_controller=config.controller(),
                max_steps=config.max_steps,
                throw=False,
                adjoint=diffrax.ForwardMode(),
            )
            ok = sol.result == diffrax.RESULTS.successful
            return jnp.where(ok, _worst(u_traj, mod.position(sol.ys), d), jnp.nan)

        if vectorize_solves:
            cols.append(jax.vmap(one)(us, points, seed, div))
        else:  # on a CPU: one point after the other (see momentum_jax._study._kernel)
            cols.append(jax.lax.map(lambda a, one=one: one(*a), (us, points, seed, div)))
    return jnp.stack(cols, axis=1)


def _worst(u_traj, values, div):
    """`max_k |u_k - v_k|`, NaN for a run that diverged."""
    d = jax.vmap(lambda a, b: _tree.norm(_tree.sub(a, b)))(u_traj, values)
    return jnp.where(div >= 0, jnp.nan, jnp.max(d))
