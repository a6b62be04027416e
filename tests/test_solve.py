"""`solve` against the closed forms on the paper's quadratic (paper Figs 1-5)."""

import re
from pathlib import Path

import closed_form as cf
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj
from momentum_jax._losses import paper_quadratic

TS = np.linspace(0.0, 2.0, 129)
U0 = jnp.array([1.0, 1.0])


@pytest.mark.parametrize("make", [mj.heavy_ball, mj.nesterov])
@pytest.mark.parametrize("h", [2.0**-4, 2.0**-10, 2.0**-17])
@pytest.mark.parametrize(
    "model, velocity",
    [
        ("gradient_flow", None),
        ("modified_flow", None),
        ("hamiltonian", "taylor"),
        ("hamiltonian", "paper"),
        ("hamiltonian", "manifold"),
        ("hessian_damped", "taylor"),
        ("hessian_damped", "manifold"),
    ],
)
@pytest.mark.parametrize("closed_form", [False, True])
def test_solve_equals_closed_form(make, h, model, velocity, closed_form):
    kappa = 20.0
    m = make(h, 0.9)
    solver = mj.ClosedForm() if closed_form else None
    loss = paper_quadratic(kappa)
    obj = mj.MODELS[model](velocity=velocity) if velocity else mj.MODELS[model]()
    got = mj.solve(loss, U0, m, TS, model=obj, solver=solver)
    ref = cf.continuous([kappa, 1], [1, 1], m, TS, model=model, velocity=velocity or "taylor")
    # relative to the solution's size: 1e-9 for diffrax (the stated accuracy of the solver
    # defaults), 1e-14 for the closed form (solver=ClosedForm(), exact to rounding)
    tol = 1e-14 if closed_form else 1e-9
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol * np.max(np.abs(ref)))


def test_printed_constant_and_explicit_velocity():
    m = mj.heavy_ball(2.0**-6, 0.9)
    loss = paper_quadratic(5.0)
    got = mj.solve(loss, U0, m, TS, model=mj.ModifiedFlow(constant="printed"))
    ref = cf.continuous([5, 1], [1, 1], m, TS, model="modified_flow", constant="printed")
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11)
    v0 = jnp.array([-3.0, 0.5])
    got = mj.solve(loss, U0, m, TS, model=mj.Hamiltonian(velocity=v0))
    ref = cf.continuous([5, 1], [1, 1], m, TS, model="hamiltonian", velocity=np.asarray(v0))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11)


def test_initial_velocities_follow_theory():
    # docs/theory.md §4: for HB the Taylor-matched start is half the gradient step; eq. (12) is
    # (1 - 2 alpha)/(2 alpha - lam + 1) = -lam/2 times -grad Phi.
    m = mj.heavy_ball(0.01, 0.9)
    loss = paper_quadratic(5.0)
    g = jax.grad(loss)(U0)
    t0 = jnp.array([0.0])
    _, v = mj.solve(loss, U0, m, t0, model=mj.Hamiltonian(velocity="taylor"), return_velocity=True)
    np.testing.assert_allclose(v[0], -0.5 * g, rtol=1e-14)
    _, v = mj.solve(loss, U0, m, t0, model=mj.Hamiltonian(velocity="paper"), return_velocity=True)
    np.testing.assert_allclose(v[0], 0.45 * g, rtol=1e-14)


