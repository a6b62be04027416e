"""Fig 1: trajectories of HB (top) and NAG (bottom) against the rescaled gradient flow."""

import sys

from momentum_jax._paper import pack, trajectories, unpack
from momentum_jax._plotting import save_figure, trajectory_grid
from momentum_jax._reproduce import run_experiment, script_main

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
QUICK = {}
LABEL = "gradient flow"
TITLE = r"Fig 1: HB/NAG vs rescaled gradient flow, $\lambda=0.9$"
CLAIM = "paper: converges as h -> 0"


def compute(config, ctx, claim=CLAIM):
    hs = [2.0**-e for e in config["h_exponents"]]
    disc, cont, gaps = trajectories(
        config["kappas"],
        hs,
        lam=config["lam"],
        T=config["T"],
        model=config["model"],
        velocity=config["velocity"],
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


def main(**kw):
    return run_experiment(sys.modules[__name__], **kw)


if __name__ == "__main__":
    script_main(sys.modules[__name__])
