r"""The vanishing-friction regime: momentum that tends to 1 as `h -> 0`, in the time
`t = n sqrt(h)` (docs/vanishing_friction.md).

Schemes (each starts with zero velocity; `mu` is the assumed strong-convexity constant):

- `"hb_mu"`, `"nag_mu"`: eq. (7) with `lam = (1 - sqrt(mu h)) / (1 + sqrt(mu h))` (paper eq. 5);
- `"wilson"`: the split-step scheme (36) of `momentum_jax._schemes.wilson_step`;
- `"nesterov"`: Nesterov's method with `lam_n = (n - 1)/(n + 2)` (look-ahead `a = lam_n`).

Their second-order ODE limits, in `t = n sqrt(h)` (each `= 0`):

| scheme | `limit="low"` | `limit="high"` (Shi, Du, Jordan & Su 2018) |
|---|---|---|
| `hb_mu` | `X'' + 2 sqrt(mu) X' + grad f(X)` | `X'' + 2 sqrt(mu) X' + (1+sqrt(mu h)) grad f` |
| `wilson` | the same | (the low-resolution ODE is already `O(h)`, see below) |
| `nag_mu` | the same | `... + sqrt(h) Hess f(X) X' + (1 + sqrt(mu h)) grad f(X)` |
| `nesterov` | `X'' + (3/t) X' + grad f(X)` (Su, Boyd & Candès 2016) | not provided |

`X(0) = u_0`; `X'(0) = 0` (`velocity="zero"`, the schemes' own zero velocity) or the value
that matches the first steps to the order of the equation (`"matched"`): `-(sqrt(h)/2) grad
f(u_0)` for HB-mu / NAG-mu, and `+(sqrt(h)/2) grad f(u_0)` for Wilson, whose first position step
is zero (`u_1 = u_0`), a delay of one step. The Nesterov limit is singular at `t = 0`; it is
started at `t0 = NESTEROV_T0` from its series `X = u_0 - t^2/8 g + t^4/192 H g + O(t^6)`
(`g = grad f(u_0)`, `H` its Hessian), an error of order `t0^6`, far below anything measured.

Measured orders in `h` of `max_{n sqrt(h) <= T} |u_n - X(n sqrt(h))|` (tests/test_vanishing.py,
docs/vanishing_friction.md): 1/2 for the low-resolution limits of HB-mu, NAG-mu and Nesterov (the
paper's Fig 7), and for the high-resolution forms with `X'(0) = 0`; 1 for the high-resolution
forms with the matched velocity. Wilson's scheme is consistent with the low-resolution ODE to
`O(h)` (it is heavy ball with `lam = e^{-2 sqrt(mu h)}` and step `sqrt(h) (1 - e^{-2 sqrt(mu
h)})/(2 sqrt(mu))`): order 1/2 with `X'(0) = 0`, order 1 with its matched velocity.
"""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _tree
from ._derivatives import hvp
from ._iterate import MomentumState, saved_scan
from ._rates import fit_order, observed_rates
from ._runtime import check_hs
from ._schemes import vanishing_step
from ._solve import DEFAULT_SOLVER, SolverConfig, check_ode_solver, integrate
from ._validate import check_choice, check_loss, check_range, check_u0, check_whole

SCHEMES = ("hb_mu", "nag_mu", "wilson", "nesterov")
LIMITS = ("low", "high")
VELOCITIES = ("zero", "matched")
NESTEROV_T0 = 1e-4
"""Start time of the singular Nesterov limit (series start; error of order `NESTEROV_T0^6`)."""


def _check(loss, u0, scheme, h, mu):
    check_u0(u0)
    check_loss(loss, u0)
    check_choice("scheme", scheme, SCHEMES)
    check_range("h", h, low=0.0, low_open=True)
    check_range("mu", mu, low=0.0, low_open=True)


def vanishing_iterate(loss, u0, scheme: str, h, num_steps: int, *, mu=1.0, save_every: int = 1):
    """Run `num_steps` steps of a vanishing-friction `scheme` from `u0` with zero velocity.

    **Returns:** `u_n` for `n = 0, save_every, ...` (leading axis); the time of `u_n` is
    `n sqrt(h)`. `h` and `mu` are traced.
    """
    _check(loss, u0, scheme, h, mu)
    check_whole("num_steps", num_steps, low=0)
    check_whole("save_every", save_every, low=1)
    dtype = jnp.result_type(*jax.tree.leaves(u0))
    return _iterate(
        loss, scheme, num_steps, save_every, u0, jnp.asarray(h, dtype), jnp.asarray(mu, dtype)
    )


