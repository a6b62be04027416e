"""`plot_study`: the errors and observed rates of a convergence study (paper Figs 2 and 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._panels import (
    COLORS,
    METHOD_LABELS,
    error_panel,
    fit_line,
    new_figure,
    panel_title,
    rate_panel,
    readable_log_ticks,
)
from ._selection import pick

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EXCLUDED = "excluded from rates and fits"
"""The legend entry of `plot_study`'s red crosses: points whose status is not "ok" (diverged,
solver failed, or outside the asymptotic regime; `Study.status` says which)."""


def plot_study(study, *, models=None, methods=None, lams=None, fit: bool = True) -> Figure:
    """The errors and observed rates of a convergence study (as in the paper's Figs 2 and 4;
    docs/theory.md §2), one column per model.

    Top row: `max_{nh<=T} |u_n - u(nh)|` against `h` on log-log axes, one line per
    `(method, lam)`, with (`fit=True`) the fitted line of slope `study.orders[model]` over the
    `study.fit_points` smallest valid `h`, labelled `slope <order>`. Bottom row: `Delta(h)`
    against `-log2 h` (`rate_panel`). Points left out of rates and fits (`Study.valid`: diverged,
    solver failed, outside the asymptotic regime) are drawn as red crosses (at the top of the
    error panel, at zero in the rate panel), never dropped silently. One legend below the panels
    names the series and the crosses; each error panel names its fitted slopes. Log
    axes are labelled `0.6`, not `6x10^-1` (`readable_log_ticks`); long model labels are broken
    into lines to fit their panel (`panel_title`).

    **Arguments:**

    - `study`: a `Study`.
    - `models`, `methods`: names (one or a sequence) to draw; all by default.
    - `lams`: momenta (one or a sequence, matched to `study.lams` within rounding); all by
      default.
    - `fit`: draw the fitted slopes.

    **Returns:** a matplotlib `Figure` with `2 x len(models)` axes (nothing is shown; close it
    with `matplotlib.pyplot.close` when drawing many).
    """
    mod_idx = pick("model", models, list(study.models))
    meth_idx = pick("method", methods, list(study.methods))
    lam_idx = pick("lam", lams, [float(x) for x in study.lams])
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
                error_panel(top, study.hs, errors, label=label, color=color, cross_label=EXCLUDED)
                if fit:
                    fit_line(
                        top, study.hs, errors, orders[model][i, j], study.fit_points, color=color
                    )
                rate_panel(
                    bottom,
                    study.hs,
                    rates[model][i, j],
                    label=label,
                    color=color,
                    cross_label=EXCLUDED,
                )
        readable_log_ticks(top.xaxis)
        readable_log_ticks(top.yaxis)
        panel_title(top, f"{study.label(model)}: error")
        panel_title(bottom, f"{study.label(model)}: observed rate")
        slopes = [ln for ln in top.get_lines() if ln.get_gid() == "fit"]
        if slopes:  # the slopes differ per panel: their own legend, beside their lines
            top.legend(slopes, [ln.get_label() for ln in slopes], fontsize=7)
    # the series and the crosses are the same in every panel: one legend, below the panels
    shared: dict[str, Any] = {}
    for ax in axes.ravel():
        for line in ax.get_lines():
            if line.get_gid() != "fit" and not line.get_label().startswith("_"):
                shared.setdefault(line.get_label(), line)
    if EXCLUDED in shared:  # the crosses last, after the series
        shared[EXCLUDED] = shared.pop(EXCLUDED)
    if shared:
        fig.legend(
            list(shared.values()),
            list(shared),
            loc="outside lower center",
            ncols=min(len(shared), max(1, int(fig.get_figwidth() // 2))),  # fits the width
            fontsize=8,
            frameon=False,
        )
    return fig
