"""`convergence_study`: validate, build the grid, pack it into lanes and devices, run the compiled
loop once, and label the results."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._distributed import GRID_AXIS, default_devices, shard_grid, to_host
from .._divergence import DIVERGENCE_LIMIT, check_divergence_limit
from .._io import provenance
from .._manifold import warn_outside_series_range
from .._method import METHODS, method_from_name
from .._model import MODELS, AbstractModel, as_model
from .._model._closed_form import check_closed_form
from .._report import register_progress, release_progress
from .._sharpness import stability_threshold
from .._solve import SolverConfig, as_solver_config
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
from ._grid import build_grid, make_schedule
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
    hamiltonian_velocity: str | None = None,
    order: int = 1,
    constant: str | None = None,
    fit_points: int = 4,
    divergence_limit: float = DIVERGENCE_LIMIT,
    chunk_size: int | None = None,
    lanes: int | None = None,
    devices=None,
    progress: Callable[[int, int], object] | None = None,
    solver: SolverConfig | diffrax.AbstractSolver | None = None,
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
      `ModifiedFlow(order=..., constant=...)`, `HessianDamped(...)`) or their aliases.
    - `T`: the time horizon; errors are over `n h <= T`, i.e. `N = floor(T / h)` steps (a `T / h`
      that is not an integer is rounded down, so the last time compared is `N h <= T`).
    - `init`: `"zero"` (the paper's start) or `"manifold"`: the discrete runs start on the
      invariant manifold (to `order` in `h`) and second-order models (with `velocity=None`)
      start with that velocity.
    - `norm`: `"euclidean"` (over all components) or `"max"` (the component-wise maximum, the
      norm of the paper's Figs 2 and 4); either way the maximum over `n h <= T` is taken.
    - `hamiltonian_velocity`, `order`, `constant`: options of the aliases (see the model
      classes); `order` is also the order of the manifold start.
    - `fit_points`: how many of the smallest valid `hs` the fitted `orders` use.
    - `divergence_limit`: a discrete run has diverged at the first step whose iterate is not
      finite or has norm above `divergence_limit * max(1, |u0|)` (the rule of `iterate_final`,
      `sweep` and `train`, `momentum_jax._divergence`); it is then stopped and left out of
      rates and fits.
    - `chunk_size`, `lanes`: steps per loop iteration and points run side by side (powers of
      two chosen from the step counts by default; see `momentum_jax._study._grid`).
    - `devices`: devices to split the points over (default: every device of every process).
    - `progress`: optional `progress(done_steps, total_steps)`, called from the host once per
      loop iteration; a new callback does not recompile.
    - `solver`: a `SolverConfig`, a diffrax solver, or None: the default tolerances for `u0`'s
      dtype (`SolverConfig.for_dtype`: float32 gets `rtol = 1e-6`).
      `SolverConfig(closed_form=True)` evaluates the models' exact solutions instead, on
      quadratic losses (`DiagonalQuadratic`, `DenseQuadratic`): no ODE is solved.

    **Returns:** a `Study`.
    """
    methods, models = as_names("methods", methods), as_names("models", models)
    check_u0(u0)
    solver = as_solver_config(solver, _tree.dtype(u0))
    hs_np, lams_np = _check_grid(hs, lams, methods, models, T, fit_points)
    check_solvable_dtype(u0, "convergence_study")
    check_loss(loss, u0)
    check_choice("init", init, ("zero", "manifold"))
    check_choice("norm", norm, NORMS)
    check_whole("order", order, low=0)
    check_divergence_limit(divergence_limit)
    for name, value in (("chunk_size", chunk_size), ("lanes", lanes)):
        if value is not None:
            check_whole(name, value, low=1)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable (done, total) or None, got {progress!r}")
    if isinstance(devices, str | jax.Device):
        raise TypeError(f"devices must be jax devices (jax.devices()), got {devices!r}")
    check_finite_start(loss, u0)
    objects = tuple(
        as_model(
            m,
            velocity=_velocity_for(m, hamiltonian_velocity, init),
            order=order if m == "modified_flow" else None,
            constant=constant if m == "modified_flow" else None,
        ).for_start(init)
        for m in models
    )
    keys = tuple(m if isinstance(m, str) else m.key for m in models)
    if len(set(keys)) != len(keys):
        raise ValueError(f"models must be distinct, got {list(keys)}")
    grid = build_grid(methods, lams_np, hs_np, T)
    if init == "manifold":
        warn_outside_series_range(
            loss, u0, grid.points.h, grid.points.lam, "convergence_study(init='manifold')"
        )
    if solver.closed_form:
        check_closed_form(loss, u0, objects, grid.points)
    for obj in objects:
        obj.check(grid.points)
    objects = tuple(obj.resolve(grid.points, u0, float(T)) for obj in objects)
    devices = list(devices) if devices is not None else default_devices()
    if not devices:
        raise ValueError("devices must name at least one device (default: jax.devices())")
    if not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"devices must be jax devices (jax.devices()), got {devices!r}")
    schedule = make_schedule(grid.steps, len(devices), lanes=lanes, chunk=chunk_size)
    if not solver.closed_form:
        warn_if_low_precision(u0, solver.rtol, "convergence_study")
    limit = divergence_limit  # the kernel's bound: _divergence.divergence_bound(limit, u0)

    token = register_progress(progress) if progress is not None else -1
    try:
        queues = shard_grid([schedule.assignment], devices)[0]
        while True:
            out = _run(
                loss,
                u0,
                grid.points,
                jnp.asarray(grid.steps),
                queues,
                jnp.asarray(int(grid.steps.sum())),
                jnp.asarray(limit, _tree.dtype(u0)),
                jnp.asarray(token, jnp.int32),
                models=objects,
                init=init,
                order=order,
                solver=solver,
                norm=norm,
                lanes=schedule.lanes,
                chunk=schedule.chunk,
                vectorize_solves=devices[0].platform != "cpu",
                report_progress=progress is not None,
                mesh=_mesh(devices),
            )
            errs, div, res, work, scales, iterations = (to_host(x) for x in out)
            grown = _grown_dense_steps(objects, loss, solver, res, work)
            if grown is None:
                break
            solver = dataclasses.replace(solver, dense_steps=grown)
    finally:
        release_progress(token)
    # each device returns every row; a point's row is that of the device that ran it
    D, P = len(devices), grid.size
    owner = np.zeros(P, dtype=int)
    for d, row in enumerate(schedule.assignment):
        owner[row[row >= 0]] = d
    pick = owner * P + np.arange(P)
    errs, div, res, work, scales = (
        x.reshape(D * P, *x.shape[2:])[pick] for x in (errs, div, res, work, scales)
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
        "order": order,
        "steps": np.floor(T / hs_np * (1 + 1e-12)).astype(np.int64).tolist(),
        "divergence_limit": divergence_limit,
        "chunk_size": schedule.chunk,
        "lanes": schedule.lanes,
        "loop_iterations": int(np.max(iterations)),
        "points": P,
        "devices": D,
        "solver": {f.name: getattr(solver, f.name) for f in dataclasses.fields(solver)}
        | {"method": "closed form" if solver.closed_form else type(solver.solver()).__name__},
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
        _stability_margin(loss, methods, lams_np, hs_np),
    )


