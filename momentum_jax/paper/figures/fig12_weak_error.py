"""Fig 12 (beyond the paper): weak error of the stochastic modified equation of mini-batch HB/NAG.

Linear least squares (32 points in d = 2), batch size 1, fixed lam; Monte Carlo estimates of
`|E g(u_n) - E g(U(n h))|` at `n h = T` with error bars, against the exact values from the moment
equations (lines).
"""

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.ticker import NullFormatter

from momentum_jax import WEAK_ERROR_MODELS as MODELS
from momentum_jax import fit_order, least_squares_data, least_squares_example, weak_error_study
from momentum_jax.paper import script_main
from momentum_jax.plotting import COLORS, METHOD_LABELS, new_figure, reference_slope, save_figure

NAME = "fig12_weak_error"
DESCRIPTION = (
    "Weak error of mini-batch HB/NAG against the SDE with the modified drift (order 2), "
    "the gradient-flow drift (order 1) and the noise-free modified flow (order 1)."
)
CONFIG = {
    "methods": ["hb", "nag"],
    "lam": 0.5,
    "T": 1.0,
    "h_exponents": [2, 5],
    "num_paths": 2**15,
    "batch_size": 1,
    "init": "manifold",
    "seed": 0,
    "data": {"n": 32, "dim": 2, "seed": 0, "sigma": 1.0},
    "u0": [1.0, 1.0],
}
QUICK = {"methods": ["hb"], "h_exponents": [2, 4], "num_paths": 2**12}

TESTS = ("u1", "sq_norm", "loss")
TEST_LABELS = {"u1": r"$g = u_1$", "sq_norm": r"$g = |u|^2$", "loss": r"$g = \Phi(u)$"}
MODEL_LABELS = {
    "modified_sde": "SDE, modified drift",
    "gradient_flow_sde": "SDE, gradient-flow drift",
    "modified_ode": "modified flow, no noise",
}


def resolved_orders(hs, errors, se, exact, points=3, factor=3.0):
    """`(Monte Carlo order, exact order, h used)`: slopes over the `points` smallest `h` whose
    Monte Carlo error exceeds `factor` standard errors (nan if fewer than two), the exact one
    over the same `h`."""
    idx = np.flatnonzero(errors > factor * se)[-points:]
    if idx.size < 2:
        return float("nan"), float("nan"), []
    return (
        fit_order(hs[idx], errors[idx]),
        fit_order(hs[idx], exact[idx]),
        [float(h) for h in hs[idx]],
    )


def compute(config, ctx):
    lo, hi = config["h_exponents"]
    hs = 2.0 ** -np.arange(lo, hi + 1)
    a, b = least_squares_data(**config["data"])
    data = (jnp.asarray(a), jnp.asarray(b))
    u0 = jnp.asarray(config["u0"])
    errors, se, exact = [], [], []
    summary = {"mc_orders": {}, "exact_orders_same_h": {}, "fit_hs": {}}
    for method in ctx.progress_iter(config["methods"], "method"):
        st = weak_error_study(
            least_squares_example,
            u0,
            data,
            method=method,
            lam=config["lam"],
            hs=hs,
            T=config["T"],
            num_paths=config["num_paths"],
            key=jax.random.key(config["seed"]),
            batch_size=config["batch_size"],
            init=config["init"],
            models=MODELS,
        )
        errors.append([st.errors[m] for m in MODELS])
        se.append([st.errors_se[m] for m in MODELS])
        exact.append([st.exact_errors[m] for m in MODELS])
        fits = {
            m: {
                g: resolved_orders(
                    hs, st.errors[m][:, j], st.errors_se[m][:, j], st.exact_errors[m][:, j]
                )
                for j, g in enumerate(TESTS)
            }
            for m in MODELS
        }
        summary["mc_orders"][method] = {m: {g: f[0] for g, f in d.items()} for m, d in fits.items()}
        summary["exact_orders_same_h"][method] = {
            m: {g: f[1] for g, f in d.items()} for m, d in fits.items()
        }
        summary["fit_hs"][method] = {m: {g: f[2] for g, f in d.items()} for m, d in fits.items()}
        summary[f"table_{method}"] = st.table()
    first = config["methods"][0]
    o, e = summary["mc_orders"][first], summary["exact_orders_same_h"][first]
    shown = (
        ("modified_sde", "loss", "Phi"),
        ("gradient_flow_sde", "u1", "u_1"),
        ("modified_ode", "loss", "Phi"),
    )
    parts = [f"{MODEL_LABELS[m]} ({label}) {o[m][g]:.2f} ({e[m][g]:.2f})" for m, g, label in shown]
    summary["headline"] = (
        f"{first.upper()} weak order from Monte Carlo, {config['num_paths']} paths (exact moments, "
        f"same h), over the 3 smallest resolved h: "
        + "; ".join(parts)
        + "; asymptotic (exact, tests): 2, 1, 1"
    )
    return {
        "arrays": {
            "hs": hs,
            "errors": np.array(errors),
            "se": np.array(se),
            "exact": np.array(exact),
        },
        "summary": summary,
    }


def plot(data, config, path):
    arr = data["arrays"]
    hs, errors, se, exact = arr["hs"], arr["errors"], arr["se"], arr["exact"]
    methods = config["methods"]
    fig, axes = new_figure(len(methods), len(TESTS), width=3.6, height=3.0)
    for i, method in enumerate(methods):
        for j, g in enumerate(TESTS):
            ax = axes[i, j]
            for k, m in enumerate(MODELS):
                err, s, ex = errors[i, k, :, j], se[i, k, :, j], exact[i, k, :, j]
                ok = err > 0
                lower = np.minimum(s, 0.9 * err)
                ax.errorbar(
                    hs[ok],
                    err[ok],
                    yerr=[lower[ok], s[ok]],
                    fmt="o",
                    ms=3,
                    color=COLORS[k],
                    capsize=2,
                    label=MODEL_LABELS[m] if j == 0 else None,
                )
                ax.loglog(hs, ex, "-", color=COLORS[k], lw=0.8)
            reference_slope(ax, hs, exact[i, 0, :, j], 2, color="0.4")
            reference_slope(ax, hs, exact[i, 2, :, j], 1, color="0.7")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("h")
            ax.set_ylabel(r"$|E\,g(u_n) - E\,g(U(nh))|$")
            ax.set_title(
                f"{METHOD_LABELS[method]} $\\lambda$={config['lam']:g}: {TEST_LABELS[g]}",
                fontsize=9,
            )
            if j == 0:
                ax.legend(fontsize=6, loc="lower right")
    fig.suptitle("markers: Monte Carlo (+- 1 s.e.), lines: exact moments", fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
