"""The `latency` and `overhead` rows of `benchmarks/run.py`.

- `latency`: the first call of the README's study example (its `convergence_study`) in a fresh
  process, with the number of XLA programs it needs and how many of them were read from the
  persistent cache (`jax.monitoring`; JAX's compile event counts both), without JAX's persistent
  compilation cache and with it (`jax.config.update("jax_compilation_cache_dir", ...)`, every
  program written however quick to compile): a first process fills an empty cache, a second
  one reads it. Then the same study with every `h` one octave smaller, in the same process
  (what a new grid of the same size costs), then with a new `T` (3 instead of 2), then that
  again (warm).
- `overhead`: the warm time of a 1-point, 4-step study and of a 1-point, 4-step sweep: nearly
  all of it the host's work per call.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp

import momentum_jax as mj

PROBE = r"""
import json, sys, time
import jax
jax.config.update("jax_enable_x64", True)
if sys.argv[1]:
    jax.config.update("jax_compilation_cache_dir", sys.argv[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
compiles, hits = [0], [0]
def on_duration(name, *args, **kwargs):  # a program compiled or read from the cache
    if name == "/jax/core/compile/backend_compile_duration":
        compiles[0] += 1
def on_event(name, *args, **kwargs):
    if name == "/jax/compilation_cache/cache_hits":
        hits[0] += 1
jax.monitoring.register_event_duration_secs_listener(on_duration)
jax.monitoring.register_event_listener(on_event)
import jax.numpy as jnp
import momentum_jax as mj

loss = lambda u: 0.5 * (10.0 * u[0] ** 2 + u[1] ** 2)
u0 = jnp.array([1.0, 1.0])
def study(shift, T=2.0):
    return mj.convergence_study(
        loss, u0, hs=2.0 ** -(jnp.arange(4, 12) + shift), lams=[0.5, 0.9], T=T,
        models=(mj.GradientFlow(), mj.Hamiltonian(velocity="taylor")), norm="max",
    )
out = {}
steps = (("first", 0, 2.0), ("octave_shift", 1, 2.0), ("new_T", 1, 3.0), ("warm", 1, 3.0))
for key, shift, T in steps:
    c, k, t = compiles[0], hits[0], time.perf_counter()
    study(shift, T)
    out[key + "_s"] = time.perf_counter() - t
    out[key + "_programs"] = compiles[0] - c
    out[key + "_from_cache"] = hits[0] - k
print(json.dumps(out))
"""


def _probe(cache: str) -> dict:
    cmd = [sys.executable, "-c", PROBE, cache]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def latency() -> dict:
    """Three fresh processes: no cache; an empty cache (filled); the same cache (read)."""
    with tempfile.TemporaryDirectory() as folder:
        return {
            "no_cache": _probe(""),
            "empty_cache": _probe(folder),
            "warm_cache": _probe(folder),
        }


def _best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def overhead(repeats: int) -> dict:
    loss, u0 = mj.paper_quadratic(10.0), jnp.array([1.0, 1.0])

    def study():
        mj.convergence_study(
            loss, u0, hs=[0.25], lams=[0.5], methods=("hb",), models=("gradient_flow",), T=1.0
        )

    def sweep():
        mj.sweep(loss, u0, hs=[0.25], lams=[0.5], methods=("hb",), steps=4)

    def step():  # a compiled call of the same size, for scale: JAX's own dispatch
        jax.block_until_ready(one(u0))

    one = jax.jit(lambda u: u - 0.25 * jax.grad(loss)(u))
    n = max(repeats, 1) * 20
    return {
        "study_1_point_ms": _best(study, n) * 1e3,
        "sweep_1_point_ms": _best(sweep, n) * 1e3,
        "jit_call_ms": _best(step, n) * 1e3,
        "repeats": n,
    }
