"""The convergence engine against closed forms (paper Figs 1-5) and the acceptance numbers of the
paper's Figs 2 and 4."""

import json
import re

import closed_form as cf
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

import momentum_jax as mj
from momentum_jax._losses import double_well, paper_quadratic

U0 = jnp.array([1.0, 1.0])
MAKE = {name: (lambda h, lam, name=name: mj.method_from_name(name, h, lam)) for name in mj.METHODS}


def closed_form_errors(
    kappa,
    method,
    hs,
    model,
    *,
    init="zero",
    velocity="taylor",
    constant="corrected",
    lam=0.9,
    T=2.0,
    norm="euclidean",
):
    vel = "manifold" if init == "manifold" else velocity
    return np.array(
        [
            cf.error(
                [kappa, 1],
                [1, 1],
                MAKE[method](h, lam),
                T,
                model=model,
                init=init,
                velocity=vel,
                constant=constant,
                norm=norm,
            )
            for h in hs
        ]
    )


def study(kappa, hs, **kw):
    return mj.convergence_study(paper_quadratic(kappa), U0, hs=hs, lams=[0.9], T=2.0, **kw)


@pytest.mark.parametrize("init", ["zero", "manifold"])
def test_errors_equal_closed_forms(init):
    hs = 2.0 ** -np.arange(4, 12)
    models = ("gradient_flow", "hamiltonian", "modified_flow", "hessian_damped")
    st = study(10.0, hs, models=models, init=init)
    for model in models:
        for i, meth in enumerate(st.methods):
            ref = closed_form_errors(10.0, meth, hs, model, init=init)
            np.testing.assert_allclose(st.errors[model][i, 0], ref, rtol=1e-6)
    assert st.summary_line().startswith("16 grid points; 0 diverged")
    if init == "zero":
        assert np.all(st.status == "ok")
    else:  # the manifold series far outside its range (h L / (1 - lam)^2 up to 62.5): the
        # largest h start so far off that the error exceeds the solution (relative error 322)
        status = st.status.astype(str)
        assert np.all((status == "ok") | np.char.startswith(status, "relative error"))
        assert status[0, 0, 0].startswith("relative error") and status[0, 0, -1] == "ok"


def test_paper_velocity_and_printed_constant_equal_closed_forms():
    hs = 2.0 ** -np.arange(5, 11)
    st = study(5.0, hs, models=(mj.Hamiltonian(velocity="paper"),))
    st2 = study(5.0, hs, models=(mj.ModifiedFlow(constant="printed"),), init="manifold")
    assert st.models == ("hamiltonian[velocity='paper']",)
    assert st2.models == ("modified_flow[constant='printed']",)
    for i, meth in enumerate(st.methods):
        np.testing.assert_allclose(
            st.errors["hamiltonian[velocity='paper']"][i, 0],
            closed_form_errors(5.0, meth, hs, "hamiltonian", velocity="paper"),
            rtol=1e-6,
        )
        np.testing.assert_allclose(
            st2.errors["modified_flow[constant='printed']"][i, 0],
            closed_form_errors(5.0, meth, hs, "modified_flow", init="manifold", constant="printed"),
            rtol=1e-6,
        )


def test_rates_and_orders_are_computed_from_errors():
    hs = 2.0 ** -np.arange(6, 11)
    st = study(5.0, hs, models=("gradient_flow",), fit_points=3)
    e = st.errors["gradient_flow"]
    np.testing.assert_allclose(st.rates["gradient_flow"], np.log2(e[..., :-1] / e[..., 1:]))
    slope = np.polyfit(np.log(hs[-3:]), np.log(e[0, 0, -3:]), 1)[0]
    assert st.orders["gradient_flow"][0, 0] == pytest.approx(slope, rel=1e-12)


