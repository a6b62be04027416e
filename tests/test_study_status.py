"""Every number of a convergence study means what its label says (issue 21): points outside any
asymptotic regime have their own status, rates sit on one row convention, every failing model
is named, the shared solve's table grows as it needs, a loss that cannot move is refused, and
the damped Hamiltonian starts the same way everywhere."""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj

U0 = jnp.array([1.0, 1.0])
HS = 2.0 ** -np.arange(1, 8)


def _study(loss, methods=("nag",), models=("gradient_flow", "hamiltonian"), **kw):
    return mj.convergence_study(
        loss, U0, hs=HS, lams=[0.9], methods=methods, models=models, T=2.0, **kw
    )


def _spectral_radius(h, lam, a, q):
    """Largest root modulus of `z^2 - (1 + lam - (1 + a) h q) z + (lam - a h q)` (NumPy)."""
    return float(np.max(np.abs(np.roots([1.0, -(1 + lam - (1 + a) * h * q), lam - a * h * q]))))


def test_linearly_unstable_points_are_flagged_and_left_out_of_rates_and_fits():
    # NAG at lam = 0.9 on kappa 10: h = 2^-1, 2^-2 are unstable (errors about 2196 and 6698,
    # far below the divergence limit over T = 2) and used to enter the rates as "ok"
    st = _study(mj.paper_quadratic(10.0))
    radius = np.array([_spectral_radius(h, 0.9, 0.9, 10.0) for h in HS])
    np.testing.assert_array_equal(st.linearly_unstable[0, 0], radius > 1)
    assert list(np.flatnonzero(radius > 1)) == [0, 1]
    assert st.errors["gradient_flow"][0, 0, 0] == pytest.approx(2196, rel=1e-3)
    assert st.errors["gradient_flow"][0, 0, 1] == pytest.approx(6698, rel=1e-3)
    for k in (0, 1):
        assert st.status[0, 0, k].startswith("linearly unstable"), st.status[0, 0, k]
        for model in st.models:
            assert not st.valid(model)[0, 0, k]
            assert np.isnan(st.rates[model][0, 0, k])
    assert "linearly unstable" in st.summary_line()
    # the fitted order uses only the valid points: the same slope by hand with NumPy
    for model in st.models:
        ok = st.valid(model)[0, 0]
        chosen = np.flatnonzero(ok)[-st.fit_points :]
        slope = np.polyfit(np.log(HS[chosen]), np.log(st.errors[model][0, 0, chosen]), 1)[0]
        assert st.orders[model][0, 0] == pytest.approx(slope, rel=1e-12)


def test_relative_error_of_one_or_more_is_outside_the_asymptotic_regime():
    # the same quadratic as a plain function: no spectrum, so only the relative error decides
    q = jnp.array([10.0, 1.0])
    st = _study(lambda u: 0.5 * jnp.sum(q * u**2), models=("gradient_flow",))
    assert st.stability_margin is None
    # the gradient flow decays from u0, so the largest norm of the solution is |u0| = sqrt 2
    rel = st.relative_errors["gradient_flow"][0, 0]
    np.testing.assert_allclose(rel, st.errors["gradient_flow"][0, 0] / np.sqrt(2.0), rtol=1e-12)
    assert rel[0] > 1000 and rel[1] > 1000
    status = st.status_of("gradient_flow")[0, 0]
    for k in range(len(HS)):
        assert (status[k] == "ok") == (rel[k] < 1), (k, rel[k], status[k])
    assert status[0].startswith("relative error")
    assert np.all(np.isnan(st.rates["gradient_flow"][0, 0, :2]))


def test_rate_is_printed_on_the_row_of_the_larger_h():
    st = _study(mj.paper_quadratic(10.0), methods=("hb",), models=("hamiltonian",))
    E = st.errors["hamiltonian"][0, 0]
    rows = [ln for ln in st.table().splitlines() if re.match(r"\s+hb\s+0\.9\s+2\^", ln)]
    assert len(rows) == len(HS)
    for k, row in enumerate(rows):
        rate = row.split()[4]
        if k == len(HS) - 1:
            assert rate == "-"
        elif st.valid("hamiltonian")[0, 0, k] and st.valid("hamiltonian")[0, 0, k + 1]:
            assert float(rate) == pytest.approx(np.log2(E[k] / E[k + 1]), abs=6e-4)
            assert float(rate) == pytest.approx(st.rates["hamiltonian"][0, 0, k], abs=6e-4)
    assert "Delta(h) = log(E(h)/E(h'))" in st.table()


