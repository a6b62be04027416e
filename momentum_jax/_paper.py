"""The paper's quadratic experiments (Figs 1-5, and our Figs 8-9) as library functions, so the
figure scripts stay thin: `Phi(u) = 1/2 <u, diag(kappa, 1) u>`, `u_0 = (1, 1)`, `lam = 0.9`."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ._iterate import iterate
from ._losses import paper_quadratic
from ._manifold import distances_along
from ._methods import method_from_name
from ._solve import solve
from ._study import convergence_study

U0 = (1.0, 1.0)


def trajectories(kappas, hs, *, lam, T, model, velocity="paper", methods=("hb", "nag")):
    """Discrete iterates and model solutions in the `(u_1, u_2)` plane (paper Figs 1 and 3).

    Returns `(discrete, continuous, gaps)`: nested lists `[method][kappa][h]` of `(N+1, 2)`
    arrays, the model evaluated at the same times `n h`, and `max_n |u_n - u(n h)|`."""
    u0 = jnp.array(U0)
    disc, cont = [], []
    for meth in methods:
        d_m, c_m = [], []
        for kappa in kappas:
            loss = paper_quadratic(float(kappa))
            d_k, c_k = [], []
            for h in hs:
                m = method_from_name(meth, h, lam)
                n = int(round(T / h))
                d_k.append(np.asarray(iterate(loss, u0, m, n)))
                c_k.append(
                    np.asarray(
                        solve(loss, u0, m, np.arange(n + 1) * h, model=model, velocity=velocity)
                    )
                )
            d_m.append(d_k)
            c_m.append(c_k)
        disc.append(d_m)
        cont.append(c_m)
    gaps = [
        [
            [float(np.max(np.linalg.norm(d - c, axis=1))) for d, c in zip(dk, ck)]
            for dk, ck in zip(dm, cm)
        ]
        for dm, cm in zip(disc, cont)
    ]
    return disc, cont, np.array(gaps)


def pack(nested) -> dict:
    """Flatten `[method][kappa][h] -> array` into `{"i_j_k": array}` for saving with NumPy."""
    return {
        f"{i}_{j}_{k}": a
        for i, row in enumerate(nested)
        for j, col in enumerate(row)
        for k, a in enumerate(col)
    }


def unpack(arrays: dict, prefix: str) -> dict:
    """The inverse of `pack` for keys saved as `prefix + key`: `{(i, j, k): array}`."""
    out = {}
    for key, value in arrays.items():
        if key.startswith(prefix):
            i, j, k = map(int, key[len(prefix) :].split("_"))
            out[(i, j, k)] = value
    return out


def rate_grid(
    kappas,
    hs,
    *,
    lam,
    T,
    models,
    init="zero",
    velocity="taylor",
    constant="corrected",
    methods=("hb", "nag"),
    progress=None,
):
    """`convergence_study` for each `kappa`: errors and rates stacked as
    `[kappa, method, h]` per model (Figs 2, 4, 8, 9)."""
    errors = {m: [] for m in models}
    rates = {m: [] for m in models}
    diverged = []
    for kappa in kappas:
        st = convergence_study(
            paper_quadratic(float(kappa)),
            jnp.array(U0),
            hs=hs,
            lams=[lam],
            T=T,
            models=models,
            methods=methods,
            init=init,
            hamiltonian_velocity=velocity,
            constant=constant,
        )
        for m in models:
            errors[m].append(st.errors[m][:, 0])
            rates[m].append(st.rates[m][:, 0])
        diverged.append(st.diverged_at[:, 0])
        if progress is not None:
            progress.advance()
    return (
        {m: np.array(v) for m, v in errors.items()},
        {m: np.array(v) for m, v in rates.items()},
        np.array(diverged),
    )


def manifold_run(kappa, h, *, lam, steps, methods=("hb", "nag")):
    """Fig 5: iterates `u_n`, scaled velocities `w_n` and distances `|e_n|` from the first-order
    manifold (paper eq. 34), started off the manifold at `u_0 = (1, 1)`, `w_0 = 0`."""
    loss = paper_quadratic(float(kappa))
    out = {}
    for i, meth in enumerate(methods):
        m = method_from_name(meth, h, lam)
        us, ws = iterate(loss, jnp.array(U0), m, steps, return_velocity=True)
        out[f"u_{i}"], out[f"w_{i}"] = np.asarray(us), np.asarray(ws)
        out[f"e_{i}"] = np.asarray(distances_along(loss, us, ws, m))
    return out
