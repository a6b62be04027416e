"""Solving the continuous-time models with diffrax."""

from __future__ import annotations

import dataclasses
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _dense, _tree
from ._manifold import warn_outside_series_range
from ._method import Momentum, check_single_method
from ._model import AbstractModel, as_model, check_model_options
from ._model._closed_form import ClosedForm, Eigen, ExactSolution, check_closed_form
from ._validate import (
    check_finite_start,
    check_init,
    check_loss,
    check_solvable_dtype,
    check_u0,
    check_whole,
    concrete,
    warn_if_low_precision,
)


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    """How the models are integrated: by default Tsitouras' 5(4) method with a PID step-size
    controller and its dense output. The default tolerances keep the solver error near `1e-14`
    on the paper's problems, at least 100 times below the smallest discretisation error measured
    there (tested); they need float64 (`SolverConfig.for_dtype(jnp.float32)` gives tolerances a
    float32 run can meet). (diffrax's `Dopri8` is cheaper per step but its interpolant is only
    accurate to about `1e-10` here, too coarse for order measurements at `h = 2^-17`.)

    **Arguments:**

    - `rtol`, `atol`: the controller's tolerances, `0 < rtol < 1`, `atol >= 0`.
    - `max_steps`: the most solver steps of one solve (in a study: of one model at one point),
      an integer `>= 1`.
    - `window_steps`: in a study, a per-point solve advances in windows of at most this many
      steps, whose dense output is kept (a buffer of this many steps per lane).
    - `dense_steps`: in a study, a solve shared by every point (the gradient flow) keeps its
      whole dense output in a table of this many steps (`dense_steps * 9 * d` numbers) to
      start with; a solve that needs more runs again with a table four times larger, up to
      `max_steps`, so that `max_steps` alone bounds every solve.
    - `method`: a diffrax solver with dense output (default `diffrax.Tsit5()`).

    To evaluate the models' exact solutions on a quadratic loss instead of solving an ODE,
    pass `solver=ClosedForm()` in place of a `SolverConfig`.
    """

    rtol: float = 1e-12
    atol: float = 1e-14
    max_steps: int = 2**20
    window_steps: int = 64
    dense_steps: int = 2**12
    method: diffrax.AbstractSolver | None = None
    closed_form: dataclasses.InitVar[None] = None

    def __post_init__(self, closed_form):
        if closed_form is not None:
            raise TypeError(
                "SolverConfig takes no closed_form: the closed form is a solver of its own, "
                "write solver=mj.ClosedForm() instead of solver=SolverConfig(closed_form=True)"
            )
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a real number, got {value!r}")
        if not (0.0 < self.rtol < 1.0) or not np.isfinite(self.rtol):
            raise ValueError(f"rtol={self.rtol!r} is outside the allowed range (0, 1)")
        if not (self.atol >= 0.0) or not np.isfinite(self.atol):
            raise ValueError(f"atol={self.atol!r} is outside the allowed range [0, inf)")
        for name in ("max_steps", "window_steps", "dense_steps"):
            check_whole(name, getattr(self, name), low=1)
        if self.method is not None and not isinstance(self.method, diffrax.AbstractSolver):
            raise TypeError(f"method must be a diffrax solver, got {self.method!r}")

    @classmethod
    def for_dtype(cls, dtype, **overrides) -> SolverConfig:
        """Tolerances a computation in `dtype` can meet: the defaults for float64, `rtol=1e-6`,
        `atol=1e-8` for float32 (and coarser types)."""
        eps = float(jnp.finfo(dtype).eps)
        base = {} if eps < 1e-10 else {"rtol": 1e-6, "atol": 1e-8}
        return cls(**(base | overrides))

    def solver(self) -> diffrax.AbstractSolver:
        return diffrax.Tsit5() if self.method is None else self.method

    def controller(self):
        return diffrax.PIDController(rtol=self.rtol, atol=self.atol)


