"""The rod flow of the momentum family: a continuous-time model of heavy ball, Nesterov and
gradient descent at the edge of stability (docs/edge_of_stability.md)."""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _tree
from .._derivatives import hvp
from .._method import Momentum
from .._types import PyTree
from .._validate import check_choice, check_range
from ._base import AbstractModel

TRACKS = ("iterate", "center")
"""What `RodFlow`'s position is: the iterate `u_n = x + (-1)^n delta` it predicts at `t = n h`,
or the rod's center `x` (the two-step average of the iterates)."""
CENTERS = ("gradient", "modified")
"""The drift of `RodFlow`'s center: the rescaled gradient flow of the symmetrised gradient
(Thm 2), or with the modified-loss correction of Thm 6 (`-lbar (G_s + 2 h c Hess Phi(x) G_s)`,
the modified-loss flow where `delta = 0`)."""

LINEAR_BELOW = 1e-6
"""Where the half-length `|(1 + 2a) delta|` is below this times `max(1, |x|)`, the odd part of
the gradient is taken as the Hessian-vector product (no cancellation), else as the difference."""


def rod_kappa(method: Momentum):
    """`kappa = (1 + 4a - lam)/(1 + 2a)`, the coefficient of `delta'` in the rod's slow equation
    (heavy ball: `1 - lam`; Nesterov: `(1 + 3 lam)/(1 + 2 lam)`; GD: 1;
    docs/edge_of_stability.md §2)."""
    return (1.0 + 4.0 * method.a - method.lam) / (1.0 + 2.0 * method.a)


def rod_threshold(method: Momentum):
    """`q* = 2 (1 + lam)/(h (1 + 2a))`: the sharpness at which the rod's half-length neither grows
    nor shrinks on a quadratic, the linear-stability threshold of docs/theory.md §5 (the same
    number as `stability_threshold`, which lives above the models' layer)."""
    return 2.0 * (1.0 + method.lam) / (method.h * (1.0 + 2.0 * method.a))


def rod_parts(loss, x: PyTree, d: PyTree):
    """`(G_s, G_a)`: the even and odd parts `(grad Phi(x + d) +- grad Phi(x - d))/2`; the odd
    part is `Hess Phi(x) d` where `|d|` is below `LINEAR_BELOW * max(1, |x|)`."""
    grad = jax.grad(loss)
    gp, gm = grad(_tree.axpy(1.0, d, x)), grad(_tree.sub(x, d))
    even = _tree.scale(0.5, _tree.axpy(1.0, gm, gp))
    odd = _tree.scale(0.5, _tree.sub(gp, gm))
    small = _tree.norm(d) <= LINEAR_BELOW * jnp.maximum(1.0, _tree.norm(x))
    odd = _tree.where(small, hvp(loss, x, d), odd)
    return even, odd


def rod_field(loss, x: PyTree, delta: PyTree, method: Momentum, floor=0.0, center="gradient"):
    """`(x', delta')` of the rod flow (docs/edge_of_stability.md §2):

        x'     = -lbar G_s(x, (1 + 2a) delta)     (center="modified": -lbar (1 + 2hc H) G_s),
        delta' = (G_a(x, (1 + 2a) delta) - (2 (1 + lam)/h) delta) / kappa,

    with the decay of `delta` switched off smoothly where `|delta|` is below `2 floor` (the
    floor that roundoff keeps under the discrete oscillation; 0: none)."""
    d = _tree.scale(1.0 + 2.0 * method.a, delta)
    even, odd = rod_parts(loss, x, d)
    if center == "modified":
        even = _tree.axpy(2.0 * method.h * method.c, hvp(loss, x, even), even)
    dx = _tree.scale(-method.lbar, even)
    pull = 2.0 * (1.0 + method.lam) / method.h
    dd = _tree.scale(1.0 / rod_kappa(method), _tree.axpy(-pull, delta, odd))
    n = _tree.norm(delta)
    tiny = jnp.finfo(_tree.dtype(delta)).tiny
    rate = _tree.dot(dd, delta) / jnp.maximum(n * n, tiny)  # radial rate of |delta|
    safe = jnp.where(floor > 0, floor, 1.0)
    blend = jnp.where(floor > 0, 1.0 - jnp.clip(n / safe - 1.0, 0.0, 1.0), 0.0)
    dd = _tree.axpy(-blend * jnp.minimum(rate, 0.0), delta, dd)
    return dx, dd


