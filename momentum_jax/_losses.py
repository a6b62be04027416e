"""A small registry of named losses: each a plain JAX function of a pytree, with a default start
and a one-line description. Any user function is accepted wherever a loss is."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache

import jax.numpy as jnp
import numpy as np

from ._types import PyTree


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A registered loss: `fn(u) -> scalar`, its default start `u0`, a description."""

    name: str
    fn: Callable
    u0: PyTree
    description: str


_REGISTRY: dict[str, Callable[..., LossSpec]] = {}


def register(name: str):
    """Decorator: register a factory `(**options) -> LossSpec` under `name`."""

    def wrap(factory):
        _REGISTRY[name] = factory
        return factory

    return wrap


def get_loss(name: str, **options) -> LossSpec:
    """The registered loss `name` (see `list_losses()`), built with `options`."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"loss={name!r} is not registered; choose from {sorted(_REGISTRY)}") from None
    return factory(**options)


def list_losses() -> dict[str, str]:
    """`{name: description}` of every registered loss (with default options)."""
    return {name: get_loss(name).description for name in sorted(_REGISTRY)}


class DiagonalQuadratic:
    """`Phi(u) = 1/2 <u, diag(q) u>`: the paper's loss with `q = (kappa, 1)` (Figs 1-5).

    A hashable callable (equal for equal `q`), so jitted functions keyed on it are reused.
    """

    def __init__(self, q):
        self.q = tuple(float(x) for x in np.ravel(q))
        self.__name__ = self.__qualname__ = f"quadratic{self.q}"

    def __call__(self, u):
        return 0.5 * jnp.sum(jnp.asarray(self.q) * jnp.square(u))

    def __eq__(self, other):
        return isinstance(other, DiagonalQuadratic) and other.q == self.q

    def __hash__(self):
        return hash(("DiagonalQuadratic", self.q))


@cache
def paper_quadratic(kappa: float = 10.0) -> DiagonalQuadratic:
    """The paper's `Phi(u) = 1/2 (kappa u_1^2 + u_2^2)`."""
    return DiagonalQuadratic((kappa, 1.0))


@register("quadratic")
def _quadratic(kappa: float = 10.0) -> LossSpec:
    return LossSpec(
        "quadratic", paper_quadratic(float(kappa)), jnp.array([1.0, 1.0]),
        f"paper's quadratic 1/2 <u, diag(kappa, 1) u>, kappa={kappa:g}, u0=(1, 1) (Figs 1-5)",
    )


@register("dense_quadratic")
def _dense_quadratic(dim: int = 10, condition: float = 100.0, seed: int = 0) -> LossSpec:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    eig = np.geomspace(1.0, condition, dim)
    A = jnp.asarray((q * eig) @ q.T)

    def dense_quadratic(u):
        return 0.5 * u @ (A @ u)

    return LossSpec(
        "dense_quadratic", dense_quadratic, jnp.ones(dim) / np.sqrt(dim),
        f"1/2 u^T A u, dense A of dimension {dim} with condition number {condition:g}",
    )


def rosenbrock(u):
    """`(1 - x)^2 + 100 (y - x^2)^2`."""
    return (1.0 - u[0]) ** 2 + 100.0 * (u[1] - u[0] ** 2) ** 2


@register("rosenbrock")
def _rosenbrock() -> LossSpec:
    return LossSpec("rosenbrock", rosenbrock, jnp.array([-1.2, 1.0]),
                    "Rosenbrock's banana (1-x)^2 + 100 (y-x^2)^2, nonconvex, u0=(-1.2, 1)")


def double_well(u):
    """`(x^2 - 1)^2 / 4 + y^2 / 2 + x y / 4`: two minima, a saddle between (nonconvex)."""
    return 0.25 * (u[0] ** 2 - 1.0) ** 2 + 0.5 * u[1] ** 2 + 0.25 * u[0] * u[1]


@register("double_well")
def _double_well() -> LossSpec:
    return LossSpec("double_well", double_well, jnp.array([0.3, 1.0]),
                    "2-D nonconvex double well (x^2-1)^2/4 + y^2/2 + xy/4, u0=(0.3, 1)")
