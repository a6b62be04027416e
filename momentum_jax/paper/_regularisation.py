"""Measurements of implicit regularisation (our Fig 10; docs/theory.md §2, §5 and §6): the
sharpness of a training loss at given parameters, the `h c` of the modified loss
`Phi_h = Phi + h c |grad Phi|^2` of each Section 5 scheme (Thm 6), full-batch training of several
schemes over learning rates and seeds from an off-plateau checkpoint (one `sweep` call) measured
at its end, and heavy ball on a 2-D nonconvex loss against its modified flow and the gradient
flow. Built on the public API only."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import momentum_jax as mj
from momentum_jax import (
    double_well,
    heavy_ball,
    iterate,
    scheme_method,
    solve,
    top_hessian_eigenvalue,
)


def modified_loss_constant(scheme: str, h: float, lam: float) -> float:
    """`h c` of `Phi_h` for a scheme of `SCHEMES` (Thm 6, docs/theory.md §2): `c` of its
    `Momentum` at its own rate (GD: `h/(1-lam)` and `c = 1/4`)."""
    m = scheme_method(scheme, h, lam)
    return float(m.h * m.c)


def sharpness(phi, params, *, rtol: float, max_iters: int) -> tuple[float, float]:
    """The top Hessian eigenvalue of `phi` at `params` (`top_hessian_eigenvalue`, started from
    `PRNGKey(0)`), to the relative residual `rtol` or after `max_iters` products (then a lower
    bound).

    **Returns:** `(value, residual)` as Python floats.
    """
    top = top_hessian_eigenvalue(
        phi, params, rtol=rtol, max_iters=max_iters, key=jax.random.PRNGKey(0)
    )
    return float(top.value), float(top.residual)


def off_plateau_checkpoint(
    loss,
    params0,
    data,
    *,
    h: float,
    lam: float,
    below: float,
    max_steps: int,
    chunk: int = 100,
    scheme: str = "hb",
) -> tuple:
    """The start of the Fig 10 runs: `scheme` (heavy ball by default) trained full batch on
    `data` from `params0` (`train`) in chunks of `chunk` steps, its velocity carried over, until
    the full-batch `loss` is below `below` after a chunk (the run has left the plateau) or
    `max_steps` steps are done. Every scheme of `measured_training` starts from its parameters
    (with zero velocity).

    **Returns:** `(params, losses, diverged_at)`: the parameters after the last step, the full
    training loss before training and after every step `(steps + 1,)`, and the step of a
    divergence (-1 if none).
    """
    params, velocity = params0, None
    losses: list[np.ndarray] = []
    done, diverged_at = 0, -1
    while done < max_steps:
        n = min(chunk, max_steps - done)
        r = mj.train(
            scheme,
            params,
            data,
            h,
            epochs=n,
            batch_size=data.shape[0],
            lam=lam,
            loss=loss,
            velocity0=velocity,
        )
        curve = np.asarray(r.losses)
        losses.append(curve if not losses else curve[1:])
        params, velocity = r.params, r.velocity
        if int(r.diverged_at) >= 0:
            diverged_at = done + int(r.diverged_at)
            break
        done += n
        if curve[-1] < below:
            break
    return params, np.concatenate(losses), diverged_at


def measured_training(
    schemes,
    starts: dict,
    data,
    hs,
    loss,
    *,
    steps: int,
    lam: float,
    rtol: float,
    max_iters: int,
    record_every: int,
) -> dict[str, np.ndarray]:
    """Full-batch training of every scheme of `schemes` at every `h` of `hs` from every start of
    `starts`, in one `sweep` call, measured at the end of each run: the training loss and the
    sharpness (the top Hessian eigenvalue of the full-batch loss, to the relative residual
    `rtol` or after `max_iters` Hessian-vector products; the residual is kept).

    **Arguments:**

    - `schemes`: names of `SCHEMES` that `sweep` runs (`"gd_effective"`, `"hb"`, `"nag"`).
    - `starts`: `{seed: params}`, one start per seed (e.g. `off_plateau_checkpoint`); every
      scheme and `h` starts there with zero velocity.
    - `data`: the training examples (leading axis), one batch.
    - `hs`: the learning rates (1-D); `loss`: the per-example training loss `(params, batch) ->
      (B,)`; `steps`: the steps (full-batch epochs); `lam`: the momentum.
    - `rtol`, `max_iters`: the sharpness's relative residual and its budget of products.
    - `record_every`: the loss is recorded every this many steps (`"curves"`).

    **Returns:** `{"loss", "sharpness", "residual", "diverged_at"}`, each `(scheme, seed, h)`,
    `"curves"` `(scheme, seed, h, records + 1)` (the start first) and `"curve_steps"`.
    """
    start, seeds = seeded_start(starts)
    r = mj.sweep(
        loss,
        start,
        seeds=seeds,
        hs=np.asarray(hs, dtype=float),
        lams=[lam],
        methods=list(schemes),
        steps=steps,
        data=data,
        record_every=record_every,
        sharpness_at=[steps],
        sharpness_rtol=rtol,
        sharpness_max_iters=max_iters,
        min_loss=False,
    )

    def grid(x):  # (scheme, lam=1, h, seed, ...) -> (scheme, seed, h, ...)
        return np.swapaxes(np.asarray(x)[:, 0], 1, 2)

    first = np.array([[float(jnp.mean(loss(starts[s], data)))] for s in seeds])  # (seed, 1)
    curves = grid(r.curve)
    start_col = np.broadcast_to(first[None, :, None, :], curves.shape[:-1] + (1,))
    assert r.sharpness is not None and r.sharpness_residual is not None
    return {
        "loss": grid(r.final_loss),
        "sharpness": grid(r.sharpness)[..., -1],
        "residual": grid(r.sharpness_residual)[..., -1],
        "diverged_at": grid(r.diverged_at),
        "curves": np.concatenate([start_col, curves], axis=-1),
        "curve_steps": np.concatenate([[0], np.asarray(r.curve_steps)]),
    }


def seeded_start(starts: dict) -> tuple[Callable, list[int]]:
    """`(params0, seeds)` for `sweep(..., params0, seeds=seeds)` from `{seed: params}`: the
    function `key -> params` that gives each seed's own start (`sweep` calls it with
    `jax.random.key(seed)`)."""
    seeds = [int(s) for s in starts]
    by_key = {_key_bytes(jax.random.key(s)): starts[s] for s in seeds}

    def start(key):
        return by_key[_key_bytes(key)]

    return start, seeds


def double_well_picture(
    *, h: float, lam: float, steps: int, box, points: int, starts
) -> tuple[dict[str, np.ndarray], dict]:
    """Heavy ball on `double_well` against the gradient flow of its modified loss `Phi_h`
    (`modified_flow`) and the gradient flow (`gradient_flow`), started on the invariant manifold
    (Thm 5), with `Phi` and `Phi_h - Phi = h c |grad Phi|^2` on a grid.

    **Arguments:**

    - `h`, `lam`: heavy ball's learning rate and momentum; `steps`: its steps.
    - `box`: `(low, high)` of both coordinates; `points`: grid points per coordinate.
    - `starts`: the starting points `(x, y)`.

    **Returns:** `(arrays, summary)`: `arrays` holds `"x"` (the grid coordinates), `"phi"` and
    `"reg"` on the grid, and the paths `"hb"`, `"modified_flow"`, `"gradient_flow"`
    `(starts, steps + 1, 2)`; `summary` the largest distances of heavy ball to each flow.
    """
    hb = heavy_ball(h, lam)
    hc = float(hb.h * hb.c)
    lo, hi = box
    g = np.linspace(lo, hi, points)
    X, Y = np.meshgrid(g, g)
    pts = jnp.asarray(np.stack([X.ravel(), Y.ravel()], axis=1))
    phi = jax.vmap(double_well)(pts)
    gsq = jnp.sum(jax.vmap(jax.grad(double_well))(pts) ** 2, axis=1)
    ts = h * np.arange(steps + 1)
    hb_paths, flow_paths, gd_paths, d_mod, d_flow = [], [], [], [], []
    for start in starts:
        u0 = jnp.asarray(start, dtype=float)
        us = np.asarray(iterate(double_well, u0, hb, steps, init="manifold"))
        mod = np.asarray(solve(double_well, u0, hb, ts, model="modified_flow"))
        flow = np.asarray(solve(double_well, u0, hb, ts, model="gradient_flow"))
        hb_paths.append(us)
        flow_paths.append(mod)
        gd_paths.append(flow)
        d_mod.append(float(np.max(np.linalg.norm(us - mod, axis=1))))
        d_flow.append(float(np.max(np.linalg.norm(us - flow, axis=1))))
    shape = X.shape
    arrays = {
        "x": g,
        "phi": np.asarray(phi).reshape(shape),
        "reg": (hc * np.asarray(gsq)).reshape(shape),
        "hb": np.array(hb_paths),
        "modified_flow": np.array(flow_paths),
        "gradient_flow": np.array(gd_paths),
    }
    summary = {
        "loss": "double_well (x^2-1)^2/4 + y^2/2 + xy/4",
        "h": h,
        "lam": lam,
        "h_c": hc,
        "steps": steps,
        "hb_start": "on the invariant manifold (order 1)",
        "max_dist_hb_to_modified_flow": d_mod,
        "max_dist_hb_to_gradient_flow": d_flow,
        "hb_closer_to_modified_flow": [bool(a < b) for a, b in zip(d_mod, d_flow)],
    }
    return arrays, summary


def _key_bytes(key) -> bytes:
    """The bits of a PRNG key, whatever its implementation (a dictionary key)."""
    return np.asarray(jax.random.key_data(key)).tobytes()
