r"""Mini-batch momentum and its stochastic modified equation (the fixed-momentum regime).

Heavy ball and Nesterov (paper eq. 7, any `Momentum`) driven by mini-batch gradients drawn from a
finite data set, vmapped over independent paths with explicit PRNG keys, and the SDE they follow
in the time `t = n h` (derivation: `docs/stochastic.md`):

$$dU = -\bar\lambda\,\nabla\Phi_h(U)\,dt + \sqrt{h f}\;\bar\lambda\;\Sigma(U)^{1/2}\,dW,\qquad
  \Phi_h = \Phi + h c\,|\nabla\Phi|^2,$$

with `lbar = 1/(1 - lam)`, the corrected constant `c` of THEORY §2, `Sigma(u)` the covariance of
one per-example gradient under uniform sampling from the data set, and `f` the batch factor
(`1/B` with replacement, `(N - B)/(B (N - 1))` without). `drift="gradient_flow"` drops the
`h c` term. Measured (tests/test_stochastic.py, docs/stochastic.md): weak order 2 for the
modified drift with a start on the invariant manifold (or the zero-velocity start with the
shifted initial point `u0 + h lam lbar^2 grad Phi(u0)`), weak order 1 for the gradient-flow
drift; the noise-free modified flow misses the `O(h)` spread and is weak order 1.

Conventions: a loss is per-example, `loss(params, batch) -> (B,)` as in `momentum_jax._training`,
and `data` is a pytree of arrays whose leading axis indexes the `N` examples. The SDE, the noise
covariance and the exact moments need a flat parameter vector `u` of shape `(d,)`.

Exact references: when every per-example gradient is affine in `u` (linear least squares), the
mini-batch map is affine with random coefficients and the SDE is linear with affine diffusion
columns, so first and second moments of both obey closed linear equations:
`minibatch_moments` (a recursion over steps) and `sde_moments` (a matrix exponential). These
give `E g` exactly for quadratic test functions `g` and check the Monte Carlo machinery.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import partial
from typing import NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._iterate import MomentumState, initial_state, step
from ._methods import Momentum, method_from_name
from ._models import vector_field
from ._solve import integrate
from ._types import PyTree
from ._validate import check_choice, check_init, check_u0, check_whole

DRIFTS = ("modified", "gradient_flow")
STARTS = ("plain", "shifted")
MODELS = ("modified_sde", "gradient_flow_sde", "modified_ode")
"""The continuous-time models of a weak-error study: the SDE with the modified drift, the SDE
with the gradient-flow drift, and the modified flow without noise."""

_MAX_SDE_STEPS = 2**20


# ----------------------------------------------------------------------------------------------
# Mini-batches


def noise_factor(batch_size: int, n: int, replace: bool = True) -> float:
    """The factor `f` with `Cov(batch gradient) = f Sigma`: `1/B` for `B` draws with
    replacement, `(N - B) / (B (N - 1))` for `B` distinct examples (finite-population
    correction; 0 for the full batch)."""
    b = min(int(batch_size), int(n))
    if replace:
        return 1.0 / b
    return 0.0 if n == 1 else (n - b) / (b * (n - 1.0))


def num_examples(data: PyTree) -> int:
    """`N`, the common leading length of `data`'s arrays."""
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data must be an array or a non-empty pytree of arrays")
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in leaves}
    if None in sizes or len(sizes) != 1:
        raise ValueError(
            "data's arrays must share a leading (example) axis; got shapes "
            f"{[jnp.shape(x) for x in leaves]}"
        )
    (n,) = sizes
    if n < 1:
        raise ValueError("data must hold at least one example")
    return n


def sample_indices(key, n: int, batch_size: int, replace: bool = True) -> jax.Array:
    """`batch_size` example indices drawn uniformly from `range(n)` (i.i.d. with replacement, or
    distinct without)."""
    if replace:
        return jax.random.randint(key, (batch_size,), 0, n)
    return jax.random.choice(key, n, (batch_size,), replace=False)


def take(data: PyTree, idx) -> PyTree:
    """The examples `idx` of `data` (a batch)."""
    return jax.tree.map(lambda x: x[idx], data)


def batch_mean(loss, batch) -> Callable:
    """`u -> mean(loss(u, batch))`: the loss of one mini-batch as a function of the parameters."""
    return lambda u: jnp.mean(loss(u, batch))


def full_loss(loss, data) -> Callable:
    """`Phi(u) = (1/N) sum_i loss_i(u)`, the full-batch loss."""
    return batch_mean(loss, data)


