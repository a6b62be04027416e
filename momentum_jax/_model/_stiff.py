"""A stiff-aware solver for the damped Hamiltonian `h alpha u'' + (1 - lam) u' = -grad Phi(u)`.

As a first-order system `y = (u, v)`, `u' = v`, `v' = f_v(u, v)`, the model is stiff for small
`h`: its fast rate `mu = (1 - lam) / (h alpha)` limits an explicit method (Tsit5) to steps of
about `3.3 / mu`, so the cost of a solve over `[0, T]` grows like `T mu ~ 1/h`
(docs/theory.md §2). `DampedESDIRK` is diffrax's `Kvaerno5` method (an L-stable, stiffly
accurate ESDIRK 5(4) pair, diffrax's own tableau) specialised to this structure:

- the Newton systems `(I - gamma dt J) x = r` with `J = [[0, I], [d f_v/du, d f_v/dv]]` are
  reduced to the `d x d` Schur complement `S = diag(1 - b d f_v/dv) - b^2 d f_v/du`
  (`b = gamma dt`), factorised once per step (`d f_v/dv` is diagonal here: the damping);
- each stage runs a simplified Newton loop that stops when the update is below a tenth of the
  tolerance (or has stalled below it at rounding level), and a stage that does not converge
  rejects the step;
- the dense output is the quintic Hermite interpolant of `u` from `(u, u', u'')` at both ends
  of the step (diffrax's ESDIRK interpolants are cubic: about `3e-10` at `rtol = 1e-12`, too
  coarse for errors compared at every `t = n h`).

Measured on the paper's quadratic (`benchmarks/RESULTS.md`): 600-2300 steps for every `h` from
`2^-4` to `2^-17`, where Tsit5 needs 10k (HB, `lam = 0.9`) to 190k (gradient descent) at
`h = 2^-17`; the same steps as diffrax's `Kvaerno5` at about 2 us a step for `d = 2`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

_TABLEAU = diffrax.Kvaerno5.tableau
_A = [np.asarray(row) for row in _TABLEAU.a_lower]
_GAMMA = float(np.asarray(_TABLEAU.a_diagonal)[1])
_B, _B_ERROR = np.asarray(_TABLEAU.b_sol), np.asarray(_TABLEAU.b_error)
_C = np.concatenate([[0.0], np.asarray(_TABLEAU.c)])
_A_ROWS = np.array([np.pad(row, (0, len(_B) - len(row))) for row in _A])
"""The tableau's `a_lower` rows padded with zeros to the number of stages."""


