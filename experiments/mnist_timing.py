"""What one step of the Section 5 autoencoder costs on this machine, and whether `jax.vmap` over
learning rates pays: the measurements behind the default epoch counts of Figs 6, 7 and 10.

    python experiments/mnist_timing.py [--out experiments/mnist_timing.json]

Needs the mnist extra (`pip install -e ".[mnist]"`). Runs about 3 minutes on 2 CPU cores.
Everything goes through the public API: `train`, `sweep`, `parameter_gaps`,
`top_hessian_eigenvalue`, on the MNIST 5k subset with the 784-1000-500-250-30 autoencoder in
float32, trained on the per-pixel mean squared error (the figures' setting).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp

import momentum_jax as mj


def load():
    return os.getloadavg()[0]


def timed(fn, repeats=3):
    """`fn()` once to compile, then `repeats` times: (compile+first, [times])."""
    t = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return first, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="experiments/mnist_timing.json")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    images, _ = mj.load_mnist_5k()
    data = jnp.asarray(images, jnp.float32)
    params = mj.init_autoencoder(mj.MNIST_SIZES, 0, dtype=jnp.float32)
    loss = mj.pixel_mean_squared_error
    out = {"cpu_count": os.cpu_count(), "backend": jax.default_backend(), "rows": {}}

    def record(name, first, times, per=1, unit="s"):
        med = statistics.median(times) / per
        out["rows"][name] = {"first_call_s": first, "median_" + unit: med, "load": load()}
        print(f"{name:55s} first {first:7.2f} s   median {med:.4g} {unit}   load {load():.2f}")

    # `train` with 0, 1 and 3 epochs: the error over the 5000 images is evaluated before
    # training and after every epoch, so t(0) is one evaluation and t(3) - t(1) - 2 t(0) is
    # 50 steps of batch 200.
    def hb(epochs):
        return lambda: mj.train("hb", params, data, 0.5, epochs=epochs, loss=loss).losses

    runs = {e: timed(hb(e), repeats=5) for e in (0, 1, 3)}
    for e, (f, t) in runs.items():
        record(f"HB, {e} epochs of 25 steps + {e + 1} error evaluations (s)", f, t)
    med = {e: statistics.median(t) for e, (_, t) in runs.items()}
    step = (med[3] - med[1] - 2 * med[0]) / 50
    out["rows"]["HB step, batch 200 (ms)"] = {"median_ms": 1e3 * step, "load": load()}
    out["rows"]["error over 5000 images (s)"] = {"median_s": med[0], "load": load()}
    print(f"HB step, batch 200: {1e3 * step:.1f} ms; error over 5000 images {med[0]:.3f} s")

    hs = [2.0**-e for e in range(7)]

    def one_sweep():  # every h in one compiled call (vmap), the error after the epoch recorded
        return mj.sweep(
            loss,
            params,
            hs=hs,
            lams=[0.9],
            methods=["hb"],
            steps=25,
            data=data,
            batch_size=200,
            record_every=25,
            min_loss=False,
        ).curve

    def loop():  # one h after another (h is traced: one compilation)
        return [mj.train("hb", params, data, h, epochs=1, loss=loss).losses for h in hs]

    for name, fn in (("sweep", one_sweep), ("loop of train", loop)):
        f, t = timed(fn, repeats=2)
        record(f"7 learning rates, 1 epoch, {name} (s)", f, t)
    r = out["rows"]
    out["sweep_speedup_over_loop"] = (
        r["7 learning rates, 1 epoch, loop of train (s)"]["median_s"]
        / r["7 learning rates, 1 epoch, sweep (s)"]["median_s"]
    )
    print(f"sweep over 7 h: {out['sweep_speedup_over_loop']:.2f}x the speed of the loop")

    f, t = timed(
        lambda: (
            mj.parameter_gaps(
                ("hb", "nag"), "gd_effective", params, data, 0.25, steps=40, loss=loss
            ).max_gap
        ),
        repeats=2,
    )
    record("HB, NAG and GD together, 40 steps (ms per step)", f, [1e3 * x for x in t], 40, "ms")

    for n in (500, 1000):
        batch = data[:n]
        f, t = timed(
            lambda batch=batch: (
                mj.train(
                    "hb", params, batch, 0.5, epochs=10, batch_size=batch.shape[0], loss=loss
                ).losses
            ),
            repeats=2,
        )
        record(f"full-batch HB step + error, {n} images (ms)", f, [1e3 * x for x in t], 10, "ms")

        def phi(p, batch=batch):
            return jnp.mean(loss(p, batch))

        f, t = timed(lambda phi=phi: mj.top_hessian_eigenvalue(phi, params, iters=10).value, 2)
        record(f"power iteration, {n} images (ms per iteration)", f, [1e3 * x for x in t], 11, "ms")

    mj.dump_json(args.out, out | mj.provenance())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
