"""Measurements of implicit regularisation (our Fig 10; docs/theory.md §2, §5 and §6): the
sharpness of a training loss at given parameters, the `h c` of the modified loss
`Phi_h = Phi + h c |grad Phi|^2` of each Section 5 scheme (Thm 6), a full-batch training run over
several learning rates measured at its end and along the way, and heavy ball on a 2-D nonconvex
loss against its modified flow and the gradient flow. Built on the public API only."""

from __future__ import annotations

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
    squared_gradient_norm,
    top_hessian_eigenvalue,
)

_squared_gradient_norm = jax.jit(squared_gradient_norm, static_argnums=0)
"""`|grad Phi(u)|^2`, compiled once per loss function object."""


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


def measured_training(
    scheme: str,
    params0,
    data,
    hs,
    phi,
    *,
    loss,
    steps: int,
    lam: float,
    rtol: float,
    max_iters: int,
    path_at: int | None = None,
    every: int = 1,
) -> dict[str, np.ndarray]:
    """Full-batch training of `scheme` at every `h` of `hs` (`train_over_h`), measured at the end
    of each run: the loss, the sharpness of `phi` (`sharpness`) and `|grad phi|^2`.

    **Arguments:**

    - `scheme`: a name of `SCHEMES`.
    - `params0`, `data`: the start and the training examples (leading axis), one batch.
    - `hs`: the learning rates (1-D).
    - `phi`: the full-batch training loss as a function of the parameters only; pass the same
      function object to every call, so that its sharpness and gradient compile once.
    - `loss`: the per-example loss that `train` takes; `steps`: the steps (full-batch epochs);
      `lam`: the momentum.
    - `rtol`, `max_iters`: those of `sharpness`.
    - `path_at`: an index of `hs` whose run is also measured along the way, every `every`
      steps (None: none).

    **Returns:** `{"loss", "sharpness", "residual", "grad_sq", "diverged_at"}`, each one value
    per `h`, `"curves"` (the losses of every step, `(h, steps + 1)`) and, with `path_at`,
    `"path_loss"` and `"path_sharpness"` at the recorded steps.
    """
    r = mj.train_over_h(
        scheme,
        params0,
        data,
        hs,
        epochs=steps,
        batch_size=data.shape[0],
        lam=lam,
        loss=loss,
        record_params_every=every if path_at is not None else None,
    )
    sharp, resid, gsq = [], [], []
    for i in range(len(hs)):  # one LOBPCG per trained point, each to its own tolerance
        p = jax.tree.map(lambda x, i=i: x[i], r.params)
        value, residual = sharpness(phi, p, rtol=rtol, max_iters=max_iters)
        sharp.append(value)
        resid.append(residual)
        gsq.append(float(_squared_gradient_norm(phi, p)))
    out = {
        "loss": np.asarray(r.losses[:, -1]),
        "sharpness": np.array(sharp),
        "residual": np.array(resid),
        "grad_sq": np.array(gsq),
        "diverged_at": np.asarray(r.diverged_at),
        "curves": np.asarray(r.losses),
    }
    if path_at is not None:
        snaps = jax.tree.map(lambda x: x[path_at], r.snapshots)
        count = jax.tree.leaves(snaps)[0].shape[0]
        out["path_loss"] = np.asarray(r.losses[path_at, ::every][:count])
        out["path_sharpness"] = np.array(
            [
                sharpness(
                    phi, jax.tree.map(lambda x, k=k: x[k], snaps), rtol=rtol, max_iters=max_iters
                )[0]
                for k in range(count)
            ]
        )
    return out


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
