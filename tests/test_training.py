"""The Section 5 training protocol: each scheme against an independent implementation on the same
mini-batches, traced `h`, divergence reports."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import count_compiles

from momentum_jax._autoencoder import init_autoencoder, squared_error
from momentum_jax._batches import make_batches
from momentum_jax._gaps import parameter_gap
from momentum_jax._method import vanishing_friction_lam
from momentum_jax._training import train

Q = 3.0


def quad(params, x):
    """Per-example `Q/2 (u - x)^2` for a scalar parameter: batch gradient `Q (u - mean x_b)`."""
    return 0.5 * Q * jnp.square(params - x)


@pytest.fixture(scope="module")
def xs():
    return np.random.default_rng(0).standard_normal(10)


def batch_means(xs, b):
    return [xs[i : i + b].mean() for i in range(0, len(xs), b)]


@pytest.fixture(scope="module")
def tiny():
    """A 16-4-2-4-16 autoencoder on 50 random 'images' (batches of 20, 20, 10)."""
    x = np.random.default_rng(2).uniform(size=(50, 16))
    return init_autoencoder((16, 4, 2, 4, 16), seed=3), x


def tree_allclose(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def optax_run(opt, params, x, batch, epochs):
    """Reference loop over the same fixed-order batches; returns the parameters per epoch."""
    state = opt.init(params)
    grad = jax.jit(jax.grad(lambda p, xb: jnp.mean(squared_error(p, xb))))
    out = [params]
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            updates, state = opt.update(grad(params, x[i : i + batch]), state)
            params = optax.apply_updates(params, updates)
        out.append(params)
    return out


def test_hb_equals_optax_sgd(tiny):
    params0, x = tiny
    h, epochs = 0.3, 3
    result = train("hb", params0, x, h, epochs=epochs, batch_size=20, record_params_every=1)
    ref = optax_run(optax.sgd(h, momentum=0.9), params0, x, 20, epochs)
    for e in range(epochs + 1):
        tree_allclose(jax.tree.map(lambda s, e=e: s[e], result.snapshots), ref[e], atol=1e-12)
    full = [float(jnp.mean(squared_error(p, x))) for p in ref]
    np.testing.assert_allclose(result.losses, full, rtol=1e-12)
    assert int(result.diverged_at) == -1


def test_nag_equals_optax_nesterov_lookahead(tiny):
    """optax stores the look-ahead `y_n = u_n + lam (u_n - u_{n-1})` (docs/theory.md §1)."""
    params0, x = tiny
    h, lam = 0.3, 0.9
    result = train("nag", params0, x, h, epochs=2, batch_size=20)
    y = optax_run(optax.sgd(h, momentum=lam, nesterov=True), params0, x, 20, 2)[-1]
    lookahead = jax.tree.map(lambda u, w: u + lam * h * w, result.params, result.velocity)
    tree_allclose(lookahead, y, 1e-12)


def test_wilson_by_hand(xs):
    h, mu, b, epochs = 0.2, 1.5, 4, 3  # batches of 4, 4, 2
    u0 = jnp.asarray(1.0)
    result = train(
        "wilson", u0, xs, h, epochs=epochs, batch_size=b, mu=mu, loss=quad, record_params_every=1
    )
    u, v, us = 1.0, 0.0, [1.0]
    decay = np.exp(-2 * np.sqrt(mu * h))
    for _ in range(epochs):
        for m in batch_means(xs, b):
            u = u + (1 - decay) / (2 * np.sqrt(mu)) * v
            v = decay * v - np.sqrt(h) * Q * (u - m)  # gradient at the new position
        us.append(u)
    np.testing.assert_allclose(result.snapshots, us, rtol=0, atol=1e-14)
    np.testing.assert_allclose(result.velocity, v, rtol=0, atol=1e-14)
    np.testing.assert_allclose(result.losses[-1], np.mean(0.5 * Q * (u - xs) ** 2), rtol=1e-13)


def test_gd_at_effective_rate_by_hand(xs):
    h, lam = 0.05, 0.8
    result = train(
        "gd_effective", jnp.asarray(1.0), xs, h, epochs=2, batch_size=3, lam=lam, loss=quad
    )
    u = 1.0
    for _ in range(2):
        for m in batch_means(xs, 3):
            u -= h / (1 - lam) * Q * (u - m)
    np.testing.assert_allclose(result.params, u, rtol=0, atol=1e-14)


@pytest.mark.parametrize("scheme, plain", [("hb_mu", "hb"), ("nag_mu", "nag")])
def test_vanishing_friction_schemes(xs, scheme, plain):
    h, mu = 0.1, 2.0
    lam = float(vanishing_friction_lam(h, mu))
    np.testing.assert_allclose(lam, (1 - np.sqrt(mu * h)) / (1 + np.sqrt(mu * h)))
    a = train(scheme, jnp.asarray(1.0), xs, h, epochs=2, batch_size=4, mu=mu, loss=quad)
    b = train(plain, jnp.asarray(1.0), xs, h, epochs=2, batch_size=4, lam=lam, loss=quad)
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-14)


def test_vmap_over_h_and_no_recompile(tiny):
    params0, x = tiny
    hs = jnp.array([0.1, 0.2, 0.4])
    run = lambda h: train("nag", params0, x, h, epochs=2, batch_size=20)  # noqa: E731
    batched = jax.vmap(run)(hs)
    run(0.05)
    with count_compiles() as compiles:
        singles = [run(h) for h in [0.1, 0.2, 0.4]]
    assert compiles.n == 0  # new values of h reuse the compiled loop
    for i, single in enumerate(singles):
        np.testing.assert_allclose(batched.losses[i], single.losses, rtol=1e-12)
        tree_allclose(jax.tree.map(lambda p, i=i: p[i], batched.params), single.params, 1e-12)


def test_on_epoch_matches_scan(tiny):
    params0, x = tiny
    seen = []
    a = train(
        "hb",
        params0,
        x,
        0.2,
        epochs=3,
        batch_size=20,
        record_params_every=2,
        on_epoch=lambda e, v: seen.append((e, v)),
    )
    b = train("hb", params0, x, 0.2, epochs=3, batch_size=20, record_params_every=2)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-13)
    assert [e for e, _ in seen] == [1, 2, 3]
    np.testing.assert_allclose([v for _, v in seen], b.losses[1:], rtol=1e-13)
    tree_allclose(a.snapshots, b.snapshots, 1e-13)
    assert jax.tree.leaves(a.snapshots)[0].shape[0] == 2  # epochs 0 and 2


def test_divergence_is_flagged(xs):
    # gd at h = 1 with lam = 0.9 is a step of 10 on a loss of curvature 100: |1 - 1000| per step
    big = lambda p, x: 50.0 * jnp.square(p - x)  # noqa: E731
    result = train("gd_effective", jnp.asarray(1.0), xs, 1.0, epochs=30, batch_size=5, loss=big)
    step = int(result.diverged_at)  # |u_3| = 9.6e8 > divergence_limit * max(1, |u_0|) = 1e8
    assert step == 3 and int(result.diverged_epoch) == (step - 1) // 2 + 1
    epoch = int(result.diverged_epoch)
    assert np.all(np.isfinite(result.losses[:epoch])) and np.all(np.isnan(result.losses[epoch:]))
    assert np.isfinite(result.params)
    ok = train("hb", jnp.asarray(1.0), xs, 1e-3, epochs=30, batch_size=5, loss=big)
    assert int(ok.diverged_at) == -1 and np.all(np.isfinite(ok.losses))
    gap = parameter_gap(
        "hb", "gd_effective", jnp.asarray(1.0), xs, 1.0, epochs=30, batch_size=5, loss=big
    )
    assert gap.max_gap == np.inf and int(gap.diverged_at[1]) == step
    assert int(gap.diverged_epoch[1]) == epoch


def test_parameter_gap_by_hand(xs):
    h, lam, b, epochs = 0.05, 0.9, 4, 2
    gap = parameter_gap(
        "hb",
        "gd_effective",
        jnp.asarray(1.0),
        xs,
        h,
        epochs=epochs,
        batch_size=b,
        lam=lam,
        loss=quad,
    )
    u_prev = u = g = 1.0
    gaps = []
    for _ in range(epochs):
        worst = 0.0
        for m in batch_means(xs, b):
            u, u_prev = u + lam * (u - u_prev) - h * Q * (u - m), u
            g = g - h / (1 - lam) * Q * (g - m)
            worst = max(worst, abs(u - g))
        gaps.append(worst)
    np.testing.assert_allclose(gap.epoch_gaps, gaps, rtol=1e-12)
    np.testing.assert_allclose(gap.max_gap, max(gaps), rtol=1e-12)
    assert list(gap.diverged_at) == [-1, -1]
    same = parameter_gap(
        "wilson", "wilson", jnp.asarray(1.0), xs, h, epochs=1, batch_size=b, loss=quad
    )
    assert same.max_gap == 0.0


def test_batches_and_errors(xs):
    batches, mask = make_batches((xs, np.arange(10)), 4)
    assert batches[0].shape == (3, 4) and batches[1].shape == (3, 4)
    np.testing.assert_array_equal(mask.sum(axis=1), [4, 4, 2])
    u0 = jnp.asarray(1.0)
    with pytest.raises(ValueError, match="scheme='adam'"):
        train("adam", u0, xs, 0.1, epochs=1, loss=quad)
    with pytest.raises(ValueError, match=r"h=-0.1 is outside"):
        train("hb", u0, xs, -0.1, epochs=1, loss=quad)
    with pytest.raises(ValueError, match=r"mu=0.0 is outside"):
        train("wilson", u0, xs, 0.1, epochs=1, mu=0.0, loss=quad)
    with pytest.raises(TypeError, match="one float per example"):
        train("hb", u0, xs, 0.1, epochs=1, loss=lambda p, x: jnp.mean(quad(p, x)))
    with pytest.raises(ValueError, match="share a leading"):
        train("hb", u0, (xs, xs[:5]), 0.1, epochs=1, loss=quad)
