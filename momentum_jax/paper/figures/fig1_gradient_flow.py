"""Fig 1: trajectories of HB (top) and NAG (bottom) against the rescaled gradient flow."""

import numpy as np

from momentum_jax.paper import config_model, pack, script_main, trajectories, unpack
from momentum_jax.plotting import COLORS, METHOD_LABELS, new_figure, save_figure

NAME = "fig1_gradient_flow"
DESCRIPTION = (
    "HB and NAG iterates approach the rescaled gradient flow u' = -grad Phi/(1-lam) as h shrinks."
)
CONFIG = {
    "kappas": [5.0, 10.0, 20.0],
    "lam": 0.9,
    "T": 2.0,
    "h_exponents": [9, 10, 11],
    "model": "gradient_flow",
    "velocity": "paper",
}
QUICK: dict = {}
LABEL = "gradient flow"
TITLE = r"Fig 1: HB/NAG vs rescaled gradient flow, $\lambda=0.9$"
CLAIM = "paper: converges as h -> 0"


def trajectory_grid(disc, cont, *, kappas, hs, methods, model_label, title):
    """Paper Figs 1 and 3: rows = methods, columns = `kappa`; each panel the discrete iterates for
    every `h` (dashed) and the model's solution (solid) in the `(u_1, u_2)` plane."""
    fig, axes = new_figure(len(methods), len(kappas), width=3.3, height=3.0)
    for i, meth in enumerate(methods):
        for j, kappa in enumerate(kappas):
            ax = axes[i, j]
            for k, h in enumerate(hs):
                d, c = disc[(i, j, k)], cont[(i, j, k)]
                exp = int(round(-np.log2(h)))
                ax.plot(
                    d[:, 0],
                    d[:, 1],
                    "--",
                    color=COLORS[k],
                    lw=0.9,
                    label=f"{METHOD_LABELS[meth]} $h=2^{{-{exp}}}$",
                )
                if k == 0 or model_label != "gradient flow":
                    ax.plot(
                        c[:, 0],
                        c[:, 1],
                        "-",
                        color="k" if model_label == "gradient flow" else COLORS[k],
                        lw=0.8,
                        alpha=0.8,
                        label=model_label if k == 0 else None,
                    )
            ax.plot([1.0], [1.0], "k*", ms=6)
            ax.set_title(f"{METHOD_LABELS[meth]}: $\\kappa = {kappa:g}$", fontsize=9)
            ax.set_xlabel("$u_1$")
            ax.set_ylabel("$u_2$")
            ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    return fig


def compute(config, ctx, claim=CLAIM):
    hs = [2.0**-e for e in config["h_exponents"]]
    disc, cont, gaps = trajectories(
        config["kappas"],
        hs,
        lam=config["lam"],
        T=config["T"],
        model=config_model(config["model"], velocity=config["velocity"]),
    )
    table = {
        f"{meth} kappa={kappa:g} h=2^-{e}": float(gaps[i, j, k])
        for i, meth in enumerate(("hb", "nag"))
        for j, kappa in enumerate(config["kappas"])
        for k, e in enumerate(config["h_exponents"])
    }
    arrays = (
        {"gaps": gaps}
        | {f"d{k}": v for k, v in pack(disc).items()}
        | {f"c{k}": v for k, v in pack(cont).items()}
    )
    hb = ", ".join(f"2^-{e}: {gaps[0, -1, k]:.3f}" for k, e in enumerate(config["h_exponents"]))
    headline = f"max |u_n - u(nh)| for HB, kappa={config['kappas'][-1]:g}: {hb}; {claim}"
    return {"arrays": arrays, "summary": {"max_error": table, "headline": headline}}


def plot(data, config, path, label=LABEL, title=TITLE):
    hs = [2.0**-e for e in config["h_exponents"]]
    fig = trajectory_grid(
        unpack(data["arrays"], "d"),
        unpack(data["arrays"], "c"),
        kappas=config["kappas"],
        hs=hs,
        methods=("hb", "nag"),
        model_label=label,
        title=title,
    )
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
