"""One divergence rule (`momentum_jax._runtime`): the same diverging run gives the same
`diverged_at`, the same frozen state and the same losses through `iterate_final`, `sweep`,
`train`, `parameter_gap` and `convergence_study`, all against a NumPy loop written here; the
limit is validated identically everywhere and traced."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

import momentum_jax as mj

KAPPA = 10.0
A = np.diag([KAPPA, 1.0])  # the paper's quadratic 1/2 (kappa u_1^2 + u_2^2)
LOSS = mj.paper_quadratic(KAPPA)
U0 = np.array([1.0, 1.0])
DATA = np.zeros((1, 1))  # one dummy example: train's step is then the deterministic HB step


def per_example(params, batch):
    """The quadratic as a per-example loss of `train` (the same value for every example)."""
    return jnp.broadcast_to(LOSS(params), batch.shape[:1])


def numpy_divergence(h, lam, a, steps, limit, u0=U0):
    """`(diverged_at, u_last, losses)`: eq. (7) in scaled-velocity form (`w_0 = 0`) until the
    first step whose iterate is not finite or has norm above `limit * max(1, |u0|)`; `u_last`
    is the last bounded iterate and `losses` the losses of `u_0 .. u_last`."""
    bound = limit * max(1.0, float(np.linalg.norm(u0)))
    u, w = np.array(u0, dtype=float), np.zeros(2)
    losses = [0.5 * u @ A @ u]
    for n in range(1, steps + 1):
        w_new = lam * w - A @ (u + h * a * w)
        u_new = u + h * w_new
        size = np.linalg.norm(u_new)
        if not np.isfinite(size) or size > bound:
            return n, u, np.array(losses)
        u, w = u_new, w_new
        losses.append(0.5 * u @ A @ u)
    return -1, u, np.array(losses)


# HB is unstable beyond h kappa = 2 (1 + lam) = 3.8: h = 0.5 diverges (|u_n| ~ 2.9^n)
H, LAM, STEPS = 0.5, 0.9, 200


@pytest.mark.parametrize("limit", [None, 1e3, 1e30])
def test_the_same_diverging_run_diverges_at_the_same_step_everywhere(limit):
    kw = {} if limit is None else {"divergence_limit": limit}
    n, u_last, losses = numpy_divergence(H, LAM, 0.0, STEPS, 1e8 if limit is None else limit)
    assert 0 < n < STEPS
    u0 = jnp.asarray(U0)

    fin = mj.iterate_final(LOSS, u0, mj.heavy_ball(H, LAM), STEPS, **kw)
    assert int(fin.diverged_at) == n
    np.testing.assert_allclose(fin.u, u_last, rtol=1e-13)  # frozen at u_{n-1}
    np.testing.assert_allclose(fin.loss, losses[-1], rtol=1e-13)
    np.testing.assert_allclose(fin.min_loss, losses.min(), rtol=1e-13)

    sw = mj.sweep(LOSS, u0, hs=[H], lams=[LAM], methods=("hb",), steps=STEPS, record_every=4, **kw)
    assert int(sw.diverged_at[0, 0, 0, 0]) == n
    np.testing.assert_allclose(sw.final_loss[0, 0, 0, 0], losses[-1], rtol=1e-13)
    np.testing.assert_allclose(sw.min_loss[0, 0, 0, 0], losses.min(), rtol=1e-13)
    curve = sw.curve[0, 0, 0, 0]
    assert np.all(np.isnan(curve[sw.curve_steps >= n]))
    np.testing.assert_allclose(
        curve[sw.curve_steps < n], losses[sw.curve_steps[sw.curve_steps < n]]
    )

    tr = mj.train("hb", u0, DATA, H, lam=LAM, epochs=STEPS, batch_size=1, loss=per_example, **kw)
    assert int(tr.diverged_at) == n and int(tr.diverged_epoch) == n  # one step an epoch
    np.testing.assert_allclose(tr.params, u_last, rtol=1e-13)
    np.testing.assert_allclose(tr.losses[:n], losses, rtol=1e-13)
    assert np.all(np.isnan(tr.losses[n:]))

    gap = mj.parameter_gap(
        "hb", "hb", u0, DATA, H, lam=LAM, steps=STEPS, batch_size=1, loss=per_example, **kw
    )
    assert gap.diverged_at.tolist() == [n, n] and gap.max_gap == np.inf

    st = mj.convergence_study(
        LOSS,
        u0,
        hs=[H],
        lams=[LAM],
        methods=("hb",),
        models=("gradient_flow",),
        T=STEPS * H,
        **kw,
    )
    assert int(st.diverged_at[0, 0, 0]) == n


def test_each_start_of_a_seeded_sweep_has_its_own_limit():
    # seed 1 starts 1e4 times farther out; its bound must not be seed 0's
    scales = {0: 1.0, 1: 1e4}
    sw = mj.sweep(
        LOSS,
        lambda key: jnp.asarray(U0) * scales[int(jax.random.key_data(key)[-1])],
        hs=[H],
        lams=[LAM],
        methods=("hb",),
        steps=STEPS,
        seeds=[0, 1],
    )
    for s, scale in scales.items():
        n, _, losses = numpy_divergence(H, LAM, 0.0, STEPS, 1e8, u0=U0 * scale)
        assert int(sw.diverged_at[0, 0, 0, s]) == n
        np.testing.assert_allclose(sw.final_loss[0, 0, 0, s], losses[-1], rtol=1e-13)
    # a linear recursion and a bound relative to each start: the same step (seed 0 diverged
    # later under one bound for all seeds, from the largest start)
    assert sw.diverged_at[0, 0, 0, 0] == sw.diverged_at[0, 0, 0, 1]


def _entry_points(limit):
    u0 = jnp.asarray(U0)
    kw = {"divergence_limit": limit}
    return [
        lambda: mj.iterate_final(LOSS, u0, mj.heavy_ball(H, LAM), 3, **kw),
        lambda: mj.sweep(LOSS, u0, hs=[H], lams=[LAM], methods=("hb",), steps=3, **kw),
        lambda: mj.train("hb", u0, DATA, H, epochs=1, batch_size=1, loss=per_example, **kw),
        lambda: mj.parameter_gap(
            "hb", "nag", u0, DATA, H, steps=3, batch_size=1, loss=per_example, **kw
        ),
        lambda: mj.convergence_study(
            LOSS, u0, hs=[H], lams=[LAM], methods=("hb",), models=("gradient_flow",), T=1.0, **kw
        ),
    ]


@pytest.mark.parametrize(
    "limit, exc, text",
    [
        (0.0, ValueError, r"divergence_limit=0.0 is outside the allowed range \(0, inf\)"),
        (-1.0, ValueError, r"divergence_limit=-1.0 is outside the allowed range \(0, inf\)"),
        (np.inf, ValueError, r"divergence_limit=inf is outside the allowed range \(0, inf\)"),
        (np.nan, ValueError, r"divergence_limit=nan is outside the allowed range \(0, inf\)"),
        ([1e8, 1e9], ValueError, r"divergence_limit must be a single number > 0"),
        ("1e8", TypeError, r"divergence_limit must be a number > 0, got '1e8'"),
    ],
)
def test_divergence_limit_is_validated_identically_before_compiling(limit, exc, text):
    for run in _entry_points(limit):
        with count_compiles() as compiles, pytest.raises(exc, match=text):
            run()
        assert compiles.n == 0


def test_a_new_divergence_limit_does_not_recompile():
    u0 = jnp.asarray(U0)
    first = mj.iterate_final(LOSS, u0, mj.heavy_ball(H, LAM), STEPS, divergence_limit=1e3)
    with count_compiles() as compiles:
        second = mj.iterate_final(LOSS, u0, mj.heavy_ball(H, LAM), STEPS, divergence_limit=1e6)
    assert compiles.n == 0
    assert 0 < int(first.diverged_at) < int(second.diverged_at)


@pytest.mark.parametrize("min_loss", [True, False])
def test_sweep_finds_the_first_divergent_step_inside_a_checked_chunk(min_loss):
    """`sweep` checks the bound once per chunk of steps and runs a chunk in which points crossed
    it again under the per-step guard: every point's `diverged_at`, final and minimum loss are
    those of the NumPy loop. HB crosses at steps 24 ... 110 (18 points in the first chunk, more
    than are run again at once; steps 76 and 110 inside later chunks and record blocks), NAG at
    steps 14 ... 24; with limit 1, HB at h = 0.3 leaves the bound at step 1 and is back inside it
    from step 2 on (a chunk that ends inside the bound still finds it). Without `min_loss`, HB
    and NAG run in one loop: the same steps."""
    u0 = jnp.asarray(U0)
    hs, lams = np.linspace(0.37, 0.45, 24), [0.9]
    sw = mj.sweep(
        LOSS,
        u0,
        hs=hs,
        lams=lams,
        methods=("hb", "nag"),
        steps=300,
        record_every=100,
        min_loss=min_loss,
    )
    for i, a in enumerate((0.0, 0.9)):  # HB, NAG (a = lam)
        for k, h in enumerate(hs):
            n, _, losses = numpy_divergence(h, 0.9, a, 300, 1e8)
            assert int(sw.diverged_at[i, 0, k, 0]) == n, (i, h)
            # the same floating-point operations in the same order: equal to rounding
            np.testing.assert_allclose(sw.final_loss[i, 0, k, 0], losses[-1], rtol=1e-12)
            if min_loss:
                np.testing.assert_allclose(sw.min_loss[i, 0, k, 0], losses.min(), rtol=1e-12)
    assert (sw.min_loss is None) == (not min_loss)
    assert sorted(set(sw.diverged_at[0, 0, :, 0].tolist()) & {76, 110}) == [76, 110]
    assert np.sum((sw.diverged_at[0] > 0) & (sw.diverged_at[0] <= 64)) > 16

    n, u_last, losses = numpy_divergence(0.3, 0.9, 0.0, 300, 1.0)
    assert n == 1 and np.linalg.norm(u_last) <= np.linalg.norm(U0)
    back = mj.sweep(
        LOSS,
        u0,
        hs=[0.3],
        lams=[0.9],
        methods=("hb",),
        steps=300,
        divergence_limit=1,
        min_loss=min_loss,
    )
    assert int(back.diverged_at[0, 0, 0, 0]) == 1
    np.testing.assert_allclose(back.final_loss[0, 0, 0, 0], losses[-1], rtol=1e-13)
    fin = mj.iterate_final(LOSS, u0, mj.heavy_ball(0.3, 0.9), 300, divergence_limit=1)
    assert int(fin.diverged_at) == 1


@pytest.mark.parametrize("min_loss", [True, False])
def test_sweep_runs_again_a_chunk_that_came_near_the_bound_without_crossing_it(min_loss):
    """The bare steps mark an iterate with a component beyond `bound / sqrt(d)` (`d = 2` here),
    which a norm above the bound needs but does not imply: such a chunk runs again under the
    per-step guard, which keeps the point. From `u0 = (1, 0.01)` with limit 1.2 (bound
    `1.2 |u0|`), the first iterates have `|u_1|` above `0.85 |u0|` for 2 to 9 steps while their
    norm stays below `|u0|`: no point diverges, and every final and minimum loss is the NumPy
    loop's."""
    u0 = np.array([1.0, 0.01])
    hs, lams = [2.0**-7, 2.0**-8, 2.0**-9], [0.0, 0.5]
    sw = mj.sweep(
        LOSS,
        jnp.asarray(u0),
        hs=hs,
        lams=lams,
        methods=("hb", "nag"),
        steps=150,
        divergence_limit=1.2,
        min_loss=min_loss,
    )
    assert np.all(sw.diverged_at == -1)
    for i, name in enumerate(("hb", "nag")):
        for j, lam in enumerate(lams):
            for k, h in enumerate(hs):
                a = 0.0 if name == "hb" else lam
                n, _, losses = numpy_divergence(h, lam, a, 150, 1.2, u0=u0)
                assert n == -1
                np.testing.assert_allclose(sw.final_loss[i, j, k, 0], losses[-1], rtol=1e-12)
                if min_loss:
                    np.testing.assert_allclose(sw.min_loss[i, j, k, 0], losses.min(), rtol=1e-12)