def as_solver_config(solver, dtype=None) -> SolverConfig:
    """`solver` as a `SolverConfig`: a config is returned as it is, a diffrax solver becomes the
    default config with that solver, None the default config for `dtype` (`for_dtype`)."""
    if isinstance(solver, ClosedForm):
        raise ValueError(
            "solver=ClosedForm() applies to solve and convergence_study only; pass a "
            "SolverConfig, a diffrax solver or None"
        )
    if solver is None:
        return SolverConfig() if dtype is None else SolverConfig.for_dtype(dtype)
    if isinstance(solver, SolverConfig):
        return solver
    if isinstance(solver, diffrax.AbstractSolver):
        return (
            SolverConfig.for_dtype(dtype, method=solver) if dtype else SolverConfig(method=solver)
        )
    raise TypeError(f"solver must be a SolverConfig or a diffrax solver, got {solver!r}")


DEFAULT_SOLVER = SolverConfig()


def check_ode_solver(solver, where: str) -> None:
    """Refuse `ClosedForm()` where the models are always integrated numerically (`where`)."""
    if isinstance(solver, ClosedForm):
        raise ValueError(
            f"solver=ClosedForm() applies to solve and convergence_study, not to {where}; pass "
            "a SolverConfig, a diffrax solver or None"
        )


def diffeqsolve(
    terms,
    ode_solver: diffrax.AbstractSolver,
    t0,
    t1,
    y0,
    *,
    saveat: diffrax.SaveAt,
    max_steps: int,
    args=None,
    dt0=None,
    controller=None,
    solver_state=None,
    controller_state=None,
    made_jump=None,
) -> diffrax.Solution:
    """diffrax's `diffeqsolve`, the one call to it in this package: never raises (the caller
    reads `sol.result`) and uses the forward-mode adjoint, since nothing is differentiated
    through a solve. `controller` defaults to diffrax's constant step `dt0`; `solver_state`,
    `controller_state` and `made_jump` continue an earlier solve.

    With an adaptive `controller`, a given `dt0` (the first step) is handed to the controller
    (`_FirstStep`) instead of to diffrax: diffrax checks the sign of a traced `dt0` with an
    equinox runtime check, a host callback, and JAX never writes a program with a host
    callback to its persistent compilation cache. The steps are the same, bit for bit."""
    if dt0 is not None and isinstance(controller, diffrax.AbstractAdaptiveStepSizeController):
        controller, dt0 = _FirstStep(controller, jnp.asarray(dt0)), None
    return diffrax.diffeqsolve(
        terms,
        ode_solver,
        t0=t0,
        t1=t1,
        dt0=dt0,
        y0=y0,
        args=args,
        saveat=saveat,
        stepsize_controller=diffrax.ConstantStepSize() if controller is None else controller,
        max_steps=max_steps,
        solver_state=solver_state,
        controller_state=controller_state,
        made_jump=made_jump,
        throw=False,
        adjoint=diffrax.ForwardMode(),
    )


class _FirstStep(diffrax.AbstractAdaptiveStepSizeController):
    """`inner` with a given first step `dt`: `init` proposes `t0 + dt` (as diffrax does with
    `dt0 = dt`) and every later step is `inner`'s. `dt` must have the sign of `t1 - t0`
    (unchecked: the callers continue a forward solve with a step it took)."""

    inner: diffrax.AbstractAdaptiveStepSizeController
    dt: jax.Array
    rtol: Any
    atol: Any
    norm: Any

    def __init__(self, inner: diffrax.AbstractAdaptiveStepSizeController, dt):
        self.inner, self.dt = inner, dt
        self.rtol, self.atol, self.norm = inner.rtol, inner.atol, inner.norm

    def wrap(self, direction):
        return _FirstStep(self.inner.wrap(direction), self.dt * direction)

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        del dt0
        return self.inner.init(terms, t0, t1, y0, self.dt, args, func, error_order)

    def adapt_step_size(self, *args, **kwargs):
        return self.inner.adapt_step_size(*args, **kwargs)