def test_second_call_with_new_values_does_not_recompile():
    hs = 2.0 ** -np.arange(4, 8)
    study(5.0, hs, models=("gradient_flow", "hamiltonian"))
    models = ("gradient_flow", "hamiltonian")
    with count_compiles() as compiles:
        a = study(5.0, hs / 2, models=models)  # other h, other step counts
        b = mj.convergence_study(
            paper_quadratic(5.0),
            U0,
            hs=hs,
            lams=[0.5],
            T=1.5,
            models=("gradient_flow", "hamiltonian"),
        )
        # the loss's array leaves are traced too: another kappa shares the compilation
        c = mj.convergence_study(
            paper_quadratic(17.0),
            U0,
            hs=hs,
            lams=[0.5],
            T=1.5,
            models=("gradient_flow", "hamiltonian"),
        )
    assert compiles.n == 0
    np.testing.assert_allclose(
        c.errors["gradient_flow"][0, 0],
        closed_form_errors(17.0, "hb", hs, "gradient_flow", lam=0.5, T=1.5),
        rtol=1e-6,
    )
    assert not np.allclose(a.errors["gradient_flow"], b.errors["gradient_flow"])


def test_divergent_points_are_flagged_and_excluded():
    # HB is stable for h kappa < 2 (1 + lam) = 3.8: with kappa = 20, h = 2^-1 and 2^-2 diverge.
    hs = 2.0 ** -np.arange(1, 8)
    st = mj.convergence_study(
        paper_quadratic(20.0),
        U0,
        hs=hs,
        lams=[0.9],
        T=10.0,
        models=("gradient_flow",),
        methods=("hb",),
    )
    assert np.all(st.diverged_at[0, 0, :2] > 0)
    assert np.all(st.diverged_at[0, 0, 2:] == -1)
    assert np.all(np.isnan(st.errors["gradient_flow"][0, 0, :2]))
    assert st.status[0, 0, 0].startswith("diverged at step ")
    assert np.all(np.isnan(st.rates["gradient_flow"][0, 0, :2]))
    # h = 2^-3 is stable but its error (1.61) exceeds the solution's norm (|u0| = 1.41):
    # outside the asymptotic regime, so its rate is left out too
    assert st.status[0, 0, 2].startswith("relative error")
    assert np.all(np.isfinite(st.rates["gradient_flow"][0, 0, 3:]))
    assert "2 diverged" in st.summary_line()
    # the others are exactly what they are when run alone
    alone = mj.convergence_study(
        paper_quadratic(20.0),
        U0,
        hs=hs[2:],
        lams=[0.9],
        T=10.0,
        models=("gradient_flow",),
        methods=("hb",),
    )
    np.testing.assert_array_equal(
        st.errors["gradient_flow"][..., 2:], alone.errors["gradient_flow"]
    )


def test_solver_failure_is_flagged_not_raised():
    hs = 2.0 ** -np.arange(6, 9)
    st = study(
        5.0, hs, models=("gradient_flow", "hamiltonian"), solver=mj.SolverConfig(max_steps=4)
    )
    assert np.all(st.diverged_at == -1)
    failures = st.solver_failure["hamiltonian"]
    assert np.all(failures != "") and "maximum number of solver steps" in failures[0, 0, 0]
    assert np.all(np.isnan(st.errors["hamiltonian"]))
    assert "solver failed (" in st.status[0, 0, 0]


def test_save_load_roundtrip(tmp_path):
    hs = 2.0 ** -np.arange(2, 7)
    st = study(20.0, hs, models=("gradient_flow", "modified_flow"), methods=("hb",))
    path = tmp_path / "study.json"
    st.save(path)
    data = json.loads(path.read_text())
    assert data["axes"]["h"] == hs.tolist() and data["format"] == "momentum_jax.study"
    assert data["meta"]["versions"]["jax"] and data["meta"]["date"]
    back = mj.load_study(path)
    for model in st.models:
        np.testing.assert_array_equal(back.errors[model], st.errors[model])
        np.testing.assert_array_equal(back.rates[model], st.rates[model])
    np.testing.assert_array_equal(back.diverged_at, st.diverged_at)
    assert back.status.tolist() == st.status.tolist()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        json.dumps({"format": "something else"}),
        json.dumps([1, 2]),
        json.dumps({"format": "momentum_jax.study", "axes": {}}),
    ],
)
def test_load_rejects_foreign_and_corrupted_files(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="bad.json"):
        mj.load_study(path)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(hs=[]), "hs must contain"),
        (dict(hs=[0.01, 0.1]), "strictly decreasing"),
        (dict(hs=[0.1, -0.01]), "hs="),
        (dict(lams=[1.2]), "lams="),
        (dict(T=0.0), "T="),
        (dict(T=0.05), "T=0.05 is shorter"),
        (dict(methods=("hb", "adam")), "method='adam'"),
        (dict(models=("gradient_flow", "euler")), "model='euler'"),
        (dict(init="random"), "init='random'"),
        (dict(init_order=-1), "init_order=-1"),
        (dict(fit_points=1), "fit_points=1"),
    ],
)
def test_argument_errors(kwargs, text):
    args = dict(hs=[0.1, 0.05], lams=[0.9], T=1.0) | kwargs
    with pytest.raises(ValueError, match=text):
        mj.convergence_study(paper_quadratic(5.0), U0, **args)