def _stability_margin(loss, methods, lams, hs) -> np.ndarray | None:
    """`q_max / q*` per grid point on a loss with a known spectrum (a quadratic): the largest
    Hessian eigenvalue over the sharpness `q*` beyond which the method is linearly unstable
    (`stability_threshold`); above 1 the discrete run grows. None for other losses."""
    spectrum = getattr(loss, "spectrum", None)
    if spectrum is None:
        return None
    q_max = float(np.max(np.asarray(spectrum()[0])))
    out = np.empty((len(methods), lams.size, hs.size))
    for i, name in enumerate(methods):
        m = method_from_name(name, hs[None, :], lams[:, None])
        out[i] = q_max / np.asarray(stability_threshold(m), dtype=float)
    return out


def _grown_dense_steps(models, loss, solver: SolverConfig, res, work) -> int | None:
    """A larger `dense_steps` when a solve shared by every point (the gradient flow) ran out of
    its dense table (`dense_steps` steps) before `max_steps`: four times larger, at most
    `max_steps`, so that the table grows as the solve needs and only `max_steps` bounds a solve.
    None when no shared solve needs it."""
    if solver.closed_form or solver.dense_steps >= solver.max_steps:
        return None
    for i, model in enumerate(models):
        if model.shared_field(loss) is None:
            continue
        hit = (res[..., i] == _RESULT_MAX_STEPS) & (work[..., i] >= solver.dense_steps)
        if np.any(hit):
            return min(solver.max_steps, 4 * solver.dense_steps)
    return None


_RESULT_MAX_STEPS = int(diffrax.RESULTS.max_steps_reached._value)  # type: ignore[attr-defined]


def _describe(model) -> str:
    """The model's class and options, for the study's configuration."""
    options = {f: getattr(model, f) for f in model._defaults()}
    shown = ", ".join(
        f"{k}={v!r}"
        for k, v in options.items()
        if isinstance(v, str | int | float | bool | type(None))
    )
    return f"{type(model).__name__}({shown})"


def _velocity_for(model, velocity, init):
    """The velocity option of a second-order alias: the given one, or None (the model's default
    `"match"`: Taylor matching from a zero start, the discrete start's velocity from the
    manifold)."""
    if isinstance(model, str) and model in MODELS and MODELS[model].second_order:
        return velocity
    return None


def _mesh(devices):
    return None if len(devices) == 1 else jax.sharding.Mesh(np.asarray(devices), (GRID_AXIS,))


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
    hs_np = np.asarray(hs, dtype=float).ravel()
    if hs_np.size == 0:
        raise ValueError("hs must contain at least one learning rate")
    check_range("hs", hs_np, low=0.0, low_open=True)
    if np.any(np.diff(hs_np) >= 0):
        raise ValueError(f"hs must be strictly decreasing (largest first), got {hs_np.tolist()}")
    lams_np = np.asarray(lams, dtype=float).ravel()
    if lams_np.size == 0:
        raise ValueError("lams must contain at least one momentum")
    check_range("lams", lams_np, low=0.0, high=1.0, high_open=True)
    check_range("T", T, low=0.0, low_open=True)
    if not methods:
        raise ValueError(f"methods must name at least one of {', '.join(map(repr, METHODS))}")
    for meth in methods:
        check_choice("method", meth, METHODS)
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct, got {list(methods)}")
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
