"""`plot_sweep`: heat maps of a sweep over `(h, lam)`, the quantities they can show, the data of
one panel (`sweep_map`), their colour scale, colour bar and legend."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ._panels import METHOD_LABELS, new_figure, tick_text
from ._selection import pick

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SWEEP_QUANTITIES = ("final_loss", "min_loss", "diverged_at")
"""The quantities of every sweep; `curve`, `sharpness` and `distance:<model>` where recorded."""

LOG_DECADES = 16
"""The most decades a logarithmic colour scale of `plot_sweep` spans by default: values below
`10^-16` times the largest one (float64 rounding, relative to the largest value) are drawn in the
colour below the scale, with the exact zeros."""


def sweep_quantities(
    *, curve: bool, sharpness: bool, models: Sequence[str] = (), min_loss: bool = True
) -> list[str]:
    """The quantities `plot_sweep` can draw from a sweep that recorded a `curve`, the
    `sharpness` and the distances to `models`: `final_loss`, `min_loss` (unless `min_loss` is
    False: not recorded on mini-batches), `diverged_at`, then `curve`, `sharpness`,
    `distance:<model>` where recorded (the command line checks `--quantity` against this list
    before the sweep runs)."""
    out = [q for q in SWEEP_QUANTITIES if min_loss or q != "min_loss"]
    if curve:
        out.append("curve")
    if sharpness:
        out.append("sharpness")
    return out + [f"distance:{m}" for m in models]


def _sweep_quantity(sweep, quantity: str):
    """`(values, diverged, label)` of `quantity`, each `(method, lam, h, seed)`."""
    available = sweep_quantities(
        curve=sweep.curve is not None,
        sharpness=sweep.sharpness is not None,
        models=list(sweep.distances or {}),
        min_loss=sweep.min_loss is not None,
    )
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


def _edges(x: np.ndarray, log: bool, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Cell edges around increasing centres `x`: midpoints, in `log2` when `log` (a single
    centre gets a cell one octave wide, or `0.1` wide on a linear axis), clipped to `bounds`
    (the momenta's `[0, 1]`: the axis never runs past the values a momentum can take)."""
    edges = 2.0 ** _linear_edges(np.log2(x), 0.5) if log else _linear_edges(x, 0.05)
    return edges if bounds is None else np.clip(edges, *bounds)


def _linear_edges(x: np.ndarray, half: float) -> np.ndarray:
    if x.size == 1:
        return np.array([x[0] - half, x[0] + half])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])


def sweep_map(sweep, quantity: str = "final_loss", *, method: str, seed=None, log: bool = True):
    """The data `plot_sweep` draws for one method, as arrays: `(hs, lams, values)` with `hs` and
    `lams` increasing and `values` a masked array of shape `(len(lams), len(hs))` (rows: `lam`),
    masked where the run diverged (any seed, for the seed mean), where the value is not finite
    and, when `log`, where it is negative (exact zeros are kept: on a logarithmic scale they are
    drawn in the colour below the scale, as the best runs, not as missing); plus the boolean
    `diverged` of the same shape. `seed=None` averages over the seeds; a seed value (one of
    `sweep.seeds`) picks that seed. For `"diverged_at"` the value is the first diverging step
    (the earliest over the seeds), masked where no run diverged."""
    values, diverged, _ = _sweep_quantity(sweep, quantity)
    (mi,) = pick("method", method, list(sweep.methods))
    values, diverged = values[mi], diverged[mi]
    if seed is not None:
        (si,) = pick("seed", int(seed), [int(s) for s in sweep.seeds])
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
        mask |= values < 0
    hs, lams = np.asarray(sweep.hs, dtype=float)[kh], np.asarray(sweep.lams, dtype=float)[jl]
    return hs, lams, np.ma.masked_array(values, mask), diverged


def _log_norm(lo: float, hi: float):
    """A logarithmic colour scale on `[lo, hi]` that draws exact zeros in the colour map's colour
    below the scale, as the values below `lo`, instead of masking them (matplotlib's `LogNorm`
    masks non-positive values, which then look like the cells without a value)."""
    from matplotlib.colors import LogNorm

    class ZerosBelowLogNorm(LogNorm):
        def __call__(self, value, clip=None):
            value = np.ma.asarray(value, dtype=float)
            data = np.where(np.ma.getdata(value) == 0, self.vmin / 10, np.ma.getdata(value))
            return super().__call__(np.ma.masked_array(data, np.ma.getmaskarray(value)), clip)

    return ZerosBelowLogNorm(lo, hi)


def colour_limits(shown: np.ndarray, *, log: bool, limits=None) -> tuple[float, float]:
    """The default colour limits of `plot_sweep` for the values `shown` (finite, unmasked):
    their range; on a log scale the smallest positive value, but at most `LOG_DECADES` decades
    below the largest (rounded down to a power of ten), so that one value at the edge of
    underflow (`1e-307`) does not squeeze every other value into one colour. `limits` overrides
    both; a single value gets a range around it."""
    shown = np.asarray(shown, dtype=float)
    if limits is not None:
        lo, hi = map(float, limits)
    elif log:
        positive = shown[shown > 0]
        if positive.size:
            lo, hi = float(positive.min()), float(positive.max())
            floor = 10.0 ** (np.floor(np.log10(hi)) - LOG_DECADES)
            lo = max(lo, floor)
        else:
            lo, hi = 1.0, 10.0
    else:
        lo, hi = (float(shown.min()), float(shown.max())) if shown.size else (0.0, 1.0)
    if lo == hi:
        lo, hi = (lo / 2, hi * 2) if log else (lo - 0.5, hi + 0.5)
    return lo, hi


