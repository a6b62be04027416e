"""The off-plateau checkpoints of the Section 5 autoencoder that Figs 7 and 10 start from: per
seed, heavy ball (by default) full batch from the Glorot start until the error is below
`trained_below` times the mean image's (`off_plateau_checkpoint`), with its sharpness, cached
once under Fig 10 for both figures."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import momentum_jax as mj

from ._problems import mean_image_error, section5_from_config
from ._regularisation import off_plateau_checkpoint, sharpness

OWNER = "fig10_implicit_regularisation"
"""The figure under whose name the checkpoints are cached (`checkpoints`)."""


CHECKPOINT_KEYS = (
    "checkpoint_scheme",
    "checkpoint_h_exponent",
    "checkpoint_steps",
    "checkpoint_chunk",
    "trained_below",
)
"""The configuration of the off-plateau checkpoint (the key of its cache entry, and of the runs
from it)."""


def checkpoint_part(config, ctx, loss, data, probs, shared):
    """Per seed, the off-plateau start (`off_plateau_checkpoint`, cached): `{seed: params}`
    and the arrays `checkpoint/...` (its loss curve, divergence and sharpness)."""
    c = float(config["loss_scale"])
    h = 2.0 ** -int(config["checkpoint_h_exponent"])
    key_ = shared | {k: config[k] for k in CHECKPOINT_KEYS}

    def phi(params):  # one function object: its sharpness compiles once
        return jnp.mean(loss(params, data))

    starts, curves, divs, sharp, resid = {}, [], [], [], []
    bar = ctx.progress(len(config["seeds"]), "checkpoints (seeds)")
    for seed in config["seeds"]:
        prob = probs[seed]

        def run(prob=prob):
            params, losses, div = off_plateau_checkpoint(
                loss,
                prob.params0,
                data,
                h=h,
                lam=config["lam"],
                below=c * config["trained_below"] * mean_image_error(data),
                max_steps=config["checkpoint_steps"],
                chunk=config["checkpoint_chunk"],
                scheme=config["checkpoint_scheme"],
            )
            value, residual = sharpness(
                phi, params, rtol=config["sharpness_rtol"], max_iters=config["sharpness_max_iters"]
            )
            leaves = {f"leaf{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(params))}
            return {
                "arrays": leaves
                | {
                    "errors": losses / c,
                    "diverged_at": np.array(div),
                    "sharpness": np.array([value, residual]),
                }
            }

        part = ctx.cached(f"checkpoint-seed{seed}", key_ | {"seed": seed}, run)["arrays"]
        treedef = jax.tree.structure(prob.params0)
        n_leaves = treedef.num_leaves
        starts[seed] = jax.tree.unflatten(
            treedef, [jnp.asarray(part[f"leaf{i}"]) for i in range(n_leaves)]
        )
        curves.append(part["errors"])  # lengths differ: padded with NaN below
        divs.append(int(part["diverged_at"]))
        sharp.append(float(part["sharpness"][0]))
        resid.append(float(part["sharpness"][1]))
        bar.advance()
    bar.close()
    longest = max(len(x) for x in curves)
    padded = [np.concatenate([x, np.full(longest - len(x), np.nan)]) for x in curves]
    arrays = {
        "checkpoint/errors": np.stack(padded),  # (seeds, longest + 1), NaN after a run's end
        "checkpoint/steps": np.array([len(x) - 1 for x in curves]),
        "checkpoint/diverged_at": np.array(divs),
        "checkpoint/sharpness": np.array(sharp),
        "checkpoint/residual": np.array(resid),
    }
    return starts, arrays


START_KEYS = (
    "dataset",
    "lam",
    "loss_scale",
    "hidden",
    "images",
    "mnist_dtype",
    "mnist_limit",
    "sharpness_rtol",
    "sharpness_max_iters",
) + CHECKPOINT_KEYS
"""The configuration keys of the checkpoints (with `seeds`): what a figure that starts from them
copies from Fig 10's configuration (Fig 7)."""


def checkpoints(config, ctx):
    """Per seed of `config["seeds"]`, the off-plateau start (`checkpoint_part`), cached under
    `OWNER` whichever figure's `ctx` asks (`ctx.of`: Figs 7 and 10 read the same entries).

    **Returns:** `(starts, arrays, (loss, data, the first seed's problem, the cache key of the
    data and loss))`: `{seed: params}`, the arrays `checkpoint/...`, the training loss
    (`Autoencoder(hidden, scale=loss_scale)`) and the images it is trained on."""
    loss = mj.Autoencoder(hidden=config["hidden"], scale=float(config["loss_scale"]))
    probs = {s: section5_from_config(config, ctx.options, seed=s) for s in config["seeds"]}
    first = probs[config["seeds"][0]]
    data = first.data[: config["images"]]
    keys = ("lam", "loss_scale", "hidden", "images", "mnist_dtype", "mnist_limit")
    keys_sharp = ("sharpness_rtol", "sharpness_max_iters")
    shared = {k: config[k] for k in keys + keys_sharp} | {
        "data": first.description,
        "mnist_dir": ctx.options.get("mnist_dir"),
    }
    starts, arrays = checkpoint_part(config, ctx.of(OWNER), loss, data, probs, shared)
    return starts, arrays, (loss, data, first, shared)


def final_errors(arrays) -> np.ndarray:
    """Per seed, the error after its checkpoint's last step (the last finite entry of
    `checkpoint/errors`, whose rows are NaN-padded to the longest run)."""
    return np.array([e[np.isfinite(e)][-1] for e in arrays["checkpoint/errors"]])


def off_plateau(arrays, config, data) -> np.ndarray:
    """Per seed: its checkpoint did not diverge and ended below `trained_below` times the
    mean image's error."""
    diverged = arrays["checkpoint/diverged_at"] >= 0
    return ~diverged & (final_errors(arrays) < config["trained_below"] * mean_image_error(data))


def seeds_to_run(arrays, config, data) -> list[int]:
    """The seeds of `config["seeds"]` whose checkpoint left the plateau (`off_plateau`): the
    ones a figure runs from (the others would be left out of every comparison); all of them
    when none did."""
    seeds = [int(s) for s in config["seeds"]]
    return [s for s, ok in zip(seeds, off_plateau(arrays, config, data)) if ok] or seeds
