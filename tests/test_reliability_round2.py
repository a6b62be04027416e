"""Issue 15, "Reliability, round 2": inputs that used to give a wrong answer, a traceback, a crash
or a misleading message (one test per case; docs/RELIABILITY.md lists them)."""

import functools
import io
import json
import os
import stat
import sys
import warnings

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles, fake_study_loop

import momentum_jax as mj
from momentum_jax._cli import main
from momentum_jax._losses import paper_quadratic

U0 = jnp.array([1.0, 1.0])
TS = jnp.array([0.0, 0.5, 1.0])


def half_square(u):
    return 0.5 * jnp.sum(u**2)


def quad5(u):
    return 0.5 * (5.0 * u[0] ** 2 + u[1] ** 2)


# -- 1. a batched Momentum passed to iterate / solve ------------------------------------------


@pytest.mark.parametrize("entry", ["iterate", "iterate_final", "solve"])
@pytest.mark.parametrize("field", ["h", "lam"])
def test_batched_momentum_is_refused_naming_the_field(entry, field):
    values = dict(h=0.1, lam=0.5) | {field: jnp.array([0.1, 0.2])}
    m = mj.heavy_ball(**values)
    call = {
        "iterate": lambda: mj.iterate(half_square, jnp.ones(2), m, 3),
        "iterate_final": lambda: mj.iterate_final(half_square, jnp.ones(2), m, 3),
        "solve": lambda: mj.solve(half_square, jnp.ones(2), m, TS, model="gradient_flow"),
    }[entry]
    with pytest.raises(ValueError, match=rf"method\.{field} has shape \(2,\).*jax\.vmap"):
        call()


def test_batched_momentum_through_vmap_still_works():
    ms = mj.heavy_ball(jnp.array([0.1, 0.2]), 0.5).broadcast()
    us = jax.vmap(lambda m: mj.iterate(half_square, jnp.ones(2), m, 3))(ms)
    assert us.shape == (2, 4, 2)
    for i, h in enumerate([0.1, 0.2]):
        np.testing.assert_allclose(
            us[i], mj.iterate(half_square, jnp.ones(2), mj.heavy_ball(h, 0.5), 3)
        )


@pytest.mark.parametrize("entry", ["iterate", "solve"])
def test_method_must_be_a_momentum(entry):
    call = {
        "iterate": lambda: mj.iterate(half_square, U0, "hb", 3),
        "solve": lambda: mj.solve(half_square, U0, (0.1, 0.5), TS, model="gradient_flow"),
    }[entry]
    with pytest.raises(TypeError, match="method must be a Momentum"):
        call()


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


# -- 3. init="manifold" far outside the range of the manifold series --------------------------


