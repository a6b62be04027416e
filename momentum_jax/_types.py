"""Type aliases shared across the package."""

from typing import Any

import jax

ArrayLike = jax.typing.ArrayLike
PyTree = Any
Loss = Any  # a callable: pytree of float arrays -> scalar