def minibatch_step(
    loss,
    method: Momentum,
    data,
    key,
    state: MomentumState,
    *,
    batch_size: int = 1,
    replace: bool = True,
) -> MomentumState:
    r"""One step of eq. (15) with a fresh mini-batch drawn with `key`: the gradient (at the
    look-ahead point for NAG) is that of the batch mean loss,

    $$w_{n+1} = \lambda w_n - \nabla\Phi_{\xi_n}(u_n + h a w_n),\qquad u_{n+1} = u_n + h w_{n+1}.$$
    """
    n = num_examples(data)
    idx = sample_indices(key, n, min(batch_size, n), replace)
    return step(batch_mean(loss, take(data, idx)), method, state)


def _check_minibatch(loss, u0, data, batch_size, init):
    check_u0(u0)
    check_whole("batch_size", batch_size, low=1)
    n = num_examples(data)
    check_init(init, u0)
    if not callable(loss):
        raise TypeError(
            f"loss must be a callable (params, batch) -> per-example losses, got {loss!r}"
        )
    return n


def _keys(keys):
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        if keys.ndim != 1:
            raise ValueError(
                f"keys must be a 1-D array of PRNG keys (one per path), got shape {keys.shape}"
            )
        return keys
    if keys.ndim != 2 or keys.shape[-1] != 2:
        raise ValueError(
            "keys must be jax.random.split(key, num_paths): one key per path, "
            f"got shape {keys.shape}"
        )
    return keys


def minibatch_iterate(
    loss,
    u0: PyTree,
    method: Momentum,
    data: PyTree,
    num_steps: int,
    keys,
    *,
    batch_size: int = 1,
    replace: bool = True,
    init="zero",
    save_every: int = 1,
) -> PyTree:
    """Mini-batch HB/NAG (any `Momentum`) along many independent paths at once.

    **Arguments:**

    - `loss`: per-example losses `(params, batch) -> (B,)`; pass a module-level function (a
      new function object recompiles).
    - `u0`: the start (a pytree of float arrays), shared by every path.
    - `method`: a `Momentum`; its fields are traced.
    - `data`: a pytree whose leading axis indexes the `N` examples.
    - `num_steps`: steps per path (a Python int; it fixes the output's shape).
    - `keys`: one PRNG key per path (`jax.random.split(key, num_paths)`); step `n` of a path
      draws its batch with `jax.random.fold_in(key, n)`, so a path is reproducible from its key
      whatever is saved.
    - `batch_size`, `replace`: `batch_size` examples per step, i.i.d. uniform with replacement
      (default) or distinct.
    - `init`: `"zero"` (zero initial velocity), `"manifold"` (the invariant-manifold velocity of
      the full-batch loss) or an explicit velocity pytree.
    - `save_every`: keep every `save_every`-th iterate.

    **Returns:** `u0`'s pytree with leading axes `(num_paths, num_steps // save_every + 1)`.
    """
    _check_minibatch(loss, u0, data, batch_size, init)
    check_whole("num_steps", num_steps, low=0)
    check_whole("save_every", save_every, low=1)
    init_kind, w0 = (init, None) if isinstance(init, str) else ("explicit", init)
    return _minibatch_paths(
        loss,
        batch_size,
        replace,
        init_kind,
        num_steps,
        save_every,
        u0,
        method,
        data,
        _keys(keys),
        w0,
    )


def minibatch_final(
    loss,
    u0: PyTree,
    method: Momentum,
    data: PyTree,
    num_steps,
    keys,
    *,
    batch_size: int = 1,
    replace: bool = True,
    init="zero",
) -> PyTree:
    """Like `minibatch_iterate` but keep only `u` after `num_steps` steps (the same paths: the same
    keys give the same final iterates). `num_steps` is traced, so a new step count (a new `h`
    at fixed `T`) reuses the compiled loop. **Returns:** `u0`'s pytree with a leading path axis."""
    _check_minibatch(loss, u0, data, batch_size, init)
    if not isinstance(num_steps, jax.Array):
        check_whole("num_steps", num_steps, low=0)
    init_kind, w0 = (init, None) if isinstance(init, str) else ("explicit", init)
    return _minibatch_final(
        loss,
        batch_size,
        replace,
        init_kind,
        u0,
        method,
        data,
        _keys(keys),
        jnp.asarray(num_steps, dtype=jnp.int32),
        w0,
    )


