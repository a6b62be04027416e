r"""The stochastic modified equation of mini-batch momentum (the fixed-momentum regime), in
the time `t = n h` (derivation: docs/stochastic.md):

$$dU = -\bar\lambda\,\nabla\Phi_h(U)\,dt + \sqrt{h f}\;\bar\lambda\;\Sigma(U)^{1/2}\,dW,\qquad
  \Phi_h = \Phi + h c\,|\nabla\Phi|^2,$$

with `lbar = 1/(1 - lam)`, the corrected constant `c` (docs/theory.md §2), `Sigma(u)` the
covariance of one per-example gradient under uniform sampling from the data set, and `f` the
batch factor (`1/B` with replacement, `(N - B)/(B (N - 1))` without). `drift="gradient_flow"`
drops the `h c` term. Measured (tests/test_stochastic.py, docs/stochastic.md): weak order 2 for
the modified drift with a start on the invariant manifold (or the zero-velocity start with the
shifted initial point `u0 + h lam lbar^2 grad Phi(u0)`), weak order 1 for the gradient-flow
drift; the noise-free modified flow misses the `O(h)` spread and is weak order 1. The SDE needs
a flat parameter vector `u` of shape `(d,)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .._batches import batch_mean, num_examples
from .._method import Momentum
from .._model import GradientFlow, ModifiedFlow
from .._solve import diffeqsolve, integrate
from .._validate import check_choice, check_u0, check_whole
from ._brownian import GridBrownianPath
from ._minibatch import _keys, noise_factor
from ._noise import noise_covariance, psd_sqrt

DRIFTS = {"modified": ModifiedFlow(), "gradient_flow": GradientFlow()}
"""The drift of the SDE: the corrected Thm 6 modified flow, or the rescaled gradient flow."""
STARTS = ("plain", "shifted")
_MAX_SDE_STEPS = 2**20


def sde_drift(loss, data, drift: str = "modified") -> Callable:
    """The drift `(t, u, method) -> -lbar grad Phi_h(u)` (`"modified"`, docs/theory.md §2, with
    the corrected `c`) or `-lbar grad Phi(u)` (`"gradient_flow"`), the models' own vector fields."""
    check_choice("drift", drift, DRIFTS)
    return DRIFTS[drift].vector_field(batch_mean(loss, data))


def sde_diffusion(loss, data, *, batch_size: int = 1, replace: bool = True) -> Callable:
    """The diffusion matrix `(t, u, method) -> sqrt(h f) lbar Sigma(u)^{1/2}`, shape `(d, d)`."""
    f = noise_factor(batch_size, num_examples(data), replace)

    def g(t, u, m):
        return jnp.sqrt(m.h * f) * m.lbar * psd_sqrt(noise_covariance(loss, u, data))

    return g


def sde_start(loss, data, u0, method: Momentum, start: str = "plain"):
    """`U(0)`: `u0` (`"plain"`, for a start on the invariant manifold), or `u0 + h lam lbar^2
    grad Phi(u0)` (`"shifted"`): the point whose on-manifold orbit the zero-velocity start
    shadows, so that the zero-velocity method keeps second order (docs/stochastic.md §3)."""
    check_choice("start", start, STARTS)
    if start == "plain":
        return u0
    g = jax.grad(batch_mean(loss, data))(u0)
    return u0 + method.h * method.lam * method.lbar**2 * g


@dataclasses.dataclass(frozen=True)
class SDEConfig:
    """How the SDE is integrated: Euler-Maruyama (diffrax `Euler`, the Itô scheme) with the
    constant step `dt = h / substeps`, and, with `richardson=True`, Talay-Tubaro extrapolation
    `2 U^(dt/2) - U^(dt)` on the same Brownian path, which removes the scheme's `O(dt)` weak
    error (it is then `O(dt^2)`). `brownian`: `"grid"` (`GridBrownianPath`, fast) or
    `"virtual"` (`diffrax.VirtualBrownianTree`)."""

    substeps: int = 2
    richardson: bool = True
    brownian: str = "grid"


DEFAULT_SDE = SDEConfig()