@eqx.filter_jit
def _iterate(loss, scheme, num_steps, save_every, u0, h, mu):
    state = MomentumState(u0, _tree.zeros_like(u0))
    return saved_scan(
        lambda n, s: vanishing_step(scheme, loss, h, mu, n, s),
        state,
        num_steps,
        save_every,
        save=lambda s: s.u,
    )


def _validate_limit(scheme: str, limit: str, velocity: str = "zero"):
    check_choice("scheme", scheme, SCHEMES)
    check_choice("limit", limit, LIMITS)
    check_choice("velocity", velocity, VELOCITIES)
    if limit == "high" and scheme not in ("hb_mu", "nag_mu"):
        raise ValueError(f"limit='high' is provided for 'hb_mu' and 'nag_mu' only, not {scheme!r}")
    if scheme == "nesterov" and velocity != "zero":
        raise ValueError("the Nesterov limit starts at rest: velocity must be 'zero'")


def _switches(scheme: str, limit: str, velocity: str):
    """`(high, vcoef)`: 1.0 for a high-resolution limit (else 0.0) and the coefficient of
    `sqrt(h) grad f(u0)` in `X'(0)`. Passed traced, so one compilation serves every limit and
    velocity of a scheme."""
    high = 1.0 if limit == "high" else 0.0
    vcoef = 0.0 if velocity == "zero" else (0.5 if scheme == "wilson" else -0.5)
    return high, vcoef


def _field(scheme: str, loss):
    def f(t, y, args):
        x, v = y
        h, mu, high = args
        g = _tree.scale(1.0 + high * jnp.sqrt(mu * h), jax.grad(loss)(x))
        if scheme == "nesterov":
            damping = _tree.scale(3.0 / t, v)
        else:
            damping = _tree.scale(2.0 * jnp.sqrt(mu), v)
        if scheme == "nag_mu":
            damping = _tree.axpy(high * jnp.sqrt(h), hvp(loss, x, v), damping)
        return v, jax.tree.map(lambda gi, di: -(gi + di), g, damping)

    return f


def _start(scheme: str, loss, u0, h, vcoef):
    g = jax.grad(loss)(u0)
    if scheme == "nesterov":
        t0 = NESTEROV_T0
        hg = hvp(loss, u0, g)
        x = jax.tree.map(lambda u, gi, hi: u - t0**2 / 8 * gi + t0**4 / 192 * hi, u0, g, hg)
        v = jax.tree.map(lambda gi, hi: -t0 / 4 * gi + t0**3 / 48 * hi, g, hg)
        return t0, (x, v)
    return 0.0, (u0, _tree.scale(vcoef * jnp.sqrt(h), g))


def limit_start(scheme: str, loss, u0, h, *, velocity: str = "zero"):
    """`(t0, (X(t0), X'(t0)))`: `t0 = 0` with `X'(0) = 0` (`velocity="zero"`) or the matched
    velocity (module docstring), or for `"nesterov"` the series start at `t0 = NESTEROV_T0`."""
    _validate_limit(scheme, "low", velocity)
    return _start(scheme, loss, u0, h, _switches(scheme, "low", velocity)[1])


def solve_limit(
    loss,
    u0,
    scheme: str,
    h,
    ts,
    *,
    mu=1.0,
    limit: str = "low",
    velocity: str = "zero",
    solver: SolverConfig = DEFAULT_SOLVER,
):
    """Solve the ODE limit of `scheme` (module table) at the times `ts` (`t = n sqrt(h)`) with
    diffrax (Tsit5, tight tolerances).

    **Returns:** `X(ts)`, shaped like `u0` with a leading time axis (`ts` before the Nesterov
    start time give `u0`). `h` and `mu` are traced. Raises `RuntimeError` if the solver fails.
    """
    _check(loss, u0, scheme, h, mu)
    check_ode_solver(solver, "solve_limit")
    _validate_limit(scheme, limit, velocity)
    dtype = jnp.result_type(*jax.tree.leaves(u0))
    high, vcoef = _switches(scheme, limit, velocity)
    ys, ok = _solve_limit(
        loss,
        scheme,
        solver,
        u0,
        jnp.asarray(h, dtype),
        jnp.asarray(mu, dtype),
        jnp.asarray(ts, dtype),
        jnp.asarray(high, dtype),
        jnp.asarray(vcoef, dtype),
    )
    if not bool(ok):
        raise RuntimeError(f"diffrax failed solving the {limit}-resolution limit of {scheme!r}")
    return ys


