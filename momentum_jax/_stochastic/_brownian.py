"""A Brownian motion sampled exactly on a uniform grid, for constant-step SDE solvers."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp


class GridBrownianPath(diffrax.AbstractBrownianPath):
    """A Brownian motion sampled exactly on the grid `t_k = k * spacing`, reproducible from its
    key: the increment over cell `k` is `sqrt(spacing) * normal(fold_in(key, k))`.

    Queries must start and end on grid points and span at most `max_cells` cells (checked at
    run time), which is what a constant-step solver with step `spacing` or `max_cells *
    spacing` asks for. The same path can therefore be solved at two resolutions (Richardson
    extrapolation on one path), at the cost of one normal draw per cell, far cheaper than
    `diffrax.VirtualBrownianTree` on CPU.
    """

    shape: jax.ShapeDtypeStruct = eqx.field(static=True)
    levy_area: type = eqx.field(static=True)
    max_cells: int = eqx.field(static=True)
    key: jax.Array
    spacing: jax.Array

    def __init__(self, key, shape: tuple[int, ...], spacing, *, max_cells: int = 2, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype
        self.shape = jax.ShapeDtypeStruct(tuple(shape), dtype)
        self.levy_area = diffrax.BrownianIncrement
        self.max_cells = int(max_cells)
        self.key = key
        self.spacing = jnp.asarray(spacing, dtype)

    @property
    def t0(self):
        return 0.0

    @property
    def t1(self):
        return jnp.inf

    def evaluate(self, t0, t1=None, left: bool = True, use_levy: bool = False):
        del left
        if t1 is None:
            raise NotImplementedError("GridBrownianPath gives increments W(t1) - W(t0) only")
        x0, x1 = t0 / self.spacing, t1 / self.spacing
        k0, k1 = jnp.round(x0), jnp.round(x1)
        cells = (k1 - k0).astype(jnp.int32)
        start = k0.astype(jnp.int32)
        w = jnp.zeros(self.shape.shape, self.shape.dtype)
        for j in range(self.max_cells):
            z = jax.random.normal(
                jax.random.fold_in(self.key, start + j), self.shape.shape, self.shape.dtype
            )
            w = w + jnp.where(j < cells, z, 0.0)
        w = w * jnp.sqrt(self.spacing)
        off_grid = (jnp.abs(x0 - k0) > 1e-6) | (jnp.abs(x1 - k1) > 1e-6)
        w = eqx.error_if(
            w,
            off_grid | (cells < 0) | (cells > self.max_cells),
            "GridBrownianPath queried off its grid or over too many cells",
        )
        if use_levy:
            return diffrax.BrownianIncrement(dt=t1 - t0, W=w)
        return w