def solve_sde(
    loss,
    u0,
    method: Momentum,
    data,
    ts,
    keys,
    *,
    batch_size: int = 1,
    replace: bool = True,
    drift: str = "modified",
    start: str = "plain",
    config: SDEConfig = DEFAULT_SDE,
) -> jax.Array:
    r"""Solve the stochastic modified equation of mini-batch `method` along many Brownian paths:

    $$dU = -\bar\lambda\,\nabla\Phi_h(U)\,dt + \sqrt{h f}\,\bar\lambda\,\Sigma(U)^{1/2}\,dW,
      \qquad U(0) = \texttt{sde\_start}(u_0)$$

    (`drift="gradient_flow"`: `Phi` in place of `Phi_h`). Time is `t = n h`.

    **Arguments:** `loss`, `data`, `batch_size`, `replace` as in `minibatch_iterate`; `u0` a
    flat `(d,)` array; `ts` increasing save times, multiples of `h` (so that they fall on the
    step grid); `keys` one key per path (each path's Brownian motion is reproducible from its
    key); `start` as in `sde_start`; `config` an `SDEConfig`.

    **Returns:** `(num_paths, len(ts), d)`. Raises `RuntimeError` if diffrax fails.
    """
    check_u0(u0)
    if jnp.ndim(u0) != 1:
        raise ValueError(
            f"the SDE needs a flat parameter vector u0 of shape (d,), got {jnp.shape(u0)}"
        )
    check_choice("drift", drift, DRIFTS)
    check_choice("start", start, STARTS)
    check_choice("brownian", config.brownian, ("grid", "virtual"))
    check_whole("substeps", config.substeps, low=1)
    check_whole("batch_size", batch_size, low=1)
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    ys, ok = _solve_sde(
        loss, batch_size, replace, drift, start, config, u0, method, data, ts, _keys(keys)
    )
    if not bool(ok):
        raise RuntimeError("diffrax failed to solve the SDE (non-finite state or too many steps)")
    return ys


@eqx.filter_jit
def _solve_sde(loss, batch_size, replace, drift, start, config, u0, method, data, ts, keys):
    f = sde_drift(loss, data, drift)
    g = sde_diffusion(loss, data, batch_size=batch_size, replace=replace)
    y0 = sde_start(loss, data, u0, method, start)
    dt = method.h / config.substeps
    fine = dt / 2 if config.richardson else dt

    def solve(bm, step):
        terms = diffrax.MultiTerm(diffrax.ODETerm(f), diffrax.ControlTerm(g, bm))
        sol = diffeqsolve(
            terms,
            diffrax.Euler(),
            0.0,
            ts[-1],
            y0,
            dt0=step,
            args=method,
            saveat=diffrax.SaveAt(ts=ts),
            max_steps=_MAX_SDE_STEPS,
        )
        return sol.ys, sol.result == diffrax.RESULTS.successful

    def path(key):
        if config.brownian == "grid":
            bm = GridBrownianPath(key, jnp.shape(u0), fine, max_cells=2)
        else:
            bm = diffrax.VirtualBrownianTree(
                0.0, ts[-1], tol=fine / 4, shape=jnp.shape(u0), key=key
            )
        ys, ok = solve(bm, fine)
        if config.richardson:
            coarse, ok2 = solve(bm, dt)
            ys, ok = 2.0 * ys - coarse, ok & ok2
        return ys, ok

    ys, ok = jax.vmap(path)(keys)
    return ys, jnp.all(ok) & jnp.all(jnp.isfinite(ys))


def modified_flow(loss, u0, method: Momentum, data, ts, *, start: str = "plain") -> jax.Array:
    """The noise-free modified flow `U' = -lbar grad Phi_h(U)` of the full-batch loss from
    `sde_start(u0)`, at `ts` (diffrax, the package's tolerances): the SDE without its
    diffusion. **Returns:** `(len(ts), d)`."""
    check_choice("start", start, STARTS)
    ts = jnp.asarray(ts, jnp.result_type(float))
    ys, result = _modified_flow(loss, start, u0, method, data, ts)
    if not bool(result == diffrax.RESULTS.successful):
        raise RuntimeError(f"diffrax failed solving the modified flow: {result}")
    return ys


@eqx.filter_jit
def _modified_flow(loss, start, u0, method, data, ts):
    y0 = sde_start(loss, data, u0, method, start)
    return integrate(sde_drift(loss, data, "modified"), y0, 0.0, ts[-1], ts, method)
