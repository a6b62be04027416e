"""Type aliases shared across the package."""

from typing import Any

import jax

ArrayLike = jax.typing.ArrayLike
"""Anything `jnp.asarray` accepts: a JAX or NumPy array, or a Python scalar."""

PyTree = Any
"""A pytree of arrays (parameters, states, data)."""
