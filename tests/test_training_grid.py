"""Section 5 training over learning rates goes through `sweep` (one compiled call for every
scheme and `h`): it equals `train` run one `h` at a time, for every scheme, on mini-batches."""

import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj


def quad(params, x):
    return 0.5 * 3.0 * jnp.square(params - x)


XS = np.random.default_rng(0).standard_normal(10)
HS = [0.4, 0.1, 0.025]
SCHEMES = ("gd_effective", "hb", "nag", "wilson", "hb_mu", "nag_mu")


def test_one_sweep_over_h_equals_train_at_each_h():
    sw = mj.sweep(
        quad,
        jnp.asarray(1.0),
        hs=HS,
        lams=[0.9],
        methods=SCHEMES,
        steps=9,  # 3 epochs of 3 batches (4, 4, 2 examples)
        data=XS,
        batch_size=4,
        record_every=3,
        mu=2.0,
    )
    for i, scheme in enumerate(SCHEMES):
        for k, h in enumerate(HS):
            one = mj.train(
                scheme, jnp.asarray(1.0), XS, h, epochs=3, batch_size=4, lam=0.9, mu=2.0, loss=quad
            )
            np.testing.assert_allclose(sw.curve[i, 0, k, 0], one.losses[1:], rtol=1e-13)
            assert sw.diverged_at[i, 0, k, 0] == int(one.diverged_at)


@pytest.mark.parametrize("name", ["train_over_h", "parameter_gap_over_h"])
def test_the_per_h_loops_are_gone(name):
    assert not hasattr(mj, name)
