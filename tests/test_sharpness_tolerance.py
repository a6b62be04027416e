"""The sharpness is iterated to a stated tolerance and carries its residual (against
`numpy.linalg.eigh` of small explicit Hessians)."""

import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

import momentum_jax as mj
from momentum_jax._manifold import _hessian_scale

DOCS = Path(__file__).resolve().parents[1] / "docs" / "theory.md"
SHARPNESS_RTOL = 1e-4  # the documented default relative residual of `top_hessian_eigenvalue`


def rotated(eigenvalues, seed=0):
    """An explicit symmetric matrix with the given eigenvalues in a random orthonormal basis."""
    d = np.asarray(eigenvalues, dtype=float)
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((d.size, d.size)))[0]
    return (q * d) @ q.T


# A clustered top of the spectrum (relative gap 1%): 20 power-iteration steps, the old default of
# `sharpness` and of `sweep`, are 2.0% low here, the old 100 of `top_hessian_eigenvalue` 0.53%.
CLUSTERED = [2.0, 1.98, 1.95, 1.9, 1.7, 1.2, 0.8, 0.3, -0.5, -1.0] + [0.1] * 20


def quadratic(a):
    a = jnp.asarray(a)
    return lambda u: 0.5 * u @ (a @ u)


def within_kato_temple(value, residual, eigenvalues):
    """The Rayleigh quotient of a pair with relative residual `residual` lies below the top
    eigenvalue by at most `(residual * value)^2 / gap` (Kato-Temple), `gap` to the next one."""
    top, gap = eigenvalues[-1], eigenvalues[-1] - eigenvalues[-2]
    error = top - float(value)
    return -1e-12 * abs(top) <= error <= (float(residual) * float(value)) ** 2 / gap + 1e-13


def test_top_eigenvalue_to_tolerance_on_clustered_spectrum():
    a = rotated(CLUSTERED)
    eig = np.linalg.eigvalsh(a)
    top = mj.top_hessian_eigenvalue(quadratic(a), jnp.ones(a.shape[0]))
    # Kato-Temple at the default rtol: (1e-4 * 2)^2 / 0.02 = 2e-6, 1e-6 relative
    np.testing.assert_allclose(top.value, eig[-1], rtol=1e-6)
    assert bool(top.converged) and float(top.residual) <= SHARPNESS_RTOL
    assert within_kato_temple(top.value, top.residual, eig)
    # the residual is the vector's own: recompute it from the explicit matrix
    v = np.asarray(top.vector)
    np.testing.assert_allclose(
        np.linalg.norm(a @ v - float(top.value) * v) / abs(float(top.value)),
        float(top.residual),
        rtol=1e-6,
    )


def test_new_tolerance_and_cap_do_not_recompile():
    a = rotated(CLUSTERED)
    loss, u = quadratic(a), jnp.ones(a.shape[0])
    mj.top_hessian_eigenvalue(loss, u, rtol=1e-3, max_iters=50)
    with count_compiles() as c:
        top = mj.top_hessian_eigenvalue(loss, u, rtol=1e-9, max_iters=400)
    assert c.n == 0
    assert bool(top.converged) and int(top.iterations) <= 400


def test_unconverged_is_flagged():
    a = rotated(CLUSTERED)
    top = mj.top_hessian_eigenvalue(quadratic(a), jnp.ones(a.shape[0]), max_iters=5)
    assert not bool(top.converged) and float(top.residual) > SHARPNESS_RTOL
    assert int(top.iterations) <= 5
    assert float(top.value) <= np.linalg.eigvalsh(a)[-1] + 1e-12  # a lower bound


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(rtol=-1e-3), "rtol"),
        (dict(rtol=1.0), "rtol"),
        (dict(max_iters=0), "max_iters"),
    ],
)
def test_bad_tolerance_or_cap_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        mj.top_hessian_eigenvalue(lambda u: jnp.sum(u**2), jnp.ones(2), **kw)


def test_sweep_stores_converged_sharpness_and_residual(tmp_path):
    """On a quadratic every point has the same Hessian: the sweep's sharpness is its top
    eigenvalue to the Kato-Temple bound of the stored residual, at every point and step."""
    a = rotated(CLUSTERED)
    eig = np.linalg.eigvalsh(a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged: no warning
        sw = mj.sweep(
            quadratic(a),
            jnp.ones(a.shape[0]),
            hs=[0.05, 0.1],
            lams=[0.0, 0.5],
            methods=("hb", "nag"),
            steps=4,
            sharpness_at=[2, 4],
        )
    np.testing.assert_allclose(sw.sharpness, eig[-1], rtol=1e-6)  # 20 power steps: 1% low
    assert sw.sharpness.shape == sw.sharpness_residual.shape == (2, 2, 2, 1, 2)
    assert np.all(sw.sharpness_residual <= SHARPNESS_RTOL) and np.all(sw.sharpness_converged)
    for value, residual in zip(sw.sharpness.ravel(), sw.sharpness_residual.ravel()):
        assert within_kato_temple(value, residual, eig)
    assert sw.config["sharpness_rtol"] == SHARPNESS_RTOL
    for suffix in (".json", ".nc"):
        path = tmp_path / f"sweep{suffix}"
        sw.save(path)
        np.testing.assert_array_equal(mj.load_sweep(path).sharpness_residual, sw.sharpness_residual)
    assert "sharpness_residual" in sw.to_xarray()


def test_sweep_flags_unconverged_points():
    a = rotated(CLUSTERED)
    with pytest.warns(RuntimeWarning, match="did not converge at 4 of 4"):
        sw = mj.sweep(
            quadratic(a),
            jnp.ones(a.shape[0]),
            hs=[0.05, 0.1],
            lams=[0.5],
            methods=("hb", "nag"),
            steps=2,
            sharpness_at=[2],
            sharpness_max_iters=5,
        )
    assert not np.any(sw.sharpness_converged)
    assert np.all(sw.sharpness_residual > SHARPNESS_RTOL)
    with pytest.raises(ValueError, match="sharpness_rtol"):
        mj.sweep(quadratic(a), jnp.ones(a.shape[0]), hs=[0.1], lams=[0.5], steps=2,
                 sharpness_at=[2], sharpness_rtol=2.0)  # fmt: skip


def test_hessian_scale_is_the_largest_magnitude():
    """`L` of the manifold-series warning comes from the same iteration: the larger of the top
    eigenvalue of `H` and of `-H` (here a negative eigenvalue 1% larger in magnitude)."""
    a = rotated([-3.0, 2.97, 1.0, 0.5, 0.2, -0.1])
    scale = _hessian_scale(quadratic(a), jnp.asarray(100), jnp.ones(6))
    np.testing.assert_allclose(scale, 3.0, rtol=1e-5)