@eqx.filter_jit
def _solve_limit(loss, scheme, solver, u0, h, mu, ts, high, vcoef):
    t0, y0 = _start(scheme, loss, u0, h, vcoef)
    tq = jnp.maximum(ts, t0)
    ys, result = integrate(_field(scheme, loss), y0, t0, tq[-1], tq, (h, mu, high), solver)
    xs = jax.tree.map(
        lambda x, u: jnp.where((ts < t0).reshape((-1,) + (1,) * jnp.ndim(u)), u[None], x), ys[0], u0
    )
    return xs, result == diffrax.RESULTS.successful


@dataclasses.dataclass
class VanishingStudy:
    """What `vanishing_study` returns: `errors[i] = max_{n sqrt(h_i) <= T} |u_n - X(n sqrt h_i)|`
    (Euclidean norm over all leaves)."""

    scheme: str
    limit: str
    velocity: str
    mu: float
    T: float
    hs: np.ndarray
    errors: np.ndarray

    @property
    def rates(self) -> np.ndarray:
        """`log(E(h_i)/E(h_{i+1})) / log(h_i/h_{i+1})` between neighbouring `hs`."""
        return observed_rates(self.hs, self.errors)

    def order(self, points: int | None = 4) -> float:
        """Least-squares slope of `log E` against `log h` over the `points` smallest `h`."""
        return fit_order(self.hs, self.errors, points)


def vanishing_study(
    loss,
    u0,
    scheme: str,
    hs,
    T: float,
    *,
    mu=1.0,
    limit: str = "low",
    velocity: str = "zero",
    solver: SolverConfig = DEFAULT_SOLVER,
) -> VanishingStudy:
    """The error of the ODE limit against `scheme` for every `h` in `hs`, from one compiled,
    `h`-vmapped call (the limit and the velocity are traced too: a scheme and loss compile
    once): every run takes `floor(T / sqrt(min hs))` steps and the error is the maximum over the
    steps with `n sqrt(h) <= T` (the others are masked out)."""
    hs = check_hs(hs)
    _check(loss, u0, scheme, hs, mu)
    check_ode_solver(solver, "vanishing_study")
    _validate_limit(scheme, limit, velocity)
    check_range("T", T, low=0.0, low_open=True)
    length = int(np.floor(T / np.sqrt(hs.min()) + 1e-9))
    dtype = jnp.result_type(*jax.tree.leaves(u0))
    high, vcoef = _switches(scheme, limit, velocity)
    errors, ok = _study(
        loss,
        scheme,
        solver,
        length,
        u0,
        jnp.asarray(hs, dtype),
        jnp.asarray(mu, dtype),
        jnp.asarray(T, dtype),
        jnp.asarray(high, dtype),
        jnp.asarray(vcoef, dtype),
    )
    if not bool(jnp.all(ok)):
        raise RuntimeError(f"diffrax failed solving the {limit}-resolution limit of {scheme!r}")
    return VanishingStudy(scheme, limit, velocity, float(mu), float(T), hs, np.asarray(errors))


@eqx.filter_jit
def _study(loss, scheme, solver, length, u0, hs, mu, T, high, vcoef):
    def one(h):
        us = _iterate(loss, scheme, length, 1, u0, h, mu)
        ts = jnp.arange(length + 1, dtype=hs.dtype) * jnp.sqrt(h)
        inside = ts <= T * (1 + 1e-12)
        xs, ok = _solve_limit(loss, scheme, solver, u0, h, mu, jnp.minimum(ts, T), high, vcoef)
        diff = jax.vmap(lambda a, b: _tree.norm(_tree.sub(a, b)))(us, xs)
        return jnp.max(jnp.where(inside, diff, 0.0)), ok

    return jax.vmap(one)(hs)
