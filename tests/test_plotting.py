"""Plots from results: `plot_study` / `Study.plot` and `plot_sweep` / `Sweep.plot` draw what the
results hold (panels, fitted slopes, masked heat maps, thresholds) and return figures."""

import dataclasses

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers import small_study
from test_labelled import make_sweep, with_failures

from momentum_jax.plotting import plot_study, plot_sweep, save_figure, sweep_map

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


def same_text(title, text):
    """`title` is `text`, up to the line breaks `panel_title` puts in to fit the panel."""
    return "".join(title.split()) == "".join(text.split())


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
        label = study.label(model) if hasattr(study, "label") else model
        assert same_text(top.get_title(), f"{label}: error") and top.get_xscale() == "log"
        assert same_text(bottom.get_title(), f"{label}: observed rate")
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
        assert legend == [f"slope {order:.2f}" for order in orders]  # the panel's own slopes
        assert r"HB, $\lambda=0.9$" in [t.get_text() for t in fig.legends[0].get_texts()]
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
    return np.ma.masked_array(v, div | ~np.isfinite(v) | (v < 0)), div  # zeros are kept


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


# -- issue 21, item 15: what a reader sees -------------------------------------------------------


def legend_texts(fig):
    legends = list(fig.legends) + [a.get_legend() for a in fig.axes if a.get_legend()]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def cell_colours(fig, ax):
    """The RGBA colour drawn in each (lam, h) cell of the panel `ax`, rows lam, columns h."""
    fig.canvas.draw()
    mesh = mesh_of(ax)
    rows, cols = mesh.get_array().shape
    return np.asarray(mesh.get_facecolors()).reshape(rows, cols, 4)


def test_zero_loss_cells_are_not_drawn_as_missing(tmp_path):
    # before: an exact 0 (the best runs) was masked by the log scale: the diverged cells' grey
    sw = make_sweep(optional=False, seeds=(0,))
    final = sw.final_loss.copy()
    final[0, 0, 3, 0] = 0.0  # (hb, lam 0, h 2^-4): converged to exactly 0
    final[0, 1, 3, 0] = np.nan  # (hb, lam 0.5, h 2^-4): no value, but did not diverge
    sw = dataclasses.replace(sw, final_loss=final)
    fig = plot_sweep(sw, method="hb")
    ax, colours = fig.axes[0], cell_colours(fig, fig.axes[0])
    values = mesh_of(ax).get_array()
    assert not np.ma.getmaskarray(values)[0, 0] and values[0, 0] == 0.0  # column 0: h = 2^-4
    cmap = mesh_of(ax).cmap
    np.testing.assert_allclose(colours[0, 0], cmap.get_under(), atol=1e-12)  # below the scale
    assert colours[0, 0, 3] == 1.0  # opaque: not the grey background showing through
    assert colours[1, 0, 3] == 0.0 and colours[2, -1, 3] == 0.0  # NaN and diverged: masked
    assert mesh_of(ax).norm(0.0) < 0  # below vmin, whatever the scale's range
    texts = legend_texts(fig)
    assert "diverged" in texts and "no value (not finite)" in texts
    assert any(t.startswith("0") for t in texts)  # the zero cells are explained
    box = fig.legends[0].get_window_extent(fig.canvas.get_renderer())  # below, inside the figure
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width and box.y0 >= 0
    assert fig.axes[-1].get_ylabel() == "final loss"
    save_figure(fig, tmp_path / "zeros.png")


def test_colour_scale_spans_at_most_sixteen_decades():
    # before: one value at the edge of underflow stretched the colour bar to 1e-307
    sw = make_sweep(optional=False, seeds=(0,))
    final = sw.final_loss.copy()
    final[0, 0, 3, 0] = 1.0062110856560683e-307
    final[0, 0, 2, 0] = 0.5
    sw = dataclasses.replace(sw, final_loss=final)
    fig = plot_sweep(sw, method="hb")
    norm = mesh_of(fig.axes[0]).norm
    top = float(np.nanmax(np.where(sw.diverged_at[0] >= 0, np.nan, final[0])))
    assert norm.vmax == top
    floor = int(np.floor(np.log10(top))) - 16  # 16 decades below the largest, a power of ten
    assert norm.vmin == pytest.approx(10.0**floor, rel=1e-12, abs=0)
    assert f"below $10^{{{floor}}}$" in legend_texts(fig)  # the tiny cell: below the scale
    assert plot_sweep(sw, method="hb", limits=(1e-310, 1.0)).axes[0].collections[0].norm.vmin == (
        1e-310
    )  # (limits= still overrides)


def test_lam_axis_stays_within_zero_and_one():
    # before: the cells around lam = 0.9 (and 0) ran to 1.125 (and -0.225)
    sw = make_sweep(optional=False, seeds=(0,))  # lams 0, 0.5, 0.9
    fig = plot_sweep(sw, method="nag")
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 1.0)
    mesh_lams = mesh_of(ax).get_coordinates()[:, 0, 1]  # the cells' lam edges
    np.testing.assert_allclose(mesh_lams, [0.0, 0.25, 0.7, 1.0], rtol=0, atol=1e-15)


def test_colour_bar_ticks_are_readable_numbers():
    # before: a narrow log range was labelled "4.875x10^0", "4.9x10^0", ...
    sw = make_sweep(optional=False, seeds=(0,))
    values = np.linspace(4.875, 5.1, sw.final_loss.size).reshape(sw.final_loss.shape)
    sw = dataclasses.replace(sw, final_loss=values)
    fig = plot_sweep(sw, method="hb")
    fig.canvas.draw()
    cbar = fig.axes[-1]
    labels = [t.get_text() for t in cbar.get_yticklabels() if t.get_text()]
    assert labels and not any("times" in t or "10^" in t for t in labels), labels
    ticks = [float(t) for t in labels]
    assert all(4.8 <= v <= 5.2 for v in ticks) and len(ticks) >= 3
    assert not [t for t in cbar.get_yticklabels(minor=True) if t.get_text()]


def rename_models(study, names):
    """`study` with its model keys renamed by `names` in every per-model field."""
    changes = {"models": tuple(names[m] for m in study.models)}
    for field in dataclasses.fields(study):
        value = getattr(study, field.name)
        if isinstance(value, dict) and set(value) == set(study.models):
            changes[field.name] = {names[m]: v for m, v in value.items()}
    return dataclasses.replace(study, **changes)


def test_study_panel_titles_are_not_cut(study):
    # before: a long model label ran past its panel and out of the figure
    long = {
        "gradient_flow": "modified_flow[order=2, constant='printed', velocity='manifold']",
        "hamiltonian": "hamiltonian[velocity='taylor', stiff=None]",
    }
    fig = plot_study(rename_models(with_failures(study), long))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    # one legend below the panels names the series and the red crosses, inside the figure
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[-1] == "excluded from rates and fits" and r"NAG, $\lambda=0.5$" in texts
    box = legend.get_window_extent(renderer)
    assert 0 <= box.x0 and box.x1 <= width and box.y0 >= 0
    for ax in fig.axes:
        title = ax.title.get_window_extent(renderer)
        panel = ax.get_window_extent(renderer)
        assert 0 <= title.x0 and title.x1 <= width, ax.get_title()  # inside the figure
        assert title.width <= panel.width * 1.1, ax.get_title()  # not over the next panel
    assert same_text(fig.axes[0].get_title(), f"{long['gradient_flow']}: error")
    for ax in fig.axes[: len(long)]:  # log axes read 0.6, not 6x10^-1
        labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)]
        assert not [t for t in labels if "times" in t], labels
