"""Test configuration: float64 everywhere, switched on once before any test runs."""

import jax

jax.config.update("jax_enable_x64", True)
