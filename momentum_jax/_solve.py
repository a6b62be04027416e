"""Solving the continuous-time models with diffrax."""

from __future__ import annotations

import dataclasses
from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from . import _tree
from ._methods import Momentum
from ._models import (
    CONSTANTS,
    MODELS,
    SECOND_ORDER,
    VELOCITIES,
    initial_state,
    position,
    vector_field,
)
from ._validate import (
    check_choice,
    check_init,
    check_loss,
    check_u0,
    concrete,
    warn_if_low_precision,
)


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

    def solver(self):
        return diffrax.Tsit5()

    def controller(self):
        return diffrax.PIDController(rtol=self.rtol, atol=self.atol)


DEFAULT_SOLVER = SolverConfig()


def integrate(f, y0, t0, t1, ts, method: Momentum, config: SolverConfig = DEFAULT_SOLVER):
    """Integrate `y' = f(t, y, method)` from `t0` to `t1`, saving at `ts`; never raises: returns
    `(ys, result)` with diffrax's `RESULTS` code for the caller to report."""
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(f), config.solver(), t0=t0, t1=t1, dt0=None, y0=y0, args=method,
        saveat=diffrax.SaveAt(ts=ts), stepsize_controller=config.controller(),
        max_steps=config.max_steps, throw=False,
    )
    return sol.ys, sol.result


def check_model_args(model, method, *, velocity, order, constant):
    """Validate model options before anything is traced."""
    check_choice("model", model, MODELS)
    check_choice("constant", constant, CONSTANTS)
    if not isinstance(order, int) or order < 0:
        raise ValueError(f"order={order!r} is outside the allowed range: an integer >= 0")
    if model != "modified_flow" and order != 1:
        raise ValueError(f"order={order} applies to model='modified_flow' only")
    if model in SECOND_ORDER:
        if isinstance(velocity, str):
            check_choice("velocity", velocity, VELOCITIES)
        al = concrete(method.alpha if model == "hamiltonian" else (1 + method.lam) / 2)
        if al is not None and np.any(al <= 0):
            raise ValueError(
                f"model={model!r} needs alpha = (1 + lam - 2a(1 - lam))/2 > 0; got alpha={al.tolist()}"
            )


def solve(loss, u0, method: Momentum, ts, *, model: str, velocity="taylor", order: int = 1,
          constant: str = "corrected", return_velocity: bool = False,
          solver: SolverConfig = DEFAULT_SOLVER):
    """Solve a continuous-time model (see `momentum_jax._models`) from `u(0) = u0`.

    **Arguments:**

    - `loss`, `u0`, `method`: as for `iterate`.
    - `ts`: increasing times `>= 0` at which to return the solution (time `t = n h`).
    - `model`: `"gradient_flow"`, `"hamiltonian"`, `"modified_flow"` or `"hessian_damped"`.
    - `velocity`: for second-order models, `u'(0)`: `"taylor"`, `"paper"` (eq. 12),
      `"manifold"`, or an explicit pytree.
    - `order`: for `modified_flow`, the order in `h` of the modified field (1 = Thm 6).
    - `constant`: `"corrected"` (THEORY §4.1) or the paper's `"printed"` Thm 6 constant.

    **Returns:** the solution at `ts`, shaped like `u0` with a leading time axis (and `u'` as well
    for second-order models when `return_velocity=True`). Raises `RuntimeError` with diffrax's
    reason if the solver fails.
    """
    check_u0(u0)
    check_loss(loss, u0)
    check_model_args(model, method, velocity=velocity, order=order, constant=constant)
    if not isinstance(velocity, str):
        check_init(velocity, u0)
    ts_np = concrete(ts)
    if ts_np is not None and (ts_np.ndim != 1 or ts_np.size == 0 or np.any(np.diff(ts_np) < 0)
                              or ts_np[0] < 0):
        raise ValueError("ts must be a non-empty 1-D array of non-decreasing times >= 0")
    warn_if_low_precision(u0, solver.rtol, "solve")
    vel_kind, vel = (velocity, None) if isinstance(velocity, str) else ("explicit", velocity)
    ys, result = _solve(loss, model, vel_kind, order, constant, solver, u0, method,
                        jnp.asarray(ts, dtype=jnp.result_type(float)), vel)
    if not bool(result == diffrax.RESULTS.successful):
        raise RuntimeError(f"diffrax failed solving model={model!r}: {result}")
    if model in SECOND_ORDER and return_velocity:
        return ys
    return position(model, ys)


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _solve(loss, model, vel_kind, order, constant, solver, u0, method, ts, vel):
    method = method.astype(_tree.dtype(u0))
    f = vector_field(model, loss, order=order, constant=constant)
    y0 = initial_state(model, loss, u0, method, vel if vel_kind == "explicit" else vel_kind)
    return integrate(f, y0, 0.0, ts[-1], ts, method, solver)
