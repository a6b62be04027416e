"""Implicit regularisation: the sharpness and the loss reached by HB and NAG against GD at the
effective rate `h/(1-lam)` on the Section 5 autoencoder off the mean-image plateau (full batch,
per initialisation seed: 0 by default, `--seeds` for several; every scheme from the same
off-plateau checkpoint per seed, one `sweep` call), and a picture of Phi against
Phi_h = Phi + h c |grad Phi|^2 on a 2-D nonconvex loss."""

import warnings

import numpy as np

import momentum_jax as mj
from momentum_jax import scheme_method, stability_threshold
from momentum_jax.paper import (
    CHECKPOINT_KEYS,
    checkpoints,
    double_well_picture,
    final_errors,
    h_label,
    mean_image_error,
    measured_training,
    modified_loss_constant,
    script_main,
    seeds_to_run,
    spread,
    verdict,
)
from momentum_jax.plotting import COLORS, new_figure, save_figure

NAME = "fig10_implicit_regularisation"
DESCRIPTION = (
    "Sharpness and loss reached by HB/NAG vs GD at rate h/(1-lam) on the Section 5 "
    "autoencoder off the mean-image plateau (full batch, per initialisation seed, from an HB "
    "checkpoint); Phi vs Phi_h on a 2-D double well with HB trajectories."
)
# The paper's claim (Section 5, Thm 6): HB and NAG follow the modified flow of
# Phi_h = Phi + h c |grad Phi|^2 with a larger c than GD at the effective rate, so they should
# reach flatter minima (lower sharpness). Tested off the plateau, on the Fig 6 loss scale (1/8 x
# the per-image summed squared error, sigmoid hidden units), full batch on the first `images`
# images: per seed, heavy ball at h = 1 from the Glorot start, in chunks of `checkpoint_chunk`
# steps until its error is below `trained_below` x the mean image's (measured on 250 images:
# seed 0 below it at step 978, so a 1000-step checkpoint; seeds 1 and 2 still on the plateau
# after 3000), at most
# `checkpoint_steps`, is the checkpoint from which every scheme and h of that seed runs `steps`
# more steps (zero velocity), all in one sweep, the sharpness measured at the end to the
# relative residual `sharpness_rtol` (a point that does not get there is flagged and left out
# of every comparison, as is a seed whose checkpoint stayed on the plateau). A single run's
# sharpness is not a result: a claim is made only where every seed agrees.
CONFIG = {
    "dataset": "auto",
    "lam": 0.9,
    "loss_scale": 1 / 8,
    "hidden": "sigmoid",
    "images": 250,
    "checkpoint_scheme": "hb",
    "checkpoint_h_exponent": 0,
    "checkpoint_steps": 3000,  # at most; stops after the first chunk that ends off the plateau
    "checkpoint_chunk": 100,
    "h_exponents": [0, 2],
    "steps": 100,
    "record_every": 10,
    # seed 0 by default, as Fig 6 (`--seeds 0 1 2` for the spread, figures/seeds/): the
    # checkpoints of seeds 1 and 2 take 3000 steps each and stay on the plateau
    "seeds": [0],
    "mnist_dtype": "float32",
    "mnist_limit": None,
    "sharpness_rtol": 1e-3,  # float32 runs; value error about rtol^2 / (relative gap)
    "sharpness_max_iters": 300,
    "schemes": ["gd_effective", "hb", "nag"],
    "trained_below": 0.9,  # off the plateau: error below this times the mean image's
    "toy_h": 0.002,
    "toy_steps": 1000,
    "toy_grid": 121,
    "toy_box": [-1.7, 1.7],
    "toy_starts": [[0.3, 1.0], [-1.5, 1.2], [1.4, -1.4], [-0.2, -1.5]],
}
QUICK = {
    "dataset": "digits",
    "loss_scale": 1.0,
    "images": 200,
    "checkpoint_steps": 200,
    "steps": 40,
    "record_every": 10,
    "seeds": [0, 1],
    "sharpness_max_iters": 200,
    "toy_steps": 500,
    "toy_grid": 61,
}
FULL = {
    "h_exponents": [0, 1, 2, 3, 4],
    "images": 1000,
    "checkpoint_steps": 3000,
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
    """The autoencoder half of the figure: per seed the off-plateau checkpoint
    (`checkpoint_part`), then every scheme and `h` from it in one cached `sweep`
    (`measured_training`). **Returns:** `(arrays, the first seed's problem, the number of
    images trained on)`."""
    exps = exponents(config)
    hs = 2.0 ** -np.array(exps, dtype=float)
    c = float(config["loss_scale"])
    starts, arrays, (loss, data, first, shared) = checkpoints(config, ctx)
    sweep_keys = ("h_exponents", "steps", "record_every", "seeds", "schemes")
    key_ = shared | {k: config[k] for k in CHECKPOINT_KEYS + sweep_keys}
    off = seeds_to_run(arrays, config, data)  # those off the plateau (none: all)
    seeds = [int(s) for s in config["seeds"]]
    key_ |= {"run_seeds": off}

    def run():
        out = measured_training(
            config["schemes"],
            {s: starts[s] for s in off},
            data,
            hs,
            loss,
            steps=config["steps"],
            lam=config["lam"],
            rtol=config["sharpness_rtol"],
            max_iters=config["sharpness_max_iters"],
            record_every=config["record_every"],
        )
        return {"arrays": out}

    bar = ctx.progress(1, "sweep: schemes x h x seeds")
    part = ctx.cached("sweep", key_, run)["arrays"]
    bar.advance()
    bar.close()
    rows = [off.index(s) if s in off else None for s in seeds]
    part = {k: _seed_rows(v, rows, k) for k, v in part.items()}
    arrays["run_seeds"] = np.array(off)
    arrays |= {"hs": hs, "seeds": np.array(config["seeds"]), "curve_steps": part["curve_steps"]}
    for k, scheme in enumerate(config["schemes"]):
        arrays[f"{scheme}/loss"] = part["loss"][k]  # (seeds, h), the training loss
        arrays[f"{scheme}/error"] = part["loss"][k] / c  # per-image summed squared error
        arrays[f"{scheme}/sharpness"] = part["sharpness"][k]
        arrays[f"{scheme}/residual"] = part["residual"][k]
        arrays[f"{scheme}/diverged_at"] = part["diverged_at"][k]
        arrays[f"{scheme}/curves"] = part["curves"][k] / c  # (seeds, h, records + 1), errors
        arrays[f"{scheme}/hc"] = np.array(
            [modified_loss_constant(scheme, h, config["lam"]) for h in hs]
        )
        arrays[f"{scheme}/threshold"] = np.array(
            [float(stability_threshold(scheme_method(scheme, h, config["lam"]))) for h in hs]
        )
    arrays["plateau"] = np.array(mean_image_error(data))
    return arrays, first, data.shape[0]


def _seed_rows(value, rows, key):
    """`value` (`(scheme, run seed, ...)`) on every seed's row (`rows[i]`: the run seed's row,
    None for a seed not run: NaN, `diverged_at` -1); `curve_steps` as it is."""
    if key == "curve_steps":
        return value
    fill = -1 if key == "diverged_at" else np.nan
    out = np.full((value.shape[0], len(rows)) + value.shape[2:], fill, dtype=value.dtype)
    for i, r in enumerate(rows):
        if r is not None:
            out[:, i] = value[:, r]
    return out


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
    plateau = float(arrays["plateau"])
    off = config["trained_below"] * plateau
    rtol = config["sharpness_rtol"]
    div = {s: arrays[f"{s}/diverged_at"] >= 0 for s in schemes}  # (seeds, h)
    converged = {s: arrays[f"{s}/residual"] <= rtol for s in schemes}  # NaN: False
    trained = {s: arrays[f"{s}/error"] < off for s in schemes}
    ck_err = final_errors(arrays)
    ck_div = arrays["checkpoint/diverged_at"] >= 0
    ck_off = ~ck_div & (ck_err < off)  # (seeds,): the seed's start left the plateau
    not_run = sorted(set(seeds) - set(arrays["run_seeds"].tolist()))
    # A run is compared only from a start off the plateau, and its sharpness only if converged.
    usable = {s: ~div[s] & converged[s] & ck_off[:, None] for s in schemes}
    per = {}
    for s in schemes:
        per[s] = {
            "error": [spread(arrays[f"{s}/error"][:, i], div[s][:, i]) for i in range(len(hs))],
            "sharpness": [
                spread(arrays[f"{s}/sharpness"][:, i], ~usable[s][:, i]) for i in range(len(hs))
            ],
            "sharpness_residual": [
                [None if not np.isfinite(r) else float(r) for r in arrays[f"{s}/residual"][:, i]]
                for i in range(len(hs))
            ],
        }
        per[s]["stability_threshold"] = arrays[f"{s}/threshold"].tolist()
        per[s]["h_c"] = arrays[f"{s}/hc"].tolist()
        res = arrays[f"{s}/residual"]
        per[s]["sharpness_residual_max"] = (
            float(np.nanmax(res)) if np.any(np.isfinite(res)) else None
        )
        measured = np.isfinite(res) & ~converged[s]  # (seeds, h); NaN: diverged or not run
        per[s]["sharpness_unconverged"] = {
            lab: [int(seeds[k]) for k in np.flatnonzero(measured[:, i])]
            for i, lab in enumerate(labels)
            if np.any(measured[:, i])
        }
        per[s]["diverged_seeds"] = {
            lab: [int(seeds[k]) for k in np.flatnonzero(div[s][:, i])]
            for i, lab in enumerate(labels)
            if np.any(div[s][:, i])
        }
        per[s]["off_plateau_seeds"] = {
            lab: [int(seeds[k]) for k in np.flatnonzero(trained[s][:, i])]
            for i, lab in enumerate(labels)
        }
    sharp = {s: arrays[f"{s}/sharpness"] for s in schemes}
    err = {s: arrays[f"{s}/error"] for s in schemes}
    gd = "gd_effective"
    both_sharp = {s: usable[s] & usable[gd] for s in ("hb", "nag")}
    both_run = {s: ~div[s] & ~div[gd] & ck_off[:, None] for s in ("hb", "nag")}
    flatter = {s: verdict(sharp[s], sharp[gd], both_sharp[s]) for s in ("hb", "nag")}
    lower = {s: verdict(err[s], err[gd], both_run[s]) for s in ("hb", "nag")}
    at_edge = {
        s: [
            spread(sharp[s][:, i] / arrays[f"{s}/threshold"][i], ~usable[s][:, i])
            for i in range(len(hs))
        ]
        for s in schemes
    }
    checkpoint = {
        "scheme": config["checkpoint_scheme"],
        "h": h_label(int(config["checkpoint_h_exponent"])),
        "max_steps": config["checkpoint_steps"],
        "steps": arrays["checkpoint/steps"].tolist(),
        "error": spread(ck_err, ck_div),
        "left_plateau": [bool(x) for x in ck_off],
        "left_plateau_every_seed": bool(np.all(ck_off)),
        "seeds_not_run_from": not_run,  # their checkpoint stayed on the plateau
        "first_step_below_off_plateau": [
            None if not np.any(e < off) else int(np.flatnonzero(e < off)[0])
            for e in arrays["checkpoint/errors"]
        ],
        "sharpness": spread(arrays["checkpoint/sharpness"], arrays["checkpoint/residual"] > rtol),
        "sharpness_residual": arrays["checkpoint/residual"].tolist(),
    }

    def claims(table):
        return {
            s: [lab for lab, v in zip(labels, table[s]) if v == "yes"] for s in ("hb", "nag")
        } | {
            f"{s}_opposite": [lab for lab, v in zip(labels, table[s]) if v == "no"]
            for s in ("hb", "nag")
        }

    f, lo_ = claims(flatter), claims(lower)
    every = {s: bool(all(v == "yes" for v in flatter[s])) for s in ("hb", "nag")}  # at every h
    c = float(config["loss_scale"])
    summary = {
        "dataset": prob.dataset,
        "data": f"{prob.description.split(', ')[0]}, first {n_images} images, full batch, "
        f"autoencoder {'-'.join(map(str, prob.sizes))}",
        "loss": f"{c:g} x per-image summed squared error, {config['hidden']} hidden units",
        "units": "sharpness and thresholds in units of the training loss (c x the per-image "
        "sum); errors per image (the training loss / c)",
        "mean_image_plateau": plateau,
        "off_plateau_below": off,
        "checkpoint": checkpoint,
        "steps_from_checkpoint": config["steps"],
        "seeds": [int(x) for x in seeds],
        "h": labels,
        "time_t_equals_c_n_h_over_1_minus_lam": (
            c * config["steps"] * hs / (1 - config["lam"])
        ).tolist(),
        "per_scheme": per,
        "paper_claim": (
            "HB and NAG follow the modified flow of Phi + h c |grad Phi|^2 with a larger c than "
            "GD at the effective rate h/(1-lam) (Thm 6): implicit regularisation, so they reach "
            "flatter minima (lower sharpness) than GD at the effective rate"
        ),
        "momentum_flatter_than_gd_per_h": flatter,
        "momentum_lower_error_than_gd_per_h": lower,
        "flatter_than_gd_for_every_seed_at": f,
        "lower_error_than_gd_for_every_seed_at": lo_,
        "flatter_than_gd_for_every_seed_and_h": every,
        "sharpness_over_stability_threshold": at_edge,
        "toy": toy_summary,
        "note": (
            "Every scheme, h and seed starts from its seed's checkpoint (heavy ball, full batch, "
            "run in chunks until its error is below 0.9 x the mean image's; a seed whose "
            "checkpoint did not get there within the maximum is left out of every comparison) "
            "with zero velocity and runs the same number of steps, in one "
            "sweep. All three follow the rescaled gradient flow at time t = n h; to first order "
            "HB's modified loss carries a (1+lam)/(1-lam) = "
            f"{(1 + config['lam']) / (1 - config['lam']):g} times stronger |grad Phi|^2 "
            "penalty than GD's at the effective rate. Sharpness is the top Hessian eigenvalue "
            "of the full-batch training loss (LOBPCG on Hessian-vector products inside the "
            f"sweep, to the relative residual {rtol:g}); a value that did not get there is "
            "listed in 'sharpness_unconverged' and left out of the spread and the comparisons. "
            "The stability threshold is 2(1+lam)/(h(1+2a)) (GD at rate h/(1-lam): 2(1-lam)/h). "
            "'yes' / 'no' / 'mixed k/n': whether the comparison holds for every seed, for none, "
            "or for k of the n seeds where both ran (and, for sharpness, converged). The "
            "modified loss's |grad Phi|^2 is not measured on the autoencoder (the sweep keeps "
            "no parameters); Phi_h is drawn on the double well."
        ),
    }

    def rng(s):
        v = sharp[s][usable[s]]
        return f"{np.min(v):.3g}-{np.max(v):.3g}" if v.size else "none usable"

    def at(d, k):
        return ", ".join(d[k]) or "no h"

    summary["compared_seeds"] = [int(x) for x, o in zip(seeds, ck_off) if o]
    summary["headline"] = (
        f"{prob.dataset}, full batch, {config['steps']} steps from an HB checkpoint (off the "
        f"plateau on {int(ck_off.sum())}/{len(seeds)} seeds, after "
        f"{', '.join(map(str, checkpoint['steps']))} steps; only those seeds compared), "
        f"h = {labels[0]}..{labels[-1]}: sharpness GD {rng(gd)}, HB {rng('hb')}, NAG "
        f"{rng('nag')}; flatter than GD for every seed: HB at {at(f, 'hb')}, NAG at "
        f"{at(f, 'nag')}; sharper for every seed: HB at {at(f, 'hb_opposite')}, NAG at "
        f"{at(f, 'nag_opposite')}; lower error for "
        f"every seed: HB at {at(lo_, 'hb')}, NAG at {at(lo_, 'nag')}"
    )
    return {"arrays": arrays, "summary": summary}


def _band(ax, hs, values, diverged, color, label, marker="o", ls="-"):
    """Mean over seeds with the min-max band; diverged seeds left out (crosses if all)."""
    v = np.where(diverged, np.nan, values)
    ok = np.any(np.isfinite(v), axis=0)
    with warnings.catch_warnings():  # an h where every seed is left out: NaN, drawn as a cross
        warnings.simplefilter("ignore", RuntimeWarning)
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


def _claim_text(summary, key, word):
    """`HB <word> than GD for every seed at h = ...; NAG ...` for a panel title."""
    d = summary[key]
    return "; ".join(
        f"{short(s)} {word} for every seed at h = {', '.join(d[s]) or 'none'}"
        for s in ("hb", "nag")
    )


def plot(data, config, path):
    arrays, summary = data["arrays"], data["summary"]
    hs = arrays["hs"]
    n_seeds = len(summary["seeds"])
    rtol = config["sharpness_rtol"]
    fig, axes = new_figure(2, 3, width=4.4, height=3.7)
    on = ~np.array(summary["checkpoint"]["left_plateau"])[:, None]  # seeds left out
    n_off = int(np.sum(~on))
    ax = axes[0, 0]
    for k, s in enumerate(config["schemes"]):
        div = (arrays[f"{s}/diverged_at"] >= 0) | on
        bad = ~(arrays[f"{s}/residual"] <= rtol) & ~div  # did not converge: flagged, not used
        _band(ax, hs, arrays[f"{s}/sharpness"], div | bad, COLORS[k], LABELS[s])
        ax.plot(hs, arrays[f"{s}/threshold"], ":", color=COLORS[k], lw=1)
        if np.any(bad):
            i = np.nonzero(bad)
            ax.plot(hs[i[1]], arrays[f"{s}/sharpness"][i], "o", mfc="none", mec="r", ms=7)
    ck = arrays["checkpoint/sharpness"][~on[:, 0]]
    if ck.size:
        ax.axhspan(np.min(ck), np.max(ck), color="0.5", alpha=0.3, lw=0, label="at the checkpoint")
    ax.plot([], [], ":", color="0.3", label="stability threshold")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("h")
    ax.set_ylabel(r"sharpness $\lambda_{\max}(\nabla^2\Phi)$")
    ax.set_title(
        f"(a) sharpness reached, {n_off} of {n_seeds} seeds (those off the plateau)\n"
        + _claim_text(summary, "flatter_than_gd_for_every_seed_at", "flatter"),
        fontsize=6.5,
    )
    ax.legend(fontsize=6)
    ax = axes[0, 1]
    for k, s in enumerate(config["schemes"]):
        div = (arrays[f"{s}/diverged_at"] >= 0) | on
        _band(ax, hs, arrays[f"{s}/error"], div, COLORS[k], LABELS[s])
    plateau = summary["mean_image_plateau"]
    ax.axhline(plateau, color="0.3", ls="--", lw=1, label="mean image (plateau)")
    ax.axhline(summary["off_plateau_below"], color="0.3", ls=":", lw=1, label="0.9 x plateau")
    ck_err = final_errors(arrays)[~on[:, 0]]
    if ck_err.size:
        ax.axhspan(np.min(ck_err), np.max(ck_err), color="0.5", alpha=0.3, lw=0, label="checkpoint")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("h")
    ax.set_ylabel("training error per image (full batch)")
    ax.set_title(
        f"(b) error reached, {n_off} of {n_seeds} seeds\n"
        + _claim_text(summary, "lower_error_than_gd_for_every_seed_at", "lower"),
        fontsize=6.5,
    )
    ax.legend(fontsize=6)
    ax = axes[0, 2]
    ck_curve = arrays["checkpoint/errors"][0]
    ck_curve = ck_curve[np.isfinite(ck_curve)]
    n_ck = ck_curve.size - 1
    ax.plot(np.arange(-n_ck, 1), ck_curve, color="0.4", lw=1, label="checkpoint run (HB)")
    steps = arrays["curve_steps"]
    for k, s in enumerate(config["schemes"]):
        for i, h in enumerate(hs):
            ax.plot(
                steps,
                arrays[f"{s}/curves"][0, i],
                ls=("-", "--", ":", "-.")[i % 4],
                color=COLORS[k],
                lw=1,
                label=LABELS[s] if i == 0 else None,
            )
    ax.axhline(plateau, color="0.3", ls="--", lw=0.8)
    ax.axvline(0, color="k", lw=0.6)
    low = np.nanmin([np.nanmin(arrays[f"{s}/curves"][0]) for s in config["schemes"]])
    ax.set_ylim(0.8 * min(low, np.min(ck_curve)), 1.8 * plateau)
    ax.set_xlabel("step (0: the checkpoint)")
    ax.set_ylabel("training error per image")
    styles = ("-", "--", ":", "-.")
    lines = ", ".join(f"{styles[i % 4]} {lab}" for i, lab in enumerate(summary["h"]))
    ax.set_title(f"(c) seed {summary['seeds'][0]}: the runs (h: {lines})", fontsize=7)
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
    ck = summary["checkpoint"]
    fig.suptitle(
        f"Implicit regularisation. Top: {summary['data']},\nloss {summary['loss']}, "
        f"λ = {config['lam']}; every run {config['steps']} steps from its seed's checkpoint\n"
        f"({ck['scheme'].upper()} h = {ck['h']}, {'/'.join(map(str, ck['steps']))} steps; off "
        f"the plateau on {sum(ck['left_plateau'])} of {len(ck['left_plateau'])} seeds).\n"
        f"Bottom: double well, HB h = {toy['h']}, λ = {toy['lam']}, started on the invariant "
        "manifold",
        fontsize=9,
    )
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
