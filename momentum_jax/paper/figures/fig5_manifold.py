"""Fig 5: the invariant manifold: iterates, velocities and the distance |e_n| (Thm 5, eq. 34)."""

import numpy as np

from momentum_jax import contraction_factor
from momentum_jax.paper import manifold_run, script_main
from momentum_jax.plotting import COLORS, METHOD_LABELS, new_figure, save_figure

NAME = "fig5_manifold"
DESCRIPTION = (
    "HB/NAG started off the manifold (v_0 = 0) at h = 2^-6: u_n, w_n for kappa = "
    "5, 10, 20 and |e_n| (eq. 34) for kappa = 20 under the geometric bound, with its "
    "measured contraction per step against the largest characteristic root modulus."
)
CONFIG = {"kappas": [5.0, 10.0, 20.0], "lam": 0.9, "h_exponent": 6, "steps": 128}
QUICK: dict = {}


def root_modulus(meth, h, lam, qs):
    """The largest modulus of the characteristic roots of `meth` on the curvatures `qs`
    (docs/theory.md §5): the asymptotic contraction of everything, `|e_n|` included, per step;
    `sqrt(lam - a h q)` where the roots are complex."""
    a = lam if meth == "nag" else 0.0
    return max(
        float(np.max(np.abs(np.roots([1.0, -(1 + lam - (1 + a) * h * q), lam - a * h * q]))))
        for q in qs
    )


def compute(config, ctx):
    h = 2.0 ** -config["h_exponent"]
    arrays, factors, theory = {}, {}, {}
    for j, kappa in enumerate(config["kappas"]):
        run = manifold_run(kappa, h, lam=config["lam"], steps=config["steps"])
        arrays |= {f"{k}_k{j}": v for k, v in run.items()}
    lam, kappa = config["lam"], config["kappas"][-1]
    for i, meth in enumerate(("hb", "nag")):
        e = arrays[f"e_{i}_k{len(config['kappas']) - 1}"]
        n = np.arange(e.size)
        factors[meth] = float(contraction_factor(e, skip=1))
        theory[meth] = root_modulus(meth, h, lam, (kappa, 1.0))
        arrays[f"bound_{i}"] = e[0] * lam**n
        # the measured and the theoretical envelope, through the largest distance of the tail
        tail = n >= e.size // 2
        anchor = int(n[tail][np.argmax(e[tail])])
        arrays[f"fit_{i}"] = e[anchor] * factors[meth] ** (n - anchor)
        arrays[f"theory_{i}"] = e[anchor] * theory[meth] ** (n - anchor)
    note = (
        f"h kappa = {h * kappa:.3g} and h = {h:.3g} exceed the onset of oscillation for both "
        f"methods ((1 - sqrt(lam))^2 = {(1 - np.sqrt(lam)) ** 2:.2g} for HB, "
        f"((1 - lam)/(1 + lam))^2 = {((1 - lam) / (1 + lam)) ** 2:.2g} for NAG): every root is "
        "complex with modulus sqrt(lam - a h q), so |e_n| oscillates under an envelope that "
        "shrinks by the largest modulus per step (HB sqrt(lam) for both curvatures, NAG "
        "sqrt(lam (1 - h)) of the slow curvature 1); Thm 5's (lam + O(h^2))^n is the small-h "
        "regime. Measured: contraction_factor, the least-squares slope of log|e_n| through its "
        "peaks over the second half of the run"
    )
    headline = (
        f"|e_n| contraction per step (kappa=20, tail fit through the peaks): HB "
        f"{factors['hb']:.3f} (largest root modulus sqrt(lam) = {theory['hb']:.3f}), NAG "
        f"{factors['nag']:.3f} (sqrt(lam (1 - h)) = {theory['nag']:.3f}); "
        "paper: |e_n| <= (lam + h^2 lam delta)^n |e_0|"
    )
    return {
        "arrays": arrays,
        "summary": {
            "contraction_factor": factors,
            "root_modulus": theory,
            "note": note,
            "headline": headline,
        },
    }


def plot(data, config, path):
    a, summary = data["arrays"], data["summary"]
    h = 2.0 ** -config["h_exponent"]
    fig, axes = new_figure(2, 3, width=3.3, height=3.0)
    for i, meth in enumerate(("hb", "nag")):
        for j, kappa in enumerate(config["kappas"]):
            u, w = a[f"u_{i}_k{j}"], a[f"w_{i}_k{j}"]
            axes[i, 0].plot(u[:, 0], u[:, 1], color=COLORS[j], lw=0.9, label=rf"$\kappa={kappa:g}$")
            axes[i, 1].plot(w[:, 0], w[:, 1], color=COLORS[j], lw=0.9, label=rf"$\kappa={kappa:g}$")
        e = a[f"e_{i}_k{len(config['kappas']) - 1}"]
        t = np.arange(e.size) * h
        fit, rho = summary["contraction_factor"][meth], summary["root_modulus"][meth]
        axes[i, 2].semilogy(t, e, color="C0", lw=0.9, label="$|e_n|$")
        axes[i, 2].semilogy(
            t, a[f"bound_{i}"], "--", color="C3", lw=0.9, label=r"$\lambda^n |e_0|$ (Thm 5)"
        )
        axes[i, 2].semilogy(
            t, a[f"fit_{i}"], "-", color="k", lw=0.7, alpha=0.6, label=f"tail fit: ${fit:.3f}^n$"
        )
        axes[i, 2].semilogy(
            t, a[f"theory_{i}"], ":", color="C2", lw=1.2, label=f"root modulus: ${rho:.3f}^n$"
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