class SharedSolve(eqx.Module):
    """A solve shared by every point of a grid (the gradient flow `v(s)`, whose solution at a
    point is `v(s t)`), with its whole dense output.

    `table`: the dense output (`_dense.Table`); `reached`: the last time it covers (`t1` when
    the solve succeeded); `result`: diffrax's result code (int32); `steps`: solver steps taken.
    """

    table: _dense.Table
    reached: jax.Array
    result: jax.Array
    steps: jax.Array

    def evaluate(self, s, *, window: int = 0):
        """The solution at the times `s` (any shape; clipped to the solve's span). With
        `window >= 16`, the rows of `s` are sorted and located among `window` steps after their
        first time (`_dense.evaluate_sorted`)."""
        if window >= 16:
            return _dense.evaluate_sorted(self.table, s, window)
        return _dense.evaluate(self.table, s)

    def short(self, dense_steps: int):
        """Whether the solve ran out of its table of `dense_steps` steps before `t1`."""
        return table_short(self.result, self.steps, dense_steps)


def solve_shared(field, y0, t1, config: SolverConfig) -> SharedSolve:
    """Solve `y' = field(t, y)` from `y(0) = y0` to `t1` with the config's solver, keeping the
    dense output of at most `config.dense_steps` steps (`grow_dense_steps` reruns with a larger
    table when that is too few)."""
    ode = config.solver()
    sol = diffeqsolve(
        diffrax.ODETerm(field),
        ode,
        0.0,
        t1,
        y0,
        saveat=diffrax.SaveAt(t1=True, dense=True),
        max_steps=config.dense_steps,
        controller=config.controller(),
    )
    code = sol.result._value.astype(jnp.int32)
    assert sol.ts is not None and sol.stats is not None
    return SharedSolve(
        _dense.table(sol, _dense.interpolant_degree(ode)),
        jnp.where(code == 0, t1, sol.ts[-1]),
        code,
        sol.stats["num_steps"],
    )


def table_short(result, steps, dense_steps: int):
    """Whether a shared solve with diffrax's result code `result` after `steps` solver steps
    ran out of its dense table of `dense_steps` steps (NumPy or JAX arrays)."""
    return (result == _RESULT_MAX_STEPS) & (steps >= dense_steps)


def grow_dense_steps(run, config):
    """`run(config) -> (out, short)`, rerun with a four times larger `dense_steps` (at most
    `max_steps`) while `short`: a solve shared by every point ran out of its dense table, so
    that `max_steps` alone bounds every solve. **Returns:** `(out, config)` of the last run."""
    while True:
        out, short = run(config)
        if not short or config.dense_steps >= config.max_steps:
            return out, config
        config = dataclasses.replace(
            config, dense_steps=min(config.max_steps, 4 * config.dense_steps)
        )


_RESULT_MAX_STEPS = int(diffrax.RESULTS.max_steps_reached._value)  # type: ignore[attr-defined]


def integrate(f, y0, t0, t1, ts, method, config: SolverConfig = DEFAULT_SOLVER, ode_solver=None):
    """Integrate `y' = f(t, y, method)` from `t0` to `t1`, saving at `ts` (with `ode_solver`,
    default the config's); never raises: returns `(ys, result)` with diffrax's `RESULTS` code
    for the caller to report."""
    sol = diffeqsolve(
        diffrax.ODETerm(f),
        config.solver() if ode_solver is None else ode_solver,
        t0,
        t1,
        y0,
        args=method,
        saveat=diffrax.SaveAt(ts=ts),
        max_steps=config.max_steps,
        controller=config.controller(),
    )
    return sol.ys, sol.result


