"""Higher-order invariant manifold and modified flow of the momentum map, built by autodiff.

Beyond the paper, which stops at first order (Thm 6): on its invariant manifold the momentum map
is, to every order in `h`, the exact time-`h` flow of an autonomous vector field
`f_h = f_0 + h f_1 + h^2 f_2 + ...`. This module computes the manifold `W_h = W_0 + h W_1 + ...`
and the field `f_h`, each truncated at a chosen order `R`, for any loss and any `(h, lam, a)`.
The derivation, with the recursions written out, is `docs/higher_order.md`; the section numbers
below refer to it.

How it is computed (no formula per order is typed in):

1. Run `R + 1` steps of the method itself (paper eq. 15) with a formal step `s`, from `u` and a
   trial velocity `w_0`. On the manifold the velocities `w_n` are smooth in `n`, so their
   `(R+1)`-th forward difference is `O(s^{R+1})`; off it, the fast mode `lam^n` makes it `O(1)`.
   `R` chord sweeps `w_0 <- w_0 - Delta^{R+1} w_0 / (lam - 1)^{R+1}` from `w_0 = -lbar grad Phi`
   fix one more Taylor coefficient of `w_0` each, so `w_0 = W_s(u) + O(s^{R+1})` (§3).
2. The modified field is the logarithm of the step map: along those steps `s f_s = log(1 + Delta)
   u_0`, that is `f_s = sum_{m=0}^{R} (-1)^m / (m+1) Delta^m w_1 + O(s^{R+1})` (§4).
3. The Taylor coefficients in `s` at `s = 0` are taken by `R` nested `jax.jvp`s in the scalar `s`
   (§5), and the truncated series is summed at `s = h`.

Only gradients and their derivatives along one scalar curve occur: no Hessian or higher
derivative tensor is formed, and pytrees of any structure work. The steps run in `lax.scan`, so
the compiled program grows with the nesting depth `R`, not with the number of gradient calls.
`h`, `lam` and `a` stay traced (the expansion is at `s = 0`; `h` enters only when the series is
summed), so new hyperparameters never recompile; `order` is static.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import equinox as eqx
import jax
import jax.numpy as jnp

from . import _tree
from ._method import Momentum
from ._types import PyTree


def manifold_velocity_series(loss, u: PyTree, method: Momentum, order: int) -> PyTree:
    r"""The scaled velocity on the invariant manifold at `u`, to `order` in `h`:

    $$w = W_0(u) + h W_1(u) + \dots + h^R W_R(u),\qquad R = \text{order},$$

    where $W_h = \sum_k h^k W_k$ solves the invariance equation of the map (paper eq. 15)
    $W_h(u + h G_h(u)) = G_h(u)$, $G_h(u) = \lambda W_h(u) - \nabla\Phi(u + h a W_h(u))$.
    `order=0` is $-\bar\lambda\nabla\Phi$ and `order=1` is Thm 5's
    $-\bar\lambda\nabla\Phi + h\bar\lambda^2(a - \bar\lambda)\nabla^2\Phi\,\nabla\Phi$ (the values
    of `manifold_velocity`, to rounding). Starting the method at `(u, w)` puts it within
    $O(h^{R+1})$ of the manifold.

    **Arguments:**

    - `loss`: a JAX-differentiable scalar function of a pytree (its array leaves, if it is a
      pytree such as an `equinox.Module`, are traced; it is compiled once per function and
      `order`).
    - `u`: the point, a pytree of float arrays.
    - `method`: a `Momentum`; its fields may be traced.
    - `order`: the order `R >= 0` in `h` (a Python int).

    **Returns:** a pytree shaped like `u`.
    """
    return _horner(_coefficients(loss, _check_order(order), 0, u, method), method.h)


def modified_field(loss, u: PyTree, method: Momentum, order: int) -> PyTree:
    r"""The modified vector field $du/dt$ on the invariant manifold at `u`, to `order` in `h`:

    $$\frac{du}{dt} = f_0(u) + h f_1(u) + \dots + h^R f_R(u),\qquad R = \text{order},$$

    the field whose exact time-`h` flow equals the momentum map restricted to its invariant
    manifold up to $O(h^{R+2})$ per step (backward error analysis), so that from a start on the
    order-`R` manifold the iterates satisfy $u_n = u(nh) + O(h^{R+1})$ for $nh \le T$.
    `order=0` is the rescaled gradient flow $-\bar\lambda\nabla\Phi$ (Thm 2); `order=1` is the
    corrected Thm 6 flow $-\bar\lambda\nabla(\Phi + h c|\nabla\Phi|^2)$ with
    $c = \alpha / (2(1-\lambda)^2)$ (docs/theory.md §4); orders 2, 3, ... are new.

    **Arguments:** as for `manifold_velocity_series`.

    **Returns:** a pytree shaped like `u`.
    """
    return _horner(_coefficients(loss, _check_order(order), 1, u, method), method.h)


def manifold_coefficients(loss, u: PyTree, method: Momentum, order: int) -> list[PyTree]:
    """The Taylor coefficients `[W_0(u), ..., W_R(u)]` in `h` of the manifold velocity
    (`R = order`); they depend on `lam` and `a`, not on `h`."""
    return _coefficients(loss, _check_order(order), 0, u, method)


def modified_field_coefficients(loss, u: PyTree, method: Momentum, order: int) -> list[PyTree]:
    """The Taylor coefficients `[f_0(u), ..., f_R(u)]` in `h` of the modified field
    (`R = order`); they depend on `lam` and `a`, not on `h`."""
    return _coefficients(loss, _check_order(order), 1, u, method)


# --------------------------------------------------------------------------------------------
# The construction. `s` is the formal step: each function of `s` below is expanded at s = 0.


def difference_weights(order: int) -> tuple[int, ...]:
    """`delta_i`, `i = 0 .. R+1`, with `Delta^{R+1} w_0 = sum_i delta_i w_i` (`R = order`)."""
    m = order + 1
    return tuple(math.comb(m, i) * (-1) ** (m - i) for i in range(m + 1))


def gregory_weights(order: int) -> tuple[Fraction, ...]:
    """`b_1, ..., b_{R+1}` with `sum_{m=0}^{R} (-1)^m / (m+1) Delta^m w_1 = sum_i b_i w_i`
    (`R = order`), the truncated `log(1 + Delta) / Delta` of §4. `R = 0`: `(1,)`;
    `R = 1`: `(3/2, -1/2)`; `R = 2`: `(11/6, -7/6, 1/3)`; `R = 3`:
    `(25/12, -23/12, 13/12, -1/4)`. They sum to 1."""
    b = [Fraction(0)] * (order + 1)
    for m in range(order + 1):  # Delta^m w_1 = sum_i C(m, i) (-1)^(m - i) w_{1 + i}
        for i in range(m + 1):
            b[i] += Fraction((-1) ** m, m + 1) * math.comb(m, i) * (-1) ** (m - i)
    return tuple(b)


def _velocities(grad, u, w0, s, lam, a, num_steps: int):
    """`w_1, ..., w_num_steps` (stacked on a leading axis) of the map with step `s` from
    `(u, w0)`: `w_{n+1} = lam w_n - grad Phi(u_n + s a w_n)`, `u_{n+1} = u_n + s w_{n+1}`."""

    def one(state, _):
        u, w = state
        g = grad(_tree.axpy(s * a, w, u))
        w = jax.tree.map(lambda wi, gi: lam * wi - gi, w, g)
        return (_tree.axpy(s, w, u), w), w

    return jax.lax.scan(one, (u, w0), None, length=num_steps)[1]


def _weighted_sum(weights, ws):
    """`sum_i weights[i] ws[i]` over the leading axis of the stacked pytree `ws`."""
    coeffs = jnp.asarray([float(x) for x in weights])
    return jax.tree.map(lambda xs: jnp.tensordot(coeffs.astype(xs.dtype), xs, axes=1), ws)


def _manifold_velocity(grad, u, s, lam, a, order: int):
    """`w_0 = W_s(u) + O(s^{R+1})` as a function of the formal step `s`, after `R = order`
    chord sweeps `w_0 <- w_0 - Delta^{R+1} w_0 / (lam - 1)^{R+1}` from `-lbar grad Phi(u)` (§3)."""
    num_steps = order + 1
    delta = difference_weights(order)
    chord = 1.0 / (lam - 1.0) ** num_steps  # 1 / (d Delta^{R+1} w_0 / d w_0 at s = 0)

    def sweep(w0, _):
        ws = _velocities(grad, u, w0, s, lam, a, num_steps)
        residual = _tree.axpy(float(delta[0]), w0, _weighted_sum(delta[1:], ws))
        return _tree.axpy(-chord, residual, w0), None

    w0 = _tree.scale(-1.0 / (1.0 - lam), grad(u))
    return jax.lax.scan(sweep, w0, None, length=order)[0]


def _modified_field(grad, u, s, lam, a, order: int):
    """`F = f_s(u) + O(s^{R+1})` as a function of the formal step `s`: the truncated
    `log(1 + Delta) / Delta` of the velocities `w_1 .. w_{R+1}` of `R + 1` steps from `u` on the
    manifold (§4), `R = order`."""
    w0 = _manifold_velocity(grad, u, s, lam, a, order)
    ws = _velocities(grad, u, w0, s, lam, a, order + 1)
    return _weighted_sum(gregory_weights(order), ws)


def taylor_coefficients(fn, degree: int, dtype) -> list[PyTree]:
    """`[c_0, ..., c_degree]` with `fn(s) = sum_k c_k s^k + O(s^{degree+1})` at `s = 0`, for
    `fn` from a scalar to a pytree, by `degree` nested `jax.jvp`s in the scalar `s` (§5).

    Level `k` returns `(fn, fn', ..., fn^(k))`: the `jax.jvp` of level `k - 1` with unit
    tangent, keeping its primal outputs and the last tangent. The tangents of the lower
    derivatives that it also computes are unused and removed by dead-code elimination under
    `jit`.
    """

    def up_to(k):
        if k == 0:
            return lambda s: (fn(s),)
        lower = up_to(k - 1)

        def derivatives(s):
            primal, tangent = jax.jvp(lower, (s,), (jnp.ones_like(s),))
            return (*primal, tangent[-1])

        return derivatives

    derivs = up_to(degree)(jnp.zeros((), dtype))
    return [_tree.scale(1.0 / math.factorial(k), d) for k, d in enumerate(derivs)]


@eqx.filter_jit
def _coefficients(loss, order, which, u, method):
    """`[W_0(u) .. W_R(u)]` (`which=0`) or `[f_0(u) .. f_R(u)]` (`which=1`), `R = order`."""
    grad = jax.grad(loss)

    fn = (_manifold_velocity, _modified_field)[which]

    def series(s):
        return fn(grad, u, s, method.lam, method.a, order)

    return taylor_coefficients(series, order, _tree.dtype(u))


def _horner(coeffs, h):
    """`sum_k h^k coeffs[k]`."""
    out = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        out = _tree.axpy(h, out, c)
    return out


def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 0:
        raise ValueError(f"order={order!r} is outside the allowed range: an integer >= 0")
    return int(order)
