"""Plots from results: `plot_study` / `Study.plot` and `plot_sweep` / `Sweep.plot` draw what the
results hold (panels, fitted slopes, masked heat maps, thresholds) and return figures."""

import dataclasses

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers import small_study
from test_labelled import make_sweep, with_failures

from momentum_jax.plotting import plot_study, plot_sweep, sweep_map

HS = 2.0 ** -np.arange(3, 8)


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("plt.show was called")

    monkeypatch.setattr(plt, "show", refuse)
    backend = matplotlib.get_backend()
    yield
    assert matplotlib.get_backend() == backend  # no backend chosen by the plots
    plt.close("all")


@pytest.fixture(scope="module")
def study():
    return small_study(HS)


def fit_lines(ax):
    return [line for line in ax.get_lines() if line.get_gid() == "fit"]


def test_plot_study_panels_and_fitted_slopes(study):
    fig = study.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 2 * len(study.models)
    n = len(study.models)
    tops, bottoms = fig.axes[:n], fig.axes[n:]  # row by row: errors on top, rates below
    for c, model in enumerate(study.models):
        top, bottom = tops[c], bottoms[c]
        assert top.get_title() == f"{model}: error" and top.get_xscale() == "log"
        assert bottom.get_title() == f"{model}: observed rate"
        lines = fit_lines(top)
        assert len(lines) == len(study.methods) * len(study.lams)
        orders = study.orders[model].ravel()  # (method, lam) in drawing order
        for line, order in zip(lines, orders, strict=True):
            assert line.get_label() == f"slope {order:.2f}"
            x, y = np.log(line.get_xdata()), np.log(line.get_ydata())
            np.testing.assert_allclose(np.polyfit(x, y, 1)[0], order, rtol=1e-10)
            assert len(x) == study.fit_points  # over the fit points only
            assert set(line.get_xdata()) == set(HS[-study.fit_points :])
        legend = [t.get_text() for t in top.get_legend().get_texts()]
        assert r"HB, $\lambda=0.9$" in legend
        rate_lines = [ln for ln in bottom.get_lines() if ln.get_label() == r"NAG, $\lambda=0.5$"]
        np.testing.assert_allclose(rate_lines[0].get_ydata(), study.rates[model][1, 0])
        np.testing.assert_allclose(rate_lines[0].get_xdata(), -np.log2(HS[:-1]))


def test_plot_study_selection_and_no_fit(study):
    fig = plot_study(study, models="hamiltonian", methods=["nag"], lams=0.9)
    assert len(fig.axes) == 2
    (line,) = fit_lines(fig.axes[0])
    assert line.get_label() == f"slope {study.orders['hamiltonian'][1, 1]:.2f}"
    assert fit_lines(plot_study(study, fit=False).axes[0]) == []
    for bad, match in (
        ({"models": "modified_flow"}, "model 'modified_flow' is not one of"),
        ({"methods": ["gd"]}, "method 'gd'"),
        ({"lams": [0.7]}, "lam 0.7"),
    ):
        with pytest.raises(ValueError, match=match):
            plot_study(study, **bad)


def red_crosses(ax):
    return [ln for ln in ax.get_lines() if ln.get_marker() == "x" and ln.get_color() == "red"]


def test_plot_study_marks_diverged_and_failed_points(study):
    bad = with_failures(study)
    fig = bad.plot(methods="nag", lams=0.5)  # (nag, 0.5) diverged at the largest h
    top, bottom = fig.axes[0], fig.axes[2]
    (cross,) = red_crosses(top)
    np.testing.assert_array_equal(cross.get_xdata(), [HS[0]])
    (cross,) = red_crosses(bottom)
    np.testing.assert_array_equal(cross.get_xdata(), [-np.log2(HS[0])])
    assert red_crosses(plot_study(study, methods="nag", lams=0.5).axes[0]) == []
    # the fit still matches the orders of the study with the divergence excluded
    (line,) = fit_lines(top)
    assert line.get_label() == f"slope {bad.orders['gradient_flow'][1, 0]:.2f}"


def expected_map(sw, values, method_index, seed_index=None):
    """The masked (lam, h) array the heat map must hold, computed here independently."""
    div = sw.diverged_at[method_index] >= 0
    v = values[method_index]
    if seed_index is None:
        v, div = v.mean(axis=-1), div.any(axis=-1)
    else:
        v, div = v[..., seed_index], div[..., seed_index]
    v, div = v[:, ::-1], div[:, ::-1]  # hs are stored decreasing: columns by increasing h
    return np.ma.masked_array(v, div | ~np.isfinite(v) | ~(v > 0)), div