def test_solve_works_on_pytrees():
    def loss(p):
        return 0.5 * (3.0 * p["a"] ** 2 + jnp.sum(p["b"] ** 2))

    p0 = {"a": jnp.array(1.0), "b": jnp.array([1.0, -2.0])}
    out = mj.solve(loss, p0, mj.nesterov(0.01, 0.5), TS, model="modified_flow")
    ref = cf.continuous([3, 1, 1], [1, 1, -2], mj.nesterov(0.01, 0.5), TS, model="modified_flow")
    np.testing.assert_allclose(out["a"], ref[:, 0], atol=1e-12)
    np.testing.assert_allclose(out["b"], ref[:, 1:], atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(model="nope"), "model='nope'"),
        (dict(model=lambda: mj.Hamiltonian(velocity="fast")), "velocity='fast'"),
        (dict(model=lambda: mj.ModifiedFlow(constant="typo")), "constant='typo'"),
        (dict(model=lambda: mj.ModifiedFlow(order=-1)), "order=-1"),
    ],
)
def test_solve_argument_errors(kwargs, text):
    with pytest.raises(ValueError, match=text.replace("(", r"\(")):
        kwargs = {k: v() if callable(v) else v for k, v in kwargs.items()}
        mj.solve(paper_quadratic(5.0), U0, mj.heavy_ball(0.1, 0.9), TS, **kwargs)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(model="hamiltonian", velocity="paper"), "model=mj.Hamiltonian(velocity='paper')"),
        (dict(model="modified_flow", constant="printed"), "mj.ModifiedFlow(constant='printed')"),
        (dict(model="modified_flow", order=2), "mj.ModifiedFlow(order=2)"),
        (dict(model="hamiltonian", stiff=True), "unexpected keyword argument 'stiff'"),
    ],
)
def test_model_options_go_on_the_model_object(kwargs, text):
    # the options of a model are the fields of its object; the flags beside an alias are
    # refused with what to write instead
    with pytest.raises(TypeError, match=re.escape(text)):
        mj.solve(paper_quadratic(5.0), U0, mj.heavy_ball(0.1, 0.9), TS, **kwargs)


def test_hamiltonian_needs_positive_alpha():
    # alpha = (1 + lam - 2 a (1 - lam))/2 <= 0 for a large look-ahead
    with pytest.raises(ValueError, match="alpha"):
        mj.solve(paper_quadratic(5.0), U0, mj.Momentum(0.1, 0.5, 2.0), TS, model="hamiltonian")


def test_ts_must_be_sorted():
    with pytest.raises(ValueError, match="ts must be"):
        mj.solve(
            paper_quadratic(5.0),
            U0,
            mj.heavy_ball(0.1, 0.9),
            jnp.array([1.0, 0.5]),
            model="gradient_flow",
        )


def test_shared_solve_grows_its_table_in_the_sweep_as_in_the_study():
    # Rosenbrock's gradient flow needs about 7200 solver steps at the default tolerances, more
    # than the first dense table (4096 steps): both engines run again with a larger table (the
    # sweep used to give NaN), and they then compare with the same solve: the sweep's distance
    # over every step equals the study's Euclidean error to 1e-12 (relative; the two take the
    # maximum of the same numbers, up to the rounding of their evaluation times)
    loss = mj.get_loss("rosenbrock")
    hs, steps = [2.0**-8], 256
    sw = mj.sweep(
        loss.fn,
        loss.u0,
        hs=hs,
        lams=[0.5],
        methods=("hb",),
        steps=steps,
        record_every=1,
        models=("gradient_flow",),
        solver=mj.SolverConfig(max_steps=2**14),
    )
    st = mj.convergence_study(
        loss.fn,
        loss.u0,
        hs=hs,
        lams=[0.5],
        methods=("hb",),
        models=("gradient_flow",),
        T=steps * hs[0],
        solver=mj.SolverConfig(max_steps=2**14),
    )
    assert st.config["solver"]["dense_steps"] == 2**14
    distance = float(sw.distances["gradient_flow"][0, 0, 0, 0])
    error = float(st.errors["gradient_flow"][0, 0, 0])
    assert np.isfinite(distance) and distance > 0
    np.testing.assert_allclose(distance, error, rtol=1e-12)


def test_every_diffrax_solve_goes_through_the_one_wrapper():
    # one place sets the package's solve options (never raise, forward-mode adjoint):
    # `_solve.diffeqsolve`; the engines, the SDE and the vanishing limits all call it
    root = Path(mj.__file__).parent
    files = sorted(root.rglob("*.py"))
    direct = [str(p.relative_to(root)) for p in files if "diffrax.diffeqsolve(" in p.read_text()]
    assert direct == ["_solve.py"]
