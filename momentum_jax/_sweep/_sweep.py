"""`sweep`: train any loss with HB / NAG / GD (and the Section 5 schemes) over a grid of learning
rates, momenta and seeds, in one compiled, sharded call with the memory-light loop."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._batches import batched_mean_loss, make_batches, num_examples
from .._io import provenance
from .._manifold import warn_outside_series_range
from .._model import AbstractModel, as_model
from .._runtime import (
    DIVERGENCE_LIMIT,
    check_devices,
    check_divergence_limit,
    check_grid_axes,
    check_progress,
    pad_to,
    padded_size,
    progress_token,
    shard_grid,
    to_host,
    vectorize_on,
)
from .._sharpness import SHARPNESS_MAX_ITERS, SHARPNESS_RTOL
from .._solve import (
    SolverConfig,
    as_solver_config,
    check_ode_solver,
    grow_dense_steps,
)
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
from ._distances import _shared_short
from ._loop import _run
from ._methods import SWEEP_METHODS, _momentum
from ._result import Sweep


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
    gap_to: str | None = None,
    init: str = "zero",
    mu: float = 1.0,
    divergence_limit: float = DIVERGENCE_LIMIT,
    min_loss: bool = True,
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
    - `methods`: distinct names of `METHODS` (`"hb"`, `"nag"`, `"gd"`) or of the Section 5 schemes
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
    - `gap_to`: a name of `methods`: record `Sweep.gaps`, the distance `|u_n - u'_n|` (Euclidean
      over all parameters) of every run to the run of `gap_to` at the same `(lam, h, seed)`
      (same start, same batches), after each step of `curve_steps` (with neither
      `record_every` nor `sharpness_at`: the final step, and the curve is recorded there too):
      the parameter gap of the paper's Fig 7, e.g. `methods=("hb",
      "nag", "gd_effective"), gap_to="gd_effective"`.
    - `init`: `"zero"` or `"manifold"` (the invariant-manifold velocity of the full loss).
    - `divergence_limit`: a run diverges at the first step `n` whose parameters are not finite
      or have norm above `divergence_limit * max(1, |params0|)` (its own start's norm with
      `seeds`); it is then frozen at step `n - 1` (its final and minimum loss are those of the
      steps before `n`) and its curve and sharpness are NaN from step `n` on. The rule of
      `iterate_final`, `train` and `convergence_study`.
    - `min_loss`: record the minimum of the full loss over every step (`Sweep.min_loss`; it
      needs the loss at every step: a reduction a step, and one more forward pass for the
      look-ahead methods). `False` leaves it out (`Sweep.min_loss` is None) and runs every
      method of the eq. (7) family in one loop: on a network the speed of a bare
      `jit(vmap(scan))` (benchmarks/RESULTS.md, "Sweeps against the bare vmap").
    - `solver`: a `SolverConfig` (or a diffrax solver) for the models' solves; default: the
      tolerances of the parameters' dtype with at most `2^14` steps a solve (a point whose model
      needs more, typically a stiff one far outside the model's regime, gets NaN).
    - `devices`: devices to split the grid over (default: every device of every process).
    - `progress`: `progress(done_steps, total_steps)`, called from the host once per record
      block; a new callback does not recompile.

    **Returns:** a `Sweep` with axes `(method, lam, h, seed)`.
    """
    methods = as_names("methods", methods)
    hs_np, lams_np = check_grid_axes(hs, lams, methods, allowed=SWEEP_METHODS)
    check_whole("steps", steps, low=1)
    check_range("mu", mu, low=0.0, low_open=True)
    check_divergence_limit(divergence_limit)
    if not isinstance(min_loss, bool | np.bool_):
        raise TypeError(f"min_loss must be True or False, got {min_loss!r}")
    check_choice("init", init, ("zero", "manifold"))
    if gap_to is not None:
        check_choice("gap_to", gap_to, methods)
    check_range("sharpness_rtol", sharpness_rtol, low=0.0, high=1.0, high_open=True)
    check_whole("sharpness_max_iters", sharpness_max_iters, low=1)
    every = _check_record(steps, record_every, sharpness_at)
    check_progress(progress)
    devices = check_devices(devices)
    seeds_np, params, static = _starts(params0, seeds)
    check_u0(params, "params0")
    single = jax.tree.map(lambda x: x[0], params) if seeds is not None else params
    if data is None:
        check_loss(_WithStatic(loss, static), single)
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
    check_ode_solver(solver, "sweep")
    solver_config = (
        SolverConfig.for_dtype(_tree.dtype(params), max_steps=2**14)
        if solver is None
        else as_solver_config(solver, _tree.dtype(params))
    )
    keys = tuple(m if isinstance(m, str) else m.key for m in models)

    M, L, H, S = len(methods), lams_np.size, hs_np.size, seeds_np.size
    lam_g, h_g, seed_g = (
        x.ravel() for x in np.meshgrid(lams_np, hs_np, np.arange(S), indexing="ij")
    )
    if init == "manifold":  # per (lam, h) of the grid, not again for every seed
        lam_1, h_1 = (x.ravel() for x in np.meshgrid(lams_np, hs_np, indexing="ij"))
        _warn_manifold_range(loss, single, static, data, batch_size, methods, h_1, lam_1, mu)
    (lam_p, h_p, seed_p), P = pad_to([lam_g, h_g, seed_g], padded_size(lam_g.size, len(devices)))
    lam_d, h_d, seed_d = shard_grid([lam_p, h_p, seed_p.astype(np.int32)], devices)
    blocks = steps // every
    curve_at = np.arange(1, blocks + 1) * every
    # the full loss of every step comes with the steps' gradients unless there are mini-batches
    every_step_loss = min_loss and (data is None or (batch_size or 0) >= num_examples(data))
    sharp_set = np.isin(curve_at, np.asarray(sharpness_at, dtype=int))
    with progress_token(progress) as token:

        def run(config):
            out = _run(
                loss,
                params,
                static,
                data,
                methods=methods,
                lam=lam_d,
                h=h_d,
                seed=seed_d,
                # NumPy scalars: traced like JAX arrays, without a dispatch each on the host
                mu=np.asarray(mu),
                limit=np.asarray(divergence_limit, np.dtype(_tree.dtype(params))),
                token=np.asarray(token, np.int32),
                total=np.asarray(M * lam_p.size * steps),  # the padded points too
                steps=steps,
                every=every,
                batch_size=batch_size,
                sharp_blocks=tuple(bool(x) for x in sharp_set),
                sharpness_rtol=np.asarray(sharpness_rtol),
                sharpness_max_iters=np.asarray(sharpness_max_iters, np.int32),
                models=objects,
                init=init,
                seeded=seeds is not None,
                report_progress=progress is not None,
                solver=config,
                vectorize_solves=vectorize_on(devices),
                every_step_loss=every_step_loss,
                gap_to=gap_to,
            )
            out = jax.tree.map(lambda x: to_host(x)[:, :P], out)
            return out, _shared_short(out, objects, methods, loss)

        out, solver_config = grow_dense_steps(run, solver_config)

    def grid(x):  # (M, P, ...) -> (M, L, H, S, ...)
        return np.asarray(x).reshape((M, L, H, S) + x.shape[2:])

    final, best, div, curve, sharp, dist, gaps = out
    recorded = record_every is not None or bool(sharpness_at) or gap_to is not None
    curve_steps = curve_at if recorded else None
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
        "gap_to": gap_to,
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
        gaps=grid(gaps) if gap_to is not None else None,
    )


