"""Test helpers (kept out of the installed package)."""

import jax
import numpy as np


def tree_max_abs_diff(x, y) -> float:
    """Largest absolute difference between two pytrees of the same structure."""
    diffs = jax.tree.map(lambda a, b: np.max(np.abs(np.asarray(a) - np.asarray(b))), x, y)
    return float(max(jax.tree.leaves(diffs)))


def compiled_versions(jitted) -> int:
    """How many specialisations a `jax.jit`-wrapped function holds: a recompilation adds one."""
    return jitted._cache_size()
