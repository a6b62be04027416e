"""`sweep`: any loss over a grid of (method, lam, h, seed) in one compiled call, against the same
points run one by one, closed forms and the convergence engine; bad input."""

import closed_form as cf
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

import momentum_jax as mj

U0 = jnp.array([1.0, 1.0])
QUAD = mj.paper_quadratic(10.0)


def mlp_problem():
    """A small MLP (2-8-8-1, tanh) regressing a smooth function of 2 inputs."""
    model = eqx.nn.MLP(2, 1, 8, 2, activation=jnp.tanh, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (64, 2))
    y = jnp.sin(x[:, :1]) * jnp.cos(x[:, 1:])

    def loss(net):
        return jnp.mean((jax.vmap(net)(x) - y) ** 2)

    return model, loss


def _compare_one_by_one(every_point: bool):
    """A 1024-point sweep (HB, NAG x 16 lams x 32 h) of a small MLP against the same points run
    one by one: the same divergence step everywhere; the same losses to rounding where the run
    stayed bounded (near the edge of stability, rounding differences between the batched and
    the single computation grow: at most ~3e-6 relative measured; typically 1e-15)."""
    model, loss = mlp_problem()
    hs = np.geomspace(0.02, 4.0, 32)
    lams = np.linspace(0.0, 0.95, 16)
    kw = dict(methods=("hb", "nag"), steps=40, record_every=10)
    sw = mj.sweep(loss, model, hs=hs, lams=lams, **kw)
    assert sw.final_loss.shape == (2, 16, 32, 1) and sw.diverged_at.size == 1024
    assert np.any(sw.diverged) and np.any(~sw.diverged)  # the grid reaches instability
    rng = np.random.default_rng(0)
    pairs = [(j, k) for j in range(16) for k in range(32)]
    chosen = pairs if every_point else [pairs[i] for i in rng.choice(len(pairs), 32, replace=False)]
    relative = []
    for j, k in chosen:
        one = mj.sweep(loss, model, hs=[hs[k]], lams=[lams[j]], **kw)
        np.testing.assert_array_equal(one.diverged_at[:, 0, 0], sw.diverged_at[:, j, k])
        ok = ~sw.diverged[:, j, k, 0]
        relative += list(np.abs(one.final_loss[ok, 0, 0, 0] / sw.final_loss[ok, j, k, 0] - 1))
    assert max(relative) < 1e-5 and np.median(relative) < 1e-12
    # and against the library's memory-light loop where nothing diverged
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def flat(p):
        return loss(eqx.combine(p, static))

    for i, name in enumerate(("hb", "nag")):
        for j, k in [(0, 0), (8, 10), (15, 5)]:
            assert not sw.diverged[i, j, k, 0]
            one = mj.iterate_final(flat, params, mj.method_from_name(name, hs[k], lams[j]), 40)
            np.testing.assert_allclose(sw.final_loss[i, j, k, 0], float(one.loss), rtol=1e-12)


def test_a_1024_point_sweep_of_an_mlp_equals_points_run_one_by_one():
    _compare_one_by_one(every_point=False)


@pytest.mark.slow
def test_a_1024_point_sweep_of_an_mlp_equals_every_point_run_one_by_one():
    _compare_one_by_one(every_point=True)


