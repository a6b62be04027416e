"""Fig 5: the invariant manifold: iterates, velocities and the distance |e_n| (Thm 5, eq. 34)."""

import numpy as np

from momentum_jax.paper import manifold_run, script_main
from momentum_jax.plotting import COLORS, METHOD_LABELS, new_figure, save_figure

NAME = "fig5_manifold"
DESCRIPTION = (
    "HB/NAG started off the manifold (v_0 = 0) at h = 2^-6: u_n, w_n for kappa = "
    "5, 10, 20 and |e_n| (eq. 34) for kappa = 20 under the geometric bound."
)
CONFIG = {"kappas": [5.0, 10.0, 20.0], "lam": 0.9, "h_exponent": 6, "steps": 128}
QUICK: dict = {}


def compute(config, ctx):
    h = 2.0 ** -config["h_exponent"]
    arrays, factors = {}, {}
    for j, kappa in enumerate(config["kappas"]):
        run = manifold_run(kappa, h, lam=config["lam"], steps=config["steps"])
        arrays |= {f"{k}_k{j}": v for k, v in run.items()}
    lam = config["lam"]
    for i, meth in enumerate(("hb", "nag")):
        e = arrays[f"e_{i}_k{len(config['kappas']) - 1}"]
        n = np.arange(e.size)
        # envelope decay per step over the second half (after the initial transient)
        half = e.size // 2
        factors[meth] = float((e[half:].max() / e[:half].max()) ** (1 / half))
        arrays[f"bound_{i}"] = e[0] * lam**n
        arrays[f"sqrt_bound_{i}"] = e[0] * np.sqrt(lam) ** n
    kappa = config["kappas"][-1]
    note = (
        f"h kappa = {h * kappa:.3g} exceeds (1 - sqrt(lam))^2 = {(1 - np.sqrt(lam)) ** 2:.2g}: "
        "HB's off-manifold roots are then complex with modulus sqrt(lam), so |e_n| oscillates "
        "under a sqrt(lam)^n envelope; Thm 5's (lam + O(h^2))^n is the small-h regime"
    )
    headline = (
        f"|e_n| envelope per step (kappa=20): HB {factors['hb']:.3f} "
        f"(sqrt(lam) = {np.sqrt(lam):.3f}), NAG {factors['nag']:.3f}; "
        "paper: |e_n| <= (lam + h^2 lam delta)^n |e_0|"
    )
    return {
        "arrays": arrays,
        "summary": {"envelope_factor": factors, "note": note, "headline": headline},
    }


def plot(data, config, path):
    a = data["arrays"]
    h = 2.0 ** -config["h_exponent"]
    fig, axes = new_figure(2, 3, width=3.3, height=3.0)
    for i, meth in enumerate(("hb", "nag")):
        for j, kappa in enumerate(config["kappas"]):
            u, w = a[f"u_{i}_k{j}"], a[f"w_{i}_k{j}"]
            axes[i, 0].plot(u[:, 0], u[:, 1], color=COLORS[j], lw=0.9, label=rf"$\kappa={kappa:g}$")
            axes[i, 1].plot(w[:, 0], w[:, 1], color=COLORS[j], lw=0.9, label=rf"$\kappa={kappa:g}$")
        e = a[f"e_{i}_k{len(config['kappas']) - 1}"]
        t = np.arange(e.size) * h
        axes[i, 2].semilogy(t, e, color="C0", lw=0.9, label="$|e_n|$")
        axes[i, 2].semilogy(
            t, a[f"bound_{i}"], "--", color="C3", lw=0.9, label=r"$\lambda^n |e_0|$"
        )
        axes[i, 2].semilogy(
            t, a[f"sqrt_bound_{i}"], ":", color="C2", lw=0.9, label=r"$\lambda^{n/2} |e_0|$"
        )
        for col, (title, xl, yl) in enumerate(
            [
                ("$u_n$", "$u_1$", "$u_2$"),
                ("$w_n$ (eq. 15)", "$w_1$", "$w_2$"),
                (r"$|e_n|$, $\kappa=20$", "$t = nh$", ""),
            ]
        ):
            axes[i, col].set_title(f"{METHOD_LABELS[meth]}: {title}", fontsize=9)
            axes[i, col].set_xlabel(xl)
            axes[i, col].set_ylabel(yl)
            axes[i, col].legend(fontsize=6)
    fig.suptitle(
        rf"Fig 5: invariant manifold, $h=2^{{-{config['h_exponent']}}}$, "
        r"$\lambda=0.9$, $u_0=(1,1)$, $v_0=0$",
        fontsize=10,
    )
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
