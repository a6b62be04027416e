"""The modified-loss flow on the invariant manifold (paper Thms 5-6), and its automatic
higher-order versions (docs/higher_order.md)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax

from .. import _tree
from .._derivatives import modified_grad
from .._validate import check_choice, check_whole
from ._base import AbstractModel

CONSTANTS = ("corrected", "printed")


class ModifiedFlow(AbstractModel):
    r"""The flow of the modified loss on the invariant manifold (Thms 5-6):

    $$\dot u = -\bar\lambda\,\nabla\Phi_h(u),\qquad \Phi_h = \Phi + h c\,|\nabla\Phi|^2,$$

    second order in `h` for starts on the manifold.

    **Arguments:**

    - `order`: the order `R` in `h` of the modified field: `0` is the gradient flow, `1` the
      Thm 6 flow above, `>= 2` the automatic higher-order flows (`modified_field`,
      docs/higher_order.md), whose error is `O(h^{R+1})` from the order-`R` manifold.
    - `constant`: for `order=1`, `"corrected"` `c = alpha / (2 (1 - lam)^2)` or the paper's
      `"printed"` Thm 6 constant (a sign slip: the order drops to 1; docs/theory.md §4).
    """

    name: ClassVar[str] = "modified_flow"
    linear: ClassVar[bool] = True
    order: int = eqx.field(default=1, static=True)
    constant: str = eqx.field(default="corrected", static=True)

    def __check_init__(self):
        check_whole("order", self.order, low=0)
        check_choice("constant", self.constant, CONSTANTS)

    def vector_field(self, loss):
        if self.order == 0:

            def f0(t, u, m):
                return _tree.scale(-m.lbar, jax.grad(loss)(u))

            return f0
        if self.order == 1:
            printed = self.constant == "printed"

            def f1(t, u, m):
                c = m.c_printed if printed else m.c
                return _tree.scale(-m.lbar, modified_grad(loss, u, m.h * c))

            return f1
        from .._higher_order import modified_field

        order = self.order

        def fr(t, u, m):
            return modified_field(loss, u, m, order)

        return fr

    def shared_time_scale(self, method):
        return method.lbar if self.order == 0 else None

    def shared_field(self, loss):
        if self.order != 0:
            return None

        def g(s, v, args):
            return _tree.scale(-1.0, jax.grad(loss)(v))

        return g

    def _defaults(self):
        return {"order": 1, "constant": "corrected"}
