"""`momentum-jax losses`: the registered losses, one a line with its description."""

from __future__ import annotations

import momentum_jax as mj


def run(args) -> int:
    """Print every registered loss and its description."""
    del args
    for name, description in mj.list_losses().items():
        print(f"{name:18s} {description}")
    return 0
