"""The measurements the paper's multi-seed figures share (`momentum_jax.paper`): the spread of a
result over seeds, the verdict that needs every seed, the sharpness at a point and `h c` of the
modified loss, each against a value worked out by hand, and Fig 10's sweep-based measurement
against the Hessian's eigenvalues."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import momentum_jax as mj
from momentum_jax import paper_quadratic
from momentum_jax.paper import (
    measured_training,
    modified_loss_constant,
    off_plateau_checkpoint,
    sharpness,
    spread,
    verdict,
)


def test_spread_leaves_out_diverged_seeds():
    out = spread(np.array([1.0, 4.0, 7.0]), np.array([False, True, False]))
    assert out == {"per_seed": [1.0, None, 7.0], "mean": 4.0, "min": 1.0, "max": 7.0}
    none = spread(np.array([1.0, np.nan]), np.array([True, False]))
    assert none == {"per_seed": [None, None], "mean": None, "min": None, "max": None}


def test_verdict_needs_every_seed():
    a = np.array([[1.0, 1.0, 3.0], [1.0, 3.0, 3.0]])  # (seeds, h)
    b = np.full((2, 3), 2.0)
    ok = np.array([[True, True, True], [True, True, False]])
    assert verdict(a, b, ok) == ["yes", "mixed 1/2", "no"]
    assert verdict(a, b, np.zeros_like(ok)) == ["n/a"] * 3


def test_sharpness_is_the_top_eigenvalue_of_a_quadratic():
    # Phi = (kappa u_1^2 + u_2^2) / 2: the Hessian is diag(kappa, 1), its top eigenvalue kappa.
    value, residual = sharpness(
        paper_quadratic(25.0), jnp.array([0.3, -0.7]), rtol=1e-10, max_iters=50
    )
    np.testing.assert_allclose(value, 25.0, rtol=1e-9)
    assert residual <= 1e-10


def test_modified_loss_constant_of_each_scheme():
    # docs/theory.md §2: HB c = (1+lam)/(4(1-lam)^2), NAG c = (1-lam+2lam^2)/(4(1-lam)^2), both
    # at rate h; GD at the effective rate h/(1-lam) with c = 1/4.
    h, lam = 0.1, 0.9
    expected = {
        "gd_effective": h / (1 - lam) / 4,
        "hb": h * (1 + lam) / (4 * (1 - lam) ** 2),
        "nag": h * (1 - lam + 2 * lam**2) / (4 * (1 - lam) ** 2),
    }
    for scheme, hc in expected.items():
        np.testing.assert_allclose(modified_loss_constant(scheme, h, lam), hc, rtol=1e-12)


def test_measured_training_sharpness_is_the_hessians_top_eigenvalue():
    # Fig 10's measurement (one sweep from per-seed starts) on a tiny autoencoder, full batch,
    # against an independent computation: the same run by `train`, then `eigvalsh` of the full
    # Hessian of the loss at its final parameters.
    loss = mj.Autoencoder(hidden="sigmoid", scale=0.5)
    data = jnp.asarray(np.random.default_rng(0).uniform(size=(6, 4)))
    starts = {}
    for seed in (3, 5):
        params0 = mj.init_autoencoder((4, 3, 4), seed)
        # In chunks of 2 steps, the velocity carried over: the run of 5 steps in one go.
        params, losses, div = off_plateau_checkpoint(
            loss, params0, data, h=0.2, lam=0.9, below=0.0, max_steps=5, chunk=2
        )
        whole = mj.train("hb", params0, data, 0.2, epochs=5, batch_size=6, lam=0.9, loss=loss)
        assert div == -1 and losses.shape == (6,)
        np.testing.assert_allclose(losses, whole.losses, rtol=1e-12)
        # It stops after the first chunk that ends below `below`.
        _, short, _ = off_plateau_checkpoint(
            loss, params0, data, h=0.2, lam=0.9, below=float(losses[2]) * 1.0001, max_steps=5,
            chunk=2,
        )  # fmt: skip
        assert short.shape == (3,)
        starts[seed] = params
    hs, steps = [0.2, 0.05], 8
    out = measured_training(
        ["gd_effective", "hb"], starts, data, hs, loss,
        steps=steps, lam=0.9, rtol=1e-10, max_iters=200, record_every=4,
    )  # fmt: skip
    assert out["sharpness"].shape == (2, 2, 2) and out["curves"].shape == (2, 2, 2, 3)
    assert np.all(out["residual"] <= 1e-10) and np.all(out["diverged_at"] == -1)
    for k, scheme in enumerate(["gd_effective", "hb"]):
        for j, seed in enumerate((3, 5)):
            for i, h in enumerate(hs):
                r = mj.train(
                    scheme, starts[seed], data, h, epochs=steps, batch_size=6, lam=0.9, loss=loss
                )
                flat, unravel = ravel_pytree(r.params)
                hess = jax.hessian(lambda x: jnp.mean(loss(unravel(x), data)))(flat)
                top = float(np.linalg.eigvalsh(np.asarray(hess))[-1])
                np.testing.assert_allclose(out["sharpness"][k, j, i], top, rtol=1e-8)
                np.testing.assert_allclose(out["loss"][k, j, i], r.losses[-1], rtol=1e-10)
