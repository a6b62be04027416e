"""The paper's problems as functions, so the figure modules stay thin: the quadratic experiments
(Figs 1-5, and our Figs 8-9: `Phi(u) = 1/2 <u, diag(kappa, 1) u>`, `u_0 = (1, 1)`, `lam = 0.9`)
and the Section 5 autoencoder problem (Figs 6, 7, 10). Built on the public API only."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import momentum_jax as mj
from momentum_jax import (
    convergence_study,
    distances_along,
    iterate,
    method_from_name,
    paper_quadratic,
    solve,
)

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


class Section5Problem(NamedTuple):
    """What `section5_problem` returns."""

    params0: list
    """The Glorot-initialised autoencoder (`init_autoencoder(sizes, seed)`)."""
    data: jax.Array
    """`(N, pixels)` training images in `[0, 1]`, in the data set's own order."""
    dataset: str
    """`"mnist"` or `"digits"`."""
    sizes: tuple[int, ...]
    """The autoencoder's layer widths."""
    description: str
    """One line naming the data set, its size and the architecture (for figure titles)."""


def section5_problem(
    mnist_dir=None,
    *,
    digits_sizes=None,
    mnist_sizes=None,
    limit: int | None = None,
    seed: int = 0,
    dtype=None,
) -> Section5Problem:
    """The data and the starting autoencoder of the paper's Section 5 experiment.

    With `mnist_dir`, the MNIST training set read from the standard IDX files there
    (`load_mnist`, which validates the headers; nothing is downloaded) and Hinton &
    Salakhutdinov's 784-1000-500-250-30 autoencoder (`MNIST_SIZES`, or `mnist_sizes`);
    otherwise scikit-learn's bundled 8x8 digits with the scaled autoencoder (`DIGITS_SIZES`,
    or `digits_sizes`). `limit` keeps the first `limit` images; `dtype` is that of the
    parameters and the images (JAX's default float when None).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit={limit!r} is outside the allowed range: None or an integer >= 1")
    if mnist_dir is not None:
        images, _ = mj.load_mnist(mnist_dir, "train")
        sizes, name, what = tuple(mnist_sizes or mj.MNIST_SIZES), "mnist", "MNIST training set"
    else:
        images, _ = mj.load_digits_images()
        sizes, name, what = tuple(digits_sizes or mj.DIGITS_SIZES), "digits", "sklearn 8x8 digits"
    if sizes[0] != images.shape[1] or sizes[-1] != images.shape[1]:
        raise ValueError(
            f"autoencoder sizes {sizes} must start and end with the "
            f"{images.shape[1]} pixels of the {what}"
        )
    images = images[:limit]
    params0 = mj.init_autoencoder(sizes, seed, dtype=dtype)
    data = jnp.asarray(images, dtype=jax.tree.leaves(params0)[0].dtype)
    description = f"{what}, {images.shape[0]} images, autoencoder {'-'.join(map(str, sizes))}"
    return Section5Problem(params0, data, name, sizes, description)