def test_manifold_start_outside_the_series_range_warns(monkeypatch):
    # the README example: lam = 0.9, h = 2^-4 on kappa = 10 gives h L / (1 - lam)^2 = 62.5 and
    # w0 = (-6350, -72.5); at h = 2^-14 the parameter is 0.061 and nothing is said
    loss = paper_quadratic(10.0)
    far, near = mj.heavy_ball(2.0**-4, 0.9), mj.heavy_ball(2.0**-14, 0.9)
    match = r"h L / \(1 - lam\)\^2 = 62\.5, which is not small \(L = 10 "
    with pytest.warns(RuntimeWarning, match=match):
        mj.iterate(loss, U0, far, 3, init="manifold")
    with pytest.warns(RuntimeWarning, match=match):
        mj.iterate_final(loss, U0, far, 3, init="manifold")
    with pytest.warns(RuntimeWarning, match=match):
        mj.solve(loss, U0, far, TS, model="hamiltonian", velocity="manifold")
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)  # (warned before)
    with pytest.warns(RuntimeWarning, match=r"at 2 of 4 grid points .* up to 62\.5"):
        mj.convergence_study(
            loss,
            U0,
            hs=[2.0**-4, 2.0**-14],
            lams=[0.0, 0.9],
            methods=("hb",),
            T=2.0**-3,
            models=("gradient_flow",),
            init="manifold",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mj.iterate(loss, U0, near, 3, init="manifold")
        mj.iterate(loss, U0, far, 3)  # the zero start has no series


def test_manifold_range_check_does_not_recompile_for_new_values():
    loss = paper_quadratic(10.0)
    with pytest.warns(RuntimeWarning):
        mj.iterate(loss, U0, mj.heavy_ball(2.0**-4, 0.9), 3, init="manifold")
    other, u0 = paper_quadratic(20.0), jnp.array([0.5, 2.0])
    with count_compiles() as compiles, pytest.warns(RuntimeWarning, match="L = 20"):
        mj.iterate(other, u0, mj.heavy_ball(2.0**-5, 0.8), 3, init="manifold")
    assert compiles.n == 0


# -- 4. an edited study file ----------------------------------------------------------------


def synthetic_study():
    """A small `Study` made without computing anything (2 methods x 1 lam x 3 hs)."""
    shape = (2, 1, 3)
    hs = np.array([0.1, 0.05, 0.025])
    errors = {"gradient_flow": np.broadcast_to(hs, shape) * 0.3}
    return mj.Study(
        methods=("hb", "nag"),
        lams=np.array([0.9]),
        hs=hs,
        models=("gradient_flow",),
        errors=errors,
        diverged_at=np.full(shape, -1),
        solver_failure={"gradient_flow": np.full(shape, "", dtype=object)},
        config={"loss": "synthetic"},
        meta={},
        fit_points=2,
        solver_steps={"gradient_flow": np.full(shape, 7)},
    )


def _set(path, value):
    def edit(d):
        *head, last = path
        for key in head:
            d = d[key]
        d[last] = value

    return edit


@pytest.mark.parametrize(
    "edit, text",
    [
        (_set(["version"], 99), r"version 99 is not one of \[1, 2, 3\]"),
        (
            _set(["errors", "gradient_flow"], [[[0.1, 0.2]]] * 2),
            r"errors\['gradient_flow'\] has shape",
        ),
        (_set(["axes", "h"], [0.1, 0.05]), "has shape"),
        (_set(["axes", "h"], [0.1, -0.05, -0.1]), "axis h must hold finite, positive"),
        (_set(["axes", "h"], [0.025, 0.05, 0.1]), "strictly decreasing"),
        (_set(["axes", "lam"], [1.5]), r"axis lam must hold values in \[0, 1\)"),
        (_set(["axes", "method"], []), "the axes must be non-empty"),
        (_set(["diverged_at"], [[[-1, -1]]] * 2), "diverged_at has shape"),
        (_set(["diverged_at"], [[[-1, -1, 2.5]]] * 2), "diverged_at must hold integers >= -1"),
        (_set(["diverged_at"], [[[-1, -1, -7]]] * 2), "diverged_at must hold integers >= -1"),
        (_set(["fit_points"], 0), "fit_points must be an integer >= 2, got 0"),
        (_set(["fit_points"], "4"), "fit_points must be an integer >= 2"),
        (
            _set(["errors", "gradient_flow", 0, 0, 1], None),
            "must be finite and >= 0 at the 6 points",
        ),
        (_set(["errors", "gradient_flow", 1, 0, 2], -0.5), "must be finite and >= 0"),
        (_set(["solver_failure", "gradient_flow"], [["", ""]]), "solver_failure"),
        (_set(["solver_steps", "gradient_flow"], [1, 2]), "solver_steps"),
        (_set(["models"], ["gradient_flow", "hamiltonian"]), "hamiltonian"),
    ],
)
def test_edited_study_file_is_refused(tmp_path, edit, text):
    path = tmp_path / "s.json"
    synthetic_study().save(path)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=text) as info:
        mj.load_study(path)
    assert str(path) in str(info.value)


def test_nan_error_written_by_hand_is_refused(tmp_path):
    path = tmp_path / "s.json"
    synthetic_study().save(path)
    text = path.read_text()
    doc = json.loads(text)
    doc["errors"]["gradient_flow"][0][0][0] = float("nan")
    path.write_text(json.dumps(doc))  # json writes the non-standard literal NaN
    assert "NaN" in path.read_text()
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        mj.load_study(path)
    # a point that is flagged (diverged) may have a null error; it is not reported "ok"
    doc["diverged_at"][0][0][0] = 3
    path.write_text(json.dumps(doc))
    back = mj.load_study(path)
    assert back.status[0, 0, 0] == "diverged at step 3" and np.isnan(
        back.errors["gradient_flow"][0, 0, 0]
    )
    assert np.all(back.status.ravel()[1:] == "ok")