def test_sweep_finds_the_crossing_of_a_float32_pytree_as_iterate_final_does():
    """Two leaves in float32, each of norm below the bound when the whole crosses it (the bound
    is on the norm of all components together): every point's `diverged_at` and final loss are
    `iterate_final`'s, for points that cross in the first chunk, in later ones and never."""

    def loss(p):
        return 0.5 * (
            KAPPA * p["a"][0] ** 2 + p["a"][1] ** 2 + KAPPA * p["b"][0] ** 2 + p["b"][1] ** 2
        )

    start = {"a": jnp.ones(2, jnp.float32), "b": jnp.ones(2, jnp.float32)}
    hs, lams = np.linspace(0.375, 0.42, 7), [0.9]
    sw = mj.sweep(loss, start, hs=hs, lams=lams, methods=("hb", "nag"), steps=200, min_loss=False)
    crossed = []
    for i, name in enumerate(("hb", "nag")):
        for k, h in enumerate(hs):
            fin = mj.iterate_final(loss, start, mj.method_from_name(name, h, 0.9), 200)
            assert int(sw.diverged_at[i, 0, k, 0]) == int(fin.diverged_at), (name, h)
            np.testing.assert_allclose(sw.final_loss[i, 0, k, 0], fin.loss, rtol=1e-6)
            crossed.append(int(fin.diverged_at))
    assert min(c for c in crossed if c > 0) < 64 < max(crossed)  # first and later chunks