def test_closed_form_quadratic_curve_and_gd():
    hs = 2.0 ** -np.arange(3, 8)  # all stable (h kappa < 2 for GD)
    sw = mj.sweep(QUAD, U0, hs=hs, lams=[0.5], methods=("hb", "gd"), steps=64, record_every=8)
    n = np.arange(8, 65, 8)
    for i, make in enumerate((lambda h: mj.heavy_ball(h, 0.5), mj.gradient_descent)):
        for k, h in enumerate(hs):
            us = cf.discrete([10.0, 1.0], [1.0, 1.0], make(h), n)
            ref = 0.5 * (10.0 * us[:, 0] ** 2 + us[:, 1] ** 2)
            np.testing.assert_allclose(sw.curve[i, 0, k, 0], ref, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(sw.curve_steps, n)


def test_distance_to_the_gradient_flow_equals_the_engine():
    h, lam, steps = 2.0**-6, 0.9, 128
    sw = mj.sweep(
        QUAD,
        U0,
        hs=[h],
        lams=[lam],
        steps=steps,
        record_every=1,
        models=("gradient_flow", "modified_flow"),
    )
    st = mj.convergence_study(
        QUAD, U0, hs=[h], lams=[lam], T=steps * h, models=("gradient_flow", "modified_flow")
    )
    for model in ("gradient_flow", "modified_flow"):
        np.testing.assert_allclose(
            sw.distances[model][:, 0, 0, 0], st.errors[model][:, 0, 0], rtol=1e-9
        )


def test_sharpness_at_chosen_steps_and_seeds():
    model, loss = mlp_problem()

    def init(key):
        return eqx.nn.MLP(2, 1, 8, 2, activation=jnp.tanh, key=key)

    sw = mj.sweep(
        loss,
        init,
        hs=[0.1],
        lams=[0.9],
        methods=("hb",),
        steps=30,
        seeds=[0, 1, 2],
        record_every=10,
        sharpness_at=[10, 30],
        sharpness_rtol=1e-10,
    )
    assert sw.sharpness.shape == (1, 1, 1, 3, 2) and sw.sharpness_steps.tolist() == [10, 30]
    assert len(set(np.round(sw.final_loss[0, 0, 0], 12))) == 3  # three different starts
    params, static = eqx.partition(init(jax.random.key(1)), eqx.is_inexact_array)

    def flat(p):
        return loss(eqx.combine(p, static))

    us = mj.iterate(flat, params, mj.heavy_ball(0.1, 0.9), 30)
    at30 = jax.tree.map(lambda x: x[30], us)
    ref = mj.top_hessian_eigenvalue(flat, at30, rtol=1e-10).value
    np.testing.assert_allclose(sw.sharpness[0, 0, 0, 1, 1], float(ref), rtol=1e-6)


def test_mini_batches_in_fixed_order_equal_train():
    x = jax.random.uniform(jax.random.key(3), (60, 4))
    params0 = {"W": jnp.full((4, 4), 0.1), "b": jnp.zeros(4)}

    def per_example(p, batch):
        return jnp.sum((batch @ p["W"] + p["b"][None, :] - batch) ** 2, axis=-1)

    sw = mj.sweep(
        per_example,
        params0,
        hs=[0.05],
        lams=[0.9],
        methods=("hb", "nag"),
        steps=30,
        data=x,
        batch_size=20,
    )
    for i, scheme in enumerate(("hb", "nag")):
        ref = mj.train(
            scheme, params0, x, 0.05, epochs=10, batch_size=20, lam=0.9, loss=per_example
        )
        np.testing.assert_allclose(sw.final_loss[i, 0, 0, 0], float(ref.losses[-1]), rtol=1e-12)


def test_new_values_do_not_recompile():
    kw = dict(lams=[0.5, 0.9], steps=32, record_every=8)
    mj.sweep(QUAD, U0, hs=[0.1, 0.05, 0.01], **kw)
    hs = np.array([0.2, 0.02, 0.002])  # made outside the counted block
    with count_compiles() as compiles:
        mj.sweep(QUAD, U0, hs=hs, **(kw | {"lams": [0.1, 0.3]}))
    assert compiles.n == 0


def test_nan_at_some_points_and_everything_diverging():
    def partly_nan(u):  # finite near the start, NaN once |u| > 3: only the unstable points
        return 0.5 * (10.0 * u[0] ** 2 + u[1] ** 2) + jnp.sqrt(3.0 - jnp.linalg.norm(u))

    hs = np.array([0.5, 0.05, 0.005])
    sw = mj.sweep(partly_nan, U0, hs=hs, lams=[0.9], steps=200, record_every=50)
    assert np.all(sw.diverged[:, 0, 0]) and not np.any(sw.diverged[:, 0, 1:])
    assert np.all(np.isfinite(sw.final_loss[:, :, 1:]))  # the others are untouched
    assert np.all(sw.diverged_at[:, 0, 0] <= 50)  # flagged where the NaN appeared
    assert np.all(np.isnan(sw.curve[:, 0, 0, 0, 1:]))  # the curve says where it stopped
    every = mj.sweep(QUAD, U0, hs=[1.0, 2.0], lams=[0.5, 0.9], steps=100)
    assert np.all(every.diverged) and every.summary_line().endswith("8 diverged")
    assert np.all(np.isfinite(every.final_loss)) and np.all(every.diverged_at >= 1)


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(hs=[]), ValueError, "at least one"),
        (dict(lams=[]), ValueError, "at least one"),
        (dict(lams=[1.0]), ValueError, "lams="),
        (dict(hs=[-0.1]), ValueError, "hs="),
        (dict(methods=("adam",)), ValueError, "method='adam'"),
        (dict(steps=0), ValueError, "steps"),
        (dict(record_every=7), ValueError, "record_every"),
        (dict(steps=8, record_every=4, sharpness_at=[6]), ValueError, "multiples of record_every"),
        (dict(seeds=[0]), TypeError, "function key -> params"),
        (dict(progress="yes"), TypeError, "progress"),
        (dict(init="random"), ValueError, "init='random'"),
    ],
)
def test_bad_input_is_refused_before_compiling(kwargs, error, text):
    args = dict(hs=[0.1], lams=[0.5], steps=4) | kwargs
    with pytest.raises(error, match=text):
        mj.sweep(QUAD, U0, **args)


