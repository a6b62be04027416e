"""The methods a sweep runs: the method table and the Section 5 schemes, as `Momentum`s."""

from __future__ import annotations

from .._method import METHODS, Momentum, method_from_name
from .._schemes import scheme_method

SCHEME_METHODS = ("gd_effective", "wilson", "hb_mu", "nag_mu")
"""The Section 5 schemes a sweep runs besides the method table (`METHODS`): gradient descent at
the effective rate `h/(1-lam)`, Wilson's split step, HB-mu and NAG-mu (docs/theory.md §6)."""
SWEEP_METHODS = tuple(METHODS) + SCHEME_METHODS
_LOOKAHEAD = ("nag", "nag_mu")
"""The methods whose gradient is taken away from `u_n` (`a != 0`): their per-step loss
`loss(u_n)` costs one more forward pass (`step_and_loss`)."""


def _momentum(name: str, h, lam, mu) -> Momentum | None:
    """The `Momentum` of a method or scheme of the eq. (7) family (None for Wilson's)."""
    if name in METHODS:
        return method_from_name(name, h, lam)
    if name == "wilson":
        return None
    return scheme_method(name, h, lam, mu)
