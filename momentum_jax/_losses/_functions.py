"""Small nonconvex test functions."""

from __future__ import annotations

import jax.numpy as jnp

from ._registry import LossSpec, register_loss


def rosenbrock(u):
    """`(1 - x)^2 + 100 (y - x^2)^2`."""
    return (1.0 - u[0]) ** 2 + 100.0 * (u[1] - u[0] ** 2) ** 2


@register_loss("rosenbrock")
def _rosenbrock() -> LossSpec:
    return LossSpec(
        "rosenbrock",
        rosenbrock,
        jnp.array([-1.2, 1.0]),
        "Rosenbrock's banana (1-x)^2 + 100 (y-x^2)^2, nonconvex, u0=(-1.2, 1)",
    )


def double_well(u):
    """`(x^2 - 1)^2 / 4 + y^2 / 2 + x y / 4`: two minima, a saddle between (nonconvex)."""
    return 0.25 * (u[0] ** 2 - 1.0) ** 2 + 0.5 * u[1] ** 2 + 0.25 * u[0] * u[1]


@register_loss("double_well")
def _double_well() -> LossSpec:
    return LossSpec(
        "double_well",
        double_well,
        jnp.array([0.3, 1.0]),
        "2-D nonconvex double well (x^2-1)^2/4 + y^2/2 + xy/4, u0=(0.3, 1)",
    )