def test_cli_sweep_writes_the_sweep_and_a_plot(tmp_path, capsys):
    from momentum_jax._cli import main

    out, png = tmp_path / "s.json", tmp_path / "s.png"
    argv = [
        "sweep",
        "--loss",
        "quadratic",
        "--lam",
        "0:0.9:4",
        "--h",
        "2^-1:2^-6:6",
        "--steps",
        "200",
        "--record-every",
        "50",
        "--out",
        str(out),
        "--plot",
        str(png),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("48 runs of 200 steps") and "largest h that stayed bounded" in text
    back = mj.load_sweep(out)
    assert back.final_loss.shape == (2, 4, 6, 1) and back.curve_steps.tolist() == [
        50,
        100,
        150,
        200,
    ]
    direct = mj.sweep(QUAD, U0, hs=back.hs, lams=back.lams, steps=200, record_every=50)
    np.testing.assert_array_equal(back.diverged_at, direct.diverged_at)
    np.testing.assert_allclose(back.final_loss, direct.final_loss, rtol=1e-12)
    assert png.stat().st_size > 1000


@pytest.mark.parametrize(
    "extra, text",
    [
        (["--lam", "1.2"], "lams=[1.2]"),
        (["--h", "0:1:4"], "--h bounds"),
        (["--h", "1:2:x"], "A:B:n"),
        (["--out", "x.txt"], "must end in .json or .nc"),
        (["--method", "adam"], "--method got adam"),
        (["--steps", "0"], "--steps expects an integer >= 1"),
        (["--plot", "p.png", "--quantity", "distance:gradient_flow"], "quantity"),
    ],
)
def test_cli_sweep_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch, extra, text):
    from momentum_jax._cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "--loss", "quadratic", "--lam", "0.5", "--h", "0.1", "--steps", "5"]
    argv = argv + extra if "--steps" not in extra else argv[:-2] + extra
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and text in err


def test_sweep_of_hundreds_with_diverging_points():
    # 2 methods x 10 momenta x 10 learning rates = 200 points; HB/NAG with h kappa well beyond
    # their stability bounds diverge, the rest must be what they are when run alone (to the last
    # bit but one: the lane count, and with it XLA's vectorisation, differs between the runs).
    loss = mj.paper_quadratic(20.0)
    hs = 2.0 ** -np.arange(0, 10)
    lams = np.linspace(0.0, 0.9, 10)
    st = mj.convergence_study(loss, U0, hs=hs, lams=lams, T=16.0, models=("gradient_flow",))
    assert st.diverged_at.size == 200
    bad = st.diverged_at >= 0
    assert 5 <= bad.sum() < 120
    assert np.all(bad[:, :, 0])  # h = 1, h kappa = 20: every method and momentum diverges
    assert not np.any(bad[:, :, 5:])  # small h: none does
    assert np.all(np.isnan(st.errors["gradient_flow"][bad]))
    assert np.all(np.isfinite(st.errors["gradient_flow"][~bad]))
    assert f"{bad.sum()} diverged" in st.summary_line()
    assert all(s.startswith("diverged at step") for s in st.status[bad])
    alone = mj.convergence_study(
        loss, U0, hs=hs[5:], lams=lams[[3, 9]], T=16.0, models=("gradient_flow",)
    )
    np.testing.assert_allclose(
        alone.errors["gradient_flow"], st.errors["gradient_flow"][:, [3, 9], 5:], rtol=4e-16, atol=0
    )
    assert np.all(np.isfinite(st.orders["gradient_flow"]))  # fits use the valid points only
