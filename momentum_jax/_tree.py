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


def max_abs(x):
    """Largest absolute value over all elements of all leaves (the component-wise max norm)."""
    return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree.leaves(x)]))


def dot(x, y):
    """`<x, y>` summed over all leaves."""
    return sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y)))


def all_finite(x):
    """True when every element of every leaf is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(x)]))


def where(condition, x, y):
    """`x` where the scalar `condition` holds, else `y`, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), x, y)


def zeros_like(x):
    """Zeros with the structure, shapes and dtypes of `x`."""
    return jax.tree.map(jnp.zeros_like, x)


def dtype(x):
    """The common floating dtype of the leaves of `x` (the one dtype helper of the package)."""
    return jnp.result_type(*jax.tree.leaves(x))


def size(x) -> int:
    """Total number of elements over all leaves."""
    return int(sum(jnp.size(leaf) for leaf in jax.tree.leaves(x)))
