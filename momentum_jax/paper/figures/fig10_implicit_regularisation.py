"""Implicit regularisation: sharpness and the modified loss Phi_h = Phi + h c |grad Phi|^2
reached by HB and NAG against GD at the effective rate (digits autoencoder, full batch), and a
picture of Phi against Phi_h on a 2-D nonconvex loss."""

import jax
import jax.numpy as jnp
import numpy as np

from momentum_jax import (
    double_well,
    heavy_ball,
    iterate,
    scheme_method,
    solve,
    squared_error,
    squared_gradient_norm,
    stability_threshold,
    top_hessian_eigenvalue,
    train_over_h,
)
from momentum_jax.paper import script_main, section5_problem
from momentum_jax.plotting import COLORS, new_figure, save_figure

NAME = "fig10_implicit_regularisation"
DESCRIPTION = (
    "Sharpness and modified loss Phi + h c |grad Phi|^2 reached by HB/NAG vs GD at "
    "rate h/(1-lam) on the digits autoencoder (full batch); Phi vs Phi_h on a 2-D "
    "double well with HB trajectories."
)
CONFIG = {
    "lam": 0.9,
    "h_exponents": [1, 5],
    "steps": 1500,
    "seed": 0,
    "sharpness_iters": 100,
    "schemes": ["gd", "hb", "nag"],
    "trajectory_h_exponent": 3,
    "trajectory_every": 100,
    "toy_h": 0.002,
    "toy_steps": 1000,
    "toy_grid": 121,
    "toy_box": [-1.7, 1.7],
    "toy_starts": [[0.3, 1.0], [-1.5, 1.2], [1.4, -1.4], [-0.2, -1.5]],
}
QUICK = {
    "h_exponents": [1, 3],
    "steps": 100,
    "sharpness_iters": 30,
    "trajectory_every": 25,
    "toy_steps": 500,
    "toy_grid": 61,
}

LABELS = {"gd": "GD (rate h/(1-λ))", "hb": "HB", "nag": "NAG"}


def full_loss_fn(data):
    def phi(params):
        return jnp.mean(squared_error(params, data))

    return phi


def modified_loss_constant(scheme, h, lam):
    """`h c` of Phi_h for a scheme: `c` of its `Momentum` at its own rate (GD: `h/(1-lam)` and
    `c = 1/4`)."""
    m = scheme_method(scheme, h, lam)
    return float(m.h * m.c)


def autoencoder_part(config, ctx):
    prob = section5_problem(seed=config["seed"])
    lo, hi = config["h_exponents"]
    hs = 2.0 ** -np.arange(lo, hi + 1, dtype=float)
    n = prob.data.shape[0]
    phi = full_loss_fn(prob.data)
    keys = (
        "lam",
        "h_exponents",
        "steps",
        "seed",
        "sharpness_iters",
        "trajectory_h_exponent",
        "trajectory_every",
    )
    exps = list(range(lo, hi + 1))
    j = (
        exps.index(config["trajectory_h_exponent"])
        if config["trajectory_h_exponent"] in exps
        else 0
    )
    every = config["trajectory_every"]

    grad_sq = jax.jit(lambda p: squared_gradient_norm(phi, p))

    def sharpness(p):
        top = top_hessian_eigenvalue(
            phi, p, iters=config["sharpness_iters"], key=jax.random.PRNGKey(config["seed"])
        )
        return float(top.value), float(top.residual)

    shared = {k: config[k] for k in keys} | {"data": prob.description}
    arrays = {"hs": hs}
    for scheme in ctx.progress_iter(config["schemes"], "schemes (full batch)"):

        def run(scheme=scheme):
            r = train_over_h(
                scheme,
                prob.params0,
                prob.data,
                hs,
                epochs=config["steps"],
                batch_size=n,
                lam=config["lam"],
                record_params_every=every,
            )
            sharp, resid, gsq = [], [], []
            for i in range(len(hs)):
                p = jax.tree.map(lambda x, i=i: x[i], r.params)
                value, residual = sharpness(p)
                sharp.append(value)
                resid.append(residual)
                gsq.append(float(grad_sq(p)))
            # Sharpness along the run at one h, against the training error reached.
            snaps = jax.tree.map(lambda x: x[j], r.snapshots)
            count = jax.tree.leaves(snaps)[0].shape[0]
            path = [sharpness(jax.tree.map(lambda x, k=k: x[k], snaps))[0] for k in range(count)]
            return {
                "arrays": {
                    "loss": np.asarray(r.losses[:, -1]),
                    "sharpness": np.array(sharp),
                    "residual": np.array(resid),
                    "grad_sq": np.array(gsq),
                    "diverged_at": np.asarray(r.diverged_at),
                    "curves": np.asarray(r.losses),
                    "path_loss": np.asarray(r.losses[j, ::every][:count]),
                    "path_sharpness": np.array(path),
                }
            }

        part = ctx.cached(scheme, shared | {"scheme": scheme}, run)["arrays"]
        hc = np.array([modified_loss_constant(scheme, h, config["lam"]) for h in hs])
        threshold = np.array(
            [float(stability_threshold(scheme_method(scheme, h, config["lam"]))) for h in hs]
        )
        arrays |= {f"{scheme}/{k}": v for k, v in part.items()}
        arrays |= {
            f"{scheme}/hc": hc,
            f"{scheme}/threshold": threshold,
            f"{scheme}/modified_loss": part["loss"] + hc * part["grad_sq"],
        }
    return arrays, prob


