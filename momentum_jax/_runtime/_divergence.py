r"""The one divergence rule of the package, used by every discrete loop (`iterate_final`, `sweep`,
`train`, `parameter_gap(s)`, `convergence_study`).

**The rule.** A run from `u_0` has diverged at the first step `n >= 1` whose iterate `u_n` is
not finite or has Euclidean norm (over every leaf of the pytree) above

$$\text{bound} = \text{divergence\_limit} \cdot \max(1, |u_0|),$$

computed in the dtype of `u_0`; `diverged_at = n`, `-1` for a run that never does. (A sum of
squares that overflows the dtype, a norm above about `1.8e19` in float32 or `1.3e154` in
float64, counts as not finite.)

**After it.** The loops that keep a state (`iterate_final`, `sweep`, `train`, the gaps) freeze
it at `u_{n-1}`, the last bounded iterate (`guard`); their final and minimum losses are those
of the steps `0 .. n-1`, and what they record after step `n` (curves, per-epoch losses) is NaN.
The convergence study stops the point (its errors are NaN, its status "diverged at step n").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._validate import check_range, concrete

DIVERGENCE_LIMIT = 1e8
"""The default `divergence_limit` of every entry point."""


def check_divergence_limit(divergence_limit) -> None:
    """`divergence_limit` must be one finite number `> 0` (`ValueError`/`TypeError` naming it,
    before anything is compiled); a traced value passes unchecked."""
    if isinstance(divergence_limit, bool | str | bytes) or divergence_limit is None:
        raise TypeError(f"divergence_limit must be a number > 0, got {divergence_limit!r}")
    value = concrete(divergence_limit)
    if value is not None and np.ndim(value) != 0:
        raise ValueError(
            f"divergence_limit must be a single number > 0, got an array of shape {np.shape(value)}"
        )
    check_range("divergence_limit", divergence_limit, low=0.0, low_open=True)


def divergence_bound(divergence_limit, u0) -> jax.Array:
    """`divergence_limit * max(1, |u0|)` in the dtype of `u0` (traceable: every entry point
    computes it inside its compiled loop, so new values do not recompile)."""
    dtype = _tree.dtype(u0)
    return jnp.asarray(divergence_limit, dtype) * jnp.maximum(1, _tree.norm(u0))


def is_bounded(u, bound) -> jax.Array:
    """True when `u` is finite and its norm is at most `bound`."""
    size = _tree.norm(u)
    return jnp.isfinite(size) & (size <= bound)


def guard(new, old, diverged_at, n, bound):
    """The freeze-on-divergence guard of every loop that keeps a state (`new` and `old` have a
    field `u`, the iterate).

    Keep `new` when `new.u` is bounded (`is_bounded`) and the run has not diverged before;
    otherwise keep `old` (the last bounded state) and record the step `n` of `new` in
    `diverged_at` if it is the first unbounded one (`-1` while none).

    **Returns:** `(state, diverged_at, accepted)`.
    """
    accepted = is_bounded(new.u, bound) & (diverged_at < 0)
    diverged_at = jnp.where(accepted | (diverged_at >= 0), diverged_at, n)
    return _tree.where(accepted, new, old), diverged_at, accepted