def _row(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


def _basis(s):
    """The quintic Hermite basis on `[0, 1]`: values/first/second derivatives at both ends."""
    s2 = s * s
    s3, s4, s5 = s2 * s, s2 * s2, s2 * s2 * s
    return (
        1 - 10 * s3 + 15 * s4 - 6 * s5,
        s - 6 * s3 + 8 * s4 - 3 * s5,
        0.5 * (s2 - 3 * s3 + 3 * s4 - s5),
        10 * s3 - 15 * s4 + 6 * s5,
        -4 * s3 + 7 * s4 - 3 * s5,
        0.5 * (s3 - 2 * s4 + s5),
    )


def _dbasis(s):
    s2 = s * s
    s3, s4 = s2 * s, s2 * s2
    return (
        -30 * s2 + 60 * s3 - 30 * s4,
        1 - 18 * s2 + 32 * s3 - 15 * s4,
        0.5 * (2 * s - 9 * s2 + 12 * s3 - 5 * s4),
        30 * s2 - 60 * s3 + 30 * s4,
        -12 * s2 + 28 * s3 - 15 * s4,
        0.5 * (3 * s2 - 8 * s3 + 5 * s4),
    )


class QuinticPositionInterpolation(diffrax.AbstractLocalInterpolation):
    """The quintic Hermite interpolant of `u` on one step from `(u, u', u'')` at both ends;
    evaluates to `(u, u')`."""

    t0: jax.Array  # type: ignore[misc]
    t1: jax.Array  # type: ignore[misc]
    data: tuple

    def __init__(self, *, t0, t1, data):
        self.t0, self.t1, self.data = t0, t1, data

    def evaluate(self, t0, t1=None, left=True):
        del left
        if t1 is not None:
            return jax.tree.map(lambda a, b: a - b, self.evaluate(t1), self.evaluate(t0))
        dt = self.t1 - self.t0
        safe = jnp.where(dt == 0, 1.0, dt)
        s = jnp.where(dt == 0, 0.0, (t0 - self.t0) / safe)

        def combine(c, scale):
            u0, v0, a0, u1, v1, a1 = self.data
            return (
                c[0] * u0
                + c[1] * dt * v0
                + c[2] * dt * dt * a0
                + c[3] * u1
                + c[4] * dt * v1
                + c[5] * dt * dt * a1
            ) * scale

        return combine(_basis(s), 1.0), combine(_dbasis(s), 1.0 / safe)


class DampedESDIRK(diffrax.AbstractAdaptiveSolver):
    """Kvaerno5 for `y = (u, v)`, `u' = v`, `v' = f_v(t, u, v, args)` with `d f_v / dv`
    diagonal (module docstring). `u` and `v` are 1-D arrays; `f_v` is static."""

    f_v: Callable = eqx.field(static=True)
    rtol: float = eqx.field(static=True, default=1e-12)
    atol: float = eqx.field(static=True, default=1e-14)
    max_iters: int = eqx.field(static=True, default=10)
    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = QuinticPositionInterpolation

    def order(self, terms):
        return 5

    def _f(self, t, y, args):
        return y[1], self.f_v(t, y[0], y[1], args)

    def init(self, terms, t0, t1, y0, args):
        return self._f(t0, y0, args)

    def func(self, terms, t0, y0, args):
        return self._f(t0, y0, args)

    def _linear_solve(self, t0, y0, args, beta):
        """`r -> (I - beta J)^{-1} r` through the Schur complement."""
        u0, v0 = y0
        dv = jax.jvp(lambda v: self.f_v(t0, u0, v, args), (v0,), (jnp.ones_like(v0),))[1]
        du = jax.jacfwd(lambda u: self.f_v(t0, u, v0, args))(u0)
        schur_inverse = jnp.linalg.inv(jnp.diag(1 - beta * dv) - beta * beta * du)

        def solve(r):
            y = schur_inverse @ (r[1] + beta * (du @ r[0]))
            return r[0] + beta * y, y

        return solve

    def _stage(self, Z, t, k0, beta, solve, args):
        """Simplified Newton for the stage derivative `k = f(Z + beta k)`, from `k0`."""

        def update(k):
            residual = jax.tree.map(
                lambda kk, ff: kk - ff,
                k,
                self._f(t, jax.tree.map(lambda z, kk: z + beta * kk, Z, k), args),
            )
            dk = solve(residual)
            k = jax.tree.map(lambda kk, dd, ref: (kk - dd).astype(ref.dtype), k, dk, k0)
            Y = jax.tree.map(lambda z, kk: z + beta * kk, Z, k)
            size = jnp.maximum(
                *[
                    jnp.max(jnp.abs(beta * dd) / (self.atol + self.rtol * jnp.abs(yy)))
                    for dd, yy in zip(dk, Y)
                ]
            )
            return k, size.astype(k0[0].dtype)

        def cond(c):
            _, previous, size, it = c
            done = (size < 0.1) | ((it >= 2) & (size < 1.0) & (size > 0.5 * previous))
            return (it < self.max_iters) & ~done

        def body(c):
            k, _, size, it = c
            k, new = update(k)
            return k, size, new, it + 1

        inf = jnp.asarray(jnp.inf, k0[0].dtype)
        k, _, size, _ = jax.lax.while_loop(cond, body, (k0, inf, inf, jnp.asarray(0)))
        return k, size

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        dt = t1 - t0
        beta = _GAMMA * dt
        f0 = solver_state
        if made_jump is not False:
            f0 = jax.lax.cond(made_jump, lambda: self._f(t0, y0, args), lambda: f0)
        solve = self._linear_solve(t0, y0, args, beta)
        stages = len(_B)

        def stage(carry, i):
            """Stage `i` (1 ..): its derivative into row `i` of the stacked `ks` (rows `>= i`
            are zero, so the sum over every row is the tableau's sum over the rows before)."""
            ks, converged = carry
            row = jnp.asarray(_A_ROWS, dt.dtype)[i - 1]
            Z = jax.tree.map(
                lambda y, k: y + dt * sum(row[j] * k[j] for j in range(stages)), y0, ks
            )
            k, size = self._stage(
                Z, t0 + jnp.asarray(_C, dt.dtype)[i] * dt, _row(ks, i - 1), beta, solve, args
            )
            ks = jax.tree.map(lambda a, kk: a.at[i].set(kk), ks, k)
            return (ks, converged & (size < 1.0) & jnp.isfinite(size)), None

        # one compiled stage for all of them (a scan, not six unrolled Newton loops: the
        # compilation time of a solve is mostly its stages')
        ks0 = jax.tree.map(lambda f: jnp.zeros((stages,) + f.shape, f.dtype).at[0].set(f), f0)
        (ks_stacked, converged), _ = jax.lax.scan(
            stage, (ks0, jnp.array(True)), jnp.arange(1, stages)
        )
        ks = [_row(ks_stacked, i) for i in range(stages)]
        y1 = jax.tree.map(lambda y, *k: y + dt * sum(b * kk for b, kk in zip(_B, k)), y0, *ks)
        error = jax.tree.map(
            lambda *k: jnp.where(
                converged, dt * sum(b * kk for b, kk in zip(_B_ERROR, k)), jnp.inf
            ),
            *ks,
        )

        def cast(tree):
            return jax.tree.map(lambda x, ref: x.astype(ref.dtype), tree, y0)

        y1, error, f1 = cast(y1), cast(error), cast(ks[-1])
        data = (y0[0], y0[1], f0[1], y1[0], y1[1], f1[1])
        return y1, error, dict(data=data), f1, diffrax.RESULTS.successful


STIFF_CROSSOVER = {2: 4e3, 20: 3e4, 200: 1e5, 1000: 2e5}
"""Measured (benchmarks/RESULTS.md, rtol 1e-12, 2 CPU cores): the value of `T mu` above which
`DampedESDIRK` is faster than Tsit5, by state size `d`."""

MAX_STIFF_SIZE = 256
"""The largest flat state for which the stiff solve is chosen automatically (its Newton systems
are dense `d x d`)."""


def stiff_pays(T, mu_max, d: int) -> bool:
    """Whether the stiff solve is expected to be faster: `T mu` above the measured crossover for
    a state of size `d` (interpolated in log-log), and `d <= MAX_STIFF_SIZE`."""
    if d > MAX_STIFF_SIZE:
        return False
    sizes = np.asarray(sorted(STIFF_CROSSOVER), dtype=float)
    limit = np.exp(
        np.interp(np.log(max(d, 2)), np.log(sizes), np.log(list(STIFF_CROSSOVER.values())))
    )
    return bool(T * mu_max > limit)
