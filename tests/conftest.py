"""Test configuration, set once before any test runs: float64 everywhere, strict dtype and rank
promotion (as diffrax's tests: silent broadcasting and dtype mixing fail here instead of in
users' hands), and no persistent compilation cache (in-process CLI runs would otherwise write
to the user's cache folder)."""

import os

import jax
import pytest

os.environ["MOMENTUM_JAX_COMPILE_CACHE"] = "off"
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop the compiled programs of each test module when it ends: a long run otherwise keeps
    thousands of XLA executables mapped in one process."""
    yield
    jax.clear_caches()