def toy_part(config):
    lam, h, steps = config["lam"], config["toy_h"], config["toy_steps"]
    hb = heavy_ball(h, lam)
    hc = float(hb.h * hb.c)
    lo, hi = config["toy_box"]
    g = np.linspace(lo, hi, config["toy_grid"])
    X, Y = np.meshgrid(g, g)
    pts = jnp.asarray(np.stack([X.ravel(), Y.ravel()], axis=1))
    phi = jax.vmap(double_well)(pts)
    gsq = jnp.sum(jax.vmap(jax.grad(double_well))(pts) ** 2, axis=1)
    ts = h * np.arange(steps + 1)
    hb_paths, flow_paths, gd_paths, d_mod, d_flow = [], [], [], [], []
    for start in config["toy_starts"]:
        u0 = jnp.asarray(start, dtype=float)
        us = np.asarray(iterate(double_well, u0, hb, steps, init="manifold"))
        mod = np.asarray(solve(double_well, u0, hb, ts, model="modified_flow"))
        flow = np.asarray(solve(double_well, u0, hb, ts, model="gradient_flow"))
        hb_paths.append(us)
        flow_paths.append(mod)
        gd_paths.append(flow)
        d_mod.append(float(np.max(np.linalg.norm(us - mod, axis=1))))
        d_flow.append(float(np.max(np.linalg.norm(us - flow, axis=1))))
    shape = X.shape
    arrays = {
        "toy/x": g,
        "toy/phi": np.asarray(phi).reshape(shape),
        "toy/reg": (hc * np.asarray(gsq)).reshape(shape),
        "toy/hb": np.array(hb_paths),
        "toy/modified_flow": np.array(flow_paths),
        "toy/gradient_flow": np.array(gd_paths),
    }
    summary = {
        "loss": "double_well (x^2-1)^2/4 + y^2/2 + xy/4",
        "h": h,
        "lam": lam,
        "h_c": hc,
        "steps": steps,
        "hb_start": "on the invariant manifold (order 1)",
        "max_dist_hb_to_modified_flow": d_mod,
        "max_dist_hb_to_gradient_flow": d_flow,
        "hb_closer_to_modified_flow": [bool(a < b) for a, b in zip(d_mod, d_flow)],
    }
    return arrays, summary