def test_status_names_every_failing_model_and_each_model_keeps_its_own():
    # 480 solver steps: the shared gradient flow needs 498 (fails at every point), the
    # Hamiltonian 251, 344, 464, 593, 825 at h = 1 ... 2^-4 (fails at the two smallest h)
    st = mj.convergence_study(
        mj.paper_quadratic(10.0),
        U0,
        hs=2.0 ** -np.arange(0, 5),
        lams=[0.5],
        methods=("hb",),
        models=("gradient_flow", "hamiltonian"),
        T=1.0,
        solver=mj.SolverConfig(max_steps=480, dense_steps=480),
    )
    gf, ham = st.solver_failure["gradient_flow"][0, 0], st.solver_failure["hamiltonian"][0, 0]
    assert np.all(gf != "")
    both = np.flatnonzero((gf != "") & (ham != ""))
    only_gf = np.flatnonzero((gf != "") & (ham == ""))
    assert both.size and only_gf.size, (gf, ham)
    for k in both:
        assert "(gradient_flow)" in st.status[0, 0, k] and "(hamiltonian)" in st.status[0, 0, k]
    stable = [k for k in only_gf if not st.linearly_unstable[0, 0, k]]
    assert stable == [2]  # h = 1/4 (h = 1, 1/2 are linearly unstable on kappa 10)
    for k in stable:
        assert st.status_of("hamiltonian")[0, 0, k] == "ok"
        assert "hamiltonian" not in st.status[0, 0, k]
        assert st.status_of("gradient_flow")[0, 0, k].startswith("solver failed")
        assert np.isfinite(st.errors["hamiltonian"][0, 0, k])


def test_shared_solve_grows_its_table_instead_of_failing():
    # Rosenbrock's gradient flow needs about 7200 steps at the default tolerances, more than
    # the first table (4096 steps): it used to fail at every point with "increase max_steps"
    loss = mj.get_loss("rosenbrock")
    st = mj.convergence_study(
        loss.fn,
        loss.u0,
        hs=2.0 ** -np.arange(8, 10),
        lams=[0.5],
        methods=("hb",),
        models=("gradient_flow",),
        T=1.0,
    )
    assert np.all(st.solver_failure["gradient_flow"] == ""), st.status
    assert st.config["solver"]["dense_steps"] > 4096
    assert np.all(st.solver_steps["gradient_flow"] > 4096)


def test_a_loss_that_cannot_move_is_refused_and_a_stationary_start_warned():
    def staircase(u):
        return jnp.sum(jnp.floor(u))

    with pytest.raises(ValueError, match="staircase.*zero.*piecewise constant"):
        mj.convergence_study(staircase, U0, hs=[0.1], lams=[0.5], T=1.0)
    with pytest.raises(ValueError, match="staircase"):
        mj.iterate(staircase, U0, mj.heavy_ball(0.1, 0.5), 3)
    with pytest.warns(RuntimeWarning, match="stationary point"):
        mj.iterate(mj.paper_quadratic(10.0), jnp.zeros(2), mj.heavy_ball(0.1, 0.5), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mj.iterate(mj.paper_quadratic(10.0), U0, mj.heavy_ball(0.1, 0.5), 3)


def test_hamiltonian_has_one_default_start_named_in_every_label():
    assert mj.Hamiltonian().velocity == "match"
    assert mj.Hamiltonian(velocity=None).velocity == "match"
    loss = mj.paper_quadratic(10.0)
    for init, used in (("zero", "taylor"), ("manifold", "discrete")):
        st = mj.convergence_study(
            loss, U0, hs=[2.0**-6], lams=[0.5], models=("hamiltonian",), T=0.5, init=init
        )
        assert st.label("hamiltonian").startswith(f"hamiltonian[velocity='{used}'")
        assert f"model hamiltonian[velocity='{used}'" in st.table()


def test_sweep_starts_the_hamiltonian_as_the_study_does():
    # from the manifold the model starts with the discrete run's velocity in the sweep too
    # (it used the Taylor start there: distances 35-130 times larger than the study's)
    loss = mj.paper_quadratic(10.0)
    h, lam, steps = 2.0**-5, 0.5, 32
    sw = mj.sweep(
        loss,
        U0,
        hs=[h],
        lams=[lam],
        methods=("hb",),
        steps=steps,
        record_every=1,
        models=("hamiltonian",),
        init="manifold",
    )
    method = mj.heavy_ball(h, lam)
    us = np.asarray(mj.iterate(loss, U0, method, steps, init="manifold"))
    w0 = mj.manifold_velocity(loss, U0, method)
    ts = h * np.arange(1, steps + 1)
    model = mj.Hamiltonian(velocity=w0)
    ref = np.asarray(mj.solve(loss, U0, method, jnp.asarray(ts), model=model))
    want = np.max(np.linalg.norm(us[1:] - ref, axis=1))
    key = "hamiltonian"
    got = sw.distances[key][0, 0, 0, 0]
    assert got == pytest.approx(want, rel=1e-6)
    assert sw.config["labels"][key].startswith("hamiltonian[velocity='discrete'")
    assert jax.numpy.isfinite(got)