def solve(
    loss,
    u0,
    method: Momentum,
    ts,
    *,
    model: str | AbstractModel,
    return_velocity: bool = False,
    return_state: bool = False,
    solver: SolverConfig | diffrax.AbstractSolver | ClosedForm | None = None,
    **removed,
):
    """Solve a continuous-time model from `u(0) = u0` (docs/theory.md §2).

    **Arguments:**

    - `loss`, `u0`, `method`: as for `iterate`.
    - `ts`: increasing times `>= 0` at which to return the solution (time `t = n h`).
    - `model`: a model object (`GradientFlow()`, `Hamiltonian(velocity=...)`,
      `ModifiedFlow(order=..., constant=...)`, `HessianDamped(...)`), whose fields are its
      options (docs/theory.md §4), or the alias of a default object: `"gradient_flow"`,
      `"hamiltonian"`, `"modified_flow"`, `"hessian_damped"`.
    - `return_velocity`: for second-order models, return `u'` as well.
    - `return_state`: return the model's whole state instead of its position (a second-order
      model's `(u, u')`, `RodFlow`'s `(x, delta, aux)`, `CentralFlow`'s `(x, v)`), for
      quantities such as `CentralFlow.variance`.
    - `solver`: a `SolverConfig`, a diffrax solver, or None for the default tolerances of `u0`'s
      dtype (`SolverConfig.for_dtype`); `ClosedForm()` returns the exact solution on a
      quadratic loss instead (a `ValueError` before compiling where there is none).

    **Returns:** the solution at `ts`, shaped like `u0` with a leading time axis (and `u'` as well
    for second-order models when `return_velocity=True`). Raises `RuntimeError` with diffrax's
    reason if the solver fails.
    """
    check_model_options("solve", removed)
    check_u0(u0)
    check_single_method(method, "solve")
    check_solvable_dtype(u0, "solve")
    check_loss(loss, u0)
    check_finite_start(loss, u0)
    config = None if isinstance(solver, ClosedForm) else as_solver_config(solver, _tree.dtype(u0))
    model = as_model(model)
    model.check(method)
    ts_last = concrete(ts)
    horizon = float(np.max(ts_last)) if ts_last is not None and ts_last.size else 1.0
    model = model.resolve(method, u0, horizon)
    vel = getattr(model, "velocity", None)
    if vel is not None and not isinstance(vel, str):
        check_init(vel, u0)
    if isinstance(vel, str) and vel == "manifold":
        warn_outside_series_range(loss, u0, method.h, method.lam, f"solve(model={model.key})")
    ts_np = concrete(ts)
    if ts_np is not None and (
        ts_np.ndim != 1 or ts_np.size == 0 or np.any(np.diff(ts_np) < 0) or ts_np[0] < 0
    ):
        raise ValueError("ts must be a non-empty 1-D array of non-decreasing times >= 0")
    if config is None:
        check_closed_form(loss, u0, [model], method)
        ys = _closed(loss, model, u0, method, jnp.asarray(ts, dtype=_tree.dtype(u0)))
        return (
            ys if return_state or (model.second_order and return_velocity) else model.position(ys)
        )
    warn_if_low_precision(u0, config.rtol, "solve")
    ys, result = _solve(loss, model, config, u0, method, jnp.asarray(ts, dtype=_tree.dtype(u0)))
    if not bool(result == diffrax.RESULTS.successful):
        raise RuntimeError(f"diffrax failed solving model={model.key!r}: {result}")
    if return_state or (model.second_order and return_velocity):
        return ys
    return model.position(ys)


@eqx.filter_jit
def _closed(loss, model, u0, method, ts):
    method = method.astype(_tree.dtype(u0))
    eigen = Eigen.of(loss, _tree.dtype(u0))
    form = ExactSolution.build(model, loss, eigen, u0, method)
    if not model.second_order:
        return eigen.back(form.position(ts))
    z, v = form.state(ts)
    return eigen.back(z), eigen.back(v)


@eqx.filter_jit
def _solve(loss, model, solver, u0, method, ts):
    method = method.astype(_tree.dtype(u0))
    y0 = model.initial_state(loss, u0, method)
    return integrate(
        model.vector_field(loss),
        y0,
        0.0,
        ts[-1],
        ts,
        method,
        solver,
        model.ode_solver(loss, solver),
    )