def compute(config, ctx):
    arrays, prob = autoencoder_part(config, ctx)
    toy_arrays, toy_summary = toy_part(config)
    arrays |= toy_arrays
    hs = arrays["hs"]
    labels = [f"2^-{e}" for e in range(config["h_exponents"][0], config["h_exponents"][1] + 1)]
    per = {}
    for s in config["schemes"]:
        div = arrays[f"{s}/diverged_at"] > 0
        per[s] = {
            k: [None if d else float(v) for v, d in zip(arrays[f"{s}/{key}"], div)]
            for k, key in (
                ("loss", "loss"),
                ("sharpness", "sharpness"),
                ("grad_sq", "grad_sq"),
                ("modified_loss", "modified_loss"),
                ("stability_threshold", "threshold"),
            )
        }
        per[s]["h_c"] = arrays[f"{s}/hc"].tolist()
        per[s]["sharpness_residual"] = arrays[f"{s}/residual"].tolist()
        per[s]["diverged"] = [lab for lab, d in zip(labels, div) if d]
    sharp = {s: arrays[f"{s}/sharpness"] for s in config["schemes"]}
    flatter = {s: [bool(a < b) for a, b in zip(sharp[s], sharp["gd"])] for s in ("hb", "nag")}
    lower = {
        s: [bool(a < b) for a, b in zip(arrays[f"{s}/loss"], arrays["gd/loss"])]
        for s in ("hb", "nag")
    }
    at_edge = {
        s: (arrays[f"{s}/sharpness"] / arrays[f"{s}/threshold"]).tolist() for s in config["schemes"]
    }
    exps = list(range(config["h_exponents"][0], config["h_exponents"][1] + 1))
    t_label = labels[
        exps.index(config["trajectory_h_exponent"])
        if config["trajectory_h_exponent"] in exps
        else 0
    ]
    trajectory = {"h": t_label, "every_steps": config["trajectory_every"]} | {
        s: {
            "loss": arrays[f"{s}/path_loss"].tolist(),
            "sharpness": arrays[f"{s}/path_sharpness"].tolist(),
        }
        for s in config["schemes"]
    }

    # Along the run at one h: HB's/NAG's sharpness against GD's at the same training error
    # (the running minimum of the error, interpolated over the range both runs cover after
    # their first snapshot; the shared start is left out).
    def at_errors(scheme, grid):
        best = np.minimum.accumulate(arrays[f"{scheme}/path_loss"][1:])
        return np.interp(grid, best[::-1], arrays[f"{scheme}/path_sharpness"][1:][::-1])

    sharper_at_equal_loss = {}
    for s in ("hb", "nag"):
        a_l, b_l = arrays[f"{s}/path_loss"][1:], arrays["gd/path_loss"][1:]
        lo_l, hi_l = max(np.nanmin(a_l), np.nanmin(b_l)), min(np.nanmax(a_l), np.nanmax(b_l))
        grid = np.linspace(lo_l, hi_l, 20)
        sharper_at_equal_loss[s] = (
            None if not hi_l > lo_l else float(np.mean(at_errors(s, grid) > at_errors("gd", grid)))
        )
    trajectory["fraction_of_common_error_range_where_sharper_than_gd"] = sharper_at_equal_loss
    summary = {
        "data": prob.description + ", full batch",
        "steps": config["steps"],
        "h": labels,
        "time_t_equals_n_h": (config["steps"] * hs).tolist(),
        "per_scheme": per,
        "momentum_flatter_than_gd_per_h": flatter,
        "momentum_lower_loss_than_gd_per_h": lower,
        "sharpness_over_stability_threshold": at_edge,
        "trajectory": trajectory,
        "toy": toy_summary,
        "note": (
            "All three follow the rescaled gradient flow at time t = n h; to first order "
            "HB's modified loss carries a (1+lam)/(1-lam) = "
            f"{(1 + config['lam']) / (1 - config['lam']):g} times stronger |grad Phi|^2 "
            "penalty than GD's at the effective rate. Sharpness is the top Hessian "
            "eigenvalue of the full-batch loss (power iteration on Hessian-vector products);"
            " the stability threshold is 2(1+lam)/(h(1+2a)) (GD at rate h/(1-lam): "
            "2(1-lam)/h)."
        ),
    }
    summary["headline"] = (
        f"digits, full batch, {config['steps']} steps, sharpness at h={labels[0]}..{labels[-1]}: "
        + "; ".join(
            f"{s.upper()} " + ", ".join(f"{v:.3g}" for v in sharp[s]) for s in config["schemes"]
        )
        + f". HB flatter than GD at {sum(flatter['hb'])}/{len(hs)} h, NAG at "
        f"{sum(flatter['nag'])}/{len(hs)}; sharpness/threshold GD "
        f"{min(at_edge['gd']):.2f}-{max(at_edge['gd']):.2f}, HB "
        f"{min(at_edge['hb']):.2f}-{max(at_edge['hb']):.2f}"
    )
    return {"arrays": arrays, "summary": summary}


