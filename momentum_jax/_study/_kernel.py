"""The convergence engine: error curves of a whole grid of methods, momenta and learning rates
against every continuous-time model, from one compiled call.

**How one kernel handles different step counts.** A grid point with learning rate `h` needs
`N(h) = floor(T / h)` steps. The kernel groups the grid by learning rate: all `len(methods) *
len(lams)` points of one `h` have the same step count, and `lax.map` runs the groups one after
another inside the one compiled call. Within a group, a `lax.while_loop` runs over *chunks* of
`K` steps with `jax.vmap` over the group's points: every point takes `K` discrete steps (a
`lax.scan`) and every model is integrated by diffrax over the same time window, in windows of
at most `SolverConfig.chunk_max_steps` solver steps whose dense output is evaluated at the
chunk's `K` times `n h` in one vectorised call; the errors `|u_n - u(n h)|` are reduced into a
running maximum, so memory is `O(G K d)` for a group of `G` points, independent of the number
of steps. So the discrete work is exactly `sum N(h)` steps (only the last chunk of each group is
partly masked) and nothing waits for the smallest `h`; the price is that groups run in sequence,
so a grid with one point per `h` is not vectorised at all. Step counts, `h`, `lam` and `a` are
traced arrays: new values with the same grid shape reuse the compiled kernel. Each group's
points are sharded over the devices (padded to a multiple of their number).
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._distributed import default_devices, pad_to, shard_grid, to_host
from .._io import provenance
from .._iterate import initial_state, is_bounded, step
from .._method import Momentum, method_from_name
from .._model import MODELS, AbstractModel, as_model
from .._solve import DEFAULT_SOLVER, SolverConfig, integrate_dense
from .._validate import (
    check_choice,
    check_loss,
    check_range,
    check_u0,
    loss_name,
    warn_if_low_precision,
)
from ._result import Study, result_message


def convergence_study(
    loss,
    u0,
    *,
    hs,
    lams,
    methods=("hb", "nag"),
    models=("gradient_flow", "hamiltonian", "modified_flow"),
    T,
    init="zero",
    hamiltonian_velocity="taylor",
    order: int = 1,
    constant: str = "corrected",
    fit_points: int = 4,
    divergence_limit: float = 1e8,
    chunk_size: int | None = None,
    devices=None,
    progress=None,
    solver: SolverConfig = DEFAULT_SOLVER,
) -> Study:
    """Errors of every `(method, lam, h)` against every continuous-time model, from one jitted call.

    **Arguments:**

    - `loss`, `u0`: the loss (any scalar JAX function of a pytree) and the start.
    - `hs`: learning rates, strictly decreasing (typically halving: `2^-4, ..., 2^-17`).
    - `lams`: momenta in `[0, 1)`. `methods`: names among `"hb"`, `"nag"`, `"gd"`.
    - `models`: among `"gradient_flow"`, `"hamiltonian"`, `"modified_flow"`, `"hessian_damped"`.
    - `T`: the time horizon; errors are over `n h <= T`, i.e. `N = floor(T / h)` steps (a `T / h`
      that is not an integer is rounded down, so the last time compared is `N h <= T`).
    - `init`: `"zero"` (the paper's start) or `"manifold"`: the discrete runs start on the
      invariant manifold (to `order` in `h`) and second-order models start with that velocity.
    - `hamiltonian_velocity`: `u'(0)` of second-order models when `init="zero"`: `"taylor"` or
      `"paper"` (eq. 12) or `"manifold"`.
    - `order`, `constant`: the `modified_flow` options (see `solve`).
    - `fit_points`: how many of the smallest valid `hs` the fitted `orders` use.
    - `divergence_limit`: a discrete run has diverged at the first step whose iterate is not
      finite or has norm above `divergence_limit * max(1, |u0|)`.
    - `chunk_size`: steps per chunk `K` (default: from a 64 MB memory budget, at most 512).
    - `devices`: devices to shard the grid over (default: all local devices).
    - `progress`: optional callable `progress(done_steps, total_steps)`, called from the host
      once per chunk.

    **Returns:** a `Study`.
    """
    methods, models = tuple(methods), tuple(models)
    hs_np = _check_grid(hs, lams, methods, models, T, fit_points)
    lams_np = np.asarray(lams, dtype=float).ravel()
    check_u0(u0)
    check_loss(loss, u0)
    check_choice("init", init, ("zero", "manifold"))
    probe = method_from_name(methods[0], hs_np[0], lams_np[0])
    objs = tuple(
        as_model(
            m,
            velocity=hamiltonian_velocity if init == "zero" else None,
            order=order if m == "modified_flow" else None,
            constant=constant if m == "modified_flow" else None,
        )
        for m in models
    )
    for obj in objs:
        obj.check(probe)
    models = tuple(m if isinstance(m, str) else m.key for m in models)

    M, L, H = len(methods), len(lams_np), len(hs_np)
    grid_h = np.broadcast_to(hs_np, (M, L, H))
    grid_lam = np.broadcast_to(lams_np[:, None], (M, L, H))
    grid_a = np.stack([_a_of(meth, lams_np) for meth in methods])[:, :, None] * np.ones(H)
    steps = np.floor(T / hs_np * (1 + 1e-12)).astype(np.int32)
    if np.any(steps < 1):
        raise ValueError(f"T={T} is shorter than the largest h={hs_np[0]}: no step fits in [0, T]")

    state_size = sum(np.size(leaf) for leaf in jax.tree.leaves(u0))
    devices = list(devices) if devices is not None else default_devices()
    # groups: one per learning rate (equal step counts), G = M * L points each, padded so that
    # the group axis splits evenly over the devices
    G = M * L
    per_h = [
        np.moveaxis(x, 2, 0).reshape(H, G)
        for x in (grid_h, grid_lam, grid_a, np.broadcast_to(steps, (M, L, H)))
    ]
    per_h, _ = pad_to([x.T for x in per_h], len(devices))
    args = shard_grid([x.T for x in per_h], devices, axis=1)
    K = chunk_size or _default_chunk(
        per_h[0].shape[0], state_size, len(models), solver.chunk_max_steps
    )
    check_range("divergence_limit", divergence_limit, low=0.0, low_open=True)
    warn_if_low_precision(u0, solver.rtol, "convergence_study")
    limit = divergence_limit * max(
        1.0, float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(u0))))
    )
    # array leaves of the loss (data, coefficients) are traced, not baked into the program:
    # losses that differ only in them share one compilation
    loss_params, loss_static = eqx.partition(loss, eqx.is_array)
    errs, div, res = _kernel(
        loss_static,
        objs,
        init,
        order,
        solver,
        K,
        progress,
        u0,
        loss_params,
        limit,
        *args,
    )
    # (H, G, ...) -> (M, L, H, ...)
    errs, div, res = (
        np.moveaxis(to_host(x)[:, :G].reshape(H, M, L, *x.shape[2:]), 0, 2)
        for x in (errs, div, res)
    )

    errors, failures = {}, {}
    div = div.reshape(M, L, H)
    for i, model in enumerate(models):
        e = errs[..., i]
        codes = res[..., i]
        failures[model] = np.vectorize(result_message, otypes=[object])(codes)
        failures[model][codes == 0] = ""
        bad = (div >= 0) | (codes != 0)
        errors[model] = np.where(bad, np.nan, e)
    config = {
        "loss": loss_name(loss),
        "u0": _u0_summary(u0),
        "T": float(T),
        "init": init,
        "hamiltonian_velocity": hamiltonian_velocity,
        "order": order,
        "constant": constant,
        "steps": steps.tolist(),
        "divergence_limit": divergence_limit,
        "chunk_size": K,
        "devices": len(devices),
        "solver": dataclasses.asdict(solver),
    }
    return Study(
        methods, lams_np, hs_np, models, errors, div, failures, config, provenance(), fit_points
    )


def _a_of(method: str, lams):
    return np.asarray(lams) if method == "nag" else np.zeros_like(lams)


def _check_grid(hs, lams, methods, models, T, fit_points):
    hs_np = np.asarray(hs, dtype=float).ravel()
    if hs_np.size == 0:
        raise ValueError("hs must contain at least one learning rate")
    check_range("hs", hs_np, low=0.0, low_open=True)
    if np.any(np.diff(hs_np) >= 0):
        raise ValueError(f"hs must be strictly decreasing (largest first), got {hs_np.tolist()}")
    if np.asarray(lams).size == 0:
        raise ValueError("lams must contain at least one momentum")
    check_range("lams", lams, low=0.0, high=1.0, high_open=True)
    check_range("T", T, low=0.0, low_open=True)
    if not methods:
        raise ValueError("methods must name at least one of 'hb', 'nag', 'gd'")
    for meth in methods:
        check_choice("method", meth, ("hb", "nag", "gd"))
    if not models:
        raise ValueError(f"models must name at least one of {MODELS}")
    for model in models:
        if not isinstance(model, AbstractModel):
            check_choice("model", model, MODELS)
    if not isinstance(fit_points, int) or fit_points < 2:
        raise ValueError(f"fit_points={fit_points!r} is outside the allowed range: an integer >= 2")
    return hs_np


def _default_chunk(points: int, state_size: int, n_models: int, window_steps: int) -> int:
    """Steps per chunk for a 64 MB budget per group of `points`: the chunk's iterates and model
    values (`K` per point) beside the dense-output windows (`window_steps` per point and model,
    about 10 state-sized vectors a step for Tsit5)."""
    budget = 64 * 2**20 - points * n_models * window_steps * 10 * 2 * state_size * 8
    per_step = points * state_size * 8 * (2 + 3 * n_models)
    k = int(2 ** math.floor(math.log2(max(budget // max(per_step, 1), 1))))
    return int(min(max(k, 8), 512))


def _u0_summary(u0):
    leaves = jax.tree.leaves(u0)
    if len(leaves) == 1 and np.size(leaves[0]) <= 64:
        return np.asarray(leaves[0]).tolist()
    return {"leaves": len(leaves), "size": int(sum(np.size(x) for x in leaves))}


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5, 6))
def _kernel(
    loss_static,
    models,
    init,
    order,
    solver,
    K,
    progress,
    u0,
    loss_params,
    limit,
    h,
    lam,
    a,
    N,
):
    loss = eqx.combine(loss_params, loss_static)
    fields = [m.vector_field(loss) for m in models]
    dtype = _tree.dtype(u0)
    int_max = jnp.iinfo(jnp.int32).max

    def start(h, lam, a):
        meth = Momentum(h, lam, a).astype(dtype)
        s = initial_state(loss, u0, meth, init, order)
        w0 = s.w if init == "manifold" else None
        ys = tuple(m.initial_state(loss, u0, meth, w0) for m in models)
        return s, ys, jnp.asarray(-1, jnp.int32)

    def discrete_chunk(s, div, h, lam, a, n_steps, c):
        """K steps of the map (lockstep over points); the iterates and which of them count."""
        meth = Momentum(h, lam, a).astype(dtype)
        n = c * K + 1 + jnp.arange(K, dtype=jnp.int32)
        live = n <= n_steps

        def dstep(s, _):
            s = step(loss, meth, s)
            return s, s.u

        s, traj = jax.lax.scan(dstep, s, None, length=K)
        bounded = jax.vmap(lambda u: is_bounded(u, limit))(traj)
        first_bad = jnp.min(jnp.where(live & ~bounded, n, int_max))
        div = jnp.where((div < 0) & (first_bad < int_max), first_bad, div)
        ok = live & ((div < 0) | (n < div))
        return s, div, traj, ok

    def model_chunk(model, f, y, err, res, traj, ok, h, lam, a, n_steps, c):
        """The model over the chunk's time window; the running maximum of `|u_n - u(n h)|`."""
        meth = Momentum(h, lam, a).astype(dtype)
        n = c * K + 1 + jnp.arange(K, dtype=jnp.int32)
        t1 = jnp.minimum(c * K + K, n_steps) * h
        t0 = jnp.minimum(c * K * h, t1)

        def max_error(values, covered):
            d = jax.vmap(lambda x, y: _tree.norm(_tree.sub(x, y)))(traj, model.position(values))
            return jnp.max(jnp.where(ok & covered, d.astype(dtype), 0.0))

        e, y1, result = integrate_dense(
            f, y, t0, t1, jnp.minimum(n, n_steps) * h, meth, solver, reduce=max_error
        )
        failed = (res != 0) | (result != 0)
        err = jnp.where(failed, err, jnp.maximum(err, e))
        res = jnp.where(res != 0, res, result).astype(jnp.int32)
        y = jax.tree.map(lambda old, new: jnp.where(failed, old, new.astype(old.dtype)), y, y1)
        return y, err, res

    offsets = jnp.cumsum(N[:, 0]) - N[:, 0]
    total = jnp.sum(N[:, 0])

    def group(args):
        """All points of one learning rate: every one runs exactly its N(h) steps."""
        h, lam, a, N, offset = args
        s, ys, div = jax.vmap(start)(h, lam, a)
        G = h.shape[0]
        err = jnp.zeros((G, len(models)), dtype)
        res = jnp.zeros((G, len(models)), jnp.int32)
        n_group = jnp.max(N)

        def cond(state):
            return state[0] * K < n_group

        def body(state):
            c, s, ys, err, div, res = state
            s, div, traj, ok = jax.vmap(discrete_chunk, in_axes=(0, 0, 0, 0, 0, 0, None))(
                s, div, h, lam, a, N, c
            )
            new_ys, new_err, new_res = [], [], []
            for i, (model, f) in enumerate(zip(models, fields)):
                y_i, e_i, r_i = jax.vmap(
                    partial(model_chunk, model, f), in_axes=(0, 0, 0, 0, 0, 0, 0, 0, 0, None)
                )(ys[i], err[:, i], res[:, i], traj, ok, h, lam, a, N, c)
                new_ys.append(y_i)
                new_err.append(e_i)
                new_res.append(r_i)
            if progress is not None:
                jax.debug.callback(progress, offset + jnp.minimum((c + 1) * K, n_group), total)
            return (
                c + 1,
                s,
                tuple(new_ys),
                jnp.stack(new_err, axis=1),
                div,
                jnp.stack(new_res, axis=1),
            )

        state = (jnp.asarray(0, N.dtype), s, ys, err, div, res)
        _, _, _, err, div, res = jax.lax.while_loop(cond, body, state)
        return err, div, res

    return jax.lax.map(group, (h, lam, a, N, offsets))
