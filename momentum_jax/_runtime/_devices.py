"""The devices a grid runs on and how its points are placed on them.

A sweep or a convergence study is a flat grid of `P` independent points. It is laid out along
one mesh axis `"grid"` over the devices (`grid_mesh`, the one mesh of the package): each device
runs `P / len(devices)` points. Nothing is communicated between points, so the only collectives
are the reductions that bound a loop and the final gather of the results.

**One process, several devices** (GPUs of a node, or CPU devices forced with
`XLA_FLAGS=--xla_force_host_platform_device_count=N`): `shard_grid` places the grid's arrays
split along the mesh axis; a compiled function follows the placement, or maps a per-device
function over the mesh with `jax.shard_map`.

**Several processes** (`jax.distributed.initialize(...)` on every host, each running the same
script with the same arguments): the devices are the global `jax.devices()`; every process holds
the whole (small) grid on the host and `shard_grid` builds the global arrays from it with
`jax.make_array_from_callback`, each process supplying only its own devices' shards. `to_host`
gathers a result to NumPy on every process (`process_allgather`), so every process returns the
same result. On CPU the cross-process collectives use gloo
(`jax_cpu_collectives_implementation`, the default in recent jax).
"""

from __future__ import annotations

import jax
import numpy as np

GRID_AXIS = "grid"
"""The name of the one mesh axis a grid is split along."""


def default_devices() -> list:
    """Every device of every process: the local devices when there is one process."""
    return list(jax.devices())


def check_devices(devices) -> list:
    """The devices to run a grid on: `devices` as a list, or `default_devices()` for None.
    `TypeError` unless every entry is a `jax.Device`, `ValueError` for an empty list (both
    naming `devices`, before anything is compiled)."""
    if devices is None:
        return default_devices()
    if isinstance(devices, str | jax.Device):
        raise TypeError(f"devices must be jax devices (jax.devices()), got {devices!r}")
    devices = list(devices)
    if not devices:
        raise ValueError("devices must name at least one device (default: jax.devices())")
    if not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"devices must be jax devices (jax.devices()), got {devices!r}")
    return devices


def vectorize_on(devices=None) -> bool:
    """Whether independent runs or solves on `devices` (default: `default_devices()`) are
    vectorised (`jax.vmap`: True on accelerators) or run one after another (False on a CPU,
    where a vectorised adaptive loop runs every lane for as many steps as the slowest one)."""
    devices = default_devices() if devices is None else devices
    return devices[0].platform != "cpu"


def grid_mesh(devices) -> jax.sharding.Mesh:
    """The 1-D mesh of `devices` along the axis `GRID_AXIS`."""
    return jax.sharding.Mesh(np.asarray(list(devices)), (GRID_AXIS,))


def grid_sharding(devices, axis: int = 0) -> jax.sharding.NamedSharding:
    """Sharding of an array's axis `axis` along the grid axis of `grid_mesh(devices)`."""
    spec = (None,) * axis + (GRID_AXIS,)
    return jax.sharding.NamedSharding(grid_mesh(devices), jax.sharding.PartitionSpec(*spec))


def padded_size(points: int, devices: int = 1) -> int:
    """The number of points a compiled grid loop runs for `points` points on `devices` devices:
    the smallest `m 2^e >= points` with `m` in 4 ... 8 (at most 25% more; `points` itself up to
    4), rounded up to a multiple of `devices`, so that a grid one point larger usually reuses
    the compiled loop (the padding points are dropped)."""
    size = points
    if points > 4:
        e = int(np.floor(np.log2(points / 4)))
        size = next(m * 2**e for m in (4, 5, 6, 7, 8) if m * 2**e >= points)
    return -(-size // devices) * devices


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


def shard_grid(arrays, devices, axis: int = 0) -> list:
    """Place host arrays whose axes `axis` have the same length (a multiple of
    `len(devices)`) on `devices`, split along that axis (`grid_sharding`). Works across
    processes: every process passes the same values and supplies the shards of its own
    devices. On the one default device the NumPy arrays themselves: the compiled call places
    them, the fastest dispatch (a warm 1-point sweep 0.38 ms instead of 0.56)."""
    devices = list(devices)
    if len(devices) == 1:
        if devices[0] == jax.devices()[0]:
            return [np.asarray(a) for a in arrays]
        return [jax.device_put(np.asarray(a), devices[0]) for a in arrays]  # compiles nothing
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
