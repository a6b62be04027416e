"""`SolverConfig`: every field validated, diffrax solvers accepted, the float32 preset, the step
budget of each solve."""

import diffrax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import TS, U0, fake_study_loop, half_square, quad5

import momentum_jax as mj
from momentum_jax._losses import paper_quadratic

# -- 2. SolverConfig: every field validated, diffrax solvers, the float32 preset --------------


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        (dict(rtol=-1.0), ValueError, r"rtol=-1.0 is outside the allowed range \(0, 1\)"),
        (dict(rtol=0.0), ValueError, r"rtol=0.0 is outside the allowed range \(0, 1\)"),
        (dict(rtol=1.0), ValueError, r"rtol=1.0 is outside the allowed range \(0, 1\)"),
        (dict(rtol=float("nan")), ValueError, r"rtol=nan is outside the allowed range"),
        (dict(rtol="1e-6"), TypeError, "rtol must be a real number"),
        (dict(rtol=True), TypeError, "rtol must be a real number"),
        (dict(atol=-1e-9), ValueError, r"atol=-1e-09 is outside the allowed range \[0, inf\)"),
        (dict(atol=float("inf")), ValueError, "atol=inf is outside the allowed range"),
        (
            dict(max_steps=0),
            ValueError,
            "max_steps=0 is outside the allowed range: an integer >= 1",
        ),
        (dict(max_steps=2.5), TypeError, "max_steps must be an integer >= 1"),
        (dict(window_steps=0), ValueError, "window_steps=0 is outside the allowed range"),
        (dict(dense_steps=-3), ValueError, "dense_steps=-3 is outside the allowed range"),
        (dict(method="tsit5"), TypeError, "method must be a diffrax solver"),
        (dict(method=diffrax.Tsit5), TypeError, "method must be a diffrax solver"),
    ],
)
def test_solver_config_validates_every_field(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        mj.SolverConfig(**kwargs)


@pytest.mark.parametrize("entry", ["solve", "convergence_study"])
def test_solver_argument_must_be_a_config_or_a_diffrax_solver(entry):
    m = mj.heavy_ball(0.1, 0.5)
    call = {
        "solve": lambda: mj.solve(half_square, U0, m, TS, model="gradient_flow", solver="dopri5"),
        "convergence_study": lambda: mj.convergence_study(
            half_square, U0, hs=[0.1], lams=[0.5], T=1.0, solver="dopri5"
        ),
    }[entry]
    with pytest.raises(TypeError, match="solver must be a SolverConfig or a diffrax solver"):
        call()


def test_diffrax_solver_accepted_directly():
    loss = paper_quadratic(5.0)
    m = mj.heavy_ball(2.0**-4, 0.5)
    exact = np.exp(-np.outer(np.asarray(TS), [5.0, 1.0]) / (1 - 0.5))
    for solver in (diffrax.Dopri5(), mj.SolverConfig(method=diffrax.Dopri5())):
        u = mj.solve(loss, U0, m, TS, model="gradient_flow", solver=solver)
        np.testing.assert_allclose(u, exact, rtol=1e-9)
    st = mj.convergence_study(
        loss,
        U0,
        hs=[2.0**-4],
        lams=[0.5],
        T=1.0,
        models=("gradient_flow",),
        solver=diffrax.Dopri5(),
    )
    assert st.config["solver"]["method"] == "Dopri5" and st.config["solver"]["rtol"] == 1e-12
    assert np.all(st.status == "ok")


def test_float32_gets_the_float32_tolerances(monkeypatch):
    assert mj.SolverConfig.for_dtype(jnp.float32).rtol == 1e-6
    assert mj.SolverConfig.for_dtype(jnp.float64) == mj.SolverConfig()
    loss, m = quad5, mj.heavy_ball(2.0**-4, 0.9)  # (no float64 data: the run stays float32)
    u32 = U0.astype(jnp.float32)
    preset = mj.SolverConfig.for_dtype(jnp.float32)
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    with pytest.warns(RuntimeWarning, match="resolution"):
        u = mj.solve(loss, u32, m, TS, model="hamiltonian")  # solver=None: the float32 preset
        np.testing.assert_array_equal(
            u, mj.solve(loss, u32, m, TS, model="hamiltonian", solver=preset)
        )
        st = mj.convergence_study(loss, u32, hs=[2.0**-4], lams=[0.9], T=1.0)
    assert u.dtype == jnp.float32
    np.testing.assert_allclose(u, mj.solve(loss, U0, m, TS, model="hamiltonian"), atol=2e-5)
    assert st.config["solver"]["rtol"] == 1e-6 and st.config["solver"]["atol"] == 1e-8


@pytest.mark.slow
def test_float32_hamiltonian_study_succeeds_with_the_preset():
    # with the float64 tolerances every hamiltonian point failed (after 43 s)
    with pytest.warns(RuntimeWarning, match="resolution"):
        st = mj.convergence_study(
            quad5,
            U0.astype(jnp.float32),
            hs=[2.0**-4, 2.0**-5],
            lams=[0.9],
            T=1.0,
            models=("hamiltonian",),
        )
    assert np.all(st.status == "ok") and np.all(np.isfinite(st.errors["hamiltonian"]))


def test_max_steps_bounds_each_solve_in_total():
    # hamiltonian solves over T = 2 take about 1220 (h = 2^-4) and 1660 (h = 2^-5) solver steps,
    # in windows of 64: with max_steps = 1400 the second fails, the first does not.
    st = mj.convergence_study(
        paper_quadratic(5.0),
        U0,
        hs=[2.0**-4, 2.0**-5],
        lams=[0.9],
        methods=("hb",),
        T=2.0,
        models=("hamiltonian",),
        solver=mj.SolverConfig(max_steps=1400),
    )
    steps = st.solver_steps["hamiltonian"][0, 0]
    assert steps[0] < 1400 and st.status[0, 0, 0] == "ok"
    assert "maximum number of solver steps" in st.status[0, 0, 1]
