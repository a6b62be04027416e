"""Placing a flat grid of independent runs on several devices and several processes.

A sweep or a convergence study is a flat grid of `P` independent points (one `(method, lam, h)`
each). It is laid out along one mesh axis `"grid"` over the devices: each device runs
`P / len(devices)` points, with `jax.vmap` inside. Nothing is communicated between points, so the
only collectives are the reductions that bound the loop (the largest step count) and the final
gather of the results.

**One process, several devices** (GPUs of a node, or CPU devices forced with
`XLA_FLAGS=--xla_force_host_platform_device_count=N`): `shard_grid` places the grid; `jax.jit`
follows the placement.

**Several processes** (`jax.distributed.initialize(...)` on every host, each running the same
script with the same arguments): `devices` is the global `jax.devices()`; every process holds the
whole (small) grid on the host and `shard_grid` builds the global arrays from it with
`jax.make_array_from_callback`, each process supplying only its own devices' shards. `to_host`
gathers a result to NumPy on every process (`process_allgather`), so every process returns the
same `Study`. On CPU the cross-process collectives use gloo
(`jax_cpu_collectives_implementation`, the default in recent jax).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._iterate import FinalState, iterate_final
from ._method import Momentum
from ._types import PyTree

GRID_AXIS = "grid"


def default_devices() -> list:
    """Every device of every process: the local devices when there is one process."""
    return list(jax.devices())


def grid_sharding(devices, axis: int = 0) -> jax.sharding.NamedSharding:
    """Sharding of a grid's axis `axis` over `devices` (a 1-D mesh named `"grid"`)."""
    mesh = jax.sharding.Mesh(np.asarray(list(devices)), (GRID_AXIS,))
    spec = (None,) * axis + (GRID_AXIS,)
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))


def pad_to(arrays, multiple: int):
    """Pad every array's leading axis to a multiple of `multiple` with copies of its first entry
    (harmless work, dropped afterwards); returns `(padded, original_length)`."""
    n = np.shape(arrays[0])[0]
    n_pad = -(-n // multiple) * multiple
    out = [
        np.concatenate([a, np.repeat(a[:1], n_pad - n, axis=0)]) if n_pad > n else a
        for a in (np.asarray(x) for x in arrays)
    ]
    return out, n


def shard_grid(arrays, devices=None, axis: int = 0):
    """Place host arrays whose axes `axis` have the same length (a multiple of
    `len(devices)`) on `devices`, split along that axis. Works across processes: every process
    passes the same values and supplies the shards of its own devices."""
    devices = default_devices() if devices is None else list(devices)
    if len(devices) == 1:
        return [jax.device_put(jnp.asarray(a), devices[0]) for a in arrays]
    sharding = grid_sharding(devices, axis)
    return [_shard(np.asarray(a), sharding) for a in arrays]


def _shard(a: np.ndarray, sharding) -> jax.Array:
    return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])


def to_host(x) -> np.ndarray:
    """A (possibly multi-process) array as NumPy, the same on every process."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def sweep_final(
    loss, u0: PyTree, method: Momentum, num_steps: int, *, init="zero", order: int = 1, devices=None
) -> FinalState:
    """`iterate_final` for every point of a flat grid of hyperparameters, sharded over devices.

    `method`'s fields are 1-D arrays of one common length `P` (for example
    `heavy_ball(H.ravel(), L.ravel())` for a grid of learning rates `H` and momenta `L`). The
    grid is split over `devices` (default: every device of every process) and each device runs
    its points with `jax.vmap`. Returns the `FinalState` as NumPy arrays with a leading axis of
    length `P`, identical on every process.
    """
    if not isinstance(init, str):
        raise TypeError(
            "sweep_final takes init='zero' or 'manifold'; for an explicit w_0 per "
            "point, vmap iterate_final yourself"
        )
    method = method.broadcast()
    fields = [np.asarray(x, dtype=float).ravel() for x in (method.h, method.lam, method.a)]
    devices = default_devices() if devices is None else list(devices)
    padded, P = pad_to(fields, len(devices))
    h, lam, a = shard_grid(padded, devices)
    out = _vmapped_final(loss, num_steps, init, order, u0, h, lam, a)
    return jax.tree.map(lambda x: to_host(x)[:P], out)


@eqx.filter_jit
def _vmapped_final(loss, num_steps, init, order, u0, h, lam, a):
    return jax.vmap(lambda m: iterate_final(loss, u0, m, num_steps, init=init, order=order))(
        Momentum(h, lam, a)
    )
