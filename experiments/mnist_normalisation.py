"""Which normalisation of the training loss makes the paper's learning rates `h = 2^0 ... 2^-6`
behave as published? The first, 5-epoch evidence (superseded by `mnist_protocol.py`, which
runs off the plateau; docs/theory.md §6).

    python experiments/mnist_normalisation.py [--epochs 5] [--out FILE.json]

The training loss is `c` times the per-image summed squared error, averaged over the batch;
`c = 1` is the per-image sum, `c = 1/784` the per-pixel mean (PyTorch's `nn.MSELoss()`). For
GD, HB and NAG, training on `c Phi` at rate `h` is training on `Phi` at rate `c h`, so `c`
moves the whole `h` range; the vanishing-friction schemes are not invariant in this way. Every
run is the Fig 6 protocol (MNIST 5k subset, full autoencoder, float32, batch 200, no
shuffling, same Glorot start) for `--epochs` epochs, and the error is reported in the paper's
units (mean over images of the per-image sum). For each `c` the script checks the paper's
claims with Fig 6's own `qualitative` function, and the linear stability of GD at `h = 1` at the
start (rate `10 c` times the sharpness of the per-image sum, stable below 2).

Needs the mnist extra; about 4-5 minutes per scale on 2 CPU cores at 5 epochs.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import momentum_jax as mj
from momentum_jax.paper import load_module, mean_image_error, section5_problem

# name -> c (the factor on the per-image sum)
SCALES = {"image_sum": 1.0, "c=1/8": 1 / 8, "c=1/128": 1 / 128, "pixel_mean": 1 / 784}


def image_sum(params, x):
    return mj.squared_error(params, x)


def over_8(params, x):
    return mj.squared_error(params, x) / 8.0


def over_128(params, x):
    return mj.squared_error(params, x) / 128.0


LOSSES = {
    "image_sum": image_sum,
    "c=1/8": over_8,
    "c=1/128": over_128,
    "pixel_mean": mj.pixel_mean_squared_error,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--scales", default=",".join(SCALES))
    parser.add_argument("--sharpness-images", type=int, default=1000)
    parser.add_argument("--out", default="experiments/mnist_normalisation.json")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    fig6 = load_module("fig6_training")
    cfg = fig6.CONFIG
    prob = section5_problem(dataset="mnist5k", seed=cfg["seeds"][0], dtype=jnp.float32)
    exps = list(range(0, 7))
    hs = 2.0 ** -np.array(exps, dtype=float)
    plateau = mean_image_error(prob.data)
    sample = prob.data[: args.sharpness_images]

    def phi(p):
        return jnp.mean(mj.squared_error(p, sample))

    top = mj.top_hessian_eigenvalue(phi, prob.params0, iters=20, key=jax.random.PRNGKey(0))
    sharp = float(top.value)
    print(f"sharpness of the per-image sum at the start: {sharp:.4g} (residual {top.residual:.2g})")
    out = {
        "protocol": (
            f"{prob.description}, float32, batch 200, no shuffling, {args.epochs} epochs, "
            "error = mean over images of the per-image summed squared error"
        ),
        "mean_image_plateau": plateau,
        "sharpness_image_sum_at_start": sharp,
        "sharpness_residual": float(top.residual),
        "sharpness_images": int(sample.shape[0]),
        "h": [fig6.h_label(e) for e in exps],
        "scales": {},
    }
    for name in args.scales.split(","):
        c, loss = SCALES[name], LOSSES[name]
        t0 = time.perf_counter()
        table, curves = {}, {}
        for scheme in fig6.SCHEMES:
            runs = [  # one h at a time (h is traced: one compilation per scheme)
                mj.train(
                    scheme,
                    prob.params0,
                    prob.data,
                    h,
                    epochs=args.epochs,
                    loss=loss,
                    error=mj.squared_error,
                )
                for h in hs
            ]
            losses = np.array([np.asarray(r.losses) for r in runs])
            div = np.array([int(r.diverged_at) for r in runs])
            table[scheme] = [None if d > 0 else float(v) for v, d in zip(losses[:, -1], div)]
            curves[scheme] = losses.tolist()
            print(
                f"  {name:10s} {scheme:12s} "
                + " ".join("  nan  " if v is None else f"{v:7.2f}" for v in table[scheme])
            )
        flags = fig6.qualitative(table, exps)
        gd1 = table["gd_effective"][0]
        out["scales"][name] = {
            "c": c,
            "final_training_error": table,
            "curves": curves,
            "qualitative": flags,
            "gd_h1_rate_times_sharpness": 10 * c * sharp,
            "gd_h1_linearly_stable_at_start": bool(10 * c * sharp < 2),
            "gd_h1_final_error": gd1,
            "gd_h1_fails": gd1 is None or gd1 > plateau,
            "hb_h1_final_error": table["hb"][0],
            "below_plateau": {s: [v is not None and v < plateau for v in table[s]] for s in table},
            "seconds": time.perf_counter() - t0,
        }
        print(
            f"{name}: track {len(flags['hb_nag_track_gd_h'])}/7, beat "
            f"{len(flags['momentum_beats_vanishing_friction_h'])}/7, best at h=1 "
            f"{flags['best_at_largest_h']}, GD h=1 {gd1} (10 c S = {10 * c * sharp:.3g}); "
            f"{time.perf_counter() - t0:.0f} s"
        )
        mj.dump_json(args.out, out | mj.provenance())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
