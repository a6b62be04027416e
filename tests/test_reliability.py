"""The failure modes listed in docs/RELIABILITY.md that are not covered next to their feature."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj
from momentum_jax._losses import paper_quadratic

U0 = jnp.array([1.0, 1.0])


def not_traceable(u):
    return float(np.sum(np.asarray(u) ** 2))  # NumPy on a traced value: cannot be differentiated


def vector_valued(u):
    return u**2


def integer_valued(u):
    return jnp.sum(u > 0)


@pytest.mark.parametrize(
    "loss, text",
    [
        (not_traceable, "loss 'not_traceable' cannot be evaluated"),
        (vector_valued, "loss 'vector_valued' must return a scalar"),
        (integer_valued, "loss 'integer_valued' must return a real floating scalar"),
        ("quadratic", "loss must be a callable"),
    ],
)
@pytest.mark.parametrize("entry", ["iterate", "solve", "convergence_study"])
def test_bad_losses_are_named_before_compiling(loss, text, entry):
    m = mj.heavy_ball(0.1, 0.9)
    call = {
        "iterate": lambda: mj.iterate(loss, U0, m, 3),
        "solve": lambda: mj.solve(loss, U0, m, jnp.array([0.0, 1.0]), model="gradient_flow"),
        "convergence_study": lambda: mj.convergence_study(loss, U0, hs=[0.1], lams=[0.9], T=1.0),
    }[entry]
    with pytest.raises(TypeError, match=text):
        call()


@pytest.mark.parametrize("entry", ["iterate", "solve", "convergence_study"])
def test_non_finite_start(entry):
    bad = jnp.array([1.0, jnp.inf])
    m = mj.heavy_ball(0.1, 0.9)
    loss = paper_quadratic(5.0)
    call = {
        "iterate": lambda: mj.iterate(loss, bad, m, 3),
        "solve": lambda: mj.solve(loss, bad, m, jnp.array([0.0, 1.0]), model="gradient_flow"),
        "convergence_study": lambda: mj.convergence_study(loss, bad, hs=[0.1], lams=[0.9], T=1.0),
    }[entry]
    with pytest.raises(ValueError, match="u0 must be finite"):
        call()


def test_T_not_a_multiple_of_h_rounds_down():
    # T / h = 2.5 / 0.5 ... = 5.4: the errors are taken over n h <= T, i.e. N = floor(T / h)
    st = mj.convergence_study(
        paper_quadratic(5.0), U0, hs=[0.37, 0.185], lams=[0.9], T=2.0, models=("gradient_flow",)
    )
    assert st.config["steps"] == [5, 10]
    import closed_form as cf

    ref = cf.error([5, 1], [1, 1], mj.heavy_ball(0.37, 0.9), 2.0, model="gradient_flow")
    assert st.errors["gradient_flow"][0, 0, 0] == pytest.approx(ref, rel=1e-8)


def test_float32_warns_about_resolution():
    with pytest.warns(RuntimeWarning, match="resolution 1.2e-07"):
        st = mj.convergence_study(
            paper_quadratic(5.0),
            U0.astype(jnp.float32),
            hs=[0.1, 0.05],
            lams=[0.9],
            T=1.0,
            models=("gradient_flow",),
        )
    assert np.all(np.isfinite(st.errors["gradient_flow"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float64: no warning
        mj.convergence_study(
            paper_quadratic(5.0), U0, hs=[0.1, 0.05], lams=[0.9], T=1.0, models=("gradient_flow",)
        )


def test_sweep_of_hundreds_with_diverging_points():
    # 2 methods x 10 momenta x 10 learning rates = 200 points; HB/NAG with h kappa well beyond
    # their stability bounds diverge, the rest must be what they are when run alone (to the last
    # bit but one: the lane count, and with it XLA's vectorisation, differs between the runs).
    loss = paper_quadratic(20.0)
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
