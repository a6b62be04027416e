import closed_form as cf
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import count_compiles, tree_max_abs_diff

import momentum_jax as mj
from momentum_jax._losses import paper_quadratic

Q = [10.0, 1.0]
U0 = jnp.array([1.0, 1.0])


def nonconvex(p):
    """A nonconvex loss on a dict pytree (two leaves of different shapes)."""
    w, b = p["w"], p["b"]
    return (
        jnp.sum((w**2 - 1.0) ** 2) / 4
        + jnp.sum(jnp.cos(3 * w)) / 10
        + jnp.sum(b**2) / 2
        + jnp.sum(w[:2] * b) / 4
    )


P0 = {"w": jnp.array([0.3, -1.4, 0.8]), "b": jnp.array([0.5, -0.2])}


@pytest.mark.parametrize("make", [mj.heavy_ball, mj.nesterov])
@pytest.mark.parametrize("h", [2.0**-3, 2.0**-7])
def test_quadratic_closed_form_zero_start(make, h):
    m = make(h, 0.9)
    us = mj.iterate(paper_quadratic(10.0), U0, m, 400)
    ref = cf.discrete(Q, [1, 1], m, np.arange(401))
    np.testing.assert_allclose(us, ref, rtol=0, atol=1e-13)


def test_quadratic_closed_form_gd_and_manifold_start():
    m = mj.gradient_descent(0.05)
    us = mj.iterate(paper_quadratic(10.0), U0, m, 100)
    np.testing.assert_allclose(
        us, np.array([[(1 - 0.05 * q) ** n for q in Q] for n in range(101)]), rtol=1e-13, atol=1e-15
    )
    m = mj.nesterov(2.0**-6, 0.9)
    us = mj.iterate(paper_quadratic(10.0), U0, m, 300, init="manifold")
    ref = cf.discrete(Q, [1, 1], m, np.arange(301), w0=cf.manifold_w0(Q, [1, 1], m))
    np.testing.assert_allclose(us, ref, rtol=0, atol=1e-13)


