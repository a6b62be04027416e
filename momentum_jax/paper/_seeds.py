"""Results over several seeds (initialisations): their spread, and whether a comparison holds for
every seed. A single run's number near a stability limit depends on the rounding of the machine
it runs on, so a figure states a claim only where all of its seeds agree."""

from __future__ import annotations

import numpy as np


def spread(values, diverged) -> dict:
    """`{"mean", "min", "max", "per_seed"}` over the seeds that did not diverge (None if none).

    **Arguments:**

    - `values`: one number per seed (1-D).
    - `diverged`: booleans of the same shape; those seeds are left out (`None` in `per_seed`).

    **Returns:** a dict of floats (or None) that `json` can write.
    """
    v = np.where(diverged, np.nan, values)
    ok = np.isfinite(v)
    out = {"per_seed": [None if not o else float(x) for x, o in zip(v, ok)]}
    if not np.any(ok):
        return out | {"mean": None, "min": None, "max": None}
    return out | {
        "mean": float(np.nanmean(v)),
        "min": float(np.nanmin(v)),
        "max": float(np.nanmax(v)),
    }


def verdict(a, b, ok) -> list[str]:
    """Per `h`: `"yes"` if `a < b` for every seed where both ran, `"no"` if for none, else
    `"mixed k/n"` (`"n/a"` where no seed ran).

    **Arguments:**

    - `a`, `b`: the values compared, `(seeds, h)`.
    - `ok`: `(seeds, h)` booleans, the runs to compare (those of both that did not diverge).

    **Returns:** one string per `h`.
    """
    out = []
    for i in range(a.shape[1]):
        m = ok[:, i]
        k = int(np.sum(a[m, i] < b[m, i]))
        n = int(np.sum(m))
        out.append("n/a" if n == 0 else "yes" if k == n else "no" if k == 0 else f"mixed {k}/{n}")
    return out
