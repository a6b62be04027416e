"""The checks of a grid's axes, shared by every grid entry point (`convergence_study`, `sweep`,
`vanishing_study`, `weak_error_study`): learning rates `hs`, momenta `lams` and method names.
Each runs before anything is compiled and its error names the axis and the allowed range."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validate import check_choice, check_range


def check_grid_axes(
    hs, lams, methods: Sequence[str], *, allowed: Sequence[str], decreasing: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Check a grid's three axes (`check_hs`, `check_lams`, `check_methods`).

    **Returns:** `(hs, lams)` as 1-D float64 NumPy arrays.
    """
    hs_np, lams_np = check_hs(hs, decreasing=decreasing), check_lams(lams)
    check_methods(methods, allowed)
    return hs_np, lams_np


def check_hs(hs, *, decreasing: bool = False) -> np.ndarray:
    """`hs`: learning rates, a number or a non-empty 1-D sequence of finite numbers `> 0`
    (strictly decreasing with `decreasing=True`); returned as a 1-D float64 NumPy array."""
    hs_np = _axis("hs", hs, "learning rate")
    check_range("hs", hs_np, low=0.0, low_open=True)
    if decreasing and np.any(np.diff(hs_np) >= 0):
        raise ValueError(f"hs must be strictly decreasing (largest first), got {hs_np.tolist()}")
    return hs_np


def check_lams(lams) -> np.ndarray:
    """`lams`: momenta, a number or a non-empty 1-D sequence in `[0, 1)`; returned as a 1-D
    float64 NumPy array."""
    lams_np = _axis("lams", lams, "momentum")
    check_range("lams", lams_np, low=0.0, high=1.0, high_open=True)
    return lams_np


def check_methods(methods: Sequence[str], allowed: Sequence[str]) -> None:
    """`methods`: a non-empty sequence of distinct names of `allowed`."""
    if not methods:
        raise ValueError(f"methods must name at least one of {', '.join(map(repr, allowed))}")
    for name in methods:
        check_choice("method", name, allowed)
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct, got {list(methods)}")


def _axis(name: str, value, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D sequence, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one {what}")
    return arr.ravel()
