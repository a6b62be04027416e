"""Continuous-time models of the momentum family (paper §2-§4, THEORY §2) as diffrax vector fields.

Time is `t = n h`. First-order models evolve `y = u`; second-order models evolve `y = (u, v)`
with `v = du/dt`. Every Hessian appears only as a Hessian-vector product (`jax.jvp` of
`jax.grad`).

| model            | equation                                                        | paper     |
|------------------|-----------------------------------------------------------------|-----------|
| `gradient_flow`  | `u' = -lbar grad Phi(u)`                                        | Thm 2     |
| `hamiltonian`    | `h alpha u'' + (1 - lam) u' = -grad Phi(u)`                     | Thm 3     |
| `modified_flow`  | `u' = -lbar grad Phi_h(u)`, `Phi_h = Phi + h c |grad Phi|^2`     | Thm 5-6   |
| `hessian_damped` | `h alpha_0 u'' + (1-lam) u' + a h Hess Phi(u) u' = -grad Phi(u)` | THEORY §2 |
"""

from __future__ import annotations

import jax

from . import _tree
from ._derivatives import hvp, modified_grad
from ._manifold import manifold_velocity
from ._methods import Momentum
from ._validate import check_choice

MODELS = ("gradient_flow", "hamiltonian", "modified_flow", "hessian_damped")
SECOND_ORDER = ("hamiltonian", "hessian_damped")
VELOCITIES = ("taylor", "paper", "manifold")
CONSTANTS = ("corrected", "printed")


def inertia(model: str, method: Momentum):
    """The coefficient of `h u''`: `alpha` for `hamiltonian`, `alpha_0 = (1 + lam)/2` for
    `hessian_damped`."""
    return method.alpha if model == "hamiltonian" else (1.0 + method.lam) / 2.0


def vector_field(model: str, loss, *, order: int = 1, constant: str = "corrected"):
    """The right-hand side `f(t, y, method)` of `model` for diffrax's `ODETerm`.

    `order` applies to `modified_flow` only: `0` is the gradient flow, `1` the Thm 6 flow
    (with the `"corrected"` or the paper's `"printed"` constant), `>= 2` the automatic
    higher-order flows of `momentum_jax._higher_order`.
    """
    check_choice("model", model, MODELS)
    check_choice("constant", constant, CONSTANTS)

    if model == "gradient_flow" or (model == "modified_flow" and order == 0):

        def f(t, u, m):
            return _tree.scale(-m.lbar, jax.grad(loss)(u))

    elif model == "modified_flow" and order == 1:

        def f(t, u, m):
            c = m.c if constant == "corrected" else m.c_printed
            return _tree.scale(-m.lbar, modified_grad(loss, u, m.h * c))

    elif model == "modified_flow":
        from ._higher_order import modified_field

        def f(t, u, m):
            return modified_field(loss, u, m, order)

    else:  # second order: y = (u, v)

        def f(t, y, m):
            u, v = y
            force = jax.grad(loss)(u)
            if model == "hessian_damped":
                force = _tree.axpy(m.a * m.h, hvp(loss, u, v), force)
            acc = jax.tree.map(lambda g, vi: -(g + (1.0 - m.lam) * vi), force, v)
            return v, _tree.scale(1.0 / (m.h * inertia(model, m)), acc)

    return f


def initial_velocity(model: str, loss, u0, method: Momentum, velocity):
    """`u'(0)` for a second-order model (THEORY §4.2).

    - `"taylor"`: `(2 alpha - 1)/(2 alpha - 1 + lam) * (-grad Phi(u0))`, matching `u(h)` to `u_1`;
    - `"paper"`: eq. (12), `(1 - 2 alpha)/(2 alpha - lam + 1) * (-grad Phi(u0))`;
    - `"manifold"`: the scaled velocity on the invariant manifold (Thm 5), the only start that
      gives second order;
    - a pytree: taken as `u'(0)`.
    """
    if not isinstance(velocity, str):
        return velocity
    check_choice("velocity", velocity, VELOCITIES)
    if velocity == "manifold":
        return manifold_velocity(loss, u0, method, 1)
    al = inertia(model, method)
    if velocity == "taylor":
        coef = (2 * al - 1) / (2 * al - 1 + method.lam)
    else:
        coef = (1 - 2 * al) / (2 * al - method.lam + 1)
    return _tree.scale(-coef, jax.grad(loss)(u0))


def initial_state(model: str, loss, u0, method: Momentum, velocity="taylor"):
    """The diffrax state at `t = 0`: `u0`, or `(u0, u'(0))` for a second-order model."""
    if model in SECOND_ORDER:
        return (u0, initial_velocity(model, loss, u0, method, velocity))
    return u0


def position(model: str, y):
    """The `u` part of a model state."""
    return y[0] if model in SECOND_ORDER else y
