"""The `sweep` rows of `benchmarks/run.py`: `mj.sweep` against the bare loop a JAX user writes
first (`benchmarks/bare.py`: `jax.jit(jax.vmap(run))`, nothing recorded, no divergence check),
side by side in one process, timed in alternation (the best of `repeats` calls of each), with
the same final losses checked.

- the regime map's quadratic (Fig 14: HB and NAG x 32 lam x 32 h, 2048 points, 4000 steps, the
  paper's 2-D quadratic, kappa 10, float64);
- a small MLP in float32: the digits autoencoder (64-32-16-8-16-32-64, 256 images, full batch),
  HB and NAG x 8 lam x 16 h (256 points), 200 steps; its FLOP rate against one 2048 x 2048
  float32 matmul's on the same machine. (The points share the input batch: `vmap` already
  makes the first layer, and its weights' gradient, one wide product for every point, a
  `(256, 64) x (64, 256 * 32)` dot in the compiled loop; the other layers are batched products.)
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import momentum_jax as mj

from . import bare

METHODS = ("hb", "nag")


def alternate(fns: dict, repeats: int, clock=time.perf_counter) -> dict:
    """`{name: best warm seconds}` of the calls in `fns`, called in turn `repeats` times after one
    call each (compiling), so that a change of the machine's load touches them alike; `clock`:
    wall time, or the process's CPU time (`time.process_time`, `benchmarks/run.py
    --cpu-time`)."""
    for fn in fns.values():
        fn()
    times: dict = {k: [] for k in fns}
    for _ in range(max(repeats, 1)):
        for k, fn in fns.items():
            t = clock()
            fn()
            times[k].append(clock() - t)
    return {k: min(v) for k, v in times.items()}


def flat_points(hs, lams, dtype):
    """`(h, lam, a)` of every `(method, lam, h)` point of a sweep, in `sweep`'s order."""
    L, H = np.meshgrid(lams, hs, indexing="ij")
    pts = [mj.method_from_name(m, H.ravel(), L.ravel()) for m in METHODS]
    return tuple(
        jnp.asarray(np.concatenate([np.ravel(getattr(p, f)) for p in pts]), dtype)
        for f in ("h", "lam", "a")
    )


def _agreement(sw, ref, shape):
    """The largest relative difference of the final losses over the points that stayed bounded
    (the bare loop does not stop the others), and how many points diverged."""
    ours = np.asarray(sw.final_loss[..., 0], dtype=float)
    ref = np.asarray(ref, dtype=float).reshape(shape)
    ok = sw.diverged_at[..., 0] < 0
    scale = np.maximum(np.abs(ref[ok]), np.finfo(float).tiny)
    return float(np.max(np.abs(ours[ok] - ref[ok]) / scale)), int(np.sum(~ok))


def quadratic(quick: bool, repeats: int, clock=time.perf_counter) -> dict:
    n = 8 if quick else 32
    hs, lams = 2.0 ** np.linspace(-1.0, -8.0, n), np.linspace(0.0, 0.95, n)
    steps = 400 if quick else 4000
    loss, u0 = mj.paper_quadratic(10.0), jnp.array([1.0, 1.0])
    t, out = _timed(loss, u0, hs, lams, steps, jnp.float64, repeats, clock)
    return {
        "problem": "quadratic (kappa 10, float64)",
        "points": 2 * n * n,
        "steps": steps,
        **_ratios(t, out, (2, n, n)),
    }


def _digits(n_images):
    images, _ = mj.load_digits_images()
    return jnp.asarray(images[:n_images], jnp.float32)


def mlp_flops_per_step(sizes, examples: int) -> float:
    """Multiply-adds of the dense layers times 2, for the forward pass and the two products of
    the backward pass (`3 x 2 x examples x sum(n_in n_out)`), per point and step."""
    return 3.0 * 2.0 * examples * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def matmul_rate(repeats: int, clock=time.perf_counter) -> float:
    """FLOP/s of one 2048 x 2048 float32 matmul on the default device."""
    k = jax.random.split(jax.random.key(0))
    x, y = (jax.random.normal(kk, (2048, 2048), jnp.float32) for kk in k)
    f = jax.jit(jnp.matmul)
    t = alternate({"mm": lambda: jax.block_until_ready(f(x, y))}, max(repeats, 5), clock)
    return 2.0 * 2048**3 / t["mm"]


def mlp(quick: bool, repeats: int, clock=time.perf_counter) -> dict:
    n_h, n_lam = (4, 4) if quick else (16, 8)
    hs, lams = 2.0 ** np.linspace(-1.0, -6.0, n_h), np.linspace(0.0, 0.95, n_lam)
    steps, examples = (20 if quick else 200), 256
    x = _digits(examples)
    params = mj.init_autoencoder(mj.DIGITS_SIZES, seed=0, dtype=jnp.float32)

    def loss(p):
        return jnp.mean(mj.squared_error(p, x))

    t, out = _timed(loss, params, hs, lams, steps, jnp.float32, repeats, clock)
    points = 2 * n_lam * n_h
    flops = mlp_flops_per_step(mj.DIGITS_SIZES, examples) * points * steps
    peak = matmul_rate(repeats, clock)
    return {
        "problem": "digits autoencoder (float32, 256 images, full batch)",
        "points": points,
        "steps": steps,
        **_ratios(t, out, (2, n_lam, n_h)),
        "flops": flops,
        "bare_gflops": flops / t["bare"] / 1e9,
        "sweep_gflops": flops / t["sweep"] / 1e9,
        "sweep_no_min_gflops": flops / t["sweep_no_min"] / 1e9,
        "matmul_2048_gflops": peak / 1e9,
        "sweep_fraction_of_matmul": flops / t["sweep"] / peak,
        "sweep_no_min_fraction_of_matmul": flops / t["sweep_no_min"] / peak,
    }


def _timed(loss, start, hs, lams, steps: int, dtype, repeats: int, clock) -> tuple[dict, dict]:
    """`(best warm seconds, results)` of `sweep` (default: with the minimum of every step),
    `sweep` with `min_loss=False` and the bare loop over the same points from `start`, timed
    in alternation."""
    h, lam, a = flat_points(hs, lams, dtype)
    run_bare = bare.final_losses(loss, steps)
    out: dict = {}

    def run_sweep(**kw):
        return mj.sweep(loss, start, hs=hs, lams=lams, methods=METHODS, steps=steps, **kw)

    def ours():
        out["sweep"] = run_sweep()

    def ours_no_min():
        out["sweep_no_min"] = run_sweep(min_loss=False)

    def theirs():
        out["bare"] = jax.block_until_ready(run_bare(start, h, lam, a))

    t = alternate({"sweep": ours, "sweep_no_min": ours_no_min, "bare": theirs}, repeats, clock)
    return t, out


def _ratios(t: dict, out: dict, shape) -> dict:
    """The times, the speed of both `sweep` calls relative to the bare loop (> 1: faster) and
    the agreement of the final losses."""
    diff, diverged = _agreement(out["sweep"], out["bare"], shape)
    diff_no_min, _ = _agreement(out["sweep_no_min"], out["bare"], shape)
    return {
        "sweep_s": t["sweep"],
        "sweep_no_min_s": t["sweep_no_min"],
        "bare_s": t["bare"],
        "speed_vs_bare": t["bare"] / t["sweep"],
        "no_min_speed_vs_bare": t["bare"] / t["sweep_no_min"],
        "max_relative_difference_final_loss": max(diff, diff_no_min),
        "diverged_points": diverged,
    }


def rows(quick: bool, repeats: int, clock=time.perf_counter) -> list:
    return [quadratic(quick, repeats, clock), mlp(quick, repeats, clock)]