# -- 5. a trajectory too large for memory ----------------------------------------------------


def test_trajectory_too_large_is_refused_before_running(monkeypatch):
    m = mj.heavy_ball(0.1, 0.5)
    with pytest.raises(MemoryError, match=r"num_steps=1000000000 .*iterate_final"):
        mj.iterate(half_square, jnp.ones(10_000), m, 10**9)  # 80 TB on any machine
    monkeypatch.setattr("momentum_jax._iterate._memory_available", lambda: 24e9)
    # the case: 2 float64 coordinates, 10^9 steps (the OS killed it at 24 GB)
    with pytest.raises(
        MemoryError,
        match=r"save_every=1 keeps 1000000001 iterates of positions, 16 GB \(32 GB at peak\), "
        "more than the 24 GB",
    ):
        mj.iterate(half_square, U0, m, 10**9)
    # 2 float64 coordinates are 16 bytes an iterate; the peak is twice what is kept
    monkeypatch.setattr("momentum_jax._iterate._memory_available", lambda: 2000.0)
    with pytest.raises(MemoryError, match="101 iterates of positions, 1.62 kB"):
        mj.iterate(half_square, U0, m, 100)
    with pytest.raises(MemoryError, match=r"positions and velocities \(return_velocity=True\)"):
        mj.iterate(half_square, U0, m, 50, return_velocity=True)
    assert mj.iterate(half_square, U0, m, 50).shape == (51, 2)
    assert mj.iterate(half_square, U0, m, 100, save_every=10).shape == (11, 2)


def test_trajectory_without_velocity_keeps_positions_only():
    m = mj.heavy_ball(0.1, 0.5)
    us, ws = mj.iterate(half_square, U0, m, 5, return_velocity=True)
    np.testing.assert_array_equal(mj.iterate(half_square, U0, m, 5), us)
    np.testing.assert_allclose(ws[1:], (us[1:] - us[:-1]) / 0.1, rtol=1e-12)


# -- 6. a horizon whose step count overflows int32 ------------------------------------------


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_step_count_beyond_int32_names_T(capsys):
    with pytest.raises(ValueError, match=r"T=1e\+10 needs 2e\+11 steps at h=0.05, more than the"):
        mj.convergence_study(half_square, U0, hs=[0.1, 0.05], lams=[0.5], T=1e10)
    code, out, err = run_cli(capsys, "study", "--loss", "quadratic", "--T", "1e10")
    assert code == 2 and err.count("\n") == 1
    assert "T=1e+10 needs" in err and "use a shorter T or larger h" in err
    assert "shorter than the largest h" not in err


# -- 7. study --out checked before computing; the table printed before saving ----------------

STUDY = ["study", "--loss", "quadratic", "--h", "2^-3:2^-4", "--lam", "0.5", "--T", "1"]


def refuse_to_run(*args, **kwargs):
    raise AssertionError("the study was computed before --out was checked")


@pytest.mark.parametrize(
    "out, text",
    [
        ("afile/s.json", "is not a folder"),
        ("adir", "is a folder"),
        ("adir/", "is a folder"),
        ("", "--out expects a file name"),
    ],
)
def test_bad_out_is_refused_before_computing(capsys, monkeypatch, tmp_path, out, text):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    monkeypatch.setattr("momentum_jax._study._convergence._run", refuse_to_run)
    code, stdout, err = run_cli(capsys, *STUDY, "--out", out)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("momentum-jax: error: --out ") and text in err


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs a folder nobody may write in")
def test_unwritable_out_is_refused_before_computing(capsys, monkeypatch):
    monkeypatch.setattr("momentum_jax._study._convergence._run", refuse_to_run)
    code, _, err = run_cli(capsys, *STUDY, "--out", "/sys/s.json")
    assert code == 2 and err.count("\n") == 1
    assert "--out '/sys/s.json'" in err and "cannot write" in err


