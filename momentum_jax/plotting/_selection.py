"""Picking the rows of a result to draw, by name or value."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pick(what: str, chosen, available: Sequence) -> list[int]:
    """Indices of `chosen` (None: all) in `available`; `ValueError` naming the allowed values."""
    if chosen is None:
        return list(range(len(available)))
    if isinstance(chosen, (str, float, int, np.generic)):
        chosen = [chosen]
    out = []
    for c in chosen:
        if isinstance(c, str):
            hits = [i for i, a in enumerate(available) if a == c]
        else:
            hits = [
                i for i, a in enumerate(available) if not isinstance(a, str) and np.isclose(a, c)
            ]
        if not hits:
            raise ValueError(f"{what} {c!r} is not one of {list(available)}")
        out.append(hits[0])
    return out
