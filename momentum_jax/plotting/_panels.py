"""The matplotlib panels and axis formatting shared by `plot_study`, `plot_sweep` and the
paper's figures: figures sized per panel, error and rate panels against the learning rate,
reference and fitted slopes, titles that fit their panel, readable tick labels."""

from __future__ import annotations

import numpy as np

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


def rate_panel(
    ax,
    hs,
    rates,
    *,
    label,
    color,
    valid=None,
    marker="o",
    cross_label="excluded from rates (see the status)",
    alpha=1.0,
):
    """Plot `Delta(h)` against `-log2 h` (the x-axis of the paper's Figs 2 and 4).

    `rates[i]` belongs to `hs[i]` (the rate between `h_i` and `h_i / 2`). Points that are not
    valid (a status other than "ok" at either end: diverged, linearly unstable, relative error
    `>= 1`, solver failure) are drawn as red crosses at the bottom of the
    panel, never silently dropped, named `cross_label` in the legend (when `label` is given).
    `alpha` is the opacity of the line (paler for a second seed of the same series).
    """
    x = -np.log2(np.asarray(hs)[: len(rates)])
    rates = np.asarray(rates, dtype=float)
    ok = np.isfinite(rates) if valid is None else (np.asarray(valid) & np.isfinite(rates))
    ax.plot(x[ok], rates[ok], marker=marker, ms=3, color=color, label=label, alpha=alpha)
    if np.any(~ok):
        ax.plot(
            x[~ok],
            np.zeros(np.sum(~ok)),
            "x",
            color="red",
            ms=6,
            alpha=alpha,
            label=cross_label if label else None,
        )
    ax.set_xlabel(r"$-\log_2 h$")
    ax.set_ylabel(r"$\Delta(h)$")


def error_panel(ax, hs, errors, *, label, color, marker="o", ls="-", cross_label=None, alpha=1.0):
    """Errors against `h` on log-log axes; non-finite (excluded) points marked with red crosses
    at the top of the series, named `cross_label` in the legend when it is given; `alpha` is
    the line's opacity."""
    hs, errors = np.asarray(hs), np.asarray(errors, dtype=float)
    ok = np.isfinite(errors) & (errors > 0)
    ax.loglog(hs[ok], errors[ok], marker=marker, ms=3, ls=ls, color=color, label=label, alpha=alpha)
    if np.any(~ok):
        top = np.nanmax(errors[ok]) if np.any(ok) else 1.0
        ax.loglog(hs[~ok], np.full(np.sum(~ok), top), "x", color="red", ms=6, label=cross_label)
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


def panel_title(ax, text: str, *, fontsize: float = 10.0):
    """Set `text` as the title of `ax`, broken into lines (at spaces, after commas and before
    `[`) so that no line is wider than the axes: a long model label
    (`modified_flow[order=2, constant='printed']: observed rate`) is never cut off."""
    import textwrap

    fig = ax.get_figure()
    width_pt = ax.get_position().width * fig.get_figwidth() * 72
    per_line = max(12, int(width_pt / (0.6 * fontsize)))  # a generous mean glyph width
    spaced = text.replace("[", " [") if len(text) > per_line else text
    lines = textwrap.wrap(spaced, per_line, break_long_words=False, break_on_hyphens=False)
    return ax.set_title("\n".join(line.replace(" [", "[") for line in lines), fontsize=fontsize)


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


def tick_text(value: float) -> str:
    """A tick label: `4.88` for values from `1e-3` to `1e4`, else `4.88x10^-7` (mathtext), at
    most three significant digits (never `4.875x10^0`)."""
    if value == 0 or not np.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    exponent = int(np.floor(np.log10(abs(value))))
    mantissa = float(f"{value / 10.0**exponent:.3g}")
    if abs(mantissa) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    head = "" if mantissa == 1 else ("-" if mantissa == -1 else f"{mantissa:g}\\times")
    return f"${head}10^{{{exponent}}}$"


def readable_log_ticks(axis) -> None:
    """Label the ticks of a logarithmic `axis` (an `ax.xaxis`, `ax.yaxis`) as matplotlib decides
    which ticks get a label, powers of ten as `10^k`, the others by `tick_text` (`0.6`, not
    `6x10^-1`; `4.88`, not `4.875x10^0`)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Readable(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            text = super().__call__(x, pos)
            if not text or x <= 0:
                return text
            exponent = np.log10(x)
            return text if abs(exponent - round(exponent)) < 1e-9 else tick_text(x)

    axis.set_major_formatter(Readable())
    axis.set_minor_formatter(Readable(labelOnlyBase=False))