def plot(data, config, path):
    arrays, summary = data["arrays"], data["summary"]
    hs = arrays["hs"]
    fig, axes = new_figure(2, 3, width=4.4, height=3.7)
    ax = axes[0, 0]
    for k, s in enumerate(config["schemes"]):
        ax.loglog(hs, arrays[f"{s}/sharpness"], "o-", ms=3, color=COLORS[k], label=LABELS[s])
        ax.loglog(hs, arrays[f"{s}/threshold"], ":", color=COLORS[k], lw=1)
        div = arrays[f"{s}/diverged_at"] > 0
        if np.any(div):
            ax.loglog(hs[div], arrays[f"{s}/sharpness"][div], "x", color="k", ms=8, mew=2)
    ax.plot([], [], ":", color="0.3", label="stability threshold")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("h")
    ax.set_ylabel(r"sharpness $\lambda_{\max}(\nabla^2\Phi)$")
    ax.set_title("(a) sharpness reached", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for k, s in enumerate(config["schemes"]):
        ax.loglog(
            hs,
            arrays[f"{s}/loss"],
            "o-",
            ms=3,
            color=COLORS[k],
            label=rf"{LABELS[s].split()[0]}: $\Phi$",
        )
        ax.loglog(
            hs,
            arrays[f"{s}/modified_loss"],
            "s--",
            ms=3,
            color=COLORS[k],
            label=rf"{LABELS[s].split()[0]}: $\Phi_h$",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("h")
    ax.set_ylabel("full-batch training error")
    ax.set_title(r"(b) $\Phi$ and $\Phi_h = \Phi + hc|\nabla\Phi|^2$ reached", fontsize=9)
    ax.legend(fontsize=6)
    ax = axes[0, 2]
    for k, s in enumerate(config["schemes"]):
        # From the first snapshot after the start (all runs share the start).
        loss, sharp = arrays[f"{s}/path_loss"][1:], arrays[f"{s}/path_sharpness"][1:]
        ax.semilogy(loss, sharp, "o-", ms=3, color=COLORS[k], label=LABELS[s])
        ax.plot(loss[-1:], sharp[-1:], "k*", ms=7)
    ax.plot([], [], "k*", label="end of run")
    ax.set_xlabel(r"training error $\Phi$ along the run")
    ax.set_ylabel("sharpness")
    ax.set_title(
        f"(c) sharpness against error along the run, h = {summary['trajectory']['h']}", fontsize=9
    )
    ax.invert_xaxis()
    ax.legend(fontsize=7)

    g = arrays["toy/x"]
    phi, reg = arrays["toy/phi"], arrays["toy/reg"]
    toy = summary["toy"]
    levels = np.quantile(phi, np.linspace(0, 0.9, 18))
    panels = (
        (phi, r"(d) $\Phi$; HB (solid), gradient flow (dashed)", "toy/gradient_flow"),
        (
            phi + reg,
            rf"(e) $\Phi_h$ ($hc$ = {toy['h_c']:.3g}; grey: $\Phi$); "
            r"HB, $\Phi_h$ flow (dashed)",
            "toy/modified_flow",
        ),
    )
    for j, (field, title, ref) in enumerate(panels):
        ax = axes[1, j]
        if j:  # Phi (grey) under Phi_h (colour), at the same levels: the deformation
            ax.contour(g, g, phi, levels=levels, colors="0.75", linewidths=0.6)
        ax.contour(g, g, field, levels=levels, cmap="viridis", linewidths=0.7)
        for k in range(arrays["toy/hb"].shape[0]):
            ax.plot(*arrays["toy/hb"][k].T, "-", color="C3", lw=1.2)
            ax.plot(*arrays[ref][k].T, "--", color="k", lw=0.9)
            ax.plot(*arrays["toy/hb"][k][0], "o", color="C3", ms=3)
        ax.set_title(title, fontsize=8)
        ax.set_aspect("equal")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    ax = axes[1, 2]
    im = ax.pcolormesh(g, g, np.log10(np.maximum(reg, 1e-6)), cmap="magma", shading="auto")
    fig.colorbar(im, ax=ax, fraction=0.046, label=r"$\log_{10}(\Phi_h - \Phi)$")
    for k in range(arrays["toy/hb"].shape[0]):
        ax.plot(*arrays["toy/hb"][k].T, "-", color="C0", lw=1.2)
    ax.set_aspect("equal")
    ax.set_title(r"(f) $\Phi_h - \Phi = hc|\nabla\Phi|^2$ with HB paths", fontsize=8)
    ax.set_xlabel("x")
    fig.suptitle(
        f"Implicit regularisation. Top: {summary['data']}, {config['steps']} steps, "
        f"λ = {config['lam']}. Bottom: double well, HB h = {toy['h']}, λ = {toy['lam']}, "
        "started on the invariant manifold",
        fontsize=9,
    )
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
