"""Continuous-time models of heavy ball, Nesterov and gradient descent at the edge of
stability (docs/edge_of_stability.md): the rod flow (`RodFlow`, the oscillation as a second
unknown) and the central flow (`CentralFlow`, the time average held at the threshold)."""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _tree
from .._derivatives import hvp
from .._method import Momentum
from .._sharpness import sharpness, stability_threshold
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


rod_threshold = stability_threshold
"""`q* = 2 (1 + lam)/(h (1 + 2a))`: the sharpness at which the rod's half-length neither grows
nor shrinks on a quadratic, the linear-stability threshold of docs/theory.md §5
(`stability_threshold` under the name the rod flow's docs use)."""


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


CENTRAL_START_RTOL = 1e-8
"""The relative residual to which `CentralFlow` finds the top eigenvector at the start (at
least 100 times the machine epsilon of the start's dtype)."""


def central_parts(loss, x: PyTree, v: PyTree):
    """`(S, grad S, H v, grad Phi)` at `x` for a unit direction `v`: the curvature
    `S = v^T Hess Phi(x) v`, `grad_x (v^T Hess Phi(x) v)` with `v` held fixed (the third
    derivative `D^3 Phi(x)[v, v]`), the Hessian-vector product and the gradient (the primal of
    its `jvp`)."""

    def curvature(y):
        g, hv = jax.jvp(jax.grad(loss), (y,), (v,))
        return _tree.dot(v, hv), (hv, g)

    (s, (hv, g)), grad_s = jax.value_and_grad(curvature, has_aux=True)(x)
    return s, grad_s, hv, g


def central_field(loss, x: PyTree, v: PyTree, method: Momentum, gain=4.0, tracking=2.0):
    """`(x', v', X)` of the central flow (docs/edge_of_stability.md §6):

        x' = -lbar (grad Phi(x) + (X/2) grad S(x)),
        v' = tracking lbar |v| (H v - S v),      v used normalised, S = v^T H v,
        X  = max(0, 2 (gamma (S - q*) + 2 tracking lbar |H v - S v|^2 - lbar <grad S, grad Phi>)
                 / (lbar |grad S|^2)),           gamma = gain/h,

    `X` the smallest variance `>= 0` for which `S' = <grad S, x'> + 2 tracking lbar
    |H v - S v|^2 <= gamma (q* - S)` (the curvature's change from the motion of `x` and of
    `v`): `S` rises to the threshold `q*` and no further. `X = 0` where `grad S = 0` (a
    quadratic)."""
    dtype = _tree.dtype(x)
    length = jnp.maximum(_tree.norm(v), jnp.finfo(dtype).tiny)
    unit = _tree.scale(1.0 / length, v)
    s, grad_s, hv, g = central_parts(loss, x, unit)
    q = stability_threshold(method)
    residual = _tree.axpy(-s, unit, hv)  # H v - S v: zero on an eigenvector
    rate = tracking * method.lbar
    turn = 2.0 * rate * _tree.sq_norm(residual)  # the rise of S from the motion of v
    norm2 = _tree.sq_norm(grad_s)
    want = 2.0 * (gain / method.h * (s - q) + turn - method.lbar * _tree.dot(grad_s, g))
    safe = jnp.where(norm2 > 0, method.lbar * norm2, 1.0)
    variance = jnp.where(norm2 > 0, jnp.maximum(want, 0.0) / safe, 0.0)
    dx = _tree.scale(-method.lbar, _tree.axpy(0.5 * variance, grad_s, g))
    # v' is orthogonal to v (|v| is conserved) and scaled by |v|: the unit direction moves at
    # `rate (H v - S v)` whatever the length
    return dx, _tree.scale(rate * length, residual), variance


class CentralFlow(AbstractModel):
    r"""The central flow of the momentum family (paper eq. 7) at the edge of stability: the
    time average `x` of the iterates follows the rescaled gradient flow (Thm 2), projected so
    that the sharpness never passes the method's linear-stability threshold
    `q* = 2 (1 + lam)/(h (1 + 2a))` (docs/edge_of_stability.md §6):

    $$\dot x = -\bar\lambda\big(\nabla\Phi(x) + \tfrac X2\nabla S(x)\big),$$

    `S = v^T Hess Phi(x) v` the curvature along a direction `v` that follows the top
    eigenvector (`v' = tracking lbar (H v - S v)`), and `X >= 0` the smallest variance that keeps
    `S' <= gamma (q* - S)`, `gamma = gain/h` (`central_field`). As `gain` grows this is the
    central flow of Cohen, Damian, Talwalkar, Kolter and Lee (arXiv 2410.24206) with one
    critical eigenvalue, carried over to the family (only the threshold and the time scale
    `lbar` change); at `lam = a = 0` their reference code's step with `k` substeps is forward
    Euler, at the step `h/k`, of this flow with `gain = k` (the default 4 is their default). `X`
    is the variance of the oscillation of the point where the gradient is taken; the iterates'
    own is `X/(1 + 2a)^2`, and their loss averages to about `Phi(x) + S X/(2 (1 + 2a)^2)`.

    The state is `(x, v)`; the position is `x`, the two-step average of the iterates (not the
    oscillating iterate: compare it with `(u_n + u_{n+1})/2`).

    **Arguments:**

    - `gain`: `gamma h`, the rate (per step) at which `S` is pulled back to `q*`, `> 0`; the
      flow switches `X` on when the gradient flow would reach `q*` within `h/gain`.
    - `tracking`: the rate of `v`, `> 0`: the part of `v` along an eigenvector whose eigenvalue
      is a gap `g` below the top one decays at `tracking lbar g` per unit of `t`, `tracking`
      times the rescaled gradient flow's rate along a curvature `g`.
    """

    name: ClassVar[str] = "central_flow"
    gain: float = eqx.field(default=4.0, static=True)
    tracking: float = eqx.field(default=2.0, static=True)

    def __check_init__(self):
        check_range("gain", self.gain, low=0.0, low_open=True)
        check_range("tracking", self.tracking, low=0.0, low_open=True)

    def initial_state(self, loss, u0, method, w0=None):
        """`x(0) = u_0` and `v(0)` the top eigenvector of `Hess Phi(u_0)` (to a relative
        residual of `CENTRAL_START_RTOL`, or 100 machine epsilons of `u_0`'s dtype if larger).
        The average of the iterates starts at `u_0` whatever the start velocity `w0`: the flow
        is first order."""
        del method, w0
        rtol = max(CENTRAL_START_RTOL, 100.0 * float(jnp.finfo(_tree.dtype(u0)).eps))
        return u0, sharpness(loss, u0, rtol=rtol).vector

    def vector_field(self, loss):
        def f(t, y, m):
            x, v = y
            dx, dv, _ = central_field(loss, x, v, m, self.gain, self.tracking)
            return dx, dv

        return f

    def position(self, y):
        return y[0]

    def variance(self, loss, y, method):
        """The oscillation's variance `X` at the state `y` (docs/edge_of_stability.md §6)."""
        return central_field(loss, y[0], y[1], method, self.gain, self.tracking)[2]

    def _defaults(self):
        return {"gain": 4.0, "tracking": 2.0}