def _start(loss, data, u0, method, init_kind, w0):
    phi = full_loss(loss, data)
    return initial_state(phi, u0, method, w0 if init_kind == "explicit" else init_kind)


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _minibatch_paths(
    loss, batch_size, replace, init_kind, num_steps, save_every, u0, method, data, keys, w0
):
    state0 = _start(loss, data, u0, method, init_kind, w0)

    def path(key):
        def block(carry, _):
            state, n = carry
            state = jax.lax.fori_loop(
                0,
                save_every,
                lambda j, s: minibatch_step(
                    loss,
                    method,
                    data,
                    jax.random.fold_in(key, n + j),
                    s,
                    batch_size=batch_size,
                    replace=replace,
                ),
                state,
            )
            return (state, n + save_every), state.u

        _, us = jax.lax.scan(block, (state0, 0), None, length=num_steps // save_every)
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), state0.u, us)

    return jax.vmap(path)(keys)


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _minibatch_final(loss, batch_size, replace, init_kind, u0, method, data, keys, num_steps, w0):
    state0 = _start(loss, data, u0, method, init_kind, w0)

    def path(key):
        def body(n, s):
            return minibatch_step(
                loss,
                method,
                data,
                jax.random.fold_in(key, n),
                s,
                batch_size=batch_size,
                replace=replace,
            )

        return jax.lax.fori_loop(0, num_steps, body, state0).u

    return jax.vmap(path)(keys)


# ----------------------------------------------------------------------------------------------
# The gradient noise and the SDE


def example_gradients(loss, u, data) -> jax.Array:
    """The per-example gradients `grad loss_i(u)`, shape `(N, d)` (flat `u`): forward mode (`d`
    Jacobian-vector products of the `(N,)` losses) when `d <= N`, else one gradient per example."""
    n, d = num_examples(data), u.shape[0]
    if d <= n:
        return jax.jacfwd(lambda v: loss(v, data))(u)

    def one(example):
        batch = jax.tree.map(lambda x: x[None], example)
        return jax.grad(lambda v: loss(v, batch)[0])(u)

    return jax.vmap(one)(data)


def noise_covariance(loss, u, data) -> jax.Array:
    r"""$\Sigma(u) = \frac1N\sum_i z_i z_i^T$ with $z_i = \nabla\ell_i(u) - \nabla\Phi(u)$:
    the covariance of one uniformly drawn per-example gradient, shape `(d, d)` (flat `u`)."""
    g = example_gradients(loss, u, data)
    z = g - jnp.mean(g, axis=0)
    return z.T @ z / g.shape[0]


def psd_sqrt(s) -> jax.Array:
    """The symmetric square root of a symmetric positive semi-definite matrix: closed form for
    `d <= 2` (`(S + sqrt(det S) I) / sqrt(tr S + 2 sqrt(det S))`, far cheaper than a batched
    `eigh` on CPU), `eigh` otherwise; rounding-level negative eigenvalues are clipped to 0."""
    d = s.shape[-1]
    if d == 1:
        return jnp.sqrt(jnp.maximum(s, 0.0))
    if d == 2:
        root_det = jnp.sqrt(jnp.maximum(s[0, 0] * s[1, 1] - s[0, 1] * s[1, 0], 0.0))
        t = jnp.sqrt(jnp.maximum(s[0, 0] + s[1, 1] + 2.0 * root_det, 0.0))
        safe = jnp.where(t > 0, t, 1.0)
        return jnp.where(t > 0, (s + root_det * jnp.eye(2, dtype=s.dtype)) / safe, 0.0)
    w, v = jnp.linalg.eigh(s)
    return (v * jnp.sqrt(jnp.maximum(w, 0.0))) @ v.T


def sde_drift(loss, data, drift: str = "modified") -> Callable:
    """The drift `(t, u, method) -> -lbar grad Phi_h(u)` (`"modified"`, THEORY §2 with the
    corrected `c`) or `-lbar grad Phi(u)` (`"gradient_flow"`), from `momentum_jax._models`."""
    check_choice("drift", drift, DRIFTS)
    model = "modified_flow" if drift == "modified" else "gradient_flow"
    return vector_field(model, full_loss(loss, data), order=1)


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
    g = jax.grad(full_loss(loss, data))(u0)
    return u0 + method.h * method.lam * method.lbar**2 * g


