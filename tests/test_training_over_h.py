"""`train_over_h` and `parameter_gap_over_h`: one vmapped call equals the runs one `h` at a time."""

import jax.numpy as jnp
import numpy as np
import pytest

from momentum_jax._gaps import parameter_gap, parameter_gap_over_h
from momentum_jax._training import train, train_over_h


def quad(params, x):
    return 0.5 * 3.0 * jnp.square(params - x)


XS = np.random.default_rng(0).standard_normal(10)
HS = [0.4, 0.1, 0.025]


def test_train_over_h_matches_single_runs():
    batched = train_over_h("nag", jnp.asarray(1.0), XS, HS, epochs=3, batch_size=4, loss=quad)
    assert batched.losses.shape == (3, 4) and batched.diverged_at.shape == (3,)
    for i, h in enumerate(HS):
        single = train("nag", jnp.asarray(1.0), XS, h, epochs=3, batch_size=4, loss=quad)
        np.testing.assert_allclose(batched.losses[i], single.losses, rtol=1e-13)
        np.testing.assert_allclose(batched.params[i], single.params, rtol=1e-13)


def test_parameter_gap_over_h_matches_single_runs():
    batched = parameter_gap_over_h(
        "hb_mu", "wilson", jnp.asarray(1.0), XS, HS, epochs=2, batch_size=4, loss=quad
    )
    for i, h in enumerate(HS):
        single = parameter_gap(
            "hb_mu", "wilson", jnp.asarray(1.0), XS, h, epochs=2, batch_size=4, loss=quad
        )
        np.testing.assert_allclose(batched.max_gap[i], single.max_gap, rtol=1e-13)


def test_errors():
    with pytest.raises(ValueError, match=r"hs=\[-0.1\] is outside"):
        train_over_h("hb", jnp.asarray(1.0), XS, [0.1, -0.1], epochs=1, loss=quad)
    with pytest.raises(ValueError, match="1-D"):
        parameter_gap_over_h(
            "hb", "gd_effective", jnp.asarray(1.0), XS, [[0.1]], epochs=1, loss=quad
        )
    with pytest.raises(ValueError, match="on_epoch"):
        train_over_h("hb", jnp.asarray(1.0), XS, HS, epochs=1, loss=quad, on_epoch=print)
