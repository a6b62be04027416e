"""Fig 2: observed rate Delta(h) of HB and NAG against the rescaled gradient flow (Thm 2)."""

import numpy as np

from momentum_jax.paper import rate_grid, script_main
from momentum_jax.plotting import COLORS, METHOD_LABELS, new_figure, rate_panel, save_figure

NAME = "fig2_rates"
DESCRIPTION = (
    "Delta(h) = log2(E(h)/E(h/2)) for HB/NAG against the rescaled gradient flow; tends to 1."
)
CONFIG = {
    "kappas": [5.0, 10.0, 20.0],
    "lam": 0.9,
    "T": 2.0,
    "h_exponents": [4, 17],
    "model": "gradient_flow",
    "init": "zero",
    "velocity": "taylor",
}
QUICK = {"h_exponents": [4, 12]}
CLAIM = "paper: tends to 1"


def compute(config, ctx):
    lo, hi = config["h_exponents"]
    hs = 2.0 ** -np.arange(lo, hi + 1)
    model = config["model"]
    errors, rates, diverged = rate_grid(
        config["kappas"],
        hs,
        lam=config["lam"],
        T=config["T"],
        models=(model,),
        init=config["init"],
        velocity=config["velocity"],
        progress=ctx.progress(len(config["kappas"]), "kappa"),
    )
    last = {
        f"kappa={k:g}": {m: float(rates[model][j, i, -1]) for i, m in enumerate(("hb", "nag"))}
        for j, k in enumerate(config["kappas"])
    }
    d = last[f"kappa={config['kappas'][0]:g}"]
    headline = (
        f"Delta(2^-{hi - 1}) for kappa={config['kappas'][0]:g}: HB {d['hb']:.3f}, "
        f"NAG {d['nag']:.3f}; {CLAIM}"
    )
    return {
        "arrays": {
            "hs": hs,
            "rates": rates[model],
            "errors": errors[model],
            "diverged_at": diverged,
        },
        "summary": {
            "delta_at_smallest_h": last,
            "h_of_delta": f"2^-{hi - 1}",
            "headline": headline,
        },
    }


def plot(data, config, path, title="rescaled gradient flow"):
    hs, rates = data["arrays"]["hs"], data["arrays"]["rates"]
    fig, axes = new_figure(1, 2)
    for i, method in enumerate(("hb", "nag")):
        ax = axes[0, i]
        for j, kappa in enumerate(config["kappas"]):
            rate_panel(ax, hs, rates[j, i], label=rf"$\kappa={kappa:g}$", color=COLORS[j])
        ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
        ax.set_title(f"{METHOD_LABELS[method]} vs {title}", fontsize=10)
        ax.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
