"""Fig 9 (ours): damped-Hamiltonian error for the three starts: eq. (12), Taylor, manifold."""

import numpy as np

from momentum_jax import fit_order
from momentum_jax.paper import config_model, rate_grid, script_main
from momentum_jax.plotting import (
    COLORS,
    METHOD_LABELS,
    error_panel,
    new_figure,
    reference_slope,
    save_figure,
)

NAME = "fig9_hamiltonian_starts"
DESCRIPTION = (
    "Damped-Hamiltonian model: error against h for u'(0) from eq. (12), from Taylor "
    "matching, and on the invariant manifold (the only start with order 2)."
)
CONFIG = {"kappas": [5.0, 10.0, 20.0], "lam": 0.9, "T": 2.0, "h_exponents": [4, 15]}
QUICK = {"kappas": [10.0], "h_exponents": [4, 11]}
STARTS = ("paper", "taylor", "manifold")


def compute(config, ctx):
    lo, hi = config["h_exponents"]
    hs = 2.0 ** -np.arange(lo, hi + 1)
    arrays, summary = {"hs": hs}, {"order_fit": {}, "error_ratio_taylor_over_paper": {}}
    for start in STARTS:
        errors, _, _ = rate_grid(
            config["kappas"],
            hs,
            lam=config["lam"],
            T=config["T"],
            model=config_model("hamiltonian", velocity=start),
            init="manifold" if start == "manifold" else "zero",
            progress=ctx.progress(len(config["kappas"]), start),
        )
        arrays[f"errors_{start}"] = errors
        fit = {
            f"kappa={k:g} {m}": float(fit_order(hs, errors[j, i], 4))
            for j, k in enumerate(config["kappas"])
            for i, m in enumerate(("hb", "nag"))
        }
        summary["order_fit"][start] = fit
    for j, k in enumerate(config["kappas"]):
        for i, m in enumerate(("hb", "nag")):
            ratio = arrays["errors_taylor"][j, i, -1] / arrays["errors_paper"][j, i, -1]
            summary["error_ratio_taylor_over_paper"][f"kappa={k:g} {m}"] = float(ratio)
    o = summary["order_fit"]
    r = summary["error_ratio_taylor_over_paper"]
    summary["headline"] = (
        "fitted orders: paper {:.2f}, taylor {:.2f}, manifold {:.2f} (HB, kappa={:g}); "
        "taylor/paper error at smallest h: HB {:.3f}, NAG {:.2f}; theory: 1, 1, 2".format(
            *(o[s][f"kappa={config['kappas'][0]:g} hb"] for s in STARTS),
            config["kappas"][0],
            r[f"kappa={config['kappas'][0]:g} hb"],
            r[f"kappa={config['kappas'][0]:g} nag"],
        )
    )
    return {"arrays": arrays, "summary": summary}


def plot(data, config, path):
    a = data["arrays"]
    kappas = config["kappas"]
    fig, axes = new_figure(2, len(kappas), width=max(3.4, 5.0 / len(kappas)), height=3.0)
    for i, method in enumerate(("hb", "nag")):
        for j, kappa in enumerate(kappas):
            ax = axes[i, j]
            for s, start in enumerate(STARTS):
                error_panel(ax, a["hs"], a[f"errors_{start}"][j, i], label=start, color=COLORS[s])
            reference_slope(ax, a["hs"], a["errors_taylor"][j, i], 1)
            reference_slope(ax, a["hs"], a["errors_manifold"][j, i], 2, color="0.3")
            ax.set_title(f"{METHOD_LABELS[method]}, $\\kappa={kappa:g}$", fontsize=9)
            ax.legend(fontsize=6)
    fig.suptitle("Fig 9: damped-Hamiltonian error by initial velocity", fontsize=10)
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
