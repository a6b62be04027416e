"""Implicit regularisation: sharpness and the modified loss Phi_h = Phi + h c |grad Phi|^2
reached by HB and NAG against GD at the effective rate (the Section 5 autoencoder, full batch,
over several initialisations), and a picture of Phi against Phi_h on a 2-D nonconvex loss."""

import jax.numpy as jnp
import numpy as np

import momentum_jax as mj
from momentum_jax import scheme_method, stability_threshold
from momentum_jax.paper import (
    TRAINING_LOSSES,
    double_well_picture,
    h_label,
    measured_training,
    modified_loss_constant,
    script_main,
    section5_from_config,
    spread,
    verdict,
)
from momentum_jax.plotting import COLORS, new_figure, save_figure

NAME = "fig10_implicit_regularisation"
DESCRIPTION = (
    "Sharpness and modified loss Phi + h c |grad Phi|^2 reached by HB/NAG vs GD at "
    "rate h/(1-lam) on the Section 5 autoencoder (full batch, 5 initialisations); Phi vs "
    "Phi_h on a 2-D double well with HB trajectories."
)
# A single run's sharpness is not a result (near the stability limit it depends on the rounding
# of the machine it runs on): every number is over `seeds` Glorot initialisations, and a claim
# is made only where all of them agree. The learning rates are those of the training loss (the
# pixel mean): h = 8, 4, 1, where GD at rate h/(1-lam) is at, near and below its
# linear-stability limit. Full batch on the first 250 images for 100 steps keeps the figure to a
# few minutes on 2 CPU cores; --full: 5000 images, 1000 steps, 10 seeds.
CONFIG = {
    "dataset": "auto",
    "lam": 0.9,
    "h_exponents": [-3, -2, 0],
    "images": 250,
    "steps": 100,
    "seeds": [0, 1, 2, 3, 4],
    "training_loss": "pixel_mean",
    "mnist_dtype": "float32",
    "mnist_limit": None,
    "sharpness_rtol": 1e-3,  # float32 runs; value error about rtol^2 / (relative gap)
    "sharpness_max_iters": 500,
    "schemes": ["gd_effective", "hb", "nag"],
    "trajectory_h_exponent": -2,
    "trajectory_every": 50,
    "toy_h": 0.002,
    "toy_steps": 1000,
    "toy_grid": 121,
    "toy_box": [-1.7, 1.7],
    "toy_starts": [[0.3, 1.0], [-1.5, 1.2], [1.4, -1.4], [-0.2, -1.5]],
}
QUICK = {
    "dataset": "digits",
    "images": 300,
    "seeds": [0, 1, 2],
    "trajectory_every": 25,
    "toy_steps": 500,
    "toy_grid": 61,
}
FULL = {
    "h_exponents": [-3, -2, -1, 0, 1, 2],
    "images": 5000,
    "steps": 1000,
    "seeds": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    "sharpness_max_iters": 1000,
}

LABELS = {s: mj.SCHEME_LABELS[s] for s in ("gd_effective", "hb", "nag")}


def short(scheme):
    return LABELS[scheme].split()[0]


def exponents(config):
    """The `e` of `h = 2^-e` (a list)."""
    return [int(e) for e in config["h_exponents"]]


