"""Compile once: new values of the hyperparameters, the start and the loss's data (arrays of the
same shapes) reuse the compiled programs of `sweep` and `convergence_study`, counted with
`jax.monitoring` (`helpers.count_compiles`); the checks before compiling run once per loss
and shapes."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import count_compiles

import momentum_jax as mj

U0 = jnp.array([1.0, 1.0])


def _sweep(loss=None, u0=U0, hs=(0.25, 0.125), lams=(0.5, 0.9), **kw):
    return mj.sweep(
        mj.paper_quadratic(10.0) if loss is None else loss,
        u0,
        hs=hs,
        lams=lams,
        methods=("hb", "nag"),
        steps=40,
        **kw,
    )


@pytest.mark.parametrize(
    "change",
    [
        {"hs": (0.125, 0.0625)},  # every h one octave smaller
        {"hs": (0.3, 0.01)},
        {"lams": (0.1, 0.7)},
        {"u0": jnp.array([2.0, -1.0])},
        {"loss": mj.paper_quadratic(20.0)},  # the loss's data: new values, same shape
        {"divergence_limit": 1e3},
        {"hs": (4.0, 2.0)},  # every point diverges: the chunks run again under the guard
    ],
    ids=["octave", "h", "lam", "u0", "loss data", "limit", "diverging"],
)
def test_sweep_compiles_once_for_new_values(change):
    _sweep()
    with count_compiles() as compiles:
        sw = _sweep(**change)
    assert compiles.n == 0
    assert sw.final_loss.shape == (2, 2, 2, 1)


def test_sweep_with_one_more_point_reuses_the_loop_mostly():
    """The flat grid is padded to a few sizes (`padded_size`: 9 and 10 points run as 10), so one
    more point recompiles the loop only where it crosses a size; nothing else compiles."""
    hs = 2.0 ** -np.arange(1, 12)
    _sweep(hs=hs[:9], lams=[0.5])
    with count_compiles() as compiles:
        sw = _sweep(hs=hs[:10], lams=[0.5])
    assert compiles.n == 0 and sw.final_loss.shape == (2, 1, 10, 1)
    with count_compiles() as compiles:
        _sweep(hs=hs[:11], lams=[0.5])  # 12 points: the loop only
    assert compiles.n == 1


def _study(loss=None, u0=U0, hs=2.0 ** -np.arange(4, 8), lams=(0.5, 0.9), T=1.0):
    return mj.convergence_study(
        mj.paper_quadratic(10.0) if loss is None else loss,
        u0,
        hs=hs,
        lams=list(lams),
        T=T,
        models=("gradient_flow",),
    )


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"hs": 2.0 ** -np.arange(5, 9)},  # every h one octave smaller: twice the steps
        {"hs": 2.0 ** -np.arange(2, 6)},  # two octaves larger
        {"T": 3.0},
        {"lams": (0.3, 0.8)},
        {"u0": jnp.array([2.0, -1.0])},
        {"loss": mj.paper_quadratic(20.0)},  # the loss's data: new values, same shape
    ],
    ids=["same", "octave", "two octaves", "T", "lam", "u0", "loss data"],
)
def test_study_compiles_once_for_new_values(change):
    """The loop's shapes do not depend on the values of `h` and `T` (a fixed chunk length,
    `_study/_grid.py:CHUNK`), so nothing compiles again, not even the checks."""
    _study()
    with count_compiles() as compiles:
        st = _study(**change)
    assert compiles.n == 0
    assert st.errors["gradient_flow"].shape == (2, 2, 4)


def test_study_with_one_more_point_reuses_the_loop_mostly():
    """The grid's points are padded to a few sizes (`padded_size`: 18 and 20 points both run as
    20), so one more `h` reuses the compiled loop and everything else."""
    hs = 2.0 ** -np.arange(2, 14)
    _study(hs=hs[:9], lams=[0.5])
    with count_compiles() as compiles:
        st = _study(hs=hs[:10], lams=[0.5])
    assert compiles.n == 0 and st.errors["gradient_flow"].shape == (2, 1, 10)
