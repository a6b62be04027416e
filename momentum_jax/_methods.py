"""The momentum family of Kovachki & Stuart (2021), eq. (7), as a hyperparameter pytree."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ._types import ArrayLike
from ._validate import check_range


class Momentum(eqx.Module):
    r"""Hyperparameters of the momentum family (paper eq. 7):

    $$u_{n+1} = u_n + \lambda (u_n - u_{n-1}) - h \nabla\Phi(u_n + a (u_n - u_{n-1})).$$

    Heavy ball is `a = 0`, Nesterov is `a = lam`, gradient descent is `lam = a = 0`.

    **Arguments:**

    - `h`: learning rate, finite and `> 0`.
    - `lam`: momentum, `0 <= lam < 1`.
    - `a`: look-ahead, finite and `>= 0`.

    Each field may be a scalar or an array (for example a grid of learning rates), so a
    `Momentum` can be passed through `jax.vmap` and `jax.jit` as an ordinary pytree: changing the
    values never recompiles. Concrete values are validated at construction; traced values (inside
    `jit`/`vmap`) pass through unchecked, because their values are not known yet.
    """

    h: ArrayLike
    lam: ArrayLike
    a: ArrayLike

    def __check_init__(self):
        check_range("h", self.h, low=0.0, low_open=True)
        check_range("lam", self.lam, low=0.0, high=1.0, high_open=True)
        check_range("a", self.a, low=0.0)

    @property
    def lbar(self):
        """`1 / (1 - lam)`, the factor by which momentum rescales time."""
        return 1.0 / (1.0 - self.lam)

    @property
    def alpha(self):
        """`(1 + lam - 2 a (1 - lam)) / 2`, the inertia of the damped-Hamiltonian model (THEORY §2)."""
        return (1.0 + self.lam - 2.0 * self.a * (1.0 - self.lam)) / 2.0

    @property
    def c(self):
        """Corrected modified-loss constant `alpha / (2 (1 - lam)^2)` (Thm 6, THEORY §4.1)."""
        return self.alpha / (2.0 * (1.0 - self.lam) ** 2)

    @property
    def c_printed(self):
        """The paper's printed Thm 6 constant, `lbar (lbar - a + 1/2) / 2` (a sign slip)."""
        return self.lbar * (self.lbar - self.a + 0.5) / 2.0

    def astype(self, dtype) -> Momentum:
        """The same hyperparameters cast to `dtype` (the dtype of the state they act on)."""
        return Momentum(*(jnp.asarray(x, dtype) for x in (self.h, self.lam, self.a)))

    def broadcast(self) -> Momentum:
        """The same hyperparameters with `h`, `lam` and `a` broadcast to one common shape."""
        h, lam, a = jnp.broadcast_arrays(*(jnp.asarray(x) for x in (self.h, self.lam, self.a)))
        return Momentum(h, lam, a)


def heavy_ball(h: ArrayLike, lam: ArrayLike) -> Momentum:
    """Polyak's heavy ball (`a = 0`); equals `optax.sgd(h, momentum=lam)`."""
    return Momentum(h, lam, _zero_like(lam))


def nesterov(h: ArrayLike, lam: ArrayLike) -> Momentum:
    """Nesterov's accelerated gradient (`a = lam`); `optax.sgd(h, momentum=lam, nesterov=True)`
    stores the look-ahead points `u_n + lam (u_n - u_{n-1})` of this method as its parameters."""
    return Momentum(h, lam, lam)


def gradient_descent(h: ArrayLike) -> Momentum:
    """Plain gradient descent (`lam = a = 0`)."""
    return Momentum(h, _zero_like(h), _zero_like(h))


def _zero_like(x):
    """A zero of the same shape as `x` (a Python 0.0 for a Python scalar), so that every field of
    a constructed `Momentum` can be vmapped along the same axis."""
    return 0.0 if isinstance(x, (int, float)) else jnp.zeros_like(jnp.asarray(x, dtype=float))


METHODS = {"hb": heavy_ball, "nag": nesterov}
"""Named methods accepted by the sweep engine and the CLI: name -> constructor `(h, lam)`."""


def method_from_name(name: str, h, lam) -> Momentum:
    """`heavy_ball` for `"hb"`, `nesterov` for `"nag"`, `gradient_descent` for `"gd"`."""
    if name == "gd":
        return gradient_descent(h)
    try:
        return METHODS[name](h, lam)
    except KeyError:
        raise ValueError(f"method={name!r} is not one of 'hb', 'nag', 'gd'") from None


def vanishing_friction_lam(h, mu=1.0):
    """The momentum `(1 - sqrt(mu h)) / (1 + sqrt(mu h))` of the HB-mu / NAG-mu schemes (§5)."""
    s = jnp.sqrt(mu * jnp.asarray(h))
    return (1 - s) / (1 + s)
