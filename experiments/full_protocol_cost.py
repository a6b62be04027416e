"""What `momentum-jax reproduce fig6 --full` costs: the paper's protocol (all 60,000 MNIST
training images from local IDX files, batch 200, 500 epochs, the six schemes at h = 2^0 ...
2^-6) as one `sweep` call per group of schemes, counted in FLOPs, steps and memory, and the time
it takes at a stated throughput.

    python experiments/full_protocol_cost.py [--tflops 20] [--out FILE.json]

Counts, not measurements: a dense layer of `m x n` weights costs `2 m n` FLOPs per example
forward and twice that backward (the gradients of the weights and of the inputs); biases and
activations are left out (under 0.2%). The error over all images after every epoch (the curve) is
one forward pass per image.
"""

from __future__ import annotations

import argparse

import momentum_jax as mj

IMAGES, BATCH, EPOCHS = 60_000, 200, 500
SCHEMES, H_VALUES = 6, 7  # the paper's table: six schemes at h = 2^0 ... 2^-6


def cost(sizes=mj.MNIST_SIZES, *, tflops: float) -> dict:
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))  # per example, forward
    params = macs + sum(sizes[1:])
    forward = 2 * macs
    step = 3 * forward * BATCH  # forward + backward, one run, one batch
    steps = IMAGES // BATCH * EPOCHS
    runs = SCHEMES * H_VALUES
    train = step * steps * runs
    curve = forward * IMAGES * EPOCHS * runs
    total = train + curve
    # per run: parameters and velocity; per step: the activations of a batch (kept for the
    # backward pass) and the gradient; the images once; float32
    state = 4 * (2 * params) * runs
    activations = 4 * (BATCH * sum(sizes) + params) * runs
    return {
        "parameters": params,
        "flops_per_step_per_run": step,
        "steps_per_run": steps,
        "runs": runs,
        "training_flops": train,
        "curve_flops": curve,
        "total_flops": total,
        "memory_bytes": state + activations + 4 * IMAGES * sizes[0],
        "throughput_tflops": tflops,
        "hours_at_throughput": total / (tflops * 1e12) / 3600,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tflops", type=float, default=20.0, help="sustained float32 TFLOP/s")
    p.add_argument("--out", default=None, help="write the numbers to this JSON file")
    args = p.parse_args(argv)
    out = cost(tflops=args.tflops)
    for k, v in out.items():
        print(f"{k:>24}: {v:.4g}")
    if args.out:
        mj.dump_json(args.out, out)


if __name__ == "__main__":
    main()