class RodFlow(AbstractModel):
    r"""The rod flow of the momentum family (paper eq. 7) at the edge of stability: the
    iterates are read as a rod `u_n = x(n h) + (-1)^n delta(n h)` whose center `x` and
    half-length `delta` move slowly (docs/edge_of_stability.md):

    $$\dot x = -\bar\lambda\,G_s,\qquad
      \kappa\,\dot\delta = G_a - \frac{2(1+\lambda)}{h}\,\delta,\qquad
      G_{s,a} = \tfrac12\big(\nabla\Phi(x + (1+2a)\delta) \pm \nabla\Phi(x - (1+2a)\delta)\big),$$

    `kappa = (1 + 4a - lam)/(1 + 2a)`. On a quadratic `delta` grows exactly when the sharpness
    exceeds the linear-stability threshold `2 (1 + lam)/(h (1 + 2a))` (docs/theory.md §5); its
    fixed points on a quartic are the method's period-two orbits; with `delta = 0` it is the
    rescaled gradient flow (Thm 2). At `lam = a = 0` it is a rod flow of gradient descent in the
    sense of Regis & Chewi (arXiv 2602.01480), whose center's field is the drift of the central
    flow of Cohen, Damian et al. with the variance `|delta|^2`, to `O(|delta|^4)`
    (docs/edge_of_stability.md §1b); for momentum it is our derivation in the spirit of arXiv
    2605.06821. Neither is checked against the rod-flow papers' equations, which we could not
    read.

    The state is `(x, delta, aux)`, `aux = (theta, rho)`: the phase `theta = pi t / h` and the
    floor `rho` below which `|delta|` does not decay.

    **Arguments:**

    - `center`: the drift of the center, `"gradient"` (the default, above) or `"modified"`
      (`G_s` replaced by `G_s + 2 h c Hess Phi(x) G_s`, `c = alpha/(2 (1 - lam)^2)`: with
      `delta = 0` this is the modified-loss flow of Thm 6, which follows the iterates to
      `O(h^2)` on the manifold, where the gradient flow is `O(h)`).
    - `track`: the position returned: `"iterate"` (the default: `x + cos(theta) delta`, the
      iterate `u_n` at `t = n h`) or `"center"` (`x`, the two-step average of the iterates).
    - `floor`: `rho` relative to `max(1, |u_0|)`, in `[0, 1)`; None (the default): the
      machine epsilon of `u_0`'s dtype. The discrete iterates never lose their oscillating
      component below roundoff, which seeds the instability once the sharpness passes the
      threshold; the model keeps `|delta| >= rho` for the same reason. 0 lets `delta` decay
      freely (it may then never leave the gradient flow). The onset of the edge of stability
      depends on `rho` logarithmically (docs/edge_of_stability.md §4).
    """

    name: ClassVar[str] = "rod_flow"
    track: str = eqx.field(default="iterate", static=True)
    floor: float | None = eqx.field(default=None, static=True)
    center: str = eqx.field(default="gradient", static=True)

    def __check_init__(self):
        check_choice("track", self.track, TRACKS)
        check_choice("center", self.center, CENTERS)
        if self.floor is not None:
            check_range("floor", self.floor, low=0.0, high=1.0, high_open=True)

    def initial_state(self, loss, u0, method, w0=None):
        """`x(0) = u_0` and the half-length of the first step, `delta(0) = (u_0 - u_1)/2 =
        -(h/2) w_1`, `w_1 = lam w_0 - grad Phi(u_0 + h a w_0)` (`(h/2) grad Phi(u_0)` from the
        paper's zero start, `w_0 = 0`). The center starts where every other model does, so that
        below the threshold, where `delta` dies out within a few steps, the rod flow is the
        stable flow up to `O(h^2)`."""
        if w0 is None:
            w1 = _tree.scale(-1.0, jax.grad(loss)(u0))
        else:
            look = _tree.axpy(method.h * method.a, w0, u0)
            w1 = _tree.axpy(method.lam, w0, _tree.scale(-1.0, jax.grad(loss)(look)))
        delta = _tree.scale(-0.5 * method.h, w1)
        x = u0
        dtype = _tree.dtype(u0)
        floor = jnp.finfo(dtype).eps if self.floor is None else self.floor
        rho = jnp.asarray(floor, dtype) * jnp.maximum(1.0, _tree.norm(u0))
        return x, delta, jnp.stack([jnp.zeros((), dtype), rho.astype(dtype)])

    def vector_field(self, loss):
        def f(t, y, m):
            x, delta, aux = y
            dx, dd = rod_field(loss, x, delta, m, aux[1], self.center)
            daux = jnp.stack([jnp.asarray(math.pi, aux.dtype) / m.h, jnp.zeros((), aux.dtype)])
            return dx, dd, daux.astype(aux.dtype)

        return f

    def position(self, y):
        x, delta, aux = y
        if self.track == "center":
            return x
        sign = jnp.cos(aux[..., 0])
        return jax.tree.map(
            lambda a, b: a + jnp.reshape(sign, sign.shape + (1,) * (a.ndim - sign.ndim)) * b,
            x,
            delta,
        )

    def _defaults(self):
        return {"track": "iterate", "floor": None, "center": "gradient"}
