"""Parameter gaps between two schemes trained on the same batches (the distance of the paper's
Fig 7): over epochs or a fixed number of steps, against one reference or several."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from . import _tree
from ._autoencoder import squared_error
from ._batches import make_batches, take
from ._iterate import MomentumState
from ._runtime import (
    DIVERGENCE_LIMIT,
    divergence_bound,
)
from ._schemes import check_scheme
from ._training import (
    _as_inputs,
    _Carry,
    _check,
    _epoch_of,
    _guarded_step,
)
from ._types import PyTree
from ._validate import check_whole


class GapResult(NamedTuple):
    """What `parameter_gap` returns (`parameter_gaps`: every field with a leading axis over its
    schemes)."""

    max_gap: jax.Array
    """`max_n ||u_n^a - u_n^b||` over every step of the run (Euclidean norm over all
    parameters); `inf` if either run diverged."""
    epoch_gaps: jax.Array | None
    """`(epochs,)`: the largest gap within each epoch; None for a run of `steps` steps."""
    diverged_at: jax.Array
    """`(2,)`: the step at which scheme a, b diverged (-1 if not), as in `TrainResult`."""
    diverged_epoch: jax.Array
    """`(2,)`: the epoch holding that step (-1 if none)."""
    max_gap_step: jax.Array
    """The step (1-based) at which the largest gap occurred (0 for a run of no steps)."""


class _GapCarry(NamedTuple):
    runs: tuple  # one _Carry per compared scheme
    reference: _Carry
    best: jax.Array  # (k,) running maximum of the gaps
    best_step: jax.Array  # (k,) the step of that maximum
    epoch_gaps: jax.Array  # (k, epochs) or (k, 0)


@eqx.filter_jit
def _gaps(schemes, reference, loss, batch_size, epochs, params0, data, h, lam, mu, limit, steps):
    """`schemes` (a tuple) and `reference` from the same start on the same batches, batch
    `n mod n_batches` at step `n`; `steps` is traced (new step counts reuse the compilation)."""
    batches, mask = make_batches(data, batch_size)
    nb = mask.shape[0]
    dtype = _tree.dtype(params0)
    bound = divergence_bound(limit, params0)
    state = MomentumState(params0, _tree.zeros_like(params0))
    start = _Carry(state, jnp.asarray(-1), jnp.asarray(0))
    k = len(schemes)
    carry = _GapCarry(
        tuple(start for _ in schemes),
        start,
        jnp.zeros(k, dtype),
        jnp.zeros(k, jnp.int32),
        jnp.zeros((k, epochs or 0), dtype),
    )

    def body(i, c: _GapCarry) -> _GapCarry:
        j = i % nb
        batch, m = take(batches, j), mask[j]
        ref = _guarded_step(reference, loss, h, lam, mu, bound, c.reference, batch, m)
        runs = tuple(
            _guarded_step(s, loss, h, lam, mu, bound, r, batch, m) for s, r in zip(schemes, c.runs)
        )
        gaps = jnp.stack([_tree.norm(_tree.sub(r.state.u, ref.state.u)) for r in runs])
        gaps = gaps.astype(dtype)
        better = gaps > c.best
        epoch_gaps = c.epoch_gaps
        if epochs:
            epoch_gaps = epoch_gaps.at[:, i // nb].max(gaps)
        return _GapCarry(
            runs,
            ref,
            jnp.where(better, gaps, c.best),
            jnp.where(better, i + 1, c.best_step),
            epoch_gaps,
        )

    c = jax.lax.fori_loop(0, steps, body, carry)
    diverged = jnp.stack([jnp.stack([r.diverged_at, c.reference.diverged_at]) for r in c.runs])
    return c.best, c.best_step, c.epoch_gaps, diverged


def _gap_inputs(
    schemes, reference, params0, data, h, lam, mu, epochs, steps, batch_size, loss, limit
):
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs= (whole passes) or steps= (a fixed horizon)")
    for s in schemes:
        n = _check(s, params0, data, h, lam, mu, epochs, batch_size, loss, limit)
    check_scheme("reference" if len(schemes) > 1 else "scheme_b", reference)
    if steps is not None:
        check_whole("steps", steps, low=0)
    nb = -(-n // min(batch_size, n))
    data, h, lam, mu, limit = _as_inputs(params0, data, h, lam, mu, limit)
    total = jnp.asarray(epochs * nb if steps is None else steps, dtype=jnp.int32)
    return nb, data, h, lam, mu, limit, total


def _gap_result(best, best_step, epoch_gaps, steps, nb, with_epochs):
    max_gap = jnp.where(jnp.any(steps >= 0, axis=-1), jnp.inf, best)
    epochs = _epoch_of(steps, nb)
    return GapResult(max_gap, epoch_gaps if with_epochs else None, steps, epochs, best_step)


def parameter_gap(
    scheme_a: str,
    scheme_b: str,
    params0: PyTree,
    data: PyTree,
    h,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 200,
    lam=0.9,
    mu=1.0,
    loss: Callable = squared_error,
    divergence_limit: float = DIVERGENCE_LIMIT,
) -> GapResult:
    """The largest distance between the parameters of two schemes run from the same start on
    the same mini-batches, compared at the same step index `n` (paper Fig 7).

    The paper's pairs: `("hb", "gd_effective")` and `("nag", "gd_effective")`, momentum
    against gradient descent at the effective rate `h / (1 - lam)` (eq. 35), both at time
    `t = n h` of the rescaled gradient flow (8); `("hb_mu", "wilson")` and
    `("nag_mu", "wilson")`, against the split-step scheme (36), both at time `t = n sqrt(h)`.
    The observed rate of Section 2.3 is then `Delta(h) = log2(max_gap(h) / max_gap(h / 2))`
    (theory: about 1 for the first pairs, 1/2 for the second), **at a fixed time horizon**:
    give `steps = round(T / h)` (or `round(T / sqrt(h))`), not a fixed number of epochs,
    whose horizon halves with `h` (docs/theory.md §6).

    Both schemes are advanced inside one loop, so the gap is measured after every step without
    storing trajectories. Give exactly one of `epochs` (whole passes over the data) and
    `steps` (step `n` uses mini-batch `n mod n_batches`; traced, so a new count does not
    recompile). Other arguments are as in `train` (`divergence_limit` included: a run that
    diverges gives `max_gap = inf`); `h` is traced (vmap over it).
    """
    return _squeeze(
        parameter_gaps(
            (scheme_a,),
            scheme_b,
            params0,
            data,
            h,
            epochs=epochs,
            steps=steps,
            batch_size=batch_size,
            lam=lam,
            mu=mu,
            loss=loss,
            divergence_limit=divergence_limit,
        )
    )


def _squeeze(r: GapResult) -> GapResult:
    epoch_gaps = None if r.epoch_gaps is None else r.epoch_gaps[0]
    return GapResult(
        r.max_gap[0], epoch_gaps, r.diverged_at[0], r.diverged_epoch[0], r.max_gap_step[0]
    )


def parameter_gaps(
    schemes,
    reference: str,
    params0: PyTree,
    data: PyTree,
    h,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 200,
    lam=0.9,
    mu=1.0,
    loss: Callable = squared_error,
    divergence_limit: float = DIVERGENCE_LIMIT,
) -> GapResult:
    """`parameter_gap` of each of `schemes` (a sequence of names) against one `reference`, all
    advanced together on the same mini-batches, so the reference is computed once (e.g.
    `parameter_gaps(("hb", "nag"), "gd_effective", ...)`: three gradient evaluations per step
    instead of four). Every field of the `GapResult` gains a leading axis over `schemes`;
    `diverged_at` and `diverged_epoch` are `(len(schemes), 2)`."""
    schemes = tuple(schemes)
    if not schemes:
        raise ValueError("schemes must name at least one scheme")
    nb, data, h, lam, mu, limit, total = _gap_inputs(
        schemes,
        reference,
        params0,
        data,
        h,
        lam,
        mu,
        epochs,
        steps,
        batch_size,
        loss,
        divergence_limit,
    )
    best, best_step, epoch_gaps, diverged = _gaps(
        schemes, reference, loss, batch_size, epochs, params0, data, h, lam, mu, limit, total
    )
    return _gap_result(best, best_step, epoch_gaps, diverged, nb, epochs is not None)