def test_table_is_printed_before_a_failing_save(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)

    def failing_save(self, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("momentum_jax._study._result.Study.save", failing_save)
    code, out, err = run_cli(capsys, *STUDY, "--out", str(tmp_path / "s.json"))
    assert "fitted order" in out  # the computed table is not lost
    assert code == 2 and err.count("\n") == 1 and "Permission denied" in err and "--out" in err


def test_out_in_a_new_folder_is_written(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    path = tmp_path / "new" / "deeper" / "s.json"
    code, out, err = run_cli(capsys, *STUDY, "--out", str(path))
    assert code == 0 and mj.load_study(path).hs.tolist() == [0.125, 0.0625]


# -- 8. a loss module that fails to import -----------------------------------------------------


@pytest.mark.parametrize(
    "source, text",
    [
        ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
        ("def f(u:\n    return u\n", "SyntaxError"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
        ("import no_such_module_xyz\n", "No module named 'no_such_module_xyz'"),
    ],
)
def test_loss_module_failing_at_import_is_one_line(capsys, monkeypatch, tmp_path, source, text):
    name = f"badmod_{abs(hash(source))}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run_cli(capsys, "study", "--loss", f"{name}:f", "--x0", "1,1")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"--loss '{name}:f'" in err and text in err


def test_any_failure_inside_a_command_is_one_line_exit_1(capsys, monkeypatch):
    def broken_run(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: out of memory\nwhile allocating 1 TB")

    monkeypatch.setattr("momentum_jax._study._convergence._run", broken_run)
    code, out, err = run_cli(capsys, *STUDY)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("momentum-jax: error: RuntimeError: RESOURCE_EXHAUSTED")
    monkeypatch.setenv("MOMENTUM_JAX_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED"):
        main(STUDY)


def test_warnings_are_one_line_each(capsys, monkeypatch):
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    argv = ["study", "--loss", "quadratic", "--h", "2^-3:2^-4", "--T", "1", "--init", "manifold"]
    code, out, err = run_cli(capsys, *argv)  # kappa = 10, lam = 0.9 (the defaults)
    assert code == 0 and err.count("\n") == 1
    assert err.startswith("momentum-jax: warning: convergence_study(init='manifold'): the manifold")


# -- 9. float16 starts ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("entry", ["solve", "convergence_study"])
def test_half_precision_start_is_refused_where_it_cannot_be_solved(entry, dtype):
    u = U0.astype(dtype)
    m = mj.heavy_ball(0.1, 0.5)
    call = {
        "solve": lambda: mj.solve(half_square, u, m, TS, model="gradient_flow"),
        "convergence_study": lambda: mj.convergence_study(
            half_square, u, hs=[0.1, 0.05], lams=[0.5], T=1.0
        ),
    }[entry]
    name = jnp.dtype(dtype).name
    with pytest.raises(TypeError, match=rf"u0 has dtype {name}.*refused.*float32 or float64"):
        call()


def test_half_precision_iterates_keep_their_dtype():
    us = mj.iterate(half_square, U0.astype(jnp.float16), mj.heavy_ball(0.1, 0.5), 4)
    assert us.dtype == jnp.float16 and np.all(np.isfinite(np.asarray(us, float)))


# -- 10. other wrong arguments -----------------------------------------------------------------


def nonsmooth(u):
    return jnp.sum(jnp.sqrt(jnp.abs(u)))  # gradient infinite at 0


MLP = eqx.nn.MLP(2, 1, 4, 1, key=jax.random.PRNGKey(0))
ENTRIES = {
    "iterate": lambda loss, u: mj.iterate(loss, u, mj.heavy_ball(0.1, 0.5), 3),
    "solve": lambda loss, u: mj.solve(loss, u, mj.heavy_ball(0.1, 0.5), TS, model="gradient_flow"),
    "convergence_study": lambda loss, u: mj.convergence_study(
        loss, u, hs=[0.1, 0.05], lams=[0.5], T=1.0
    ),
}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize(
    "loss, u0, exc, text",
    [
        (
            half_square,
            "abc",
            TypeError,
            r"u0 must be a pytree of floating arrays; its leaf u0 is a str",
        ),
        (
            half_square,
            {"a": U0, "b": None, "c": [1.0, "x"]},
            TypeError,
            r"leaf u0\['c'\]\[1\] is a str",
        ),
        (
            lambda p: half_square(p["a"]) + half_square(p["b"]),
            {"a": U0.astype(jnp.float32), "b": U0},
            TypeError,
            r"u0 mixes the dtypes float32, float64; .*one dtype",
        ),
        (
            lambda m: jnp.sum(m(U0) ** 2),
            MLP,
            TypeError,
            r"u0 is an equinox Module with non-array leaves .*eqx\.partition",
        ),
        (
            nonsmooth,
            jnp.array([1.0, 0.0]),
            ValueError,
            r"gradient of loss 'nonsmooth' is not finite at u0 \(1 of 2",
        ),
        (
            lambda u: jnp.log(u[0]) + u[1] ** 2,
            jnp.array([-1.0, 1.0]),
            ValueError,
            r"loss '.*' is not finite at u0: nan",
        ),
    ],
)
def test_start_errors_name_u0(entry, loss, u0, exc, text):
    with pytest.raises(exc, match=text):
        ENTRIES[entry](loss, u0)


def test_equinox_module_split_with_partition_works():
    params, static = eqx.partition(MLP, eqx.is_inexact_array)
    loss = lambda p: jnp.sum(eqx.combine(p, static)(U0) ** 2)  # noqa: E731
    out = mj.iterate(loss, params, mj.heavy_ball(0.01, 0.5), 2)
    assert jax.tree.structure(out) == jax.tree.structure(params)


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        (
            dict(chunk_size=-4),
            ValueError,
            "chunk_size=-4 is outside the allowed range: an integer >= 1",
        ),
        (dict(chunk_size=3.5), TypeError, "chunk_size must be an integer >= 1, got 3.5"),
        (dict(lanes=0), ValueError, "lanes=0 is outside the allowed range: an integer >= 1"),
        (dict(devices=[]), ValueError, "devices must name at least one device"),
        (
            dict(devices="cpu"),
            TypeError,
            r"devices must be jax devices \(jax.devices\(\)\), got 'cpu'",
        ),
        (dict(devices=[0]), TypeError, r"devices must be jax devices"),
        (
            dict(progress="yes"),
            TypeError,
            r"progress must be a callable \(done, total\) or None, got 'yes'",
        ),
        (
            dict(divergence_limit=0.0),
            ValueError,
            "divergence_limit=0.0 is outside the allowed range",
        ),
    ],
)
def test_study_option_errors(kwargs, exc, text):
    monkey = dict(hs=[0.1, 0.05], lams=[0.5], T=1.0) | kwargs
    with pytest.raises(exc, match=text):
        mj.convergence_study(half_square, U0, **monkey)


@pytest.mark.parametrize(
    "make, text",
    [
        (
            lambda: mj.heavy_ball(h="0.1", lam=0.5),
            "h must be a real number or an array of them, got '0.1'",
        ),
        (lambda: mj.nesterov(0.1, lam="0.9"), "lam must be a real number or an array of them"),
        (
            lambda: mj.Momentum(0.1, 0.5, None),
            "a must be a real number or an array of them, got None",
        ),
        (lambda: mj.gradient_descent(True), "h must be real .* got dtype bool"),
        (lambda: mj.heavy_ball(1j, 0.5), "h must be real .* got dtype complex"),
    ],
)
def test_string_and_other_non_real_hyperparameters_are_refused(make, text):
    with pytest.raises(TypeError, match=text):
        make()


# -- 11. --loss path/to/file.py:fn and modules of the current directory -----------------------

USER_LOSS = (
    "import jax.numpy as jnp\n\n\ndef fn(u):\n    return 0.5 * (3.0 * u[0] ** 2 + u[1] ** 2)\n"
)


@pytest.fixture
def user_loss_dir(tmp_path, monkeypatch):
    """A folder with a loss module, as the current directory; `sys.path` restored after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    (tmp_path / "sub").mkdir()
    for path in (tmp_path / "myloss_cwd.py", tmp_path / "sub" / "myloss_file.py"):
        path.write_text(USER_LOSS)
    return tmp_path


@pytest.mark.parametrize(
    "spec", ["myloss_cwd:fn", "sub/myloss_file.py:fn", "{dir}/sub/myloss_file.py:fn"]
)
def test_loss_from_the_current_directory_or_a_file(capsys, user_loss_dir, spec):
    spec = spec.format(dir=user_loss_dir)
    code, out, err = run_cli(capsys, *STUDY[:2], spec, *STUDY[3:], "--x0", "1,1", "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["loss"] == "fn"


@pytest.mark.parametrize(
    "spec, text",
    [
        ("nowhere/none.py:fn", "no such file"),
        ("sub/myloss_file.py:nothing", "has no attribute 'nothing'"),
        ("sub/myloss_file.py:", "expects module:function or path/to/file.py:function"),
        ("missing_mod_xyz:fn", "No module named 'missing_mod_xyz'"),
        ("sub:fn", "module 'sub' has no attribute 'fn'"),
    ],
)
def test_loss_file_errors_are_one_line(capsys, user_loss_dir, spec, text):
    code, _, err = run_cli(capsys, "study", "--loss", spec, "--x0", "1,1")
    assert code == 2 and err.count("\n") == 1 and "--loss " in err and repr(spec) in err
    assert text in err


# -- 12. repeated and list-valued options --------------------------------------------------------


@pytest.mark.parametrize(
    "extra, text",
    [
        (["--T", "1,2"], "--T expects one number, got '1,2'"),
        (["--init", "zero,manifold"], "--init expects one of zero, manifold, got 'zero,manifold'"),
        (
            ["--velocity", "taylor,paper"],
            "--velocity expects one of match, taylor, paper, manifold, discrete",
        ),
        (["--constant", "corrected,printed"], "--constant expects one of corrected, printed"),
        (["--T", "1", "--T", "2"], "--T given twice ('1', then '2'); give it once"),
        (["--init", "zero", "--init", "manifold"], "--init given twice"),
        (["--x0", "1,1", "--x0", "2,2"], "--x0 given twice"),
        (["--loss", "quadratic"], "--loss given twice"),
        (["--order", "1", "--order", "2"], "--order given twice"),
        (["--out", "a.json", "--out", "b.json"], "--out given twice"),
    ],
)
def test_single_valued_options_refuse_lists_and_repeats(capsys, monkeypatch, extra, text):
    monkeypatch.setattr("momentum_jax._study._convergence._run", refuse_to_run)
    code, _, err = run_cli(capsys, "study", "--loss", "quadratic", "--h", "2^-3:2^-4", *extra)
    assert code == 2 and err.count("\n") == 1 and text in err


def test_loss_arg_with_a_user_function_is_refused(capsys, user_loss_dir):
    argv = ["study", "--loss", "myloss_cwd:fn", "--x0", "1,1", "--loss-arg", "kappa=3"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "--loss-arg applies to registered losses only" in err


def test_list_options_accumulate_when_repeated(capsys, monkeypatch):
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    argv = ["study", "--loss", "quadratic", "--T", "1", "--json", "--lam", "0.5", "--lam", "0.8"]
    argv += ["--h", "2^-3:2^-4", "--h", "2^-6", "--method", "hb", "--method", "gd"]
    argv += ["--model", "gradient_flow", "--model", "hamiltonian"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["axes"]["lam"] == [0.5, 0.8]
    assert doc["axes"]["h"] == [2.0**-3, 2.0**-4, 2.0**-6]
    assert doc["axes"]["method"] == ["hb", "gd"]
    assert doc["models"] == ["gradient_flow", "hamiltonian"]


# -- 13. --help, progress on a terminal, file permissions ---------------------------------------


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        main(["study", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    for text in ("(default: 0.9)", "(default: 2)", "(default: 2^-4:2^-10)", "(default: zero)"):
        assert text in " ".join(out.split()), text


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    "tty, flag, shown", [(True, [], True), (True, ["--no-progress"], False), (False, [], False)]
)
def test_study_shows_progress_on_a_terminal(capsys, monkeypatch, tty, flag, shown):
    from momentum_jax import _study

    real, seen = _study.convergence_study, {}

    def spy(*args, progress=None, **kwargs):
        seen["progress"] = progress
        if progress is not None:
            for done in (0, 5, 10):
                progress(done, 10)  # what the compiled loop reports, ending at the total
        return real(*args, **kwargs)

    monkeypatch.setattr(_study, "convergence_study", spy)
    monkeypatch.setattr("momentum_jax._study._convergence._run", fake_study_loop)
    stream = Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert main([*STUDY, *flag]) == 0
    assert (seen["progress"] is not None) == shown
    text = stream.getvalue()
    if shown:
        assert "\r" in text and "100.0%" in text and text.endswith("\n")
    else:
        assert text == ""


def test_progress_bar_ends_its_line_once():
    from momentum_jax.paper import Progress

    stream = Terminal()
    bar = Progress(4, "x", stream=stream)
    bar.update(2)
    assert not stream.getvalue().endswith("\n")
    bar.update(4)  # done: the line is ended at once
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1
    bar.update(4)
    bar.close()
    assert stream.getvalue().count("\n") == 1  # not a second bar or an empty line
    with Progress(4, "y", stream=stream) as other:  # a context manager ends a bar left open
        other.update(1)
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 2
    quiet = Terminal()
    Progress(4, "z", stream=quiet).close()
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_output_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        synthetic_study().save(tmp_path / "s.json")
        mj.dump_json(tmp_path / "d.json", {"a": 1})
    finally:
        os.umask(old)
    for name in ("s.json", "d.json"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == mode


def test_overwritten_file_keeps_its_mode(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    synthetic_study().save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and mj.load_study(path).hs.size == 3


# -- 14. jax.tree_util.Partial losses -------------------------------------------------------------


def scaled_quadratic(u, k):
    return 0.5 * jnp.sum(k * u**2)


class Bowl(eqx.Module):
    k: jax.Array

    def __call__(self, u):
        return 0.5 * jnp.sum(self.k * u**2)


@pytest.mark.parametrize(
    "loss, name",
    [
        (
            jax.tree_util.Partial(scaled_quadratic, k=jnp.linspace(1.0, 2.0, 2)),
            "partial(scaled_quadratic)",
        ),
        (functools.partial(scaled_quadratic, k=2.0), "partial(scaled_quadratic)"),
        (Bowl(jnp.array([3.0, 1.0])), "Bowl"),
        (half_square, "half_square"),
    ],
)
def test_loss_names_are_short(loss, name):
    from momentum_jax._validate import loss_name

    assert loss_name(loss) == name


def test_partial_loss_is_traced_and_named_short():
    kw = dict(hs=[0.1, 0.05], lams=[0.5], T=1.0, models=("gradient_flow",), methods=("hb",))
    k1, k2 = jnp.linspace(1.0, 2.0, 2), jnp.array([7.0, 3.0])
    P, m = jax.tree_util.Partial, mj.heavy_ball(0.1, 0.5)
    first = mj.convergence_study(P(scaled_quadratic, k=k1), U0, **kw)
    mj.iterate(P(scaled_quadratic, k=k1), U0, m, 5)
    with count_compiles() as compiles:  # new array values in the Partial: traced, no compile
        second = mj.convergence_study(P(scaled_quadratic, k=k2), U0, **kw)
        mj.iterate(P(scaled_quadratic, k=k2), U0, m, 5)
    assert compiles.n == 0
    assert second.config["loss"] == "partial(scaled_quadratic)"
    assert not np.allclose(first.errors["gradient_flow"], second.errors["gradient_flow"])


def test_manifold_range_check_inside_jit_is_skipped():
    # the loss's data are traced here: the range cannot be known and nothing is checked
    def run(k):
        return mj.iterate(
            jax.tree_util.Partial(scaled_quadratic, k=k),
            U0,
            mj.heavy_ball(0.1, 0.5),
            3,
            init="manifold",
        )

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        us = jax.jit(run)(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(us, run(jnp.array([0.1, 0.2])), rtol=1e-14)