@pytest.mark.parametrize(
    "lam, hs",
    [
        (0.5, 2.0 ** -np.arange(7, 12)),
        pytest.param(0.9, 2.0 ** -np.arange(10, 16), marks=pytest.mark.slow),
    ],
)
def test_nonconvex_orders(lam, hs):
    # the asymptotic regime needs h lbar |Hess Phi| small: smaller h for lam = 0.9
    st = mj.convergence_study(
        double_well,
        jnp.array([0.3, 1.0]),
        hs=hs,
        lams=[lam],
        T=1.0,
        models=("gradient_flow", "hamiltonian"),
    )
    assert np.all(np.abs(st.orders["gradient_flow"] - 1) < 0.15)
    assert np.all(np.abs(st.orders["hamiltonian"] - 1) < 0.15)
    st2 = mj.convergence_study(
        double_well,
        jnp.array([0.3, 1.0]),
        hs=hs,
        lams=[lam],
        T=1.0,
        models=("modified_flow", "hamiltonian"),
        init="manifold",
    )
    assert np.all(np.abs(st2.orders["modified_flow"] - 2) < 0.2)
    assert np.all(np.abs(st2.orders["hamiltonian"] - 2) < 0.2)


# ---- acceptance numbers on the paper's full grid (slow: h down to 2^-17) ----

HS_PAPER = 2.0 ** -np.arange(4, 18)
IDX_2M16 = 12  # rates[..., i] = log2(E(h_i)/E(h_i/2)), h_i = 2^-(4+i): i = 12 is h = 2^-16


@pytest.mark.slow
@pytest.mark.parametrize("kappa", [5.0, 10.0, 20.0])
def test_acceptance_zero_start(kappa):
    models = ("gradient_flow", "hamiltonian")
    st = study(kappa, HS_PAPER, models=models)
    for model in models:
        for i, meth in enumerate(st.methods):
            ref = closed_form_errors(kappa, meth, HS_PAPER, model)
            np.testing.assert_allclose(st.errors[model][i, 0], ref, rtol=1e-6)
    rates = st.rates
    assert np.all(rates["gradient_flow"][..., IDX_2M16] >= 0.9)
    assert np.all(np.diff(rates["gradient_flow"][..., 6:]) > 0)  # rising towards 1
    assert np.all(np.abs(rates["hamiltonian"][..., IDX_2M16] - 1) <= 0.05)
    paper = study(kappa, HS_PAPER, models=(mj.Hamiltonian(velocity="paper"),))
    (key,) = paper.models
    assert np.all(np.abs(paper.rates[key][..., IDX_2M16] - 1) <= 0.05)


@pytest.mark.slow
@pytest.mark.parametrize("kappa", [5.0, 10.0, 20.0])
def test_acceptance_manifold_start(kappa):
    models = ("hamiltonian", "modified_flow")
    st = study(kappa, HS_PAPER, models=models, init="manifold")
    for model in models:
        for i, meth in enumerate(st.methods):
            ref = closed_form_errors(kappa, meth, HS_PAPER, model, init="manifold")
            # errors reach 1e-11 here: 1e-6 relative plus a 1e-14 absolute rounding floor
            np.testing.assert_allclose(st.errors[model][i, 0], ref, rtol=1e-6, atol=1e-14)
        assert np.all(np.abs(st.rates[model][..., IDX_2M16] - 2) <= 0.05)
    printed = study(kappa, HS_PAPER, models=(mj.ModifiedFlow(constant="printed"),), init="manifold")
    (key,) = printed.models
    assert np.all(printed.rates[key][..., IDX_2M16] <= 1.1)


