"""The momentum family as an optax `GradientTransformation`."""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from . import _tree
from ._method import Momentum
from ._types import PyTree


class MomentumOptaxState(NamedTuple):
    """The scaled velocity `w_n = (u_n - u_{n-1}) / h` (paper eq. 15)."""

    w: PyTree


def as_optax(method: Momentum) -> optax.GradientTransformation:
    r"""The family as an optax transformation, for ordinary optax training loops.

    optax evaluates gradients at the parameters, so the parameters of this transformation are
    the points where the method evaluates its gradient: the look-ahead points
    `y_n = u_n + h a w_n` (paper eq. 7). For heavy ball (`a = 0`) these are the iterates `u_n`
    of `iterate` themselves, and the transformation equals `optax.sgd(h, momentum=lam)`; for
    Nesterov (`a = lam`) it equals `optax.sgd(h, momentum=lam, nesterov=True)`, and
    `iterate_from_optax` recovers `u_n`. The update is

    $$w_{n+1} = \lambda w_n - \nabla\Phi(y_n),\qquad y_{n+1} - y_n = h((1 + a) w_{n+1} - a w_n).$$

    The fields of `method` may be traced (for example a learning-rate schedule is a `vmap` away).
    """

    def init(params):
        return MomentumOptaxState(_tree.zeros_like(params))

    def update(grads, state, params=None):
        del params
        h, lam, a = method.h, method.lam, method.a
        w = jax.tree.map(lambda wi, gi: lam * wi - gi, state.w, grads)
        updates = jax.tree.map(lambda wn, wo: h * ((1 + a) * wn - a * wo), w, state.w)
        return updates, MomentumOptaxState(w)

    return optax.GradientTransformation(init, update)


def iterate_from_optax(params, state: MomentumOptaxState, method: Momentum):
    """`u_n = y_n - h a w_n`: the method's iterate behind the parameters of `as_optax`."""
    return _tree.axpy(-method.h * method.a, state.w, params)
