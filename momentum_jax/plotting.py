"""Plotting helpers (matplotlib): panels for errors and observed rates against the learning rate,
used by `Study.plot`, the sweep plots and the paper's figures. Every function draws on axes it is
given or returns a matplotlib figure; nothing here selects a backend or shows a window
(matplotlib picks a non-interactive backend when there is no display).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

METHOD_LABELS = {"hb": "HB", "nag": "NAG", "gd": "GD"}
COLORS = ["C0", "C1", "C2", "C3", "C4", "C5", "C6"]


def new_figure(nrows=1, ncols=1, *, width=4.0, height=3.2, **kw):
    """A figure with a grid of axes sized per panel (inches)."""
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw
    )
    return fig, axes


def save_figure(fig, path, *, dpi=80):
    """Save as a small PNG (explicit format, so temporary file names work) and close."""
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
