"""`solver=ClosedForm()`: the models' exact solutions on quadratic losses, in `solve`
and in `convergence_study`, against the NumPy closed forms of `tests/closed_form.py`, 50-digit
decimal arithmetic and the diffrax solves (`solve` on the paper's quadratic: test_solve.py)."""

import contextlib
import dataclasses
import decimal

import closed_form as cf
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

import momentum_jax as mj
from momentum_jax._losses import DenseQuadratic, dense_quadratic_matrix, paper_quadratic
from momentum_jax._model._closed_form import propagator

EXACT = mj.ClosedForm()
TS = np.linspace(0.0, 2.0, 129)
U0 = jnp.array([1.0, 1.0])


def _exp_2x2_reference(M, t):
    """`exp(M t)` in 50-digit decimal arithmetic from the eigenvalues of `M` (real, repeated
    or complex), independent of `propagator`'s branches (SciPy's `expm` loses about 1e-12 on
    the stiff matrices here)."""
    with decimal.localcontext(prec=50):
        return _exp_2x2_decimal(M, t)


def _exp_2x2_decimal(M, t):
    a, b, c, d = (decimal.Decimal(float(x)) for x in np.ravel(M))
    t = decimal.Decimal(float(t))
    m, r = (a + d) / 2, ((a - d) / 2) ** 2 + b * c
    one, zero = decimal.Decimal(1), decimal.Decimal(0)
    if r > 0:
        s = r.sqrt()
        C, S = (((s * t).exp() + (-s * t).exp()) / 2), (((s * t).exp() - (-s * t).exp()) / (2 * s))
    elif r == 0:
        C, S = one, t
    else:
        w = (-r).sqrt() * t
        assert w < 30, "the series below keeps 50 - log10(e^w) digits"
        cos, sin, term, k = zero, zero, one, 0
        while abs(term) > decimal.Decimal(10) ** -60:  # the Taylor series of cos and sin
            cos, sin = (
                (cos + term, sin)
                if k % 4 == 0
                else (cos, sin + term)
                if k % 4 == 1
                else ((cos - term, sin) if k % 4 == 2 else (cos, sin - term))
            )
            k += 1
            term = term * w / k
        C, S = cos, sin / (-r).sqrt()
    em = (m * t).exp()
    rows = [[em * (C + S * (a - m)), em * S * b], [em * S * c, em * (C + S * (d - m))]]
    return np.array([[float(x) for x in row] for row in rows])


# damping regimes of `h alpha u'' + (1 - lam) u' + q u = 0`: overdamped and stiff, near and at
# critical damping (r = 0, where the series branch is the only one), underdamped
@pytest.mark.parametrize(
    "q, hal, beta",
    [(20.0, 2.0**-17, 0.1), (1.0, 0.01, 0.2), (1.0, 2.0**-8, 0.125), (1.0, 0.01 / 4.0001, 0.1)]
    + [(1.0, 0.01 / 3.9, 0.1), (50.0, 0.5, 0.3), (1.0, 0.3, 0.0)]
    # a flat direction (q = 0), a saddle (q < 0), negative damping (growing, m > 0)
    + [(0.0, 0.01, 0.1), (-2.0, 0.01, 0.1), (1.0, 0.5, -0.2)],
)
def test_propagator_equals_the_decimal_reference(q, hal, beta):
    M = np.array([[0.0, 1.0], [-q / hal, -beta / hal]])
    ts = np.concatenate([[0.0, 1e-9], np.geomspace(1e-6, 2.0, 60)])
    (p11, p12), (p21, p22) = propagator(jnp.asarray(M), jnp.asarray(ts))
    got = np.stack([np.stack([p11, p12], -1), np.stack([p21, p22], -1)], -2)
    for t, g in zip(ts, got):
        ref = _exp_2x2_reference(M, t)
        # entry-wise, relative to the row's size (the velocity row is larger by |M|); measured
        # at most 1.1e-14 (the stiff case at t = 2, where the slow exponent is -400)
        scale = np.maximum(np.max(np.abs(ref), axis=1, keepdims=True), 1e-300)
        np.testing.assert_allclose(g / scale, ref / scale, rtol=0, atol=5e-14, err_msg=f"t={t}")


