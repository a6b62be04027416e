"""Solving the continuous-time models with diffrax."""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np

from . import _tree
from ._manifold import warn_outside_series_range
from ._method import Momentum, check_single_method
from ._model import AbstractModel, as_model
from ._model._closed_form import ClosedForm, Eigen, check_closed_form
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
    - `closed_form`: solve no ODE: evaluate the models' exact solutions on a quadratic loss
      `1/2 u^T A u` with a `spectrum()` (`DiagonalQuadratic`, `DenseQuadratic`) from a flat
      start, one exponential per eigenvalue (`momentum_jax._model._closed_form`). Exact to
      rounding and much faster there; any other loss or a model without `linear = True` is
      refused before compiling. The other fields are then unused.
    """

    rtol: float = 1e-12
    atol: float = 1e-14
    max_steps: int = 2**20
    window_steps: int = 64
    dense_steps: int = 2**12
    method: diffrax.AbstractSolver | None = None
    closed_form: bool = False

    def __post_init__(self):
        if not isinstance(self.closed_form, bool):
            raise TypeError(f"closed_form must be True or False, got {self.closed_form!r}")
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


def check_ode_solver(solver: SolverConfig, where: str) -> None:
    """Refuse `closed_form=True` where the models are always integrated numerically."""
    if solver.closed_form:
        raise ValueError(
            f"SolverConfig(closed_form=True) applies to solve and convergence_study, not to "
            f"{where}; use closed_form=False"
        )


def _diffeqsolve(f, y0, t0, t1, args, config: SolverConfig, *, saveat, max_steps, ode_solver=None):
    """diffrax's `diffeqsolve` with this package's solver settings; never raises (the caller
    reports `sol.result`); forward-mode adjoint, since nothing is differentiated through it."""
    return diffrax.diffeqsolve(
        diffrax.ODETerm(f),
        config.solver() if ode_solver is None else ode_solver,
        t0=t0,
        t1=t1,
        dt0=None,
        y0=y0,
        args=args,
        saveat=saveat,
        stepsize_controller=config.controller(),
        max_steps=max_steps,
        throw=False,
        adjoint=diffrax.ForwardMode(),
    )


def integrate(f, y0, t0, t1, ts, method, config: SolverConfig = DEFAULT_SOLVER, ode_solver=None):
    """Integrate `y' = f(t, y, method)` from `t0` to `t1`, saving at `ts` (with `ode_solver`,
    default the config's); never raises: returns `(ys, result)` with diffrax's `RESULTS` code
    for the caller to report."""
    sol = _diffeqsolve(
        f,
        y0,
        t0,
        t1,
        method,
        config,
        saveat=diffrax.SaveAt(ts=ts),
        max_steps=config.max_steps,
        ode_solver=ode_solver,
    )
    return sol.ys, sol.result


def solve(
    loss,
    u0,
    method: Momentum,
    ts,
    *,
    model: str | AbstractModel,
    velocity=None,
    order: int | None = None,
    constant: str | None = None,
    return_velocity: bool = False,
    solver: SolverConfig | diffrax.AbstractSolver | None = None,
):
    """Solve a continuous-time model from `u(0) = u0` (docs/theory.md §2).

    **Arguments:**

    - `loss`, `u0`, `method`: as for `iterate`.
    - `ts`: increasing times `>= 0` at which to return the solution (time `t = n h`).
    - `model`: a model object (`GradientFlow()`, `Hamiltonian(velocity=...)`,
      `ModifiedFlow(order=..., constant=...)`, `HessianDamped(...)`) or its alias
      `"gradient_flow"`, `"hamiltonian"`, `"modified_flow"`, `"hessian_damped"`.
    - `velocity`, `order`, `constant`: options of an alias (see the model classes): for
      second-order models `u'(0)` (`"taylor"`, the default, `"paper"` = eq. 12, `"manifold"`
      or a pytree); for `"modified_flow"` the order in `h` (1 = Thm 6) and `"corrected"` or the
      paper's `"printed"` Thm 6 constant (docs/theory.md §4).

    **Returns:** the solution at `ts`, shaped like `u0` with a leading time axis (and `u'` as well
    for second-order models when `return_velocity=True`). Raises `RuntimeError` with diffrax's
    reason if the solver fails. `solver`: a `SolverConfig`, a diffrax solver, or None for the
    default tolerances of `u0`'s dtype (`SolverConfig.for_dtype`); `SolverConfig(
    closed_form=True)` returns the exact solution on a quadratic loss instead (a `ValueError`
    before compiling where there is none).
    """
    check_u0(u0)
    check_single_method(method, "solve")
    check_solvable_dtype(u0, "solve")
    check_loss(loss, u0)
    check_finite_start(loss, u0)
    solver = as_solver_config(solver, _tree.dtype(u0))
    model = as_model(model, velocity=velocity, order=order, constant=constant)
    model.check(method)
    ts_last = concrete(ts)
    horizon = float(np.max(ts_last)) if ts_last is not None and ts_last.size else 1.0
    model = model.resolve(method, u0, horizon)
    vel = getattr(model, "velocity", None)
    if vel is not None and not isinstance(vel, str):
        check_init(vel, u0)
    if isinstance(vel, str) and vel == "manifold":
        warn_outside_series_range(loss, u0, method.h, method.lam, "solve(velocity='manifold')")
    ts_np = concrete(ts)
    if ts_np is not None and (
        ts_np.ndim != 1 or ts_np.size == 0 or np.any(np.diff(ts_np) < 0) or ts_np[0] < 0
    ):
        raise ValueError("ts must be a non-empty 1-D array of non-decreasing times >= 0")
    if solver.closed_form:
        check_closed_form(loss, u0, [model], method)
        ys = _closed(loss, model, u0, method, jnp.asarray(ts, dtype=_tree.dtype(u0)))
        return ys if model.second_order and return_velocity else model.position(ys)
    warn_if_low_precision(u0, solver.rtol, "solve")
    ys, result = _solve(loss, model, solver, u0, method, jnp.asarray(ts, dtype=_tree.dtype(u0)))
    if not bool(result == diffrax.RESULTS.successful):
        raise RuntimeError(f"diffrax failed solving model={model.key!r}: {result}")
    if model.second_order and return_velocity:
        return ys
    return model.position(ys)


@eqx.filter_jit
def _closed(loss, model, u0, method, ts):
    method = method.astype(_tree.dtype(u0))
    eigen = Eigen.of(loss, _tree.dtype(u0))
    form = ClosedForm.build(model, loss, eigen, u0, method)
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
