"""The momentum family of Kovachki & Stuart (2021), paper eq. (7), as a hyperparameter pytree
(docs/theory.md §1)."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ._types import ArrayLike
from ._validate import check_range


def _hyperparameter(name: str):
    """The converter of a `Momentum` field: a real scalar or array becomes a JAX array (so that
    `jit` traces it instead of baking it in); anything else is refused naming the field."""

    def convert(value):
        if isinstance(value, jax.core.Tracer):
            return value
        if isinstance(value, (str, bytes)) or value is None:
            raise TypeError(f"{name} must be a real number or an array of them, got {value!r}")
        try:
            arr = jnp.asarray(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a real number or an array of them, got {value!r}"
            ) from None
        if arr.dtype == bool or not (
            jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
        ):
            raise TypeError(f"{name} must be real (float or integer), got dtype {arr.dtype}")
        return arr if jnp.issubdtype(arr.dtype, jnp.floating) else arr.astype(float)

    return convert


class Momentum(eqx.Module):
    r"""Hyperparameters of the momentum family (paper eq. 7):

    $$u_{n+1} = u_n + \lambda (u_n - u_{n-1}) - h \nabla\Phi(u_n + a (u_n - u_{n-1})).$$

    Heavy ball is `a = 0`, Nesterov is `a = lam`, gradient descent is `lam = a = 0`.

    **Arguments:**

    - `h`: learning rate, finite and `> 0`.
    - `lam`: momentum, `0 <= lam < 1`.
    - `a`: look-ahead, finite and `>= 0`.

    Each field is stored as a JAX array, a scalar or an array of any shape (for example a grid
    of learning rates), so a `Momentum` passes through `jax.vmap` and `jax.jit` as an ordinary
    pytree: changing the values never recompiles. Concrete values are validated at
    construction; traced values (inside `jit`/`vmap`) pass through unchecked.
    """

    h: jax.Array
    lam: jax.Array
    a: jax.Array

    def __init__(self, h: ArrayLike, lam: ArrayLike, a: ArrayLike):
        self.h = _hyperparameter("h")(h)
        self.lam = _hyperparameter("lam")(lam)
        self.a = _hyperparameter("a")(a)

    def __check_init__(self):
        check_range("h", self.h, low=0.0, low_open=True)
        check_range("lam", self.lam, low=0.0, high=1.0, high_open=True)
        check_range("a", self.a, low=0.0)

    @property
    def lbar(self):
        """`1 / (1 - lam)`, the factor by which momentum rescales time (Thm 2)."""
        return 1.0 / (1.0 - self.lam)

    @property
    def alpha(self):
        """`(1 + lam - 2 a (1 - lam)) / 2`, the inertia of the damped-Hamiltonian model (Thm 3,
        docs/theory.md §2)."""
        return (1.0 + self.lam - 2.0 * self.a * (1.0 - self.lam)) / 2.0

    @property
    def c(self):
        """Corrected modified-loss constant `alpha / (2 (1 - lam)^2)` (Thm 6 with the sign slip
        fixed, docs/theory.md §4)."""
        return self.alpha / (2.0 * (1.0 - self.lam) ** 2)

    @property
    def c_printed(self):
        """The paper's printed Thm 6 constant, `lbar (lbar - a + 1/2) / 2` (a sign slip,
        docs/theory.md §4)."""
        return self.lbar * (self.lbar - self.a + 0.5) / 2.0

    def astype(self, dtype) -> Momentum:
        """The same hyperparameters cast to `dtype` (the dtype of the state they act on)."""
        return Momentum(*(jnp.asarray(x, dtype) for x in (self.h, self.lam, self.a)))

    def broadcast(self) -> Momentum:
        """The same hyperparameters with `h`, `lam` and `a` broadcast to one common shape."""
        return Momentum(*jnp.broadcast_arrays(self.h, self.lam, self.a))


def check_single_method(method, where: str) -> None:
    """`method` must be a `Momentum` of scalar hyperparameters: `iterate`, `iterate_final` and
    `solve` run one method (inside `jax.vmap` the fields are scalars, so a vmapped call passes).
    A `Momentum` of arrays would otherwise broadcast against the coordinates of `u0`, applying
    one `h` per coordinate: refused, naming the field."""
    if not isinstance(method, Momentum):
        raise TypeError(
            f"method must be a Momentum (heavy_ball, nesterov, gradient_descent or "
            f"Momentum(h, lam, a)), got {type(method).__name__} {method!r}"
        )
    for name in ("h", "lam", "a"):
        shape = jnp.shape(getattr(method, name))
        if shape != ():
            raise ValueError(
                f"method.{name} has shape {shape}: {where} runs one method, so h, lam and a must "
                f"be scalars. For a batch of methods use jax.vmap(lambda m: {where}(..., m, ...))"
                f"(method.broadcast()), or convergence_study / sweep"
            )


def heavy_ball(h: ArrayLike, lam: ArrayLike) -> Momentum:
    """Polyak's heavy ball (`a = 0`); equals `optax.sgd(h, momentum=lam)`."""
    lam = _hyperparameter("lam")(lam)
    return Momentum(h, lam, jnp.zeros_like(lam))


def nesterov(h: ArrayLike, lam: ArrayLike) -> Momentum:
    """Nesterov's accelerated gradient (`a = lam`); `optax.sgd(h, momentum=lam, nesterov=True)`
    stores the look-ahead points `u_n + lam (u_n - u_{n-1})` of this method as its parameters."""
    return Momentum(h, lam, lam)


def gradient_descent(h: ArrayLike) -> Momentum:
    """Plain gradient descent (`lam = a = 0`)."""
    h = _hyperparameter("h")(h)
    return Momentum(h, jnp.zeros_like(h), jnp.zeros_like(h))


def _gradient_descent_of_grid(h: ArrayLike, lam: ArrayLike) -> Momentum:
    """`gradient_descent(h)` for a grid point `(h, lam)`: gradient descent has no momentum, so
    every `lam` of a grid gives the same method (`lam` only sets the shape)."""
    h, lam = jnp.broadcast_arrays(_hyperparameter("h")(h), _hyperparameter("lam")(lam))
    return gradient_descent(h)


METHODS: dict[str, Callable[[ArrayLike, ArrayLike], Momentum]] = {
    "hb": heavy_ball,
    "nag": nesterov,
    "gd": _gradient_descent_of_grid,
}
"""The one table of named methods, `name -> constructor(h, lam)`, used by the engine, the
sweeps, the CLI and the stochastic studies: `"hb"` heavy ball, `"nag"` Nesterov, `"gd"`
gradient descent at the learning rate `h` (its `lam` is ignored: `lam = a = 0`)."""


def method_from_name(name: str, h: ArrayLike, lam: ArrayLike) -> Momentum:
    """The `Momentum` of the named method (`METHODS`) at `(h, lam)`, broadcast together."""
    try:
        make = METHODS[name]
    except (KeyError, TypeError):
        allowed = ", ".join(repr(m) for m in METHODS)
        raise ValueError(f"method={name!r} is not one of {allowed}") from None
    return make(h, lam).broadcast()


def vanishing_friction_lam(h: ArrayLike, mu: ArrayLike = 1.0):
    """The momentum `(1 - sqrt(mu h)) / (1 + sqrt(mu h))` of the HB-mu / NAG-mu schemes (paper
    eq. 5)."""
    s = jnp.sqrt(mu * jnp.asarray(h))
    return (1 - s) / (1 + s)