def test_first_step_is_a_gradient_step_and_save_every():
    loss = paper_quadratic(10.0)
    m = mj.heavy_ball(0.01, 0.9)
    us = mj.iterate(loss, U0, m, 10)
    np.testing.assert_allclose(us[1], U0 - 0.01 * jnp.array(Q) * U0, rtol=1e-15)
    thinned = mj.iterate(loss, U0, m, 9, save_every=3)  # save_every must divide num_steps
    assert thinned.shape == (9 // 3 + 1, 2)
    np.testing.assert_array_equal(thinned, us[::3])  # u_0, u_3, u_6, u_9


def optax_parameters(opt, n):
    """The parameters after each of `n` steps of an optax transformation on `nonconvex`."""

    def body(carry, _):
        p, s = carry
        upd, s = opt.update(jax.grad(nonconvex)(p), s, p)
        p = optax.apply_updates(p, upd)
        return (p, s), p

    return jax.lax.scan(body, (P0, opt.init(P0)), None, length=n)[1]


def test_heavy_ball_equals_optax_sgd_momentum():
    h, lam, n = 0.05, 0.9, 250
    us = mj.iterate(nonconvex, P0, mj.heavy_ball(h, lam), n)
    opt = optax.sgd(h, momentum=lam)
    ps = optax_parameters(opt, n)
    assert tree_max_abs_diff(jax.tree.map(lambda x: x[1:], us), ps) < 1e-12
    assert float(jnp.abs(us["w"][-1] - P0["w"]).max()) > 0.1  # it moved: the test can fail


def test_nesterov_equals_optax_lookahead_sequence():
    # optax's nesterov=True stores y_n = u_n + lam (u_n - u_{n-1}) (docs/theory.md §1).
    h, lam, n = 0.05, 0.9, 250
    m = mj.nesterov(h, lam)
    us, ws = mj.iterate(nonconvex, P0, m, n, return_velocity=True)
    ys = jax.tree.map(lambda u, w: u + h * lam * w, us, ws)
    opt = optax.sgd(h, momentum=lam, nesterov=True)
    ps = optax_parameters(opt, n)
    assert tree_max_abs_diff(jax.tree.map(lambda x: x[1:], ys), ps) < 1e-12
    # and they are not the same sequence as u_n, so the comparison is meaningful
    assert tree_max_abs_diff(jax.tree.map(lambda x: x[1:], us), ps) > 1e-3


@pytest.mark.parametrize("make", [mj.heavy_ball, mj.nesterov])
def test_as_optax_parameter_sequence(make):
    h, lam, n = 0.05, 0.9, 200
    m = make(h, lam)
    us = mj.iterate(nonconvex, P0, m, n)
    opt = mj.as_optax(m)
    p, s = P0, opt.init(P0)
    for k in range(1, n + 1):  # an ordinary optax training loop
        upd, s = opt.update(jax.grad(nonconvex)(p), s, p)
        p = optax.apply_updates(p, upd)
    u_n = mj.iterate_from_optax(p, s, m)
    assert tree_max_abs_diff(u_n, jax.tree.map(lambda x: x[-1], us)) < 1e-12
    if make is mj.heavy_ball:
        assert tree_max_abs_diff(p, u_n) == 0.0


def test_as_optax_nesterov_equals_optax_sgd_nesterov():
    m = mj.nesterov(0.05, 0.9)
    ours, ref = mj.as_optax(m), optax.sgd(0.05, momentum=0.9, nesterov=True)
    p1 = p2 = P0
    s1, s2 = ours.init(P0), ref.init(P0)
    for _ in range(200):
        u1, s1 = ours.update(jax.grad(nonconvex)(p1), s1, p1)
        u2, s2 = ref.update(jax.grad(nonconvex)(p2), s2, p2)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    assert tree_max_abs_diff(p1, p2) < 1e-12


def test_vmap_over_h_and_lam_equals_separate_runs():
    hs = jnp.array([0.01, 0.02, 0.04])
    lams = jnp.array([0.0, 0.5, 0.9])
    grid_h, grid_lam = jnp.meshgrid(hs, lams, indexing="ij")
    ms = mj.nesterov(grid_h.ravel(), grid_lam.ravel())
    run = lambda m: mj.iterate(nonconvex, P0, m, 50)  # noqa: E731
    batched = jax.vmap(run)(ms)
    for i, (h, lam) in enumerate(zip(grid_h.ravel(), grid_lam.ravel())):
        single = run(mj.nesterov(float(h), float(lam)))
        assert tree_max_abs_diff(jax.tree.map(lambda x: x[i], batched), single) < 1e-14


def test_new_hyperparameter_values_do_not_recompile():
    loss = paper_quadratic(10.0)
    mj.iterate(loss, U0, mj.Momentum(0.1, 0.5, 0.0), 20)
    with count_compiles() as compiles:
        outs = [
            mj.iterate(loss, U0, mj.Momentum(h, lam, a), 20)
            for h, lam, a in [(0.2, 0.9, 0.9), (0.01, 0.0, 0.3), (0.05, 0.7, 0.0)]
        ]
    assert compiles.n == 0
    assert not np.allclose(outs[0], outs[1])  # the values really changed
    with count_compiles() as compiles:
        mj.iterate(loss, U0, mj.Momentum(0.1, 0.5, 0.0), 21)  # a new shape does compile
    assert compiles.n >= 1


def test_iterate_final_matches_trajectory_and_flags_divergence():
    loss = paper_quadratic(10.0)
    m = mj.heavy_ball(0.05, 0.9)
    us = mj.iterate(loss, U0, m, 300)
    fin = mj.iterate_final(loss, U0, m, 300)
    np.testing.assert_allclose(fin.u, us[-1], rtol=0, atol=1e-15)
    assert int(fin.diverged_at) == -1
    np.testing.assert_allclose(fin.min_loss, min(float(loss(u)) for u in us), rtol=1e-14)
    # HB is stable for h kappa < 2 (1 + lam) = 3.8: h = 0.5 (h kappa = 5) diverges
    bad = mj.iterate_final(loss, U0, mj.heavy_ball(0.5, 0.9), 2000)
    assert 0 < int(bad.diverged_at) < 2000
    assert np.all(np.isfinite(bad.u))  # frozen at the last bounded state


def test_iterate_final_vmaps_into_a_sweep():
    loss = paper_quadratic(10.0)
    hs = jnp.array([0.05, 0.1, 0.5])
    fin = jax.vmap(lambda h: mj.iterate_final(loss, U0, mj.heavy_ball(h, 0.9), 500))(hs)
    assert fin.diverged_at.tolist()[:2] == [-1, -1] and int(fin.diverged_at[2]) > 0


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        (dict(num_steps=-1), ValueError, "num_steps"),
        (dict(num_steps=2.5), TypeError, "num_steps"),
        (dict(save_every=0), ValueError, "save_every"),
        (dict(init="bogus"), ValueError, "init"),
        (dict(init=jnp.zeros(3)), ValueError, "init"),
    ],
)
def test_iterate_argument_errors(kwargs, exc, text):
    args = dict(num_steps=10) | kwargs
    with pytest.raises(exc, match=text):
        mj.iterate(paper_quadratic(10.0), U0, mj.heavy_ball(0.1, 0.9), **args)


def test_loss_and_start_errors():
    m = mj.heavy_ball(0.1, 0.9)
    with pytest.raises(TypeError, match="must return a scalar"):
        mj.iterate(lambda u: u**2, U0, m, 3)
    with pytest.raises(TypeError, match="floating"):
        mj.iterate(lambda u: jnp.sum(u).astype(jnp.int32), U0, m, 3)
    with pytest.raises(ValueError, match="u0 must be finite"):
        mj.iterate(paper_quadratic(10.0), jnp.array([1.0, jnp.nan]), m, 3)
    with pytest.raises(TypeError, match="u0 must hold floating"):
        mj.iterate(paper_quadratic(10.0), jnp.array([1, 1]), m, 3)