@pytest.mark.parametrize("R", [0, 2, 3])
def test_order_R_study_on_double_well(R):
    # discrete start on the order-R manifold (init_order=R), order-R modified flow
    hs = 2.0 ** -np.arange(4, 8)
    st = mj.convergence_study(
        double_well,
        jnp.array([0.3, 1.0]),
        hs=hs,
        lams=[0.5],
        T=1.0,
        models=(mj.ModifiedFlow(order=R),),
        init="manifold",
        init_order=R,
    )
    assert np.all(np.abs(st.orders[f"modified_flow[order={R}]"] - (R + 1)) < 0.25)
    assert st.config["init_order"] == R


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(hamiltonian_velocity="paper"), "models=(mj.Hamiltonian(velocity='paper'),)"),
        (dict(constant="printed"), "mj.ModifiedFlow(constant='printed')"),
        (dict(order=2), "mj.ModifiedFlow(order=2), and init_order= for the manifold start"),
        (dict(velocity="paper"), "model=mj.Hamiltonian(velocity='paper')"),
    ],
)
def test_model_options_go_on_the_model_objects(kwargs, text):
    # the engine takes no model options beside the models: the error says what to write
    with pytest.raises(TypeError, match=re.escape(text)):
        mj.convergence_study(paper_quadratic(5.0), U0, hs=[0.1], lams=[0.9], T=1.0, **kwargs)


def test_gd_is_gradient_descent_against_the_unscaled_flow():
    """`"gd"` is gradient descent (`lam = a = 0`) in the engine: its errors are those of GD
    against `u' = -grad Phi`, the same for every `lam` of the grid, and differ from HB's."""
    hs = 2.0 ** -np.arange(4, 9)
    models = ("gradient_flow", "hamiltonian", "modified_flow")
    st = mj.convergence_study(
        paper_quadratic(10.0),
        U0,
        hs=hs,
        lams=[0.5, 0.9],
        T=2.0,
        methods=("hb", "gd"),
        models=models,
    )
    for model in models:
        for j in range(2):
            np.testing.assert_allclose(
                st.errors[model][1, j], closed_form_errors(10.0, "gd", hs, model), rtol=1e-6
            )
    # the numbers: kappa 10, lam 0.9, h = 2^-5
    assert st.errors["gradient_flow"][1, 1, 1] == pytest.approx(0.0667, abs=5e-5)
    assert st.errors["gradient_flow"][0, 1, 1] == pytest.approx(0.884, abs=5e-4)
    # one point per h for gd, not one per (lam, h)
    assert st.config["points"] == 2 * len(hs) + len(hs)


def test_component_wise_max_norm_equals_closed_form():
    hs = 2.0 ** -np.arange(4, 10)
    st = study(10.0, hs, models=("gradient_flow", "hamiltonian"), norm="max")
    eu = study(10.0, hs, models=("gradient_flow",))
    for model in st.models:
        for i, meth in enumerate(st.methods):
            ref = closed_form_errors(10.0, meth, hs, model, norm="max")
            np.testing.assert_allclose(st.errors[model][i, 0], ref, rtol=1e-6)
    # the paper's Fig 2 values for HB, kappa 10 (read off its plot): max-norm, not Euclidean
    assert np.all(st.errors["gradient_flow"] < eu.errors["gradient_flow"])
    assert st.config["norm"] == "max"