def autoencoder_part(config, ctx):
    exps = exponents(config)
    hs = 2.0 ** -np.array(exps, dtype=float)
    probs = {s: section5_from_config(config, ctx.options, seed=s) for s in config["seeds"]}
    first = probs[config["seeds"][0]]
    data = first.data[: config["images"]]
    n = data.shape[0]
    per_example = TRAINING_LOSSES[config["training_loss"]]

    def phi(params):  # one function object for every run: compiled once
        return jnp.mean(per_example(params, data))

    j = (
        exps.index(config["trajectory_h_exponent"])
        if config["trajectory_h_exponent"] in exps
        else 0
    )
    every = config["trajectory_every"]

    keys = (
        "lam",
        "h_exponents",
        "images",
        "steps",
        "training_loss",
        "mnist_dtype",
        "sharpness_rtol",
        "sharpness_max_iters",
        "trajectory_h_exponent",
        "trajectory_every",
    )
    shared = {k: config[k] for k in keys} | {"data": first.description}
    arrays = {"hs": hs, "seeds": np.array(config["seeds"])}
    bar = ctx.progress(len(config["seeds"]) * len(config["schemes"]), "seeds x schemes")
    for scheme in config["schemes"]:
        parts = []
        for seed in config["seeds"]:
            prob = probs[seed]
            trajectory = seed == config["seeds"][0]  # measured along the run at hs[j]

            def run(scheme=scheme, prob=prob, trajectory=trajectory):
                return {
                    "arrays": measured_training(
                        scheme,
                        prob.params0,
                        data,
                        hs,
                        phi,
                        loss=per_example,
                        steps=config["steps"],
                        lam=config["lam"],
                        rtol=config["sharpness_rtol"],
                        max_iters=config["sharpness_max_iters"],
                        path_at=j if trajectory else None,
                        every=every,
                    )
                }

            key = shared | {"scheme": scheme, "seed": seed, "trajectory": trajectory}
            parts.append(ctx.cached(f"{scheme}-seed{seed}", key, run)["arrays"])
            bar.advance()
        for name in ("loss", "sharpness", "residual", "grad_sq", "diverged_at", "curves"):
            arrays[f"{scheme}/{name}"] = np.stack([p[name] for p in parts])  # (seeds, h, ...)
        arrays[f"{scheme}/path_loss"] = parts[0]["path_loss"]
        arrays[f"{scheme}/path_sharpness"] = parts[0]["path_sharpness"]
        hc = np.array([modified_loss_constant(scheme, h, config["lam"]) for h in hs])
        threshold = np.array(
            [float(stability_threshold(scheme_method(scheme, h, config["lam"]))) for h in hs]
        )
        arrays |= {
            f"{scheme}/hc": hc,
            f"{scheme}/threshold": threshold,
            f"{scheme}/modified_loss": arrays[f"{scheme}/loss"] + hc * arrays[f"{scheme}/grad_sq"],
        }
    bar.close()
    return arrays, first, n


def toy_part(config):
    arrays, summary = double_well_picture(
        h=config["toy_h"],
        lam=config["lam"],
        steps=config["toy_steps"],
        box=config["toy_box"],
        points=config["toy_grid"],
        starts=config["toy_starts"],
    )
    return {f"toy/{k}": v for k, v in arrays.items()}, summary


