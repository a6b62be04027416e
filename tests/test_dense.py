"""The engine's dense-output tables (`momentum_jax._dense`) against diffrax's own
`Solution.evaluate`, and the sorted-chunk lookup against the general one, bit for bit."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from momentum_jax import _dense

A = jnp.asarray([[-1.0, 0.3], [-0.2, -4.0]])


def _solve(solver, y0, field, rtol=1e-10):
    return diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        solver,
        t0=0.0,
        t1=3.0,
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(t1=True, dense=True),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol / 100),
        max_steps=4096,
    )


def _times():
    return jnp.asarray(np.random.default_rng(0).uniform(0.0, 3.0, size=(7, 33)))


def _relative(a, b):
    return max(
        float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def test_tsit5_table_matches_diffrax_to_rounding():
    sol = _solve(diffrax.Tsit5(), jnp.asarray([1.0, 1.0]), lambda t, y, args: A @ y)
    tab = _dense.table(sol, _dense.interpolant_degree(diffrax.Tsit5()))
    t = _times()
    ours = _dense.evaluate(tab, t)
    theirs = jax.vmap(jax.vmap(sol.evaluate))(t)
    assert ours.shape == t.shape + (2,)
    assert _relative(ours, theirs) < 1e-14


def test_generic_table_of_a_pytree_state_matches_diffrax():
    """Heun's cubic Hermite output through the node-fitting branch, on a pytree state."""

    def field(t, y, args):
        return {"a": A @ y["a"], "b": -y["b"] * jnp.sum(y["a"] ** 2)}

    y0 = {"a": jnp.asarray([1.0, -0.5]), "b": jnp.ones((2, 3))}
    sol = _solve(diffrax.Heun(), y0, field, rtol=1e-6)
    tab = _dense.table(sol, _dense.interpolant_degree(diffrax.Heun()))
    t = _times()
    ours = _dense.evaluate(tab, t)
    theirs = jax.vmap(jax.vmap(sol.evaluate))(t)
    assert ours["a"].shape == t.shape + (2,) and ours["b"].shape == t.shape + (2, 3)
    assert _relative(ours, theirs) < 1e-12


@pytest.mark.parametrize("window", [4, 128])
def test_sorted_lookup_is_the_general_one_bit_for_bit(window):
    sol = _solve(diffrax.Tsit5(), jnp.asarray([1.0, 1.0]), lambda t, y, args: A @ y)
    tab = _dense.table(sol, 4)
    n = jnp.arange(1.0, 513.0)
    # rows like the engine's chunks: n h s, clamped at a last step, and one past the solve
    h = jnp.asarray([2.0**-4, 2.0**-9, 2.0**-12, 2.0**-14])
    t = 0.5 + jnp.minimum(n[None, :], 400.0) * h[:, None]
    idx, fits = _dense.locate_sorted(tab, t, window)
    values = _dense.evaluate_sorted(tab, t, window)
    reference = _dense.evaluate(tab, t)
    spans = jnp.searchsorted(tab.ts, t[:, -1], side="right") - jnp.searchsorted(
        tab.ts, t[:, 0], side="right"
    )
    np.testing.assert_array_equal(fits, spans < window)
    # the first row spans the whole solve (about 180 steps), the last one a few steps
    assert not bool(fits[0]) and bool(fits[-1])
    np.testing.assert_array_equal(np.asarray(idx)[fits], np.asarray(_dense._locate(tab, t))[fits])
    # where a row does not fit, every row falls back to the binary search: the same values
    np.testing.assert_array_equal(values, reference)


def test_sorted_lookup_at_the_step_boundaries():
    """A time equal to a boundary belongs to the step it starts, as in `evaluate`."""
    sol = _solve(diffrax.Tsit5(), jnp.asarray([1.0, 1.0]), lambda t, y, args: A @ y)
    tab = _dense.table(sol, 4)
    bounds = tab.ts[10:30]
    row = jnp.sort(jnp.concatenate([bounds, 0.5 * (bounds[1:] + bounds[:-1])]))
    idx, fits = _dense.locate_sorted(tab, row[None, :], 64)
    assert bool(fits[0])
    np.testing.assert_array_equal(idx[0], _dense._locate(tab, row))
    np.testing.assert_array_equal(
        _dense.evaluate_sorted(tab, row[None, :], 64)[0], _dense.evaluate(tab, row)
    )
