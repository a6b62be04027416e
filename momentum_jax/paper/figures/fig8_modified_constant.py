"""Fig 8 (ours): the modified-loss flow with the corrected and with the printed Thm 6 constant."""

import numpy as np

from momentum_jax.paper import config_model, rate_grid, script_main
from momentum_jax.plotting import COLORS, METHOD_LABELS, new_figure, rate_panel, save_figure

NAME = "fig8_modified_constant"
DESCRIPTION = (
    "Modified-loss flow from the manifold start: order 2 with the corrected constant "
    "c = alpha/(2(1-lam)^2), order 1 with the paper's printed Thm 6 constant."
)
CONFIG = {"kappas": [5.0, 10.0, 20.0], "lam": 0.9, "T": 2.0, "h_exponents": [4, 17]}
QUICK = {"h_exponents": [4, 13]}


def compute(config, ctx):
    lo, hi = config["h_exponents"]
    hs = 2.0 ** -np.arange(lo, hi + 1)
    arrays, last = {"hs": hs}, {}
    for constant in ("corrected", "printed"):
        errors, rates, _ = rate_grid(
            config["kappas"],
            hs,
            lam=config["lam"],
            T=config["T"],
            model=config_model("modified_flow", constant=constant),
            init="manifold",
            progress=ctx.progress(len(config["kappas"]), constant),
        )
        arrays[f"rates_{constant}"] = rates
        arrays[f"errors_{constant}"] = errors
        last[constant] = {
            f"kappa={k:g} {m}": float(rates[j, i, -1])
            for j, k in enumerate(config["kappas"])
            for i, m in enumerate(("hb", "nag"))
        }
    c, p = last["corrected"], last["printed"]
    headline = (
        f"Delta(2^-{hi - 1}): corrected {min(c.values()):.2f}-{max(c.values()):.2f}, "
        f"printed {min(p.values()):.2f}-{max(p.values()):.2f}; "
        "docs/theory.md §4: 2 with the corrected constant, 1 with the printed one"
    )
    return {"arrays": arrays, "summary": {"delta_at_smallest_h": last, "headline": headline}}


def plot(data, config, path):
    a = data["arrays"]
    fig, axes = new_figure(1, 2)
    for i, method in enumerate(("hb", "nag")):
        ax = axes[0, i]
        for j, kappa in enumerate(config["kappas"]):
            rate_panel(
                ax,
                a["hs"],
                a["rates_corrected"][j, i],
                color=COLORS[j],
                label=rf"corrected, $\kappa={kappa:g}$",
            )
            rate_panel(
                ax,
                a["hs"],
                a["rates_printed"][j, i],
                color=COLORS[j],
                marker="s",
                label=rf"printed, $\kappa={kappa:g}$",
            )
            ax.lines[-1].set_linestyle(":")
        for level in (1.0, 2.0):
            ax.axhline(level, color="0.5", lw=0.8, ls="--")
        ax.set_title(f"{METHOD_LABELS[method]}: modified-loss flow, manifold start", fontsize=10)
        ax.legend(fontsize=6, ncol=2)
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