def compute(config, ctx):
    arrays, prob, n_images = autoencoder_part(config, ctx)
    toy_arrays, toy_summary = toy_part(config)
    arrays |= toy_arrays
    hs = arrays["hs"]
    exps = exponents(config)
    labels = [h_label(e) for e in exps]
    schemes, seeds = config["schemes"], config["seeds"]
    div = {s: arrays[f"{s}/diverged_at"] > 0 for s in schemes}  # (seeds, h)
    per = {}
    for s in schemes:
        per[s] = {
            k: [spread(arrays[f"{s}/{key}"][:, i], div[s][:, i]) for i in range(len(hs))]
            for k, key in (
                ("loss", "loss"),
                ("sharpness", "sharpness"),
                ("grad_sq", "grad_sq"),
                ("modified_loss", "modified_loss"),
            )
        }
        per[s]["stability_threshold"] = arrays[f"{s}/threshold"].tolist()
        per[s]["h_c"] = arrays[f"{s}/hc"].tolist()
        per[s]["sharpness_residual_max"] = float(np.nanmax(arrays[f"{s}/residual"]))
        per[s]["sharpness_unconverged"] = int(
            np.sum(arrays[f"{s}/residual"] > config["sharpness_rtol"])
        )
        per[s]["diverged_seeds"] = {
            lab: [int(seeds[k]) for k in np.flatnonzero(div[s][:, i])]
            for i, lab in enumerate(labels)
            if np.any(div[s][:, i])
        }
    sharp = {s: arrays[f"{s}/sharpness"] for s in schemes}
    loss = {s: arrays[f"{s}/loss"] for s in schemes}
    both = {s: ~div[s] & ~div["gd_effective"] for s in ("hb", "nag")}
    flatter = {s: verdict(sharp[s], sharp["gd_effective"], both[s]) for s in ("hb", "nag")}
    lower = {s: verdict(loss[s], loss["gd_effective"], both[s]) for s in ("hb", "nag")}
    at_edge = {
        s: [
            spread(sharp[s][:, i] / arrays[f"{s}/threshold"][i], div[s][:, i])
            for i in range(len(hs))
        ]
        for s in schemes
    }
    t_exp = config["trajectory_h_exponent"]
    trajectory = {
        "h": labels[exps.index(t_exp) if t_exp in exps else 0],
        "seed": int(seeds[0]),
        "every_steps": config["trajectory_every"],
        "note": "one seed: an illustration, no claim",
    } | {
        s: {
            "loss": arrays[f"{s}/path_loss"].tolist(),
            "sharpness": arrays[f"{s}/path_sharpness"].tolist(),
        }
        for s in schemes
    }
    pixels = prob.data.shape[1] if config["training_loss"] == "pixel_mean" else 1

    def claims(table):
        return {
            s: [lab for lab, v in zip(labels, table[s]) if v == "yes"] for s in ("hb", "nag")
        } | {
            f"{s}_opposite": [lab for lab, v in zip(labels, table[s]) if v == "no"]
            for s in ("hb", "nag")
        }

    summary = {
        "dataset": prob.dataset,
        "data": f"{prob.description.split(', ')[0]}, first {n_images} images, full batch, "
        f"autoencoder {'-'.join(map(str, prob.sizes))}",
        "steps": config["steps"],
        "seeds": [int(x) for x in seeds],
        "training_loss": config["training_loss"],
        "units": "loss, modified loss and sharpness in units of the training loss"
        + (
            f" (per-pixel mean; the paper's per-image error is {pixels} times the loss)"
            if pixels > 1
            else ""
        ),
        "h": labels,
        "time_t_equals_n_h": (config["steps"] * hs).tolist(),
        "per_scheme": per,
        "momentum_flatter_than_gd_per_h": flatter,
        "momentum_lower_loss_than_gd_per_h": lower,
        "flatter_than_gd_for_every_seed_at": claims(flatter),
        "lower_loss_than_gd_for_every_seed_at": claims(lower),
        "sharpness_over_stability_threshold": at_edge,
        "trajectory": trajectory,
        "toy": toy_summary,
        "note": (
            "All three follow the rescaled gradient flow at time t = n h; to first order "
            "HB's modified loss carries a (1+lam)/(1-lam) = "
            f"{(1 + config['lam']) / (1 - config['lam']):g} times stronger |grad Phi|^2 "
            "penalty than GD's at the effective rate. Sharpness is the top Hessian "
            "eigenvalue of the full-batch loss (LOBPCG on Hessian-vector products, to the "
            f"relative residual {config['sharpness_rtol']:g}: 'sharpness_unconverged' counts the"
            " values that did not get there);"
            " the stability threshold is 2(1+lam)/(h(1+2a)) (GD at rate h/(1-lam): "
            "2(1-lam)/h). 'yes' / 'no' / 'mixed k/n': whether the comparison holds for every "
            "seed, for none, or for k of the n seeds that ran."
        ),
    }

    def rng(s):
        v = sharp[s][~div[s]]
        return f"{np.min(v):.3g}-{np.max(v):.3g}" if v.size else "all diverged"

    f, lo_ = (
        summary["flatter_than_gd_for_every_seed_at"],
        summary["lower_loss_than_gd_for_every_seed_at"],
    )
    summary["headline"] = (
        f"{prob.dataset}, full batch, {config['steps']} steps, {len(seeds)} seeds, h = "
        f"{labels[0]}..{labels[-1]}: sharpness GD {rng('gd_effective')}, HB {rng('hb')}, NAG "
        f"{rng('nag')}; flatter than GD for every seed: HB at {f['hb'] or 'no h'}, NAG at "
        f"{f['nag'] or 'no h'}; sharper for every seed: HB at {f['hb_opposite'] or 'no h'}, NAG"
        f" at {f['nag_opposite'] or 'no h'}; lower loss for every seed: HB at "
        f"{lo_['hb'] or 'no h'}, NAG at {lo_['nag'] or 'no h'}"
    )
    return {"arrays": arrays, "summary": summary}


