"""The benchmark's NumPy/SciPy baseline computes the same errors as `convergence_study`, so the
benchmark compares equal work (benchmarks/baseline_numpy.py, issue 5)."""

import importlib.util
from pathlib import Path

import closed_form as cf
import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj
from momentum_jax._losses import paper_quadratic

pytest.importorskip("scipy")
_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "baseline_numpy.py"
_spec = importlib.util.spec_from_file_location("baseline_numpy", _PATH)
baseline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(baseline)

HS = 2.0 ** -np.arange(4, 10)


def _study(kappa, solver=None):
    """The engine on the baseline's grid (the paper's quadratic, lam 0.9, T = 2)."""
    return mj.convergence_study(
        paper_quadratic(kappa),
        jnp.array([1.0, 1.0]),
        hs=HS,
        lams=[0.9],
        T=2.0,
        models=baseline.MODELS,
        solver=solver,
    )


def test_baseline_agrees_with_convergence_study():
    kappa = 20.0
    # solve_ivp (DOP853, rtol 1e-12) against diffrax (Tsit5, rtol 1e-12): the errors measured
    # (1e-4 ... 1) agree to a relative 1e-8 (observed: 3e-10 at worst, the hamiltonian model).
    base = baseline.errors([kappa, 1.0], [1.0, 1.0], hs=HS, lam=0.9, T=2.0)
    st = _study(kappa)
    assert st.methods == ("hb", "nag")
    for model in baseline.MODELS:
        np.testing.assert_allclose(base[model], st.errors[model][:, 0, :], rtol=1e-8, atol=0)


def test_baseline_discrete_loop_is_exact():
    m = mj.nesterov(2.0**-5, 0.9)
    us = baseline.discrete_trajectory(np.array([10.0, 1.0]), [1.0, 1.0], m.h, m.lam, m.a, 200)
    ref = cf.discrete([10.0, 1.0], [1.0, 1.0], m, np.arange(201))
    np.testing.assert_allclose(us, ref, rtol=0, atol=1e-13)


def test_closed_form_baseline_agrees_with_solve_ivp_and_the_engine():
    kappa = 10.0
    base = baseline.errors([kappa, 1.0], [1.0, 1.0], hs=HS, lam=0.9, T=2.0)
    closed = baseline.errors([kappa, 1.0], [1.0, 1.0], hs=HS, lam=0.9, T=2.0, closed_form=True)
    st = _study(kappa, mj.ClosedForm())
    for model in baseline.MODELS:
        np.testing.assert_allclose(closed[model], base[model], rtol=1e-8, atol=0)
        # both exact to rounding: they differ by the rounding of the discrete iterates
        np.testing.assert_allclose(st.errors[model][:, 0, :], closed[model], rtol=1e-10, atol=0)


def test_the_bare_vmap_baseline_is_the_same_run_as_iterate_final():
    """`benchmarks/bare.py` (the `sweep` rows' alternative) runs eq. (15) from a zero velocity:
    its final losses equal `iterate_final`'s to rounding (1e-12 relative over 300 steps)."""
    bare_spec = importlib.util.spec_from_file_location("bare", _PATH.parent / "bare.py")
    bare = importlib.util.module_from_spec(bare_spec)
    bare_spec.loader.exec_module(bare)
    loss, u0 = paper_quadratic(10.0), jnp.array([1.0, 1.0])
    methods = [mj.heavy_ball(0.1, 0.9), mj.nesterov(0.05, 0.5), mj.heavy_ball(0.02, 0.0)]
    h, lam, a = (jnp.asarray([float(getattr(m, f)) for m in methods]) for f in ("h", "lam", "a"))
    got = bare.final_losses(loss, 300)(u0, h, lam, a)
    ref = [float(mj.iterate_final(loss, u0, m, 300).loss) for m in methods]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
