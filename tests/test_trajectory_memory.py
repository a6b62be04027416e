"""Trajectories too large for memory are refused before running."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import U0, half_square

import momentum_jax as mj

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
