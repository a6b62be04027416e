"""The weak-error study: `|E g(u_n) - E g(U(n h))|` of mini-batch momentum against its
stochastic modified equation, by Monte Carlo and from the exact moments (docs/stochastic.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .._batches import batch_mean
from .._method import method_from_name
from .._rates import fit_order
from .._runtime import check_hs
from .._validate import check_choice, check_whole
from ._minibatch import minibatch_final
from ._moments import minibatch_moments, quadratic_expectation, sde_moments
from ._sde import DEFAULT_SDE, SDEConfig, modified_flow, solve_sde

MODELS = ("modified_sde", "gradient_flow_sde", "modified_ode")
"""The continuous-time models of a weak-error study: the SDE with the modified drift, the SDE
with the gradient-flow drift, and the modified flow without noise."""


def default_tests(loss, data) -> dict[str, Callable]:
    """The test functions of the study: `u_1`, `|u|^2` and the loss `Phi(u)`."""
    phi = batch_mean(loss, data)
    return {"u1": lambda u: u[0], "sq_norm": lambda u: jnp.sum(jnp.square(u)), "loss": phi}


@dataclasses.dataclass
class WeakErrorStudy:
    """What `weak_error_study` returns. Arrays are indexed `[h, test]`; dicts by model name.

    - `discrete_mc`, `discrete_se`: Monte Carlo mean of `g(u_n)` at `n h = T` and its standard
      error; `model_mc`, `model_se` likewise for `g(U(T))` (the noise-free `"modified_ode"` is
      solved once, standard error 0).
    - `errors`, `errors_se`: `|discrete_mc - model_mc|` and `sqrt(discrete_se^2 + model_se^2)`.
    - `exact_discrete`, `exact_model`, `exact_errors`: the same from the exact moments (None when
      the per-example gradients are not affine).
    """

    method: str
    lam: float
    hs: np.ndarray
    T: float
    tests: tuple[str, ...]
    models: tuple[str, ...]
    num_paths: int
    init: str
    start: str
    discrete_mc: np.ndarray
    discrete_se: np.ndarray
    model_mc: dict[str, np.ndarray]
    model_se: dict[str, np.ndarray]
    exact_discrete: np.ndarray | None
    exact_model: dict[str, np.ndarray] | None

    @property
    def errors(self) -> dict[str, np.ndarray]:
        return {m: np.abs(self.discrete_mc - self.model_mc[m]) for m in self.models}

    @property
    def errors_se(self) -> dict[str, np.ndarray]:
        return {m: np.hypot(self.discrete_se, self.model_se[m]) for m in self.models}

    @property
    def exact_errors(self) -> dict[str, np.ndarray] | None:
        if self.exact_discrete is None or self.exact_model is None:
            return None
        exact = self.exact_discrete
        return {m: np.abs(exact - self.exact_model[m]) for m in self.models}

    def orders(self, points: int | None = None) -> dict[str, np.ndarray]:
        """Fitted weak orders (Monte Carlo errors), `(len(tests),)` per model."""
        return {
            m: np.array([fit_order(self.hs, e[:, j], points) for j in range(len(self.tests))])
            for m, e in self.errors.items()
        }

    def exact_orders(self, points: int | None = None) -> dict[str, np.ndarray] | None:
        """Fitted weak orders from the exact moments."""
        if self.exact_errors is None:
            return None
        return {
            m: np.array([fit_order(self.hs, e[:, j], points) for j in range(len(self.tests))])
            for m, e in self.exact_errors.items()
        }

    def resolved(self, factor: float = 3.0) -> dict[str, np.ndarray]:
        """Where the Monte Carlo error bar is below the measured error: `error > factor * se`."""
        return {m: self.errors[m] > factor * self.errors_se[m] for m in self.models}

    def table(self) -> str:
        """A plain-text table: error (MC) +- standard error, exact error, per model and test."""
        lines = [
            f"weak error at T={self.T:g}, {self.method.upper()} lam={self.lam:g}, "
            f"{self.num_paths} paths, init={self.init}, start={self.start}"
        ]
        exact = self.exact_errors
        for m in self.models:
            lines.append(f"model {m}")
            for j, name in enumerate(self.tests):
                for i, h in enumerate(self.hs):
                    ex = f"  exact {exact[m][i, j]:.3e}" if exact is not None else ""
                    lines.append(
                        f"  {name:>8} h=2^{np.log2(h):+.0f}  {self.errors[m][i, j]:.3e} "
                        f"+- {self.errors_se[m][i, j]:.1e}{ex}"
                    )
                eo = self.exact_orders()
                ex = f", exact {eo[m][j]:.3f}" if eo is not None else ""
                lines.append(f"  {name:>8} fitted order: MC {self.orders()[m][j]:.3f}{ex}")
        return "\n".join(lines)


def weak_error_study(
    loss,
    u0,
    data,
    *,
    method: str = "hb",
    lam: float = 0.5,
    hs,
    T: float,
    num_paths: int,
    key,
    batch_size: int = 1,
    replace: bool = True,
    init: str = "manifold",
    start: str = "plain",
    models: tuple[str, ...] = MODELS,
    tests: Mapping[str, Callable] | None = None,
    exact: bool = True,
    config: SDEConfig = DEFAULT_SDE,
    progress: Callable[[float], None] | None = None,
) -> WeakErrorStudy:
    """Measure `|E g(u_n) - E g(U(n h))|` at `n h = T` for each `h` in `hs` by Monte Carlo.

    **Arguments:**

    - `loss`, `u0` (flat), `data`, `batch_size`, `replace`: as in `minibatch_iterate`.
    - `method`: `"hb"`, `"nag"` or `"gd"`; `lam` its fixed momentum.
    - `hs`: learning rates with `T / h` whole; `T`: the final time.
    - `num_paths`: paths per estimate (discrete method and each SDE alike); `key`: the PRNG key
      they are split from (the same paths for every `h`).
    - `init`: the discrete start, `"manifold"` or `"zero"`; `start`: the SDE start
      (`"plain"` or `"shifted"`, see `sde_start`).
    - `models`: any of `MODELS`; `tests`: `{name: g}` (default `default_tests`).
    - `exact`: also compute the exact moments (per-example gradients affine, `g` quadratic).
    - `progress`: called with the fraction done after each `h`.
    """
    for m in models:
        check_choice("model", m, MODELS)
    check_choice("init", init, ("zero", "manifold"))
    check_whole("num_paths", num_paths, low=2)
    hs = check_hs(hs)
    steps = np.rint(T / hs).astype(int)
    if np.any(np.abs(steps * hs - T) > 1e-9 * T):
        raise ValueError(f"T={T} must be a whole multiple of every h in hs")
    tests = dict(default_tests(loss, data) if tests is None else tests)
    names = tuple(tests)
    u0 = jnp.asarray(u0, dtype=jnp.result_type(float))
    data = jax.tree.map(jnp.asarray, data)
    dkeys = jax.random.split(jax.random.fold_in(key, 0), num_paths)
    skeys = jax.random.split(jax.random.fold_in(key, 1), num_paths)
    evaluate = jax.jit(jax.vmap(lambda u: jnp.stack([g(u) for g in tests.values()])))

    def mc(values):
        values = np.asarray(values)
        return values.mean(0), values.std(0, ddof=1) / np.sqrt(values.shape[0])

    nh, ng = len(hs), len(names)
    d_mc, d_se = np.zeros((nh, ng)), np.zeros((nh, ng))
    m_mc = {m: np.zeros((nh, ng)) for m in models}
    m_se = {m: np.zeros((nh, ng)) for m in models}
    e_d = np.zeros((nh, ng)) if exact else None
    e_m = {m: np.zeros((nh, ng)) for m in models} if exact else None
    for i, (h, n) in enumerate(zip(hs, steps)):
        meth = method_from_name(method, h, lam)
        ts = jnp.asarray([T])
        final = minibatch_final(
            loss, u0, meth, data, int(n), dkeys, batch_size=batch_size, replace=replace, init=init
        )
        d_mc[i], d_se[i] = mc(evaluate(final))
        if e_d is not None:
            mom = minibatch_moments(
                loss, u0, meth, data, int(n), batch_size=batch_size, replace=replace, init=init
            )
            e_d[i] = [float(quadratic_expectation(g, mom)) for g in tests.values()]
        for m in models:
            drift = "gradient_flow" if m == "gradient_flow_sde" else "modified"
            if m == "modified_ode":
                uT = modified_flow(loss, u0, meth, data, ts, start=start)
                m_mc[m][i], m_se[m][i] = np.asarray(evaluate(uT))[-1], 0.0
            else:
                ys = solve_sde(
                    loss,
                    u0,
                    meth,
                    data,
                    ts,
                    skeys,
                    batch_size=batch_size,
                    replace=replace,
                    drift=drift,
                    start=start,
                    config=config,
                )
                m_mc[m][i], m_se[m][i] = mc(evaluate(ys[:, -1]))
            if e_m is not None:
                mom = sde_moments(
                    loss,
                    u0,
                    meth,
                    data,
                    ts,
                    batch_size=batch_size,
                    replace=replace,
                    drift=drift,
                    start=start,
                    diffusion=m != "modified_ode",
                )
                e_m[m][i] = [float(quadratic_expectation(g, mom)[-1]) for g in tests.values()]
        if progress is not None:
            progress((i + 1) / nh)
    return WeakErrorStudy(
        method,
        float(lam),
        hs,
        float(T),
        names,
        tuple(models),
        int(num_paths),
        init,
        start,
        d_mc,
        d_se,
        m_mc,
        m_se,
        e_d,
        e_m,
    )
