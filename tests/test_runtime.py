"""The runtime under both engines (`momentum_jax._runtime`): one check of a grid's axes for every
grid entry point, one device check, one progress token held by a `with` block, the one mesh, and
the step counts of a study read off its grid."""

import fractions

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj
from momentum_jax import _runtime
from momentum_jax._runtime import _progress
from momentum_jax._study._grid import build_grid

U0 = jnp.array([1.0, 1.0])
LOSS = mj.paper_quadratic(5.0)


def study(**kw):
    return mj.convergence_study(LOSS, U0, **({"hs": [0.1, 0.05], "lams": [0.5], "T": 1.0} | kw))


def sweep(**kw):
    return mj.sweep(LOSS, U0, **({"hs": [0.1, 0.05], "lams": [0.5], "steps": 2} | kw))


AXIS_ERRORS = [
    (dict(hs=[]), "hs must contain at least one learning rate"),
    (dict(hs=[[0.1, 0.05]]), r"hs must be a number or a 1-D sequence, got shape \(1, 2\)"),
    (dict(hs=[0.1, -0.05]), r"hs=.* is outside the allowed range \(0, inf\)"),
    (dict(hs=[0.1, np.nan]), "hs="),
    (dict(lams=[]), "lams must contain at least one momentum"),
    (dict(lams=[0.5, 1.0]), r"lams=.* is outside the allowed range \[0, 1\)"),
    (dict(methods=[]), "methods must name at least one of 'hb', 'nag', 'gd'"),
    (dict(methods=["hb", "adam"]), "method='adam' is not one of 'hb', 'nag', 'gd'"),
    (dict(methods=["hb", "hb"]), r"methods must be distinct, got \['hb', 'hb'\]"),
]


@pytest.mark.parametrize("kwargs, text", AXIS_ERRORS)
@pytest.mark.parametrize("engine", [study, sweep])
def test_both_engines_check_the_grid_axes_identically(engine, kwargs, text):
    with pytest.raises(ValueError, match=text):
        engine(**kwargs)


def test_only_the_study_needs_decreasing_hs():
    with pytest.raises(ValueError, match="hs must be strictly decreasing"):
        study(hs=[0.05, 0.1])
    assert sweep(hs=[0.05, 0.1]).final_loss.shape == (2, 1, 2, 1)


@pytest.mark.parametrize(
    "devices, exc, text",
    [
        ([], ValueError, "devices must name at least one device"),
        ("cpu", TypeError, r"devices must be jax devices \(jax.devices\(\)\), got 'cpu'"),
        ([0], TypeError, "devices must be jax devices"),
    ],
)
@pytest.mark.parametrize("engine", [study, sweep])
def test_both_engines_check_devices_identically(engine, devices, exc, text):
    with pytest.raises(exc, match=text):
        engine(devices=devices)


@pytest.mark.parametrize("engine", [study, sweep])
def test_both_engines_check_progress_identically(engine):
    with pytest.raises(TypeError, match=r"progress must be a callable \(done, total\) or None"):
        engine(progress="yes")


def test_progress_token_is_released_however_the_block_ends():
    calls = []
    with _runtime.progress_token(lambda done, total: calls.append((done, total))) as token:
        assert token in _progress._CALLBACKS
        _progress._on_host(token, 0, 3, 10)
        _progress._on_host(token, 1, 4, 10)  # summed over devices
    assert calls == [(3, 10), (7, 10)]
    assert token not in _progress._CALLBACKS and token not in _progress._DONE
    with pytest.raises(RuntimeError, match="boom"):
        with _runtime.progress_token(print) as token:
            raise RuntimeError("boom")
    assert token not in _progress._CALLBACKS and token not in _progress._DONE
    with _runtime.progress_token(None) as token:
        assert token == _runtime.NO_PROGRESS


def test_both_engines_release_their_progress_token():
    before = set(_progress._CALLBACKS)
    seen = []
    study(progress=lambda d, t: seen.append((d, t)))
    sweep(progress=lambda d, t: seen.append((d, t)))
    assert seen and set(_progress._CALLBACKS) == before


def test_one_mesh_for_every_placement():
    devices = jax.devices()[:1]
    mesh = _runtime.grid_mesh(devices)
    assert mesh.axis_names == (_runtime.GRID_AXIS,) and list(mesh.devices.flat) == devices
    assert _runtime.grid_sharding(devices).mesh == mesh
    assert _runtime.vectorize_on(devices) == (devices[0].platform != "cpu")


def test_the_studys_step_counts_are_its_grids():
    """`config["steps"]` is `floor(T / h)` per learning rate (exact rational arithmetic), the
    counts the points run, for learning rates that are not powers of two."""
    hs, T = [0.3, 0.1, 0.07], 1.0
    want = [int(fractions.Fraction(T) / fractions.Fraction(str(h))) for h in hs]
    assert want == [3, 10, 14]
    grid = build_grid(("hb", "gd"), np.array([0.0, 0.5]), np.array(hs), T)
    assert grid.steps_of_hs().tolist() == want
    st = study(hs=hs, T=T, methods=["hb", "gd"], models=["gradient_flow"])
    assert st.config["steps"] == want


def test_sweep_final_is_not_public():
    assert not hasattr(mj, "sweep_final")


def test_a_number_is_an_axis_of_one_point():
    assert sweep(hs=0.1, lams=0.5).final_loss.shape == (2, 1, 1, 1)
