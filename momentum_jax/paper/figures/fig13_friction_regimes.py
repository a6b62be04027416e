"""Fig 13 (beyond the paper): fixed momentum against vanishing friction on one loss.

Fixed `lam` (time `t = n h`): HB against the rescaled gradient flow (order 1) and the modified
flow from the invariant manifold (order 2). Vanishing friction (time `t = n sqrt(h)`): HB-mu,
NAG-mu, Wilson's split step and Nesterov's `lam_n = (n-1)/(n+2)` against their low-resolution
ODE limits (order 1/2) and high-resolution forms (order 1 with the matched start).
"""

import jax.numpy as jnp
import numpy as np
from matplotlib.ticker import NullFormatter

from momentum_jax import (
    convergence_study,
    fit_order,
    get_loss,
    heavy_ball,
    iterate,
    solve,
    solve_limit,
    vanishing_iterate,
    vanishing_study,
)
from momentum_jax.paper import script_main
from momentum_jax.plotting import COLORS, new_figure, reference_slope, save_figure

NAME = "fig13_friction_regimes"
DESCRIPTION = (
    "Fixed momentum (t = n h: orders 1 and 2) against vanishing friction "
    "(t = n sqrt(h): order 1/2 for the low-resolution ODEs, 1 for the high-resolution "
    "forms) on the nonconvex double well."
)
CONFIG = {
    "loss": "double_well",
    "lam": 0.9,
    "mu": 1.0,
    "T_fixed": 1.0,
    "T_vanishing": 8.0,
    "h_trajectory_fixed": 8,
    "h_trajectory_vanishing": 6,
    "fixed_h_exponents": [6, 15],
    "vanishing_h_exponents": [4, 14],
    "fit_points": 4,
}
QUICK = {"fixed_h_exponents": [6, 11], "vanishing_h_exponents": [4, 10]}

# (label, scheme, limit, velocity, expected order)
VANISHING = [
    ("HB-μ vs low-res ODE", "hb_mu", "low", "zero", 0.5),
    ("HB-μ vs high-res ODE (matched start)", "hb_mu", "high", "matched", 1.0),
    ("NAG-μ vs high-res ODE (matched start)", "nag_mu", "high", "matched", 1.0),
    ("Wilson vs low-res ODE", "wilson", "low", "zero", 0.5),
    ("Wilson vs low-res ODE (matched start)", "wilson", "low", "matched", 1.0),
    ("Nesterov (n-1)/(n+2) vs X''+3X'/t+∇f=0", "nesterov", "low", "zero", 0.5),
]
FIXED = [
    ("HB vs rescaled gradient flow", "gradient_flow", "zero", 1.0),
    ("HB vs modified flow (manifold start)", "modified_flow", "manifold", 2.0),
]


def compute(config, ctx):
    spec = get_loss(config["loss"])
    loss, u0 = spec.fn, spec.u0
    lam, mu, k = config["lam"], config["mu"], config["fit_points"]
    lo, hi = config["fixed_h_exponents"]
    hs_fixed = 2.0 ** -np.arange(lo, hi + 1)
    lo, hi = config["vanishing_h_exponents"]
    hs_van = 2.0 ** -np.arange(lo, hi + 1)
    arrays, orders = {"hs_fixed": hs_fixed, "hs_vanishing": hs_van}, {}

    fixed_errors = []
    for label, model, init, _ in ctx.progress_iter(FIXED, "fixed momentum"):
        st = convergence_study(
            loss,
            u0,
            hs=hs_fixed,
            lams=[lam],
            methods=("hb",),
            models=(model,),
            T=config["T_fixed"],
            init=init,
            fit_points=k,
        )
        fixed_errors.append(st.errors[model][0, 0])
        orders[label] = fit_order(hs_fixed, fixed_errors[-1], k)
    arrays["fixed_errors"] = np.array(fixed_errors)

    van_errors = []
    for label, scheme, limit, velocity, _ in ctx.progress_iter(VANISHING, "vanishing friction"):
        st = vanishing_study(
            loss, u0, scheme, hs_van, config["T_vanishing"], mu=mu, limit=limit, velocity=velocity
        )
        van_errors.append(st.errors)
        orders[label] = st.order(k)
    arrays["vanishing_errors"] = np.array(van_errors)

    h = 2.0 ** -config["h_trajectory_fixed"]
    n_fixed = int(round(config["T_fixed"] / h))
    arrays["traj_hb"] = np.asarray(iterate(loss, u0, heavy_ball(h, lam), n_fixed))
    ts = jnp.linspace(0.0, config["T_fixed"], 200)
    arrays["traj_gradient_flow"] = np.asarray(
        solve(loss, u0, heavy_ball(h, lam), ts, model="gradient_flow")
    )
    h = 2.0 ** -config["h_trajectory_vanishing"]
    n_van = int(round(config["T_vanishing"] / np.sqrt(h)))
    tv = jnp.linspace(0.0, config["T_vanishing"], 200)
    for scheme in ("hb_mu", "nesterov"):
        arrays[f"traj_{scheme}"] = np.asarray(vanishing_iterate(loss, u0, scheme, h, n_van, mu=mu))
        arrays[f"traj_{scheme}_low"] = np.asarray(solve_limit(loss, u0, scheme, h, tv, mu=mu))
    arrays["traj_hb_mu_high"] = np.asarray(
        solve_limit(loss, u0, "hb_mu", h, tv, mu=mu, limit="high", velocity="matched")
    )
    f = {label: round(float(v), 3) for label, v in orders.items()}
    summary = {"orders": f, "expected": {lab: e for lab, *_, e in FIXED + VANISHING}}
    summary["headline"] = (
        f"fixed lam={lam:g} (t = n h): HB vs gradient flow {f[FIXED[0][0]]:.2f}, vs modified flow "
        f"{f[FIXED[1][0]]:.2f}; vanishing friction (t = n sqrt h): HB-mu vs low-res "
        f"{f[VANISHING[0][0]]:.2f}, vs high-res {f[VANISHING[1][0]]:.2f}, NAG-mu vs high-res "
        f"{f[VANISHING[2][0]]:.2f}, Wilson {f[VANISHING[3][0]]:.2f} "
        f"({f[VANISHING[4][0]]:.2f} matched), Nesterov vs Su-Boyd-Candes {f[VANISHING[5][0]]:.2f}"
    )
    return {"arrays": arrays, "summary": summary}