class _WithStatic(eqx.Module):
    """`loss(eqx.combine(p, static))`, the loss of the trained arrays `p`, as a pytree (so that
    `check_loss` recognises the same loss and shapes again and checks them once)."""

    loss: Callable
    static: Any

    def __call__(self, p):
        return self.loss(eqx.combine(p, self.static))


def _warn_manifold_range(loss, params, static, data, batch_size, methods, h, lam, mu) -> None:
    """The manifold start's range check of `iterate` and `convergence_study`
    (`warn_outside_series_range`), for every point of the eq. (7) family at the (first) start,
    on the full loss."""
    full: Callable
    if data is None:
        full = _WithStatic(loss, static)
    else:
        batches, mask = make_batches(data, batch_size)

        def full(p):
            return batched_mean_loss(lambda q, b: loss(eqx.combine(q, static), b), p, batches, mask)

    points = [m for m in (_momentum(name, h, lam, mu) for name in methods) if m is not None]
    if points:
        warn_outside_series_range(
            full,
            params,
            np.concatenate([np.broadcast_to(np.asarray(m.h), h.shape) for m in points]),
            np.concatenate([np.broadcast_to(np.asarray(m.lam), h.shape) for m in points]),
            "sweep(init='manifold')",
            stacklevel=4,
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