def test_no_recompilation_for_progress_values_or_loss_data():
    hs = 2.0 ** -np.arange(4, 9)
    kw = dict(hs=hs, lams=[0.9], T=2.0, models=("gradient_flow", "hamiltonian"))
    calls_a, calls_b = [], []
    u0 = jnp.array([0.5, 0.5])  # (made outside the counted block: creating it compiles)
    mj.convergence_study(
        paper_quadratic(5.0), U0, progress=lambda d, t: calls_a.append((d, t)), **kw
    )
    with count_compiles() as compiles:
        other = mj.convergence_study(
            paper_quadratic(13.0),  # new loss data
            u0,  # new start
            progress=lambda d, t: calls_b.append((d, t)),  # a new callback
            **(kw | {"hs": hs * 0.75, "lams": [0.6]}),  # new h, new lam, same step counts pattern
        )
    assert compiles.n == 0
    assert calls_b and calls_b[-1][0] == calls_b[-1][1] == 2 * int(sum(np.floor(2.0 / (hs * 0.75))))
    assert all(b[0] <= b[1] for b in calls_b) and [b[0] for b in calls_b] == sorted(
        b[0] for b in calls_b
    )
    np.testing.assert_allclose(
        other.errors["gradient_flow"][0, 0],
        [
            cf.error([13.0, 1.0], [0.5, 0.5], mj.heavy_ball(h, 0.6), 2.0, model="gradient_flow")
            for h in hs * 0.75
        ],
        rtol=1e-6,
    )


def test_lanes_balance_the_work_and_failures_stop_early():
    """A wide grid of step counts 16 ... 1024 runs in about `max N` steps on the critical path,
    with total work close to `sum N`; diverging points stop costing work."""
    hs = 2.0 ** -np.arange(3, 10)
    lams = np.linspace(0.0, 0.9, 8)
    st = mj.convergence_study(
        paper_quadratic(10.0), U0, hs=hs, lams=lams, T=2.0, models=("gradient_flow",)
    )
    N = np.floor(2.0 / hs)
    c = st.config
    total = c["points"] * 0 + int(np.sum(N) * 2 * len(lams))
    critical = c["loop_iterations"] * c["chunk_size"]
    assert critical <= 1.25 * N.max() + 2 * c["chunk_size"]
    assert c["lanes"] * critical <= 2.0 * total
    assert np.all(st.status == "ok")
    # large h and kappa: HB/NAG diverge early; the loop does not run them to their last step
    big = mj.convergence_study(
        paper_quadratic(200.0), U0, hs=hs, lams=lams, T=2.0, models=("gradient_flow",)
    )
    assert np.any(big.diverged_at > 0)
    done = np.where(big.diverged_at > 0, big.diverged_at, N[None, None, :])
    assert (
        big.config["loop_iterations"] * big.config["chunk_size"]
        <= 1.25 * done.max() + 2 * c["chunk_size"]
    )
    assert np.all(np.unique(st.solver_steps["gradient_flow"]).size == 1)  # one shared solve


def test_undefined_start_is_refused_before_compiling():
    bad = mj.Momentum(0.1, 0.5, 1.0)  # 2 alpha - 1 + lam = 0 with 2 alpha - 1 != 0
    with pytest.raises(ValueError, match="velocity='taylor'"):
        mj.Hamiltonian().check(bad)
    mj.Hamiltonian(velocity="paper").check(bad)  # eq. (12) is defined there
    # gradient descent (lam = a = 0) takes the heavy-ball limit 1/2 of the taylor start
    st = mj.convergence_study(
        paper_quadratic(5.0),
        U0,
        hs=2.0 ** -np.arange(4, 7),
        lams=[0.0],
        T=1.0,
        models=("hamiltonian",),
    )
    assert np.all(st.status == "ok")
    np.testing.assert_allclose(
        st.errors["hamiltonian"][0, 0],
        [
            cf.error([5.0, 1.0], [1, 1], mj.heavy_ball(h, 0.0), 1.0, model="hamiltonian")
            for h in 2.0 ** -np.arange(4, 7)
        ],
        rtol=1e-6,
    )


def test_T_not_a_multiple_of_h_rounds_down():
    # T / h = 2.5 / 0.5 ... = 5.4: the errors are taken over n h <= T, i.e. N = floor(T / h)
    st = mj.convergence_study(
        paper_quadratic(5.0), U0, hs=[0.37, 0.185], lams=[0.9], T=2.0, models=("gradient_flow",)
    )
    assert st.config["steps"] == [5, 10]
    import closed_form as cf

    ref = cf.error([5, 1], [1, 1], mj.heavy_ball(0.37, 0.9), 2.0, model="gradient_flow")
    assert st.errors["gradient_flow"][0, 0, 0] == pytest.approx(ref, rel=1e-8)
