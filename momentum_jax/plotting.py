"""Plotting helpers (matplotlib): panels for errors and observed rates against the learning rate,
used by `Study.plot`, the sweep plots and the paper's figures. Every function draws on axes it is
given or returns a matplotlib figure; nothing here selects a backend or shows a window
(matplotlib picks a non-interactive backend when there is no display).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METHOD_LABELS = {"hb": "HB", "nag": "NAG", "gd": "GD"}
COLORS = ["C0", "C1", "C2", "C3", "C4", "C5", "C6"]


def new_figure(nrows=1, ncols=1, *, width=4.0, height=3.2, **kw):
    """A figure with a grid of axes sized per panel (inches)."""
    import matplotlib.pyplot as plt  # imported on first use: `import momentum_jax` stays light

    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw
    )
    return fig, axes


def save_figure(fig, path, *, dpi=80):
    """Save as a small PNG (explicit format, so temporary file names work) and close."""
    import matplotlib.pyplot as plt

    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, format="png", dpi=dpi)
    plt.close(fig)


def rate_panel(ax, hs, rates, *, label, color, valid=None, marker="o"):
    """Plot `Delta(h)` against `-log2 h` (the x-axis of the paper's Figs 2 and 4).

    `rates[i]` belongs to `hs[i]` (the rate between `h_i` and `h_i / 2`). Points that are not
    valid (diverged or solver failure at either end) are drawn as red crosses at the bottom of the
    panel, never silently dropped.
    """
    x = -np.log2(np.asarray(hs)[: len(rates)])
    rates = np.asarray(rates, dtype=float)
    ok = np.isfinite(rates) if valid is None else (np.asarray(valid) & np.isfinite(rates))
    ax.plot(x[ok], rates[ok], marker=marker, ms=3, color=color, label=label)
    if np.any(~ok):
        ax.plot(
            x[~ok],
            np.zeros(np.sum(~ok)),
            "x",
            color="red",
            ms=6,
            label="diverged / failed" if label else None,
        )
    ax.set_xlabel(r"$-\log_2 h$")
    ax.set_ylabel(r"$\Delta(h)$")


def error_panel(ax, hs, errors, *, label, color, marker="o", ls="-"):
    """Errors against `h` on log-log axes; non-finite (excluded) points marked with red crosses."""
    hs, errors = np.asarray(hs), np.asarray(errors, dtype=float)
    ok = np.isfinite(errors) & (errors > 0)
    ax.loglog(hs[ok], errors[ok], marker=marker, ms=3, ls=ls, color=color, label=label)
    if np.any(~ok):
        top = np.nanmax(errors[ok]) if np.any(ok) else 1.0
        ax.loglog(hs[~ok], np.full(np.sum(~ok), top), "x", color="red", ms=6)
    ax.set_xlabel("h")
    ax.set_ylabel(r"$\max_{nh\leq T} |u_n - u(nh)|$")


def reference_slope(ax, hs, errors, order, *, color="0.5"):
    """A dashed line of slope `order` through the smallest-h error, labelled `h^order`."""
    hs, errors = np.asarray(hs), np.asarray(errors, dtype=float)
    ok = np.isfinite(errors) & (errors > 0)
    if not np.any(ok):
        return
    h0, e0 = hs[ok][-1], errors[ok][-1]
    ax.loglog(hs, e0 * (hs / h0) ** order, "--", color=color, lw=0.8, label=f"$h^{order}$")


def _legend(ax, **kw):
    """A legend with each label once (the red crosses of several series share one entry)."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:
        ax.legend(unique.values(), unique.keys(), **kw)


def _pick(what: str, chosen, available: Sequence) -> list[int]:
    """Indices of `chosen` (None: all) in `available`; `ValueError` naming the allowed values."""
    if chosen is None:
        return list(range(len(available)))
    if isinstance(chosen, (str, float, int, np.generic)):
        chosen = [chosen]
    out = []
    for c in chosen:
        if isinstance(c, str):
            hits = [i for i, a in enumerate(available) if a == c]
        else:
            hits = [
                i for i, a in enumerate(available) if not isinstance(a, str) and np.isclose(a, c)
            ]
        if not hits:
            raise ValueError(f"{what} {c!r} is not one of {list(available)}")
        out.append(hits[0])
    return out


def fit_line(ax, hs, errors, order, points, *, color="0.3"):
    """Draw the fitted line of slope `order` over the `points` smallest `h` with a positive, finite
    error (the points `fit_order` fits), dashed and labelled `slope <order>`; the intercept is the
    least-squares one for that slope (the line passes through the mean of the fitted points).
    Returns the line, or None when there are fewer than two such points or `order` is NaN."""
    hs, errors = np.asarray(hs, dtype=float), np.asarray(errors, dtype=float)
    ok = np.isfinite(errors) & (errors > 0)
    chosen = [i for i in np.argsort(hs, kind="stable") if ok[i]][:points]
    if len(chosen) < 2 or not np.isfinite(order):
        return None
    sel = np.sort(np.asarray(chosen))
    logh, loge = np.log(hs[sel]), np.log(errors[sel])
    intercept = np.mean(loge - order * logh)
    (line,) = ax.loglog(
        hs[sel],
        np.exp(intercept + order * logh),
        "--",
        color=color,
        lw=1.6,
        alpha=0.8,
        label=f"slope {order:.2f}",
    )
    line.set_gid("fit")
    return line


def plot_study(study, *, models=None, methods=None, lams=None, fit: bool = True) -> Figure:
    """The errors and observed rates of a convergence study (as in the paper's Figs 2 and 4;
    docs/theory.md §2), one column per model.

    Top row: `max_{nh<=T} |u_n - u(nh)|` against `h` on log-log axes, one line per
    `(method, lam)`, with (`fit=True`) the fitted line of slope `study.orders[model]` over the
    `study.fit_points` smallest valid `h`, labelled `slope <order>`. Bottom row: `Delta(h)`
    against `-log2 h` (`rate_panel`). Points that diverged or whose solve failed are drawn as red
    crosses (at the top of the error panel, at zero in the rate panel), never dropped silently.

    **Arguments:**

    - `study`: a `Study`.
    - `models`, `methods`: names (one or a sequence) to draw; all by default.
    - `lams`: momenta (one or a sequence, matched to `study.lams` within rounding); all by
      default.
    - `fit`: draw the fitted slopes.

    **Returns:** a matplotlib `Figure` with `2 x len(models)` axes (nothing is shown; close it
    with `matplotlib.pyplot.close` when drawing many).
    """
    mod_idx = _pick("model", models, list(study.models))
    meth_idx = _pick("method", methods, list(study.methods))
    lam_idx = _pick("lam", lams, [float(x) for x in study.lams])
    fig, axes = new_figure(2, len(mod_idx), layout="constrained")
    rates, orders = study.rates, study.orders
    for c, mi in enumerate(mod_idx):
        model = study.models[mi]
        top, bottom = axes[0, c], axes[1, c]
        valid = study.valid(model)
        k = 0
        for i in meth_idx:
            meth = study.methods[i]
            for j in lam_idx:
                color = COLORS[k % len(COLORS)]
                k += 1
                label = rf"{METHOD_LABELS.get(meth, meth)}, $\lambda={study.lams[j]:g}$"
                errors = np.where(valid[i, j], study.errors[model][i, j], np.nan)
                error_panel(top, study.hs, errors, label=label, color=color)
                if fit:
                    fit_line(
                        top, study.hs, errors, orders[model][i, j], study.fit_points, color=color
                    )
                rate_panel(bottom, study.hs, rates[model][i, j], label=label, color=color)
        top.set_title(f"{model}: error")
        bottom.set_title(f"{model}: observed rate")
        _legend(top, fontsize=7)
        _legend(bottom, fontsize=7)
    return fig


def _sweep_quantity(sweep, quantity: str):
    """`(values, diverged, label)` of `quantity`, each `(method, lam, h, seed)`."""
    available = ["final_loss", "min_loss", "diverged_at"]
    if sweep.curve is not None:
        available.append("curve")
    if sweep.sharpness is not None:
        available.append("sharpness")
    available += [f"distance:{m}" for m in sweep.distances or {}]
    if quantity not in available:
        raise ValueError(f"quantity {quantity!r} is not one of {available} (for this sweep)")
    diverged = np.asarray(sweep.diverged_at) >= 0
    if quantity == "diverged_at":
        values = np.where(diverged, np.asarray(sweep.diverged_at, dtype=float), np.nan)
        return values, np.zeros_like(diverged), "diverged at step"
    if quantity == "curve":
        values, label = sweep.curve[..., -1], f"loss after step {int(sweep.curve_steps[-1])}"
    elif quantity == "sharpness":
        values = sweep.sharpness[..., -1]
        label = f"sharpness after step {int(sweep.sharpness_steps[-1])}"
    elif quantity.startswith("distance:"):
        model = quantity.split(":", 1)[1]
        values, label = sweep.distances[model], f"distance to {model}"
    else:
        values, label = getattr(sweep, quantity), quantity.replace("_", " ")
    return np.asarray(values, dtype=float), diverged, label


def _edges(x: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around increasing centres `x`: midpoints, in `log2` when `log` (a single
    centre gets a cell one octave wide, or `0.1` wide on a linear axis)."""
    if log:
        return 2.0 ** _linear_edges(np.log2(x), 0.5)
    return _linear_edges(x, 0.05)


def _linear_edges(x: np.ndarray, half: float) -> np.ndarray:
    if x.size == 1:
        return np.array([x[0] - half, x[0] + half])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])


def sweep_map(sweep, quantity: str = "final_loss", *, method: str, seed=None, log: bool = True):
    """The data `plot_sweep` draws for one method, as arrays: `(hs, lams, values)` with `hs` and
    `lams` increasing and `values` a masked array of shape `(len(lams), len(hs))` (rows: `lam`),
    masked where the run diverged (any seed, for the seed mean), where the value is not finite
    and, when `log`, where it is not positive; plus the boolean `diverged` of the same shape.
    `seed=None` averages over the seeds; a seed value (one of `sweep.seeds`) picks that seed.
    For `"diverged_at"` the value is the first diverging step (the earliest over the seeds),
    masked where no run diverged."""
    values, diverged, _ = _sweep_quantity(sweep, quantity)
    (mi,) = _pick("method", method, list(sweep.methods))
    values, diverged = values[mi], diverged[mi]
    if seed is not None:
        (si,) = _pick("seed", int(seed), [int(s) for s in sweep.seeds])
        values, diverged = values[..., si], diverged[..., si]
    elif quantity == "diverged_at":
        values = np.min(np.where(np.isnan(values), np.inf, values), axis=-1)
        values, diverged = np.where(np.isinf(values), np.nan, values), diverged[..., 0]
    else:
        values, diverged = np.mean(values, axis=-1), np.any(diverged, axis=-1)
    jl, kh = np.argsort(sweep.lams, kind="stable"), np.argsort(sweep.hs, kind="stable")
    values, diverged = values[jl][:, kh], diverged[jl][:, kh]
    mask = diverged | ~np.isfinite(values)
    if log:
        mask |= ~(values > 0)
    hs, lams = np.asarray(sweep.hs, dtype=float)[kh], np.asarray(sweep.lams, dtype=float)[jl]
    return hs, lams, np.ma.masked_array(values, mask), diverged


def plot_sweep(
    sweep,
    quantity: str = "final_loss",
    *,
    method: str | Sequence[str] | None = None,
    seed: int | None = None,
    ax=None,
    log: bool = True,
    thresholds: Mapping[str, Callable[[float], float]] | None = None,
    label: str | None = None,
    limits: tuple[float, float] | None = None,
) -> Figure:
    """Heat maps of a sweep over `(h, lam)`: one panel per method, `h` on a log2 axis, `lam` on
    the vertical axis, one shared colour bar. Cells where the run diverged are masked (grey) and
    marked with red crosses; the regime map overlays stability thresholds with `thresholds`.

    **Arguments:**

    - `sweep`: a `Sweep`.
    - `quantity`: `"final_loss"`, `"min_loss"`, `"diverged_at"` (the first diverging step;
      cells that did not diverge are blank), `"curve"` (the last point of the loss curve),
      `"sharpness"` (the last recorded sharpness) or `"distance:<model>"`; the optional ones
      only where the sweep recorded them (`ValueError` naming the available ones otherwise).
    - `method`: a name (or names) of `sweep.methods` to draw; all by default.
    - `seed`: a value of `sweep.seeds`; None averages over the seeds (a cell is then marked
      diverged if any seed diverged).
    - `ax`: an existing axes to draw one method on (then `method` must pick one, unless the sweep
      has a single method); by default a new figure.
    - `log`: logarithmic colour scale (non-positive values are left blank, not marked).
    - `thresholds`: optional `{label: f}` with `f(lam) -> h`, drawn as curves `h = f(lam)`
      (e.g. linear-stability thresholds); non-finite or non-positive values are not drawn.
    - `label`: the colour bar's label (default: from `quantity`); `limits`: `(low, high)` of the
      colour scale (default: the range of the values shown).

    **Returns:** the matplotlib `Figure` (that of `ax` when given; nothing is shown). The mesh
    of each panel (`ax.collections[0]`) holds `sweep_map(...)[2]`, rows `lam`, columns `h`,
    both increasing.
    """
    from matplotlib.colors import LogNorm, Normalize

    _, _, default_label = _sweep_quantity(sweep, quantity)
    label = default_label if label is None else label
    meth_idx = _pick("method", method, list(sweep.methods))
    if ax is None:
        fig, grid = new_figure(1, len(meth_idx), layout="constrained")
        axes = list(grid[0])
    else:
        if len(meth_idx) != 1:
            raise ValueError(
                f"ax= draws one heat map; pick one method of {list(sweep.methods)} with method="
            )
        fig, axes = cast("Figure", ax.get_figure()), [ax]
    maps = [
        sweep_map(sweep, quantity, method=sweep.methods[i], seed=seed, log=log) for i in meth_idx
    ]
    shown = np.concatenate([m[2].compressed() for m in maps])
    lo, hi = (float(shown.min()), float(shown.max())) if shown.size else (1.0, 10.0)
    if limits is not None:
        lo, hi = map(float, limits)
    if lo == hi:
        lo, hi = (lo / 2, hi * 2) if log else (lo - 0.5, hi + 0.5)
    norm: Any = LogNorm(lo, hi) if log else Normalize(lo, hi)
    mesh = None
    for a, i, (hs, lams, values, diverged) in zip(axes, meth_idx, maps, strict=True):
        h_edges, lam_edges = _edges(hs, True), _edges(lams, False)
        a.set_facecolor("0.85")
        mesh = a.pcolormesh(h_edges, lam_edges, values, norm=norm, cmap="viridis", shading="flat")
        a.set_xscale("log", base=2)
        if np.any(diverged):
            jj, kk = np.nonzero(diverged)
            a.plot(hs[kk], lams[jj], "x", color="red", ms=5, ls="none", label="diverged")
        for n, (name, f) in enumerate((thresholds or {}).items()):
            grid_lam = np.linspace(lam_edges[0], lam_edges[-1], 200)
            h = np.array([float(f(float(x))) for x in grid_lam])
            h = np.where(np.isfinite(h) & (h > 0), h, np.nan)
            a.plot(h, grid_lam, color="k", ls=["-", "--", ":", "-."][n % 4], lw=1.2, label=name)
        a.set_xlim(h_edges[0], h_edges[-1])
        a.set_ylim(lam_edges[0], lam_edges[-1])
        a.set_xlabel("h")
        a.set_ylabel(r"$\lambda$")
        meth = sweep.methods[i]
        which = (
            f"seed {seed}"
            if seed is not None
            else ("mean over seeds" if len(sweep.seeds) > 1 else f"seed {sweep.seeds[0]}")
        )
        a.set_title(f"{METHOD_LABELS.get(meth, meth)} ({which})")
        _legend(a, fontsize=7, loc="best")
    fig.colorbar(mesh, ax=axes, label=label)
    return fig