def _colour_bar_ticks(cbar, lo: float, hi: float, log: bool) -> None:
    """Readable colour-bar ticks on a log scale: spanning less than a decade, a few evenly spaced
    values; up to three decades, 1, 2, 5 times the powers of ten, labelled by `tick_text`
    (`0.2`, `5`, not `2x10^-1`, `4.875x10^0`); beyond that the powers of ten (`10^-8`)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

    axis = cbar.ax.yaxis if cbar.orientation == "vertical" else cbar.ax.xaxis
    if not log:
        return
    decades = np.log10(hi / lo)
    if decades < 1:
        axis.set_major_locator(MaxNLocator(5))
    elif decades <= 3:
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    else:  # the powers of ten, labelled 10^k by matplotlib
        axis.set_major_locator(LogLocator(numticks=8))
        axis.set_minor_locator(NullLocator())
        return
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: tick_text(v)))


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
    the vertical axis (within `[0, 1]`), one shared colour bar. Cells where the run diverged are
    grey and marked with red crosses; other cells without a value (not finite; negative on a
    log scale; for `"diverged_at"`, the runs that did not diverge) are grey without a cross.
    On a log scale, values below the colour scale and exact zeros (the best runs) take the
    colour map's lowest colour, shown as the colour bar's lower extension. A legend (below the
    panels; inside the panel on a given `ax`) names every kind of cell that appears and the
    threshold curves; the regime map overlays stability thresholds with `thresholds`.

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
    - `log`: logarithmic colour scale.
    - `thresholds`: optional `{label: f}` with `f(lam) -> h`, drawn as curves `h = f(lam)`
      (e.g. linear-stability thresholds); non-finite or non-positive values are not drawn.
    - `label`: the colour bar's label (default: from `quantity`); `limits`: `(low, high)` of the
      colour scale (default: `colour_limits`, the range of the values shown, on a log scale at
      most `LOG_DECADES` decades).

    **Returns:** the matplotlib `Figure` (that of `ax` when given; nothing is shown). The mesh
    of each panel (`ax.collections[0]`) holds `sweep_map(...)[2]`, rows `lam`, columns `h`,
    both increasing.
    """
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    _, _, default_label = _sweep_quantity(sweep, quantity)
    label = default_label if label is None else label
    meth_idx = pick("method", method, list(sweep.methods))
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
    lo, hi = colour_limits(shown, log=log, limits=limits)
    norm: Any = _log_norm(lo, hi) if log else Normalize(lo, hi)
    below = bool(np.any(shown < lo))
    background, cmap = "0.85", "viridis"
    mesh = None
    kinds: dict[str, Any] = {}
    for a, i, (hs, lams, values, diverged) in zip(axes, meth_idx, maps, strict=True):
        h_edges, lam_edges = _edges(hs, True), _edges(lams, False, (0.0, 1.0))
        a.set_facecolor(background)
        mesh = a.pcolormesh(h_edges, lam_edges, values, norm=norm, cmap=cmap, shading="flat")
        a.set_xscale("log", base=2)
        if np.any(diverged):
            jj, kk = np.nonzero(diverged)
            a.plot(  # at the point's (h, lam), drawn whole also on the border lam = 0
                hs[kk], lams[jj], "x", color="red", ms=5, ls="none", label="diverged", clip_on=False
            )
        raw = np.ma.getdata(values)
        blank = np.ma.getmaskarray(values) & ~diverged
        if quantity == "diverged_at" and np.any(blank):
            kinds["did not diverge"] = Patch(facecolor=background, edgecolor="0.6")
        elif np.any(blank):
            why = "not finite" if np.any(blank & ~np.isfinite(raw)) else ""
            if log and np.any(blank & np.isfinite(raw) & (raw < 0)):
                why += ("; " if why else "") + "negative (log scale)"
            kinds[f"no value ({why})"] = Patch(facecolor=background, edgecolor="0.6")
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
    handles: dict[str, Any] = {}
    if any(np.any(m[3]) for m in maps):
        cross = Line2D([], [], marker="x", color="red", ms=5, ls="none")
        handles["diverged"] = (Patch(facecolor=background, edgecolor="0.6"), cross)
    handles.update(kinds)
    if log and below:
        zeros = bool(np.any(shown == 0))
        text = f"below {tick_text(lo)}" if np.any((shown > 0) & (shown < lo)) else ""
        text = f"0{' or ' + text if text else ''}" if zeros else text
        handles[text] = Patch(facecolor=mesh.cmap(0.0) if mesh else "k")
    for a in axes:  # the threshold curves
        for line in a.get_lines():
            if line.get_label() in (thresholds or {}):
                handles.setdefault(line.get_label(), line)
    extend = "min" if (log and below) else "neither"
    cbar = fig.colorbar(mesh, ax=axes, label=label, extend=extend)
    _colour_bar_ticks(cbar, lo, hi, log)
    if handles:
        ncols = min(len(handles), max(1, int(fig.get_figwidth() // 2)))
        if ax is None:
            fig.legend(
                list(handles.values()),
                list(handles),
                loc="outside lower center",
                ncols=ncols,
                fontsize=7,
                frameon=False,
            )
        else:  # on the caller's axes (their layout): inside the panel, as small as it goes
            ax.legend(list(handles.values()), list(handles), loc="best", fontsize=7)
    return fig