def test_propagator_in_float32_and_its_gradient():
    ts = np.geomspace(1e-4, 2.0, 40)
    for q, hal, beta in [(20.0, 2.0**-17, 0.1), (50.0, 0.5, 0.3)]:  # stiff; oscillating
        M = np.array([[0.0, 1.0], [-q / hal, -beta / hal]])
        (p11, p12), _ = propagator(jnp.asarray(M, jnp.float32), jnp.asarray(ts, jnp.float32))
        assert p11.dtype == jnp.float32
        p11, p12 = np.asarray(p11, float), np.asarray(p12, float)
        ref = np.array([_exp_2x2_reference(M, t)[0] for t in ts])
        scale = np.max(np.abs(ref), axis=1)
        keep = scale > 1e-30  # beyond, the stiff solution underflows float32 (to 0, not NaN)
        assert np.all(np.isfinite(p11)) and np.all(np.isfinite(p12))
        np.testing.assert_allclose((p11 / scale)[keep], (ref[:, 0] / scale)[keep], atol=2e-5)
        np.testing.assert_allclose((p12 / scale)[keep], (ref[:, 1] / scale)[keep], atol=2e-5)
        # the unused branches keep the gradient finite (square roots of positive numbers only)
        for t in (1e-3, 0.5, 2.0):
            g = jax.grad(lambda s, M=M: propagator(jnp.asarray(M), s)[0][0])(t)
            assert np.isfinite(g)


def test_dense_quadratic_equals_the_diffrax_solve():
    A = jnp.asarray(dense_quadratic_matrix(6, 50.0, seed=3))
    loss, u0 = DenseQuadratic(A), jnp.linspace(-1.0, 1.0, 6)
    ts = np.linspace(0.0, 1.0, 33)
    for model in ("gradient_flow", "hamiltonian", "modified_flow", "hessian_damped"):
        m = mj.nesterov(2.0**-7, 0.8)
        got = mj.solve(loss, u0, m, ts, model=model, solver=EXACT)
        ref = mj.solve(loss, u0, m, ts, model=model)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11, err_msg=model)


def test_second_order_velocity_and_higher_order_flow():
    m = mj.heavy_ball(2.0**-6, 0.7)
    loss = paper_quadratic(8.0)
    u, v = mj.solve(loss, U0, m, TS, model="hamiltonian", return_velocity=True, solver=EXACT)
    u_ref, v_ref = mj.solve(loss, U0, m, TS, model="hamiltonian", return_velocity=True)
    np.testing.assert_allclose(u, u_ref, rtol=0, atol=1e-11)
    np.testing.assert_allclose(v, v_ref, rtol=0, atol=1e-10 * np.max(np.abs(v_ref)))
    for order in (0, 2, 3):  # the automatic modified fields are linear on a quadratic too
        model = mj.ModifiedFlow(order=order)
        got = mj.solve(loss, U0, m, TS, model=model, solver=EXACT)
        ref = mj.solve(loss, U0, m, TS, model=model)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11, err_msg=f"order={order}")


@pytest.mark.parametrize("init", ["zero", "manifold"])
@pytest.mark.parametrize("norm", ["euclidean", "max"])
def test_study_errors_equal_closed_forms(init, norm):
    hs = 2.0 ** -np.arange(4, 11)
    models = ("gradient_flow", "hamiltonian", "modified_flow", "hessian_damped")
    start = "paper" if init == "zero" else "match"  # "match": the discrete start's velocity
    objects = (
        mj.GradientFlow(),
        mj.Hamiltonian(velocity=start),
        mj.ModifiedFlow(),
        mj.HessianDamped(velocity=start),
    )
    warns = pytest.warns(RuntimeWarning) if init == "manifold" else contextlib.nullcontext()
    with warns:  # the manifold start is far from the manifold at the large h
        st = mj.convergence_study(
            paper_quadratic(10.0),
            U0,
            hs=hs,
            lams=[0.0, 0.5, 0.9],
            methods=("hb", "nag", "gd"),
            models=objects,
            T=2.0,
            init=init,
            norm=norm,
            solver=EXACT,
        )
    assert st.config["solver"]["method"] == "closed form"
    for model, key in zip(models, st.models):
        assert np.all(st.solver_steps[key] == 0)
        for i, meth in enumerate(st.methods):
            for j, lam in enumerate(st.lams):
                for k, h in enumerate(hs):
                    method = mj.method_from_name(meth, h, lam)
                    velocity = "manifold" if init == "manifold" else "paper"
                    ref = cf.error(
                        [10.0, 1.0], [1.0, 1.0], method, 2.0, model=model, init=init,
                        velocity=velocity, norm=norm,
                    )  # fmt: skip
                    got = st.errors[key][i, j, k]
                    # the reference's iterates (powers of eigendecompositions, in NumPy) are
                    # good to about 5e-7 relative at the manifold start (the diffrax engine
                    # differs from it by as much)
                    assert abs(got / ref - 1) < 1e-6, (model, meth, lam, h, got, ref)


