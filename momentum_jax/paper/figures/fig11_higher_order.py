"""Fig 11 (ours): automatic higher-order modified flows on the invariant manifold, R = 0 ... 3."""

import jax.numpy as jnp
import numpy as np

from momentum_jax import ModifiedFlow, convergence_study, double_well
from momentum_jax.paper import script_main
from momentum_jax.plotting import (
    COLORS,
    METHOD_LABELS,
    error_panel,
    new_figure,
    reference_slope,
    save_figure,
)

NAME = "fig11_higher_order"
DESCRIPTION = (
    "Error of the order-R modified flow against HB/NAG started on the order-R "
    "manifold, on the nonconvex double well: slopes R + 1 = 1, 2, 3, 4."
)
CONFIG = {
    "lam": 0.5,
    "T": 1.0,
    "h_exponents": [4, 10],
    "orders": [0, 1, 2, 3],
    "u0": [0.3, 1.0],
    "fit_points": 4,
}
QUICK = {"h_exponents": [4, 8], "fit_points": 3}


def compute(config, ctx):
    lo, hi = config["h_exponents"]
    hs = 2.0 ** -np.arange(lo, hi + 1)
    errors, slopes = [], {}
    for R in ctx.progress_iter(config["orders"], "order"):
        st = convergence_study(
            double_well,
            jnp.array(config["u0"]),
            hs=hs,
            lams=[config["lam"]],
            T=config["T"],
            models=(ModifiedFlow(order=R),),
            init="manifold",
            init_order=R,
            fit_points=config["fit_points"],
        )
        (key,) = st.models
        errors.append(st.errors[key][:, 0])
        for i, m in enumerate(st.methods):
            slopes[f"R={R} {m}"] = float(st.orders[key][i, 0])
    hb = ", ".join(f"{slopes[f'R={R} hb']:.2f}" for R in config["orders"])
    headline = f"fitted slopes for R = 0..3 (HB, lam={config['lam']}): {hb}; expected R + 1"
    return {
        "arrays": {"hs": hs, "errors": np.array(errors)},
        "summary": {"fitted_order": slopes, "headline": headline},
    }


def plot(data, config, path):
    hs, errors = data["arrays"]["hs"], data["arrays"]["errors"]
    fig, axes = new_figure(1, 2)
    for i, method in enumerate(("hb", "nag")):
        ax = axes[0, i]
        for k, R in enumerate(config["orders"]):
            error_panel(ax, hs, errors[k, i], label=f"R = {R}", color=COLORS[k])
            reference_slope(ax, hs, errors[k, i], R + 1, color=COLORS[k])
            ax.lines[-1].set_label(None)
        ax.set_title(
            f"{METHOD_LABELS[method]}, $\\lambda={config['lam']}$, double well", fontsize=10
        )
        ax.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