def _band(ax, hs, values, diverged, color, label, marker="o", ls="-"):
    """Mean over seeds with the min-max band; diverged seeds left out (crosses if all)."""
    v = np.where(diverged, np.nan, values)
    ok = np.any(np.isfinite(v), axis=0)
    with np.errstate(all="ignore"):
        mean = np.nanmean(np.where(np.isfinite(v), v, np.nan), axis=0)
        lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
    ax.plot(hs[ok], mean[ok], marker=marker, ms=3, ls=ls, color=color, label=label)
    ax.fill_between(hs[ok], lo[ok], hi[ok], color=color, alpha=0.2, lw=0)
    if np.any(~ok):
        ax.plot(
            hs[~ok],
            np.full(np.sum(~ok), np.nanmax(hi) if np.any(ok) else 1.0),
            "x",
            color="k",
            ms=8,
            mew=2,
        )


def plot(data, config, path):
    arrays, summary = data["arrays"], data["summary"]
    hs = arrays["hs"]
    n_seeds = len(summary["seeds"])
    fig, axes = new_figure(2, 3, width=4.4, height=3.7)
    ax = axes[0, 0]
    for k, s in enumerate(config["schemes"]):
        div = arrays[f"{s}/diverged_at"] > 0
        _band(ax, hs, arrays[f"{s}/sharpness"], div, COLORS[k], LABELS[s])
        ax.plot(hs, arrays[f"{s}/threshold"], ":", color=COLORS[k], lw=1)
    ax.plot([], [], ":", color="0.3", label="stability threshold")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("h")
    ax.set_ylabel(r"sharpness $\lambda_{\max}(\nabla^2\Phi)$")
    ax.set_title(f"(a) sharpness reached: mean and range over {n_seeds} seeds", fontsize=8)
    ax.legend(fontsize=6)
    ax = axes[0, 1]
    for k, s in enumerate(config["schemes"]):
        div = arrays[f"{s}/diverged_at"] > 0
        _band(ax, hs, arrays[f"{s}/loss"], div, COLORS[k], rf"{short(s)}: $\Phi$")
        _band(
            ax,
            hs,
            arrays[f"{s}/modified_loss"],
            div,
            COLORS[k],
            rf"{short(s)}: $\Phi_h$",
            marker="s",
            ls="--",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("h")
    ax.set_ylabel("full-batch training loss")
    ax.set_title(
        rf"(b) $\Phi$, $\Phi_h = \Phi + hc|\nabla\Phi|^2$ reached ({n_seeds} seeds)",
        fontsize=8,
    )
    ax.legend(fontsize=6)
    ax = axes[0, 2]
    for k, s in enumerate(config["schemes"]):
        # From the first snapshot after the start (all runs share the start).
        loss, sharp = arrays[f"{s}/path_loss"][1:], arrays[f"{s}/path_sharpness"][1:]
        ax.semilogy(loss, sharp, "o-", ms=3, color=COLORS[k], label=LABELS[s])
        ax.plot(loss[-1:], sharp[-1:], "k*", ms=7)
    ax.plot([], [], "k*", label="end of run")
    ax.set_xlabel(r"training loss $\Phi$ along the run")
    ax.set_ylabel("sharpness")
    t = summary["trajectory"]
    ax.set_title(f"(c) along the run, h = {t['h']}, seed {t['seed']} only", fontsize=8)
    ax.locator_params(axis="x", nbins=4)  # the loss ticks have five digits: keep them apart
    ax.invert_xaxis()
    ax.legend(fontsize=6)

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
        f"trained on the {config['training_loss'].replace('_', ' ')}, "
        f"λ = {config['lam']}.\nBottom: double well, HB h = {toy['h']}, λ = {toy['lam']}, "
        "started on the invariant manifold",
        fontsize=9,
    )
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
