"""The grid of a convergence study: its distinct points, their step counts, and how they are
packed into lanes and devices.

A study's grid is `methods x lams x hs`. It is built from the one method table (`METHODS`) as a
stacked `Momentum`, and points that are the same method (gradient descent has no momentum, so
`"gd"` gives the same point for every `lam`) are computed once. Point `p` needs
`N_p = floor(T / h_p)` steps.

**Packing.** The points run in `lanes` lanes of one vectorised loop, `chunk` steps per loop
iteration (`CHUNK` unless given: a fixed length, so that new values of `h` or `T` reuse the
compiled loop). Points are taken longest first (`queue`); a lane whose point is finished (or has
diverged, or whose solves have all failed) takes the next point of the queue at the end of the
chunk. The total work is then close to `sum N_p` steps and the critical path close to
`max N_p`, whatever the spread of the step counts. With several devices, the points are first
split between the devices longest-first onto the least-loaded device (each device runs its
own queue, with no communication inside the loop).

**Compiled shapes.** The loop's shapes depend on the number of points and the lane count alone:
the points are padded to `padded_size` (a few sizes, so that a grid one point larger usually
reuses the compiled loop), and the padding points are in no queue (their rows are dropped).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._method import Momentum, method_from_name
from .._runtime import pad_to, padded_size

STEP_LIMIT = np.iinfo(np.int32).max
"""The largest step count a point may have (the loop counts steps in int32)."""


@dataclasses.dataclass(frozen=True)
class Grid:
    """The points of a study grid `methods x lams x hs`. `points` holds the distinct points
    (fields of shape `(P,)`, NumPy arrays: the checks before compiling compute on them without
    compiling anything), `steps` their step counts, `index[i, j, k]` the point of
    `(methods[i], lams[j], hs[k])`."""

    points: Momentum
    steps: np.ndarray
    index: np.ndarray

    def fields(self) -> np.ndarray:
        """`(h, lam, a)` of every point, `(P, 3)`."""
        return np.stack([self.points.h, self.points.lam, self.points.a], -1)

    @property
    def size(self) -> int:
        return int(self.steps.shape[0])

    def steps_of_hs(self) -> np.ndarray:
        """The step count of every learning rate of `hs`, in their order (a point's step count
        depends on its `h` alone)."""
        return self.steps[self.index[0, 0]]


def build_grid(methods, lams, hs, T: float) -> Grid:
    """The distinct points of `methods x lams x hs` and their step counts `floor(T / h)`."""
    lams = np.asarray(lams, dtype=float).ravel()
    hs = np.asarray(hs, dtype=float).ravel()
    H, L = np.meshgrid(hs, lams)  # (len(lams), len(hs))
    # the method table on the flat grid, padded to a few sizes (one more point compiles nothing)
    (h, lam), n = pad_to([H.ravel(), L.ravel()], padded_size(H.size))
    fields = np.asarray(_method_fields(tuple(methods), h, lam))[:, :n]
    fields = fields.reshape(len(methods), *H.shape, 3)  # (M, L, H, 3)
    rows, inverse = np.unique(fields.reshape(-1, 3), axis=0, return_inverse=True)
    steps_float = np.floor(T / rows[:, 0] * (1 + 1e-12))
    if np.any(steps_float > STEP_LIMIT):
        worst = float(rows[np.argmax(steps_float), 0])
        raise ValueError(
            f"T={T:g} needs {steps_float.max():.3g} steps at h={worst:g}, more than the "
            f"{STEP_LIMIT} a study can take; use a shorter T or larger h"
        )
    steps = steps_float.astype(np.int64)
    if np.any(steps < 1):
        raise ValueError(f"T={T} is shorter than the largest h={hs.max()}: no step fits in [0, T]")
    return Grid(host_momentum(rows), steps, inverse.reshape(fields.shape[:3]))


@functools.partial(jax.jit, static_argnums=0)
def _method_fields(methods: tuple[str, ...], H, L):
    """`(h, lam, a)` of every method of the table at every `(H, L)`: `(methods, *H.shape, 3)`.
    One compiled call (the constructors on concrete arrays would run, and compile, several
    small programs on every call); `H` and `L` are checked already (`check_grid_axes`)."""
    return jnp.stack(
        [jnp.stack([m.h, m.lam, m.a], -1) for m in (method_from_name(n, H, L) for n in methods)]
    )


@functools.cache
def _momentum_structure():
    return jax.tree.structure(jax.eval_shape(lambda: Momentum(0.5, 0.5, 0.5)))  # no compile


def host_momentum(fields) -> Momentum:
    """A `Momentum` whose fields are the NumPy columns of `fields` `(P, 3)` (checked already):
    arithmetic on it stays in NumPy, and a compiled function traces it as it traces JAX arrays."""
    fields = np.asarray(fields)
    return jax.tree.unflatten(_momentum_structure(), [fields[:, i].copy() for i in range(3)])


CHUNK = 256
"""Discrete steps per loop iteration unless `chunk_size` is given. Fixed, not chosen from the
step counts, so that an octave shift of every `h` or a new `T` reuses the compiled loop. A
point wastes less than one chunk of discrete steps (run, never compared); measured on the
README's study and on the Fig 2 grid (ODE path and closed form), 256 is as fast as the length
the step counts chose before (16 and 1024) or faster, 64 ... 1024 tried. With an expensive
loss and only a few steps per point, a smaller `chunk_size` wastes less."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How the points are run: `assignment[d]` lists the points of device `d` longest first
    (padded with `-1` to a common length, itself padded to `padded_size`), `lanes` lanes per
    device, `chunk` steps per loop iteration, and `size` points in the compiled loop (the
    grid's, padded to `padded_size`)."""

    assignment: np.ndarray
    lanes: int
    chunk: int
    size: int


def _pow2_at_least(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(x, 1.0))))


def make_schedule(
    steps, devices: int = 1, *, lanes: int | None = None, chunk: int | None = None
) -> Schedule:
    """Split the points between `devices`, order each device's queue longest first, and choose
    the lane count (a power of two, from the ratios of the step counts) and the chunk length
    (`CHUNK`), so that new hyperparameter values, an octave shift of `h` or a new `T` reuse the
    compiled loop.

    Lanes: enough that `sum N / lanes <= max N` on every device (the critical path is then the
    longest point), at most the (padded) queue's length."""
    steps = np.asarray(steps, dtype=np.int64)
    order = np.argsort(-steps, kind="stable")
    load = np.zeros(devices, dtype=np.int64)
    queues: list[list[int]] = [[] for _ in range(devices)]
    for p in order:  # longest first onto the least-loaded device
        d = int(np.argmin(load))
        queues[d].append(int(p))
        load[d] += steps[p]
    width = padded_size(max(len(q) for q in queues))
    assignment = np.full((devices, width), -1, dtype=np.int64)
    for d, q in enumerate(queues):
        assignment[d, : len(q)] = q
    if lanes is None:
        balance = max(
            math.ceil(load[d] / int(steps[queues[d]].max())) for d in range(devices) if queues[d]
        )
        lanes = min(_pow2_at_least(balance), width)
    return Schedule(
        assignment, int(lanes), CHUNK if chunk is None else int(chunk), padded_size(steps.size)
    )
