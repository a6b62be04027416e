"""Losses that cannot be traced, differentiated or are not scalar, non-finite starts, and the
float32 resolution warning, named before anything is compiled."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj
from momentum_jax._losses import paper_quadratic

U0 = jnp.array([1.0, 1.0])


def not_traceable(u):
    return float(np.sum(np.asarray(u) ** 2))  # NumPy on a traced value: cannot be differentiated


def vector_valued(u):
    return u**2


def integer_valued(u):
    return jnp.sum(u > 0)


@pytest.mark.parametrize(
    "loss, text",
    [
        (not_traceable, "loss 'not_traceable' cannot be evaluated"),
        (vector_valued, "loss 'vector_valued' must return a scalar"),
        (integer_valued, "loss 'integer_valued' must return a real floating scalar"),
        ("quadratic", "loss must be a callable"),
    ],
)
@pytest.mark.parametrize("entry", ["iterate", "solve", "convergence_study"])
def test_bad_losses_are_named_before_compiling(loss, text, entry):
    m = mj.heavy_ball(0.1, 0.9)
    call = {
        "iterate": lambda: mj.iterate(loss, U0, m, 3),
        "solve": lambda: mj.solve(loss, U0, m, jnp.array([0.0, 1.0]), model="gradient_flow"),
        "convergence_study": lambda: mj.convergence_study(loss, U0, hs=[0.1], lams=[0.9], T=1.0),
    }[entry]
    with pytest.raises(TypeError, match=text):
        call()


@pytest.mark.parametrize("entry", ["iterate", "solve", "convergence_study"])
def test_non_finite_start(entry):
    bad = jnp.array([1.0, jnp.inf])
    m = mj.heavy_ball(0.1, 0.9)
    loss = paper_quadratic(5.0)
    call = {
        "iterate": lambda: mj.iterate(loss, bad, m, 3),
        "solve": lambda: mj.solve(loss, bad, m, jnp.array([0.0, 1.0]), model="gradient_flow"),
        "convergence_study": lambda: mj.convergence_study(loss, bad, hs=[0.1], lams=[0.9], T=1.0),
    }[entry]
    with pytest.raises(ValueError, match="u0 must be finite"):
        call()


def test_float32_warns_about_resolution():
    with pytest.warns(RuntimeWarning, match="resolution 1.2e-07"):
        st = mj.convergence_study(
            paper_quadratic(5.0),
            U0.astype(jnp.float32),
            hs=[0.1, 0.05],
            lams=[0.9],
            T=1.0,
            models=("gradient_flow",),
        )
    assert np.all(np.isfinite(st.errors["gradient_flow"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float64: no warning
        mj.convergence_study(
            paper_quadratic(5.0), U0, hs=[0.1, 0.05], lams=[0.9], T=1.0, models=("gradient_flow",)
        )
