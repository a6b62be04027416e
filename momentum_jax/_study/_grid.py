"""The grid of a convergence study: its distinct points, their step counts, and how they are
packed into lanes and devices.

A study's grid is `methods x lams x hs`. It is built from the one method table (`METHODS`) as a
stacked `Momentum`, and points that are the same method (gradient descent has no momentum, so
`"gd"` gives the same point for every `lam`) are computed once. Point `p` needs
`N_p = floor(T / h_p)` steps.

**Packing.** The points run in `lanes` lanes of one vectorised loop, `chunk` steps per loop
iteration. Points are taken longest first (`queue`); a lane whose point is finished (or has
diverged, or whose solves have all failed) takes the next point of the queue at the end of the
chunk. The total work is then close to `sum N_p` steps and the critical path close to
`max N_p`, whatever the spread of the step counts. With several devices, the points are first
split between the devices longest-first onto the least-loaded device (each device runs its
own queue, with no communication inside the loop).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._method import Momentum, method_from_name

STEP_LIMIT = np.iinfo(np.int32).max
"""The largest step count a point may have (the loop counts steps in int32)."""


@dataclasses.dataclass(frozen=True)
class Grid:
    """The points of a study grid `methods x lams x hs`. `points` holds the distinct points
    (fields of shape `(P,)`), `steps` their step counts, `index[i, j, k]` the point of
    `(methods[i], lams[j], hs[k])`."""

    points: Momentum
    steps: np.ndarray
    index: np.ndarray

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
    stacked = [method_from_name(m, H, L) for m in methods]
    fields = np.stack(
        [np.stack([np.asarray(x, dtype=float) for x in (m.h, m.lam, m.a)], -1) for m in stacked]
    )  # (M, L, H, 3)
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
    points = Momentum(rows[:, 0], rows[:, 1], rows[:, 2])
    return Grid(points, steps, inverse.reshape(fields.shape[:3]))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How the points are run: `assignment[d]` lists the points of device `d` longest first
    (padded with `-1` to a common length), `lanes` lanes per device, `chunk` steps per loop
    iteration."""

    assignment: np.ndarray
    lanes: int
    chunk: int


def _pow2_at_least(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(x, 1.0))))


def make_schedule(
    steps, devices: int = 1, *, lanes: int | None = None, chunk: int | None = None
) -> Schedule:
    """Split the points between `devices`, order each device's queue longest first, and choose
    the lane count and chunk length (powers of two, from the step counts alone, so that new
    hyperparameter values with the same step counts reuse the compiled loop).

    Lanes: enough that `sum N / lanes <= max N` on every device (the critical path is then the
    longest point). Chunk: about `max N / 256` steps (at least 16, at most 1024): the loop runs
    about 256 iterations on the critical path, and a point wastes less than one chunk."""
    steps = np.asarray(steps, dtype=np.int64)
    order = np.argsort(-steps, kind="stable")
    load = np.zeros(devices, dtype=np.int64)
    queues: list[list[int]] = [[] for _ in range(devices)]
    for p in order:  # longest first onto the least-loaded device
        d = int(np.argmin(load))
        queues[d].append(int(p))
        load[d] += steps[p]
    width = max(len(q) for q in queues)
    assignment = np.full((devices, width), -1, dtype=np.int64)
    for d, q in enumerate(queues):
        assignment[d, : len(q)] = q
    longest = int(steps.max())
    if lanes is None:
        balance = max(
            math.ceil(load[d] / int(steps[queues[d]].max())) for d in range(devices) if queues[d]
        )
        lanes = min(_pow2_at_least(balance), width)
    if chunk is None:
        chunk = min(max(_pow2_at_least(longest / 256), 16), 1024)
    return Schedule(assignment, int(lanes), int(chunk))