def plot(data, config, path):
    a = data["arrays"]
    fig, axes = new_figure(2, 2, width=4.6, height=3.6)

    ax = axes[0, 0]
    ax.plot(
        a["traj_gradient_flow"][:, 0],
        a["traj_gradient_flow"][:, 1],
        "-",
        color="k",
        lw=1,
        label="rescaled gradient flow",
    )
    ax.plot(
        a["traj_hb"][::4, 0],
        a["traj_hb"][::4, 1],
        "o",
        ms=2.5,
        color=COLORS[0],
        label=f"HB, λ={config['lam']:g} (every 4th)",
    )
    ax.set_title(
        f"fixed momentum, t = n h ≤ {config['T_fixed']:g}, h = 2^-{config['h_trajectory_fixed']}",
        fontsize=9,
    )

    ax = axes[0, 1]
    ax.plot(
        a["traj_hb_mu_low"][:, 0],
        a["traj_hb_mu_low"][:, 1],
        "-",
        color=COLORS[1],
        lw=1,
        label="X''+2√μX'+∇f=0",
    )
    ax.plot(
        a["traj_hb_mu_high"][:, 0],
        a["traj_hb_mu_high"][:, 1],
        "--",
        color=COLORS[1],
        lw=1,
        label="high-res (matched)",
    )
    ax.plot(
        a["traj_hb_mu"][:, 0], a["traj_hb_mu"][:, 1], "o", ms=2.5, color=COLORS[1], label="HB-μ"
    )
    ax.plot(
        a["traj_nesterov_low"][:, 0],
        a["traj_nesterov_low"][:, 1],
        "-",
        color=COLORS[2],
        lw=1,
        label="X''+3X'/t+∇f=0",
    )
    ax.plot(
        a["traj_nesterov"][:, 0],
        a["traj_nesterov"][:, 1],
        "s",
        ms=2.5,
        color=COLORS[2],
        label="Nesterov (n-1)/(n+2)",
    )
    ax.set_title(
        f"vanishing friction, t = n √h ≤ {config['T_vanishing']:g}, "
        f"h = 2^-{config['h_trajectory_vanishing']}",
        fontsize=9,
    )
    for ax in axes[0]:
        ax.plot(*a["traj_hb"][0], "k*", ms=8)
        ax.set_xlabel("$u_1$")
        ax.set_ylabel("$u_2$")
        ax.legend(fontsize=6)

    ax = axes[1, 0]
    hs = a["hs_fixed"]
    for i, (label, *_rest) in enumerate(FIXED):
        ax.loglog(
            hs,
            a["fixed_errors"][i],
            "o-",
            ms=3,
            color=COLORS[i],
            label=f"{label}: {data['summary']['orders'][label]:.2f}",
        )
        reference_slope(ax, hs, a["fixed_errors"][i], int(FIXED[i][3]), color="0.6")
    ax.set_title("fixed momentum: error against h", fontsize=9)

    ax = axes[1, 1]
    hs = a["hs_vanishing"]
    for i, (label, *_rest) in enumerate(VANISHING):
        ax.loglog(
            hs,
            a["vanishing_errors"][i],
            "o-",
            ms=3,
            color=COLORS[i % len(COLORS)],
            label=f"{label}: {data['summary']['orders'][label]:.2f}",
        )
    ax.loglog(
        hs,
        a["vanishing_errors"][0][-1] * (hs / hs[-1]) ** 0.5,
        "--",
        color="0.6",
        lw=0.8,
        label="$h^{1/2}$",
    )
    ax.loglog(
        hs,
        a["vanishing_errors"][1][-1] * (hs / hs[-1]) ** 1.0,
        ":",
        color="0.6",
        lw=0.8,
        label="$h^1$",
    )
    ax.set_title("vanishing friction: error against h", fontsize=9)
    for ax in axes[1]:
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("h")
        ax.set_ylabel("max over the time grid of |u_n - X(t_n)|")
        ax.legend(fontsize=5.5)
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
