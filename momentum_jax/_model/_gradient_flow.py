"""The rescaled gradient flow `u' = -grad Phi(u) / (1 - lam)` (paper eq. 8, Thm 2)."""

from __future__ import annotations

from typing import ClassVar

import jax

from .. import _tree
from ._base import AbstractModel


class GradientFlow(AbstractModel):
    r"""The rescaled gradient flow of Thm 2 (paper eq. 8):

    $$\dot u = -\bar\lambda\,\nabla\Phi(u),\qquad \bar\lambda = 1/(1 - \lambda),$$

    which every method of the family follows to first order in `h` from any start. The momentum
    only rescales time: `u(t) = v(t / (1 - lam))` with `v' = -grad Phi(v)`, so one solve serves
    every grid point of a study (docs/theory.md §2).
    """

    name: ClassVar[str] = "gradient_flow"
    linear: ClassVar[bool] = True

    def vector_field(self, loss):
        def f(t, u, m):
            return _tree.scale(-m.lbar, jax.grad(loss)(u))

        return f

    def shared_time_scale(self, method):
        return method.lbar

    def shared_field(self, loss):
        def g(s, v, args):
            return _tree.scale(-1.0, jax.grad(loss)(v))

        return g
