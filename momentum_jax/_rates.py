"""Observed convergence rates and fitted orders: the one implementation used by studies, sweeps,
the stochastic and vanishing-friction code and the figures.

For errors `E(h)` measured at learning rates `h_0, h_1, ...` (typically halving), the observed
rate between neighbours is `Delta_i = log(E(h_i) / E(h_{i+1})) / log(h_i / h_{i+1})` (the
paper's `log2(E(h) / E(h/2))` of Section 2.3 for halving `h`), and the fitted order is the
least-squares slope of `log E` against `log h` over the smallest learning rates.
"""

from __future__ import annotations

import numpy as np


def _valid(errors, valid):
    errors = np.asarray(errors, dtype=float)
    ok = np.isfinite(errors) & (errors > 0)
    return ok if valid is None else ok & np.asarray(valid, dtype=bool)


def observed_rates(hs, errors, valid=None) -> np.ndarray:
    """`Delta_i = log(E_i / E_{i+1}) / log(h_i / h_{i+1})` along the last axis of `errors`
    (shape `(..., len(hs))` -> `(..., len(hs) - 1)`); `nan` where either end is not positive
    and finite, or not `valid` (an optional boolean mask of the shape of `errors`)."""
    logh = np.log(np.asarray(hs, dtype=float))
    errors = np.asarray(errors, dtype=float)
    loge = np.where(_valid(errors, valid), np.log(np.where(errors > 0, errors, 1.0)), np.nan)
    return (loge[..., :-1] - loge[..., 1:]) / (logh[:-1] - logh[1:])


def fit_order(hs, errors, points: int | None = None, valid=None):
    """The least-squares slope of `log E` against `log h` over the `points` smallest `h` (all by
    default) whose error is positive, finite and `valid`; `nan` with fewer than two.

    `errors` may have leading axes (shape `(..., len(hs))`): the result then has shape `(...)`.
    The selected points enter the fit in the order of `hs`."""
    hs = np.asarray(hs, dtype=float)
    errors = np.asarray(errors, dtype=float)
    ok = _valid(errors, valid)
    by_h = np.argsort(hs, kind="stable")
    out = np.full(errors.shape[:-1], np.nan)
    for idx in np.ndindex(out.shape):
        chosen = [i for i in by_h if ok[idx][i]]
        if points is not None:
            chosen = chosen[:points]
        sel = np.sort(np.asarray(chosen, dtype=int))
        if sel.size >= 2:
            out[idx] = np.polyfit(np.log(hs[sel]), np.log(errors[idx][sel]), 1)[0]
    return float(out) if out.ndim == 0 else out
