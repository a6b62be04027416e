"""Solving the continuous-time models with diffrax."""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _tree
from ._method import Momentum
from ._model import AbstractModel, as_model
from ._validate import check_init, check_loss, check_u0, concrete, warn_if_low_precision


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    """How the models are integrated: Tsitouras' 5(4) method with a PID step-size controller and
    its dense output at the requested times. The defaults keep the solver error near `1e-14` on
    the paper's problems, at least 100 times below the smallest discretisation error measured
    there (tested). (diffrax's `Dopri8` is cheaper per step but its interpolant is only accurate
    to about `1e-10` here, too coarse for order measurements at `h = 2^-17`.)
    The `hamiltonian` model is stiff for small `h` (fast rate `(1 - lam)/(h alpha)`); the explicit
    solver then takes steps of order `h`, bounded by `max_steps`."""

    rtol: float = 1e-12
    atol: float = 1e-14
    max_steps: int = 2**20
    chunk_max_steps: int = 1024
    """In `convergence_study` each model is solved in windows of at most this many steps with
    dense output (a buffer of this many steps per grid point); `max_steps` bounds the total."""

    def solver(self):
        return diffrax.Tsit5()

    def controller(self):
        return diffrax.PIDController(rtol=self.rtol, atol=self.atol)


DEFAULT_SOLVER = SolverConfig()


def _diffeqsolve(f, y0, t0, t1, args, config: SolverConfig, *, saveat, max_steps):
    """diffrax's `diffeqsolve` with this package's solver settings; never raises (the caller
    reports `sol.result`); forward-mode adjoint, since nothing is differentiated through it."""
    return diffrax.diffeqsolve(
        diffrax.ODETerm(f),
        config.solver(),
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


def integrate(f, y0, t0, t1, ts, method: Momentum, config: SolverConfig = DEFAULT_SOLVER):
    """Integrate `y' = f(t, y, method)` from `t0` to `t1`, saving at `ts`; never raises: returns
    `(ys, result)` with diffrax's `RESULTS` code for the caller to report."""
    sol = _diffeqsolve(
        f, y0, t0, t1, method, config, saveat=diffrax.SaveAt(ts=ts), max_steps=config.max_steps
    )
    return sol.ys, sol.result


def integrate_dense(
    f, y0, t0, t1, ts, method: Momentum, config: SolverConfig = DEFAULT_SOLVER, *, reduce
):
    """Integrate from `t0` to `t1` in windows of at most `config.chunk_max_steps` solver steps,
    evaluating each window's dense interpolant at the `ts` it covers in one vectorised call.

    (diffrax's own per-time saving loop is slow when many `ts` fall in one step, and slower
    still under `vmap`; dense output needs a buffer as long as the step limit, hence windows.)
    `reduce(values_at_ts, covered) -> scalar` is maximised over the windows, so nothing of size
    `len(ts)` is kept. Returns `(max_reduce, y_at_t1, result)`; at most `config.max_steps` steps.
    """
    windows = max(1, config.max_steps // config.chunk_max_steps)
    max_steps_code = diffrax.RESULTS.max_steps_reached._value  # type: ignore[attr-defined]
    int_type = jnp.int32

    def solve_window(state):
        t_cur, y, acc, res, k = state
        sol = _diffeqsolve(
            f,
            y,
            t_cur,
            t1,
            method,
            config,
            saveat=diffrax.SaveAt(t1=True, dense=True),
            max_steps=config.chunk_max_steps,
        )
        code = sol.result._value.astype(int_type)
        usable = (code == 0) | (code == max_steps_code)
        t_reach = jnp.where(code == 0, t1, sol.ts[-1])
        covered = (ts >= t_cur) & (ts <= t_reach) & usable
        values = jax.vmap(sol.evaluate)(jnp.clip(ts, t_cur, t_reach))
        acc = jnp.maximum(acc, jnp.where(jnp.any(covered), reduce(values, covered), acc))
        y = jax.tree.map(
            lambda old, new: jnp.where(usable, new[-1].astype(old.dtype), old), y, sol.ys
        )
        stalled = t_reach <= t_cur
        res = jnp.where(usable & ~stalled, 0, jnp.where(usable, max_steps_code, code))
        return t_reach, y, acc, res.astype(int_type), k + 1

    def more(state):
        t_cur, _, _, res, k = state
        return (t_cur < t1) & (res == 0) & (k < windows)

    acc0 = jnp.zeros((), jnp.result_type(*jax.tree.leaves(y0)))
    state = (t0, y0, acc0, jnp.asarray(0, int_type), jnp.asarray(0, int_type))
    t_end, y, acc, res, _ = jax.lax.while_loop(more, solve_window, state)
    res = jnp.where((res == 0) & (t_end < t1), max_steps_code, res)
    return acc, y, res


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
    solver: SolverConfig = DEFAULT_SOLVER,
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
    reason if the solver fails.
    """
    check_u0(u0)
    check_loss(loss, u0)
    model = as_model(model, velocity=velocity, order=order, constant=constant)
    model.check(method)
    vel = getattr(model, "velocity", None)
    if vel is not None and not isinstance(vel, str):
        check_init(vel, u0)
    ts_np = concrete(ts)
    if ts_np is not None and (
        ts_np.ndim != 1 or ts_np.size == 0 or np.any(np.diff(ts_np) < 0) or ts_np[0] < 0
    ):
        raise ValueError("ts must be a non-empty 1-D array of non-decreasing times >= 0")
    warn_if_low_precision(u0, solver.rtol, "solve")
    ys, result = _solve(
        loss, model, solver, u0, method, jnp.asarray(ts, dtype=jnp.result_type(float))
    )
    if not bool(result == diffrax.RESULTS.successful):
        raise RuntimeError(f"diffrax failed solving model={model.key!r}: {result}")
    if model.second_order and return_velocity:
        return ys
    return model.position(ys)


@eqx.filter_jit
def _solve(loss, model, solver, u0, method, ts):
    method = method.astype(_tree.dtype(u0))
    y0 = model.initial_state(loss, u0, method)
    return integrate(model.vector_field(loss), y0, 0.0, ts[-1], ts, method, solver)