def mesh_of(ax):
    (mesh,) = [c for c in ax.collections if isinstance(c, matplotlib.collections.QuadMesh)]
    return mesh


def assert_same_masked(a, b):
    np.testing.assert_array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
    np.testing.assert_array_equal(np.ma.filled(a, 0.0), np.ma.filled(b, 0.0))


def test_plot_sweep_heat_maps_hold_the_masked_data():
    sw = make_sweep()
    fig = sw.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == len(sw.methods) + 1  # a heat map per method and one colour bar
    assert fig.axes[-1].get_ylabel() == "final loss"
    for i, ax in enumerate(fig.axes[:2]):
        want, div = expected_map(sw, sw.final_loss, i)
        mesh = mesh_of(ax)
        assert_same_masked(mesh.get_array(), want)
        assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
        assert ax.get_title().endswith("(mean over seeds)")
        (cross,) = red_crosses(ax)  # diverged cells marked at their centres
        jj, kk = np.nonzero(div)
        np.testing.assert_array_equal(cross.get_xdata(), np.sort(sw.hs)[kk])
        np.testing.assert_array_equal(cross.get_ydata(), sw.lams[jj])
        assert div[1, -1] == (i == 0)  # one seed of (hb, lam 0.5, largest h) diverged
    # both panels share one colour scale
    assert mesh_of(fig.axes[0]).norm is mesh_of(fig.axes[1]).norm
    hs, lams, values, div = sweep_map(sw, method="nag")
    np.testing.assert_array_equal(hs, np.sort(sw.hs))
    assert_same_masked(values, expected_map(sw, sw.final_loss, 1)[0])


@pytest.mark.parametrize(
    "quantity, pick",
    [
        ("min_loss", lambda sw: sw.min_loss),
        ("curve", lambda sw: sw.curve[..., -1]),
        ("sharpness", lambda sw: sw.sharpness[..., -1]),
        ("distance:hamiltonian", lambda sw: sw.distances["hamiltonian"]),
    ],
)
def test_plot_sweep_quantities_and_seed(quantity, pick):
    sw = make_sweep()
    fig = plot_sweep(sw, quantity, method="nag", seed=7)
    assert len(fig.axes) == 2
    want, _ = expected_map(sw, pick(sw), 1, seed_index=1)
    assert_same_masked(mesh_of(fig.axes[0]).get_array(), want)
    assert fig.axes[0].get_title() == "NAG (seed 7)"


def test_plot_sweep_linear_scale_and_diverged_at():
    sw = make_sweep()
    sw = dataclasses.replace(sw, final_loss=sw.final_loss - 0.5)  # negative values
    fig = plot_sweep(sw, method="hb", seed=0, log=False)
    values = mesh_of(fig.axes[0]).get_array()
    assert np.ma.min(values) < 0  # kept on a linear scale
    assert np.ma.getmaskarray(values).sum() == np.sum(sw.diverged_at[0, ..., 0] >= 0)
    fig = plot_sweep(sw, "diverged_at", method="hb")
    values = mesh_of(fig.axes[0]).get_array()
    first = np.where(sw.diverged_at[0] >= 0, sw.diverged_at[0], 10**9).min(axis=-1)[:, ::-1]
    assert_same_masked(values, np.ma.masked_array(first, first == 10**9))
    assert red_crosses(fig.axes[0]) == []


def test_plot_sweep_on_given_axes_with_thresholds():
    sw = make_sweep(optional=False, seeds=(3,))
    fig, ax = plt.subplots()

    def threshold(lam):
        return 2 * (1 + lam) / 5.0

    out = plot_sweep(sw, method="hb", ax=ax, thresholds={"stability": threshold})
    assert out is fig and len(fig.axes) == 2  # the given axes and the colour bar
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "stability"]
    np.testing.assert_allclose(line.get_xdata(), threshold(line.get_ydata()))
    assert ax.get_title() == "HB (seed 3)"
    assert "stability" in [t.get_text() for t in ax.get_legend().get_texts()]
    with pytest.raises(ValueError, match="one heat map"):
        plot_sweep(sw, ax=ax)
    for quantity in ("sharpness", "curve", "distance:gradient_flow", "loss"):
        with pytest.raises(ValueError, match=f"quantity '{quantity}' is not one of"):
            sw.plot(quantity)
    with pytest.raises(ValueError, match="seed 5"):
        sw.plot(seed=5)
