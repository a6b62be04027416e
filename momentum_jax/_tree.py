"""Small pytree arithmetic used across the package."""

import jax
import jax.numpy as jnp


def axpy(alpha, x, y):
    """`alpha * x + y`, leaf by leaf."""
    return jax.tree.map(lambda xi, yi: alpha * xi + yi, x, y)


def scale(alpha, x):
    """`alpha * x`, leaf by leaf."""
    return jax.tree.map(lambda xi: alpha * xi, x)


def sub(x, y):
    """`x - y`, leaf by leaf."""
    return jax.tree.map(jnp.subtract, x, y)


def sq_norm(x):
    """Squared Euclidean norm over all leaves."""
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(x))


def norm(x):
    """Euclidean norm over all leaves."""
    return jnp.sqrt(sq_norm(x))


def all_finite(x):
    """True when every element of every leaf is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(x)]))


def zeros_like(x):
    return jax.tree.map(jnp.zeros_like, x)


def dtype(x):
    """The common floating dtype of the leaves of `x`."""
    return jnp.result_type(*jax.tree.leaves(x))