class GridBrownianPath(diffrax.AbstractBrownianPath):
    """A Brownian motion sampled exactly on the grid `t_k = k * spacing`, reproducible from its
    key: the increment over cell `k` is `sqrt(spacing) * normal(fold_in(key, k))`.

    Queries must start and end on grid points and span at most `max_cells` cells (checked at
    run time), which is what a constant-step solver with step `spacing` or `max_cells *
    spacing` asks for. The same path can therefore be solved at two resolutions (Richardson
    extrapolation on one path), at the cost of one normal draw per cell, far cheaper than
    `diffrax.VirtualBrownianTree` on CPU.
    """

    shape: jax.ShapeDtypeStruct = eqx.field(static=True)
    levy_area: type = eqx.field(static=True)
    max_cells: int = eqx.field(static=True)
    key: jax.Array
    spacing: jax.Array

    def __init__(self, key, shape: tuple[int, ...], spacing, *, max_cells: int = 2, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        self.shape = jax.ShapeDtypeStruct(tuple(shape), dtype)
        self.levy_area = diffrax.BrownianIncrement
        self.max_cells = int(max_cells)
        self.key = key
        self.spacing = jnp.asarray(spacing, dtype)

    @property
    def t0(self):
        return 0.0

    @property
    def t1(self):
        return jnp.inf

    def evaluate(self, t0, t1=None, left: bool = True, use_levy: bool = False):
        del left
        if t1 is None:
            raise NotImplementedError("GridBrownianPath gives increments W(t1) - W(t0) only")
        x0, x1 = t0 / self.spacing, t1 / self.spacing
        k0, k1 = jnp.round(x0), jnp.round(x1)
        cells = (k1 - k0).astype(jnp.int32)
        start = k0.astype(jnp.int32)
        w = jnp.zeros(self.shape.shape, self.shape.dtype)
        for j in range(self.max_cells):
            z = jax.random.normal(
                jax.random.fold_in(self.key, start + j), self.shape.shape, self.shape.dtype
            )
            w = w + jnp.where(j < cells, z, 0.0)
        w = w * jnp.sqrt(self.spacing)
        off_grid = (jnp.abs(x0 - k0) > 1e-6) | (jnp.abs(x1 - k1) > 1e-6)
        w = eqx.error_if(
            w,
            off_grid | (cells < 0) | (cells > self.max_cells),
            "GridBrownianPath queried off its grid or over too many cells",
        )
        if use_levy:
            return diffrax.BrownianIncrement(dt=t1 - t0, W=w)
        return w


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


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _solve_sde(loss, batch_size, replace, drift, start, config, u0, method, data, ts, keys):
    f = sde_drift(loss, data, drift)
    g = sde_diffusion(loss, data, batch_size=batch_size, replace=replace)
    y0 = sde_start(loss, data, u0, method, start)
    dt = method.h / config.substeps
    fine = dt / 2 if config.richardson else dt

    def solve(bm, step):
        terms = diffrax.MultiTerm(diffrax.ODETerm(f), diffrax.ControlTerm(g, bm))
        sol = diffrax.diffeqsolve(
            terms,
            diffrax.Euler(),
            t0=0.0,
            t1=ts[-1],
            dt0=step,
            y0=y0,
            args=method,
            saveat=diffrax.SaveAt(ts=ts),
            max_steps=_MAX_SDE_STEPS,
            throw=False,
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
    `sde_start(u0)`, at `ts` (diffrax, `momentum_jax._solve.integrate`): the SDE without its
    diffusion. **Returns:** `(len(ts), d)`."""
    check_choice("start", start, STARTS)
    ts = jnp.asarray(ts, jnp.result_type(float))
    ys, result = _modified_flow(loss, start, u0, method, data, ts)
    if not bool(result == diffrax.RESULTS.successful):
        raise RuntimeError(f"diffrax failed solving the modified flow: {result}")
    return ys


@partial(jax.jit, static_argnums=(0, 1))
def _modified_flow(loss, start, u0, method, data, ts):
    y0 = sde_start(loss, data, u0, method, start)
    return integrate(sde_drift(loss, data, "modified"), y0, 0.0, ts[-1], ts, method)


# ----------------------------------------------------------------------------------------------
# Exact moments (per-example gradients affine in u)


class Moments(NamedTuple):
    """First and second moments of `u`: `mean` `(..., d)`, `second = E[u u^T]` `(..., d, d)`."""

    mean: jax.Array
    second: jax.Array

    @property
    def covariance(self) -> jax.Array:
        return self.second - self.mean[..., :, None] * self.mean[..., None, :]


def _affine(fn, dim, dtype):
    """`(J, b, residual)` with `fn(x) ~ J x + b`; `residual` is the mismatch at a test point
    (zero when `fn` is affine)."""
    zero = jnp.zeros(dim, dtype)
    b = fn(zero)
    jac = jax.jacfwd(fn)(zero)
    x = jnp.linspace(-1.3, 0.7, dim, dtype=dtype) + 0.1
    residual = jnp.max(jnp.abs(fn(x) - (jac @ x + b))) / (1.0 + jnp.max(jnp.abs(fn(x))))
    return jac, b, residual


def _check_affine(residual, what):
    if float(residual) > 1e-8:
        raise ValueError(
            f"exact moments need {what} affine in u (per-example gradients affine, "
            f"e.g. linear least squares); the mismatch is {float(residual):.2e}"
        )


def minibatch_moments(
    loss,
    u0,
    method: Momentum,
    data,
    num_steps,
    *,
    batch_size: int = 1,
    replace: bool = True,
    init: str = "zero",
) -> Moments:
    r"""Exact `E u_n` and `E[u_n u_n^T]` of mini-batch `method` after `num_steps` steps, for
    per-example gradients affine in `u` (linear least squares).

    The step is then affine in the state, `x_{n+1} = M_\xi x_n` with `x = (u, w, 1)`, and the
    batch map is the mean of per-example maps, so the second moment `P_n = E[x_n x_n^T]` obeys
    `P_{n+1} = Mbar P Mbar^T + f (avg_i M_i P M_i^T - Mbar P Mbar^T)` with `f = noise_factor`.
    `num_steps` is traced. Raises `ValueError` if a per-example step is not affine.
    """
    check_u0(u0)
    if jnp.ndim(u0) != 1:
        raise ValueError("exact moments need a flat parameter vector u0 of shape (d,)")
    check_choice("init", init, ("zero", "manifold"))
    n = num_examples(data)
    f = noise_factor(batch_size, n, replace)
    mom, residual = _minibatch_moments(
        loss, init, u0, method, data, jnp.asarray(num_steps, jnp.int32), f
    )
    _check_affine(residual, "every per-example step")
    return mom


@partial(jax.jit, static_argnums=(0, 1))
def _minibatch_moments(loss, init, u0, method, data, num_steps, f):
    d = u0.shape[0]
    dtype = u0.dtype

    def example_map(example):
        batch = jax.tree.map(lambda x: x[None], example)
        phi = batch_mean(loss, batch)

        def fn(x):
            s = step(phi, method, MomentumState(x[:d], x[d:]))
            return jnp.concatenate([s.u, s.w])

        return _affine(fn, 2 * d, dtype)

    jac, off, residual = jax.vmap(example_map)(data)
    top = jnp.concatenate([jac, off[:, :, None]], axis=2)
    bottom = jnp.zeros((top.shape[0], 1, 2 * d + 1), dtype).at[:, 0, -1].set(1.0)
    ms = jnp.concatenate([top, bottom], axis=1)  # (N, 2d+1, 2d+1)
    mbar = jnp.mean(ms, axis=0)
    s0 = initial_state(full_loss(loss, data), u0, method, init)
    x0 = jnp.concatenate([s0.u, s0.w, jnp.ones(1, dtype)])

    def body(_, p):
        mean_part = mbar @ p @ mbar.T
        each = jnp.mean(jnp.einsum("nij,jk,nlk->nil", ms, p, ms), axis=0)
        return mean_part + f * (each - mean_part)

    p = jax.lax.fori_loop(0, num_steps, body, jnp.outer(x0, x0))
    return Moments(p[:d, -1], p[:d, :d]), jnp.max(residual)


def sde_moments(
    loss,
    u0,
    method: Momentum,
    data,
    ts,
    *,
    batch_size: int = 1,
    replace: bool = True,
    drift: str = "modified",
    start: str = "plain",
    diffusion: bool = True,
) -> Moments:
    r"""Exact `E U(t)` and `E[U U^T]` of the SDE of `solve_sde` at the times `ts`, for
    per-example gradients affine in `u`.

    The drift is then affine, `F U + f_0`, and each centred per-example gradient is affine,
    `z_i = Z_i (U, 1)`; with `P = E[(U,1)(U,1)^T]`,
    `P' = Ft P + P Ft^T + h f lbar^2 avg_i [Z_i P Z_i^T]` (padded), a linear ODE solved by a
    matrix exponential. `diffusion=False` gives the noise-free flow.
    """
    check_u0(u0)
    if jnp.ndim(u0) != 1:
        raise ValueError("exact moments need a flat parameter vector u0 of shape (d,)")
    check_choice("drift", drift, DRIFTS)
    check_choice("start", start, STARTS)
    f = noise_factor(batch_size, num_examples(data), replace) if diffusion else 0.0
    mom, residual = _sde_moments(
        loss, drift, start, u0, method, data, jnp.asarray(ts, dtype=u0.dtype), f
    )
    _check_affine(residual, "the drift and the per-example gradients")
    return mom


@partial(jax.jit, static_argnums=(0, 1, 2))
def _sde_moments(loss, drift, start, u0, method, data, ts, f):
    d = u0.shape[0]
    dtype = u0.dtype
    b = sde_drift(loss, data, drift)
    fj, f0, r1 = _affine(lambda u: b(0.0, u, method), d, dtype)

    def centred(u):
        g = example_gradients(loss, u, data)
        return (g - jnp.mean(g, axis=0)).reshape(-1)

    zj, z0, r2 = _affine(centred, d, dtype)
    n = zj.shape[0] // d
    zs = jnp.concatenate([zj.reshape(n, d, d), z0.reshape(n, d, 1)], axis=2)  # (N, d, d+1)
    ft = jnp.zeros((d + 1, d + 1), dtype).at[:d, :d].set(fj).at[:d, d].set(f0)
    kappa = method.h * f * method.lbar**2

    def rhs(p):
        noise = jnp.mean(jnp.einsum("nij,jk,nlk->nil", zs, p, zs), axis=0)
        return ft @ p + p @ ft.T + kappa * jnp.zeros_like(p).at[:d, :d].set(noise)

    k = d + 1
    op = jax.jacfwd(lambda v: rhs(v.reshape(k, k)).reshape(-1))(jnp.zeros(k * k, dtype))
    y0 = jnp.concatenate([sde_start(loss, data, u0, method, start), jnp.ones(1, dtype)])
    p0 = jnp.outer(y0, y0).reshape(-1)
    ps = jax.vmap(lambda t: jax.scipy.linalg.expm(op * t) @ p0)(ts).reshape(-1, k, k)
    return Moments(ps[:, :d, -1], ps[:, :d, :d]), jnp.maximum(r1, r2)


def quadratic_expectation(g, moments: Moments) -> jax.Array:
    """`E g(u) = tr(Q E[u u^T]) + l . E u + g(0)` for a quadratic `g(u) = u^T Q u + l . u + g(0)`
    (read off by autodiff at 0); vectorised over the leading axes of `moments`. Raises
    `ValueError` if `g` is not quadratic."""
    d = moments.mean.shape[-1]
    dtype = moments.mean.dtype
    zero = jnp.zeros(d, dtype)
    q = 0.5 * jax.hessian(g)(zero)
    lin = jax.grad(g)(zero)
    c0 = g(zero)
    x = jnp.linspace(-0.9, 1.1, d, dtype=dtype)
    mismatch = abs(float(g(x) - (x @ q @ x + lin @ x + c0)))
    if mismatch > 1e-9 * (1.0 + abs(float(g(x)))):
        raise ValueError(f"quadratic_expectation needs a quadratic g; mismatch {mismatch:.2e}")
    return jnp.einsum("ij,...ij->...", q, moments.second) + moments.mean @ lin + c0


# ----------------------------------------------------------------------------------------------
# The weak-error study


def default_tests(loss, data) -> dict[str, Callable]:
    """The test functions of the study: `u_1`, `|u|^2` and the loss `Phi(u)`."""
    phi = full_loss(loss, data)
    return {"u1": lambda u: u[0], "sq_norm": lambda u: jnp.sum(jnp.square(u)), "loss": phi}


def fit_order(hs, errors, points: int | None = None) -> float:
    """Least-squares slope of `log(error)` against `log(h)` over the `points` smallest `h` (all
    by default) with a positive finite error; `nan` with fewer than two."""
    hs, errors = np.asarray(hs, float), np.asarray(errors, float)
    ok = np.isfinite(errors) & (errors > 0)
    order = np.argsort(hs)
    sel = [i for i in order if ok[i]]
    if points is not None:
        sel = sel[:points]
    if len(sel) < 2:
        return float("nan")
    return float(np.polyfit(np.log(hs[sel]), np.log(errors[sel]), 1)[0])


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
        if self.exact_discrete is None:
            return None
        return {m: np.abs(self.exact_discrete - self.exact_model[m]) for m in self.models}

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
    hs = np.asarray(hs, dtype=float)
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
        if exact:
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
            if exact:
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
