"""Wrong arguments and starts are refused before compiling, naming the argument and the allowed
range: batched methods, half-precision starts, bad starts and options (docs/RELIABILITY.md)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import TS, U0, half_square

import momentum_jax as mj

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


# -- 9. float16 starts ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("entry", ["solve", "convergence_study"])
def test_half_precision_start_is_refused_where_it_cannot_be_solved(entry, dtype):
    u = U0.astype(dtype)
    m = mj.heavy_ball(0.1, 0.5)
    call = {
        "solve": lambda: mj.solve(half_square, u, m, TS, model="gradient_flow"),
        "convergence_study": lambda: mj.convergence_study(
            half_square, u, hs=[0.1, 0.05], lams=[0.5], T=1.0
        ),
    }[entry]
    name = jnp.dtype(dtype).name
    with pytest.raises(TypeError, match=rf"u0 has dtype {name}.*refused.*float32 or float64"):
        call()


def test_half_precision_iterates_keep_their_dtype():
    us = mj.iterate(half_square, U0.astype(jnp.float16), mj.heavy_ball(0.1, 0.5), 4)
    assert us.dtype == jnp.float16 and np.all(np.isfinite(np.asarray(us, float)))


# -- 10. other wrong arguments -----------------------------------------------------------------


def nonsmooth(u):
    return jnp.sum(jnp.sqrt(jnp.abs(u)))  # gradient infinite at 0


MLP = eqx.nn.MLP(2, 1, 4, 1, key=jax.random.PRNGKey(0))
ENTRIES = {
    "iterate": lambda loss, u: mj.iterate(loss, u, mj.heavy_ball(0.1, 0.5), 3),
    "solve": lambda loss, u: mj.solve(loss, u, mj.heavy_ball(0.1, 0.5), TS, model="gradient_flow"),
    "convergence_study": lambda loss, u: mj.convergence_study(
        loss, u, hs=[0.1, 0.05], lams=[0.5], T=1.0
    ),
}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize(
    "loss, u0, exc, text",
    [
        (
            half_square,
            "abc",
            TypeError,
            r"u0 must be a pytree of floating arrays; its leaf u0 is a str",
        ),
        (
            half_square,
            {"a": U0, "b": None, "c": [1.0, "x"]},
            TypeError,
            r"leaf u0\['c'\]\[1\] is a str",
        ),
        (
            lambda p: half_square(p["a"]) + half_square(p["b"]),
            {"a": U0.astype(jnp.float32), "b": U0},
            TypeError,
            r"u0 mixes the dtypes float32, float64; .*one dtype",
        ),
        (
            lambda m: jnp.sum(m(U0) ** 2),
            MLP,
            TypeError,
            r"u0 is an equinox Module with non-array leaves .*eqx\.partition",
        ),
        (
            nonsmooth,
            jnp.array([1.0, 0.0]),
            ValueError,
            r"gradient of loss 'nonsmooth' is not finite at u0 \(1 of 2",
        ),
        (
            lambda u: jnp.log(u[0]) + u[1] ** 2,
            jnp.array([-1.0, 1.0]),
            ValueError,
            r"loss '.*' is not finite at u0: nan",
        ),
    ],
)
def test_start_errors_name_u0(entry, loss, u0, exc, text):
    with pytest.raises(exc, match=text):
        ENTRIES[entry](loss, u0)


def test_equinox_module_split_with_partition_works():
    params, static = eqx.partition(MLP, eqx.is_inexact_array)
    loss = lambda p: jnp.sum(eqx.combine(p, static)(U0) ** 2)  # noqa: E731
    out = mj.iterate(loss, params, mj.heavy_ball(0.01, 0.5), 2)
    assert jax.tree.structure(out) == jax.tree.structure(params)


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        (
            dict(chunk_size=-4),
            ValueError,
            "chunk_size=-4 is outside the allowed range: an integer >= 1",
        ),
        (dict(chunk_size=3.5), TypeError, "chunk_size must be an integer >= 1, got 3.5"),
        (dict(lanes=0), ValueError, "lanes=0 is outside the allowed range: an integer >= 1"),
        (dict(devices=[]), ValueError, "devices must name at least one device"),
        (
            dict(devices="cpu"),
            TypeError,
            r"devices must be jax devices \(jax.devices\(\)\), got 'cpu'",
        ),
        (dict(devices=[0]), TypeError, r"devices must be jax devices"),
        (
            dict(progress="yes"),
            TypeError,
            r"progress must be a callable \(done, total\) or None, got 'yes'",
        ),
        (
            dict(divergence_limit=0.0),
            ValueError,
            "divergence_limit=0.0 is outside the allowed range",
        ),
    ],
)
def test_study_option_errors(kwargs, exc, text):
    monkey = dict(hs=[0.1, 0.05], lams=[0.5], T=1.0) | kwargs
    with pytest.raises(exc, match=text):
        mj.convergence_study(half_square, U0, **monkey)


@pytest.mark.parametrize(
    "make, text",
    [
        (
            lambda: mj.heavy_ball(h="0.1", lam=0.5),
            "h must be a real number or an array of them, got '0.1'",
        ),
        (lambda: mj.nesterov(0.1, lam="0.9"), "lam must be a real number or an array of them"),
        (
            lambda: mj.Momentum(0.1, 0.5, None),
            "a must be a real number or an array of them, got None",
        ),
        (lambda: mj.gradient_descent(True), "h must be real .* got dtype bool"),
        (lambda: mj.heavy_ball(1j, 0.5), "h must be real .* got dtype complex"),
    ],
)
def test_string_and_other_non_real_hyperparameters_are_refused(make, text):
    with pytest.raises(TypeError, match=text):
        make()
