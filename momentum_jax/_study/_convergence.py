"""`convergence_study`: validate, build the grid, pack it into lanes and devices, run the compiled
loop once, and label the results."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import diffrax
import equinox as eqx
import jax
import numpy as np

from .. import _tree
from .._io import provenance
from .._manifold import warn_outside_series_range
from .._method import METHODS
from .._model import MODELS, AbstractModel, ClosedForm, as_model, check_model_options
from .._model._closed_form import check_closed_form
from .._runtime import (
    DIVERGENCE_LIMIT,
    GRID_AXIS,
    check_devices,
    check_divergence_limit,
    check_grid_axes,
    check_progress,
    grid_mesh,
    pad_to,
    progress_token,
    shard_grid,
    to_host,
    vectorize_on,
)
from .._sharpness import stability_threshold
from .._solve import SolverConfig, as_solver_config, grow_dense_steps, table_short
from .._types import PyTree
from .._validate import (
    as_names,
    check_choice,
    check_finite_start,
    check_loss,
    check_range,
    check_solvable_dtype,
    check_u0,
    check_whole,
    loss_name,
    warn_if_low_precision,
)
from ._grid import build_grid, host_momentum, make_schedule
from ._kernel import run_points
from ._result import Study, result_message

NORMS = ("euclidean", "max")
"""The norms of `u_n - u(n h)`: Euclidean over all components, or the component-wise maximum
(the paper's Figs 2 and 4; docs/theory.md §7)."""


def convergence_study(
    loss,
    u0: PyTree,
    *,
    hs,
    lams,
    methods: Sequence[str] = ("hb", "nag"),
    models: Sequence[str | AbstractModel] = ("gradient_flow", "hamiltonian", "modified_flow"),
    T: float,
    init: str = "zero",
    norm: str = "euclidean",
    init_order: int = 1,
    fit_points: int = 4,
    divergence_limit: float = DIVERGENCE_LIMIT,
    chunk_size: int | None = None,
    lanes: int | None = None,
    devices=None,
    progress: Callable[[int, int], object] | None = None,
    solver: SolverConfig | diffrax.AbstractSolver | ClosedForm | None = None,
    **removed,
) -> Study:
    """Errors of every `(method, lam, h)` against every continuous-time model, from one compiled
    call (docs/theory.md §2; the paper's Figs 2 and 4 are such studies).

    **Arguments:**

    - `loss`, `u0`: the loss (any scalar JAX function of a pytree; array leaves of a pytree loss,
      such as an `equinox.Module`, are traced, so new data never recompiles) and the start.
    - `hs`: learning rates, strictly decreasing (typically halving: `2^-4, ..., 2^-17`).
    - `lams`: momenta in `[0, 1)`.
    - `methods`: names of the method table `METHODS`: `"hb"`, `"nag"`, `"gd"` (gradient descent
      at the learning rate `h`, against `u' = -grad Phi`; its row is the same for every `lam`).
    - `models`: model objects (`GradientFlow()`, `Hamiltonian(velocity=...)`,
      `ModifiedFlow(order=..., constant=...)`, `HessianDamped(...)`), whose fields are their
      options, or the aliases of default objects (`"gradient_flow"`, `"hamiltonian"`, ...).
    - `T`: the time horizon; errors are over `n h <= T`, i.e. `N = floor(T / h)` steps (a `T / h`
      that is not an integer is rounded down, so the last time compared is `N h <= T`).
    - `init`: `"zero"` (the paper's start) or `"manifold"`: the discrete runs start on the
      invariant manifold (to `init_order` in `h`, an integer `>= 0`) and second-order models
      (with `velocity="match"`, their default) start with that velocity.
    - `norm`: `"euclidean"` (over all components) or `"max"` (the component-wise maximum, the
      norm of the paper's Figs 2 and 4); either way the maximum over `n h <= T` is taken.
    - `fit_points`: how many of the smallest valid `hs` the fitted `orders` use.
    - `divergence_limit`: a discrete run has diverged at the first step whose iterate is not
      finite or has norm above `divergence_limit * max(1, |u0|)` (the one rule of
      `iterate_final`, `sweep` and `train`); it is then stopped and left out of rates and fits.
    - `chunk_size`, `lanes`: steps per loop iteration and points run side by side (by default
      a fixed 256 steps, `_study/_grid.py:CHUNK`, and a power of two chosen from the ratios of
      the step counts, so that new hyperparameters, an octave shift of `hs` or a new `T` reuse
      the compiled loop).
    - `devices`: devices to split the points over (default: every device of every process).
    - `progress`: optional `progress(done_steps, total_steps)`, called from the host once per
      loop iteration; a new callback does not recompile.
    - `solver`: a `SolverConfig`, a diffrax solver, or None: the default tolerances for `u0`'s
      dtype (`SolverConfig.for_dtype`: float32 gets `rtol = 1e-6`).
      `ClosedForm()` evaluates the models' exact solutions instead, on quadratic losses
      (`DiagonalQuadratic`, `DenseQuadratic`): no ODE is solved.

    **Returns:** a `Study`.
    """
    check_model_options(
        "convergence_study",
        removed,
        extra=", and init_order= for the manifold start of the discrete runs",
    )
    methods, models = as_names("methods", methods), as_names("models", models)
    check_u0(u0)
    closed = isinstance(solver, ClosedForm)
    solver = solver if isinstance(solver, ClosedForm) else as_solver_config(solver, _tree.dtype(u0))
    hs_np, lams_np = _check_grid(hs, lams, methods, models, T, fit_points)
    check_solvable_dtype(u0, "convergence_study")
    check_loss(loss, u0)
    check_choice("init", init, ("zero", "manifold"))
    check_choice("norm", norm, NORMS)
    check_whole("init_order", init_order, low=0)
    check_divergence_limit(divergence_limit)
    for name, value in (("chunk_size", chunk_size), ("lanes", lanes)):
        if value is not None:
            check_whole(name, value, low=1)
    check_progress(progress)
    devices = check_devices(devices)
    check_finite_start(loss, u0)
    objects = tuple(as_model(m).for_start(init) for m in models)
    keys = tuple(m if isinstance(m, str) else m.key for m in models)
    if len(set(keys)) != len(keys):
        raise ValueError(f"models must be distinct, got {list(keys)}")
    grid = build_grid(methods, lams_np, hs_np, T)
    if init == "manifold":
        warn_outside_series_range(
            loss, u0, grid.points.h, grid.points.lam, "convergence_study(init='manifold')"
        )
    if closed:
        check_closed_form(loss, u0, objects, grid.points)
    for obj in objects:
        obj.check(grid.points)
    objects = tuple(obj.resolve(grid.points, u0, float(T)) for obj in objects)
    schedule = make_schedule(grid.steps, len(devices), lanes=lanes, chunk=chunk_size)
    if isinstance(solver, SolverConfig):
        warn_if_low_precision(u0, solver.rtol, "convergence_study")
    limit = divergence_limit  # the kernel bounds the iterates by divergence_bound(limit, u0)

    # the kernel's points: the grid's, padded with copies of the first (in no queue) to the
    # schedule's size, as host arrays (placing them compiles nothing)
    fields, steps = pad_to([grid.fields().astype(_tree.dtype(u0)), grid.steps], schedule.size)[0]
    points = host_momentum(fields)
    with progress_token(progress) as token:
        queues = shard_grid([schedule.assignment], devices)[0]

        def run(config):
            out = _run(
                loss,
                u0,
                points,
                steps,
                queues,
                np.asarray(int(grid.steps.sum()), np.int64),
                np.asarray(limit, _tree.dtype(u0)),
                np.asarray(token, np.int32),
                models=objects,
                init=init,
                init_order=init_order,
                solver=config,
                norm=norm,
                lanes=schedule.lanes,
                chunk=schedule.chunk,
                vectorize_solves=vectorize_on(devices),
                report_progress=progress is not None,
                mesh=None if len(devices) == 1 else grid_mesh(devices),
            )
            out = tuple(to_host(x) for x in out)
            return out, not closed and _shared_short(objects, loss, config, out[2], out[3])

        out, solver = grow_dense_steps(run, solver)
        errs, div, res, work, scales, iterations = out
    # each device returns every row; a point's row is that of the device that ran it
    D, P = len(devices), grid.size
    owner = np.zeros(P, dtype=int)
    for d, row in enumerate(schedule.assignment):
        owner[row[row >= 0]] = d
    pick = owner * schedule.size + np.arange(P)
    errs, div, res, work, scales = (
        x.reshape(D * schedule.size, *x.shape[2:])[pick] for x in (errs, div, res, work, scales)
    )

    idx = grid.index
    diverged = div[idx]
    errors, failures, solver_steps, solution_norms = {}, {}, {}, {}
    leaves = [np.ravel(np.asarray(x)) for x in jax.tree.leaves(u0)]
    start_norm = (
        float(np.sqrt(sum(np.sum(np.square(x)) for x in leaves)))
        if norm == "euclidean"
        else float(max(np.max(np.abs(x), initial=0.0) for x in leaves))
    )
    for i, key in enumerate(keys):
        solver_steps[key] = work[idx, i]
        # every model starts at u0: the solution's largest norm over 0 <= t <= T
        solution_norms[key] = np.maximum(scales[idx, i], start_norm)
        codes = res[idx, i]
        failures[key] = np.vectorize(result_message, otypes=[object])(codes)
        failures[key][codes == 0] = ""
        errors[key] = np.where((diverged >= 0) | (codes != 0), np.nan, errs[idx, i])
    config = {
        "loss": loss_name(loss),
        "u0": _u0_summary(u0),
        "T": float(T),
        "init": init,
        "norm": norm,
        "models": {key: _describe(obj) for key, obj in zip(keys, objects)},
        "labels": {key: obj.key for key, obj in zip(keys, objects)},
        "init_order": init_order,
        "steps": grid.steps_of_hs().tolist(),
        "divergence_limit": divergence_limit,
        "chunk_size": schedule.chunk,
        "lanes": schedule.lanes,
        "loop_iterations": int(np.max(iterations)),
        "points": P,
        "devices": D,
        "solver": {f.name: getattr(solver, f.name) for f in dataclasses.fields(solver)}
        | {"method": type(solver.solver()).__name__}
        if isinstance(solver, SolverConfig)
        else {"method": "closed form"},
    }
    return Study(
        methods,
        lams_np,
        hs_np,
        keys,
        errors,
        diverged,
        failures,
        config,
        provenance(),
        fit_points,
        solver_steps,
        solution_norms,
        _stability_margin(loss, grid),
    )


def _stability_margin(loss, grid) -> np.ndarray | None:
    """`q_max / q*` per grid point on a loss with a known spectrum (a quadratic): the largest
    Hessian eigenvalue over the sharpness `q*` beyond which the method is linearly unstable
    (`stability_threshold`, in NumPy on the grid's points); above 1 the discrete run grows.
    None for other losses."""
    spectrum = getattr(loss, "spectrum", None)
    if spectrum is None:
        return None
    q_max = float(np.max(np.asarray(spectrum()[0])))
    return q_max / np.asarray(stability_threshold(grid.points), dtype=float)[grid.index]


def _shared_short(models, loss, solver: SolverConfig, res, work) -> bool:
    """Whether a solve shared by every point (the gradient flow) ran out of its dense table
    (`SharedSolve.short`) at some point."""
    return any(
        np.any(table_short(res[..., i], work[..., i], solver.dense_steps))
        for i, model in enumerate(models)
        if model.shared_field(loss) is not None
    )


def _describe(model) -> str:
    """The model's class and options, for the study's configuration."""
    options = {f: getattr(model, f) for f in model._defaults()}
    shown = ", ".join(
        f"{k}={v!r}"
        for k, v in options.items()
        if isinstance(v, str | int | float | bool | type(None))
    )
    return f"{type(model).__name__}({shown})"


@eqx.filter_jit
def _run(loss, u0, points, steps, queues, total, limit, token, *, mesh, **options):
    if mesh is None:
        out = run_points(
            loss, u0, points, steps, queues[0], total, limit=limit, token=token, device=0, **options
        )
        return jax.tree.map(lambda x: x[None], out)
    params, static = eqx.partition(loss, eqx.is_array)
    spec, replicated = jax.sharding.PartitionSpec(GRID_AXIS), jax.sharding.PartitionSpec()

    def per_device(params, u0, points, steps, queue, total, limit, token):
        out = run_points(
            eqx.combine(params, static),
            u0,
            points,
            steps,
            queue[0],
            total,
            limit=limit,
            token=token,
            device=jax.lax.axis_index(GRID_AXIS),
            **options,
        )
        return jax.tree.map(lambda x: x[None], out)

    return jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(replicated,) * 4 + (spec,) + (replicated,) * 3,
        out_specs=spec,
        check_vma=False,
    )(params, u0, points, steps, queues, total, limit, token)


def _check_grid(hs, lams, methods, models, T, fit_points):
    hs_np, lams_np = check_grid_axes(hs, lams, methods, allowed=tuple(METHODS), decreasing=True)
    check_range("T", T, low=0.0, low_open=True)
    if not models:
        raise ValueError(f"models must name at least one of {', '.join(map(repr, MODELS))}")
    for model in models:
        if not isinstance(model, AbstractModel):
            check_choice("model", model, MODELS)
    if isinstance(fit_points, bool) or not isinstance(fit_points, int) or fit_points < 2:
        raise ValueError(f"fit_points={fit_points!r} is outside the allowed range: an integer >= 2")
    return hs_np, lams_np


def _u0_summary(u0):
    leaves = jax.tree.leaves(u0)
    if len(leaves) == 1 and np.size(leaves[0]) <= 64:
        return np.asarray(leaves[0]).tolist()
    return {"leaves": len(leaves), "size": int(sum(np.size(x) for x in leaves))}
