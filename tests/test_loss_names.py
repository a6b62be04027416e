"""Losses given as `jax.tree_util.Partial` are traced, and every loss has a short name."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import U0, count_compiles, half_square, scaled_quadratic

import momentum_jax as mj

# -- 14. jax.tree_util.Partial losses -------------------------------------------------------------


class Bowl(eqx.Module):
    k: jax.Array

    def __call__(self, u):
        return 0.5 * jnp.sum(self.k * u**2)


@pytest.mark.parametrize(
    "loss, name",
    [
        (
            jax.tree_util.Partial(scaled_quadratic, k=jnp.linspace(1.0, 2.0, 2)),
            "partial(scaled_quadratic)",
        ),
        (functools.partial(scaled_quadratic, k=2.0), "partial(scaled_quadratic)"),
        (Bowl(jnp.array([3.0, 1.0])), "Bowl"),
        (half_square, "half_square"),
    ],
)
def test_loss_names_are_short(loss, name):
    from momentum_jax._validate import loss_name

    assert loss_name(loss) == name


def test_partial_loss_is_traced_and_named_short():
    kw = dict(hs=[0.1, 0.05], lams=[0.5], T=1.0, models=("gradient_flow",), methods=("hb",))
    k1, k2 = jnp.linspace(1.0, 2.0, 2), jnp.array([7.0, 3.0])
    P, m = jax.tree_util.Partial, mj.heavy_ball(0.1, 0.5)
    first = mj.convergence_study(P(scaled_quadratic, k=k1), U0, **kw)
    mj.iterate(P(scaled_quadratic, k=k1), U0, m, 5)
    with count_compiles() as compiles:  # new array values in the Partial: traced, no compile
        second = mj.convergence_study(P(scaled_quadratic, k=k2), U0, **kw)
        mj.iterate(P(scaled_quadratic, k=k2), U0, m, 5)
    assert compiles.n == 0
    assert second.config["loss"] == "partial(scaled_quadratic)"
    assert not np.allclose(first.errors["gradient_flow"], second.errors["gradient_flow"])
