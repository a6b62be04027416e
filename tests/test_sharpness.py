"""The top Hessian eigenvalue from Hessian-vector products against dense eigenvalues, and the
linear stability threshold against the recurrence itself (more in test_sharpness_tolerance.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from momentum_jax._autoencoder import init_autoencoder, squared_error
from momentum_jax._method import gradient_descent, heavy_ball, nesterov
from momentum_jax._sharpness import stability_threshold, top_hessian_eigenvalue


def flat_hessian(loss, params):
    flat, unravel = ravel_pytree(params)
    return jax.jit(jax.hessian(lambda f: loss(unravel(f))))(flat)


@pytest.fixture(scope="module")
def autoencoder_loss():
    """A 6-3-2-3-6 autoencoder (59 parameters) on 20 random inputs: nonconvex, pytree params."""
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(20, 6)))
    params = init_autoencoder((6, 3, 2, 3, 6), seed=1)

    def loss(p):
        return jnp.mean(squared_error(p, x))

    return loss, params


def test_matches_eigvalsh_on_autoencoder(autoencoder_loss):
    loss, params = autoencoder_loss
    eig = np.linalg.eigvalsh(np.asarray(flat_hessian(loss, params)))
    top = top_hessian_eigenvalue(loss, params, rtol=1e-8)
    np.testing.assert_allclose(top.value, eig[-1], rtol=1e-12)
    assert top.residual <= 1e-8 and top.converged
    v = ravel_pytree(top.vector)[0]
    np.testing.assert_allclose(jnp.linalg.norm(v), 1.0, rtol=1e-12)


def test_negative_dominant_eigenvalue_is_shifted():
    # Hessian diag(-5, 2, 1): the dominant eigenvalue is -5, the top one 2.
    d = jnp.array([-5.0, 2.0, 1.0])
    R = jnp.asarray(np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))[0])
    A = (R * d[None, :]) @ R.T
    loss = lambda u: 0.5 * u @ (A @ u) + jnp.sum(u**4) * 0.0  # noqa: E731
    # The iteration maximises the Rayleigh quotient: no shift needed.
    top = top_hessian_eigenvalue(loss, jnp.ones(3), rtol=1e-12, key=jax.random.PRNGKey(3))
    np.testing.assert_allclose(top.value, 2.0, rtol=1e-12)
    # the deprecated fixed count still runs (and, past convergence, stays converged)
    fixed = top_hessian_eigenvalue(loss, jnp.ones(3), iters=200, key=jax.random.PRNGKey(3))
    np.testing.assert_allclose(fixed.value, 2.0, rtol=1e-12)


def test_pytree_and_zero_hessian():
    loss = lambda p: jnp.sum(p["a"]) + 3.0 * jnp.sum(p["b"] ** 2)  # noqa: E731
    params = {"a": jnp.ones(4), "b": jnp.zeros((2, 2))}
    np.testing.assert_allclose(top_hessian_eigenvalue(loss, params).value, 6.0)
    zero = top_hessian_eigenvalue(lambda p: jnp.sum(p), jnp.ones(3))
    assert float(zero.value) == 0.0 and float(zero.residual) == 0.0 and zero.converged


def test_errors():
    with pytest.raises(ValueError, match="max_iters=0"):
        top_hessian_eigenvalue(lambda u: jnp.sum(u**2), jnp.ones(2), max_iters=0)
    with pytest.raises(ValueError, match="iters=0"):
        top_hessian_eigenvalue(lambda u: jnp.sum(u**2), jnp.ones(2), iters=0)
    with pytest.raises(TypeError, match="scalar"):
        top_hessian_eigenvalue(lambda u: u**2, jnp.ones(2))


@pytest.mark.parametrize(
    "method", [gradient_descent(0.1), heavy_ball(0.1, 0.9), nesterov(0.1, 0.9), nesterov(0.05, 0.5)]
)
def test_stability_threshold(method):
    """Just below `q*` the recurrence on `q u^2 / 2` is stable, just above it is not."""
    q_star = float(stability_threshold(method))
    h, lam, a = (float(x) for x in (method.h, method.lam, method.a))

    def spectral_radius(q):
        roots = np.roots([1.0, -(1 + lam - (1 + a) * h * q), lam - a * h * q])
        return np.max(np.abs(roots))

    assert spectral_radius(0.999 * q_star) < 1.0 < spectral_radius(1.001 * q_star)