def test_study_agrees_with_the_numerical_engine_and_does_not_recompile():
    A = jnp.asarray(dense_quadratic_matrix(5, 30.0, seed=1))
    u0 = jnp.linspace(1.0, -0.5, 5)
    kw = dict(hs=2.0 ** -np.arange(3, 9), lams=[0.3, 0.9], T=1.5)
    exact = mj.convergence_study(DenseQuadratic(A), u0, solver=EXACT, **kw)
    numeric = mj.convergence_study(DenseQuadratic(A), u0, **kw)
    for model in exact.models:
        np.testing.assert_allclose(exact.errors[model], numeric.errors[model], rtol=1e-7)
    # 16 lanes of 4 steps: lanes take new points and the last ones run in the narrower loop
    packed = mj.convergence_study(DenseQuadratic(A), u0, solver=EXACT, lanes=16, chunk_size=4, **kw)
    single = mj.convergence_study(DenseQuadratic(A), u0, solver=EXACT, lanes=1, chunk_size=8, **kw)
    for model in exact.models:
        np.testing.assert_allclose(packed.errors[model], single.errors[model], rtol=1e-12)
        np.testing.assert_allclose(packed.errors[model], exact.errors[model], rtol=1e-12)
    B = A * 1.25
    v0 = u0 * 0.5
    with count_compiles() as compiles:
        mj.convergence_study(DenseQuadratic(B), v0, solver=EXACT, **(kw | {"lams": [0.2, 0.8]}))
    assert compiles.n == 0


def test_closed_form_is_refused_where_it_does_not_apply(monkeypatch):
    import momentum_jax._solve as solve_module
    import momentum_jax._study._convergence as study_module

    def compiled(*args, **kwargs):
        raise AssertionError("the compiled solve was reached")

    for module, name in ((solve_module, "_closed"), (solve_module, "_solve")):
        monkeypatch.setattr(module, name, compiled)
    monkeypatch.setattr(study_module, "_run", compiled)
    m = mj.heavy_ball(0.1, 0.9)
    with pytest.raises(ValueError, match=r"solver=ClosedForm\(\) needs a quadratic loss"):
        mj.solve(mj.double_well, jnp.array([0.5]), m, TS, model="hamiltonian", solver=EXACT)
    with pytest.raises(ValueError, match=r"solver=ClosedForm\(\) needs a quadratic loss"):
        mj.convergence_study(
            lambda u: 0.5 * jnp.sum(u**2), U0, hs=[0.1], lams=[0.9], T=1.0, solver=EXACT
        )
    with pytest.raises(ValueError, match=r"solver=ClosedForm\(\) needs a flat 1-D start"):
        mj.solve(paper_quadratic(5.0), U0[None], m, TS, model="gradient_flow", solver=EXACT)

    class Nonlinear(mj.GradientFlow):
        linear = False

    with pytest.raises(ValueError, match="needs linear models"):
        mj.solve(paper_quadratic(5.0), U0, m, TS, model=Nonlinear(), solver=EXACT)

    # the declarations are checked: a shifted quadratic that reports the unshifted spectrum,
    # and a nonlinear model that declares itself linear
    class Shifted(mj.DiagonalQuadratic):
        def __call__(self, u):
            return super().__call__(u - 0.1)

    with pytest.raises(ValueError, match="differs from its closed form"):
        mj.convergence_study(Shifted((5.0, 1.0)), U0, hs=[0.1], lams=[0.9], T=1.0, solver=EXACT)

    class Cubic(mj.GradientFlow):
        def vector_field(self, loss):
            return lambda t, u, method: -(u**3)

    with pytest.raises(ValueError, match="differs from its closed form"):
        mj.solve(paper_quadratic(5.0), U0, m, TS, model=Cubic(), solver=EXACT)


def test_the_closed_form_is_a_solver_not_a_flag():
    # the old spelling is refused with the new one in its message, and `ClosedForm()` gives
    # the same numbers as the exact oracle wherever a solver goes
    with pytest.raises(TypeError, match=r"write solver=mj\.ClosedForm\(\)"):
        mj.SolverConfig(closed_form=True)
    with pytest.raises(TypeError, match=r"write solver=mj\.ClosedForm\(\)"):
        mj.SolverConfig(closed_form=False)
    assert "closed_form" not in [f.name for f in dataclasses.fields(mj.SolverConfig)]
    assert mj.ClosedForm() == mj.ClosedForm()


def test_closed_form_is_refused_where_models_are_always_integrated():
    loss = paper_quadratic(5.0)
    refused = r"solver=ClosedForm\(\) applies to solve and convergence_study"
    with pytest.raises(ValueError, match=refused):
        mj.sweep(loss, U0, hs=[0.1], lams=[0.5], steps=10, models=("gradient_flow",), solver=EXACT)
    with pytest.raises(ValueError, match=refused):
        mj.vanishing_study(loss, U0, "hb_mu", [0.01], 1.0, solver=EXACT)
    with pytest.raises(ValueError, match=refused):
        mj.solve_limit(loss, U0, "hb_mu", 0.01, jnp.array([0.0, 1.0]), solver=EXACT)
