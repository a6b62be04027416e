"""Cost of the order-3 modified field at one point against one gradient (d = 10 and d = 10^4).

    python -m benchmarks.higher_order_cost [--repeats N]

Loss: nonconvex logistic regression with a double-well penalty,
`Phi(u) = mean_j softplus(-y_j <x_j, u>) + (1 / 4d) sum_i (u_i^2 - 1)^2`, with `m = 500` random
examples `x_j` in `R^d`; its gradient costs two matrix-vector products with the `m x d` data
matrix, so the ratios below are those of a loss dominated by dense linear algebra. The data are
an argument of the compiled functions, not constants folded into them.

Time: median over repeats of the compiled call (after one warm-up call). Memory: XLA's buffer
assignment of the compiled function (`memory_analysis()`): `temp` is the scratch space the call
needs beyond its arguments and outputs (the data matrix, shared by both, is reported once).
A dense Hessian at d = 10^4 would need 800 MB.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import momentum_jax as mj
from momentum_jax._higher_order import modified_field

jax.config.update("jax_enable_x64", True)

NUM_EXAMPLES = 500


def loss_with_data(u, data):
    x, y = data
    margins = -y * (x @ u)
    return jnp.mean(jax.nn.softplus(margins)) + jnp.sum((u**2 - 1.0) ** 2) / (4.0 * u.shape[0])


def make_data(dim, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((NUM_EXAMPLES, dim)) / np.sqrt(dim)
    y = np.sign(rng.standard_normal(NUM_EXAMPLES))
    return jnp.asarray(x), jnp.asarray(y)


def _median_time(fn, args, repeats):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(dim, order=3, repeats=10, method=None):
    method = method if method is not None else mj.heavy_ball(0.01, 0.9)
    data = make_data(dim)
    u = jnp.asarray(np.random.default_rng(1).standard_normal(dim))

    @jax.jit
    def gradient(u, data):
        return jax.grad(loss_with_data)(u, data)

    @jax.jit
    def field(u, data, method):
        return modified_field(_Bound(data), u, method, order)

    rows = {}
    for name, fn, args in (("gradient", gradient, (u, data)), ("field", field, (u, data, method))):
        start = time.perf_counter()
        compiled = fn.lower(*args).compile()
        compile_s = time.perf_counter() - start
        mem = compiled.memory_analysis()
        rows[name] = dict(
            time=_median_time(compiled, args, repeats),
            compile=compile_s,
            temp=mem.temp_size_in_bytes,
            out=mem.output_size_in_bytes,
        )
    return rows


class _Bound:
    """`u -> loss_with_data(u, data)` for the (traced) `data` of one trace of `field`; hashed
    by identity, which is all the static-argument cache of `modified_field` needs there. This
    keeps the data an argument of the compiled program instead of a folded constant."""

    def __init__(self, data):
        self.data = data

    def __call__(self, u):
        return loss_with_data(u, self.data)


def main(*, dims=(10, 10_000), order=3, repeats=10):
    print(
        f"order-{order} modified field vs one gradient; HB h=0.01 lam=0.9; "
        f"loss: logistic + double well, m={NUM_EXAMPLES}; CPU: {jax.devices()[0].device_kind}"
    )
    header = (
        "| d | gradient time | field time | ratio | gradient temp | field temp | field compile |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|")
    for dim in dims:
        rows = measure(dim, order=order, repeats=repeats)
        g, f = rows["gradient"], rows["field"]
        print(
            f"| {dim} | {g['time'] * 1e6:.1f} us | {f['time'] * 1e6:.1f} us | "
            f"{f['time'] / g['time']:.0f}x | {g['temp'] / 1e3:.1f} kB | "
            f"{f['temp'] / 1e3:.1f} kB | {f['compile']:.1f} s |",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--order", type=int, default=3)
    args = parser.parse_args()
    main(order=args.order, repeats=args.repeats)
