"""Issue 15, "Reliability, round 2": inputs that used to give a wrong answer, a traceback, a crash
or a misleading message (one test per case; docs/RELIABILITY.md lists them)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj

U0 = jnp.array([1.0, 1.0])
TS = jnp.array([0.0, 0.5, 1.0])


def half_square(u):
    return 0.5 * jnp.sum(u**2)


# -- 1. a batched Momentum passed to iterate / solve ------------------------------------------


@pytest.mark.parametrize("entry", ["iterate", "iterate_final", "solve"])
@pytest.mark.parametrize("field", ["h", "lam"])
def test_batched_momentum_is_refused_naming_the_field(entry, field):
    values = dict(h=0.1, lam=0.5) | {field: jnp.array([0.1, 0.2])}
    m = mj.heavy_ball(**values)
    call = {
        "iterate": lambda: mj.iterate(half_square, jnp.ones(2), m, 3),
        "iterate_final": lambda: mj.iterate_final(half_square, jnp.ones(2), m, 3),
        "solve": lambda: mj.solve(half_square, jnp.ones(2), m, TS, model="gradient_flow"),
    }[entry]
    with pytest.raises(ValueError, match=rf"method\.{field} has shape \(2,\).*jax\.vmap"):
        call()


def test_batched_momentum_through_vmap_still_works():
    ms = mj.heavy_ball(jnp.array([0.1, 0.2]), 0.5).broadcast()
    us = jax.vmap(lambda m: mj.iterate(half_square, jnp.ones(2), m, 3))(ms)
    assert us.shape == (2, 4, 2)
    for i, h in enumerate([0.1, 0.2]):
        np.testing.assert_allclose(
            us[i], mj.iterate(half_square, jnp.ones(2), mj.heavy_ball(h, 0.5), 3)
        )


@pytest.mark.parametrize("entry", ["iterate", "solve"])
def test_method_must_be_a_momentum(entry):
    call = {
        "iterate": lambda: mj.iterate(half_square, U0, "hb", 3),
        "solve": lambda: mj.solve(half_square, U0, (0.1, 0.5), TS, model="gradient_flow"),
    }[entry]
    with pytest.raises(TypeError, match="method must be a Momentum"):
        call()
