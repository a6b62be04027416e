"""Fig 6: final training error of the six Section 5 schemes for h = 2^0 ... 2^-6, beside the
paper's published MNIST table (docs/theory.md §6)."""

import jax
import numpy as np

import momentum_jax as mj
from momentum_jax.paper import (
    TRAINING_LOSSES,
    h_label,
    mean_image_error,
    script_main,
    section5_from_config,
)
from momentum_jax.plotting import COLORS, new_figure, save_figure

NAME = "fig6_training"
DESCRIPTION = (
    "Final training error of GD at rate h/(1-lam), HB, NAG, Wilson, HB-mu, NAG-mu "
    "(deep autoencoder, batch 200, no shuffling) against h, beside the paper's table."
)
# Default: the MNIST 5k subset for 8 epochs (about 6 minutes on 2 CPU cores); the paper ran 500
# epochs of the 60,000 MNIST images (--full: 500 epochs, for a GPU). Training loss: the squared
# error averaged over pixels; error reported: summed over pixels, averaged over images (the
# paper's units), docs/theory.md §6.
CONFIG = {
    "dataset": "auto",
    "lam": 0.9,
    "mu": 1.0,
    "h_exponents": [0, 6],
    "epochs": 8,
    "batch_size": 200,
    "seed": 0,
    "training_loss": "pixel_mean",
    "curve_h_exponent": 1,
    "mnist_dtype": "float32",
    "mnist_limit": None,
    "sharpness_images": 1000,
    "sharpness_rtol": 1e-3,  # the residual the float32 training loss allows
    "schemes": ["gd_effective", "hb", "nag", "wilson", "hb_mu", "nag_mu"],
    "vectorize": None,
}
QUICK = {"dataset": "digits", "epochs": 30, "sharpness_images": 200}
FULL = {"epochs": 500}

LABELS = mj.SCHEME_LABELS
STYLES = {
    "gd_effective": "-",
    "hb": "-",
    "nag": "-",
    "wilson": "--",
    "hb_mu": "--",
    "nag_mu": "--",
}
MOMENTUM, VANISHING = ("gd_effective", "hb", "nag"), ("wilson", "hb_mu", "nag_mu")
ERROR_AXIS = "training error: mean over images of the summed squared error"

# Kovachki & Stuart (2021), Fig 6: MNIST, h = 2^0 ... 2^-6; GD could not be trained at h = 1.
PAPER_TABLE = {
    "gd_effective": [None, 4.3948, 4.5954, 5.6769, 7.0049, 8.6468, 10.6548],
    "hb": [3.6775, 4.0157, 4.5429, 5.6447, 7.0720, 8.7070, 10.6848],
    "nag": [3.2808, 3.7166, 4.4579, 5.6087, 7.0557, 8.6987, 10.6814],
    "wilson": [6.7395, 7.5177, 8.3491, 9.2543, 10.2761, 11.3776, 12.4123],
    "hb_mu": [5.7099, 6.6146, 7.6202, 8.6629, 9.7838, 11.0039, 12.1743],
    "nag_mu": [5.6867, 6.6033, 7.6131, 8.6556, 9.7783, 11.0015, 12.1738],
}
PAPER_EXPONENTS = list(range(0, 7))


def start_sharpness(prob, config, loss):
    """The top Hessian eigenvalue of the training loss at the shared start (on the first
    `sharpness_images` images), and GD's linear-stability margin `h/(1-lam) * sharpness`
    (GD is unstable beyond 2, docs/theory.md §5)."""
    data = prob.data[: config["sharpness_images"]]

    def phi(p):
        return jax.numpy.mean(loss(p, data))

    top = mj.top_hessian_eigenvalue(
        phi, prob.params0, rtol=config["sharpness_rtol"], key=jax.random.PRNGKey(0)
    )
    return float(top.value), float(top.residual)


def compute(config, ctx):
    prob = section5_from_config(config, ctx.options)
    loss = TRAINING_LOSSES[config["training_loss"]]
    lo, hi = config["h_exponents"]
    exps = list(range(lo, hi + 1))
    hs = 2.0 ** -np.array(exps, dtype=float)
    keys = (
        "lam",
        "mu",
        "h_exponents",
        "epochs",
        "batch_size",
        "seed",
        "training_loss",
        "mnist_dtype",
        "mnist_limit",
    )
    shared = {k: config[k] for k in keys} | {
        "data": prob.description,
        "mnist_dir": ctx.options.get("mnist_dir"),
    }
    arrays = {"hs": hs}
    for scheme in ctx.progress_iter(config["schemes"], "schemes"):

        def run(scheme=scheme):
            r = mj.train_over_h(
                scheme,
                prob.params0,
                prob.data,
                hs,
                epochs=config["epochs"],
                batch_size=config["batch_size"],
                lam=config["lam"],
                mu=config["mu"],
                loss=loss,
                error=mj.squared_error,
                vectorize=config["vectorize"],
            )
            return {
                "arrays": {
                    "losses": np.asarray(r.losses),
                    "diverged_at": np.asarray(r.diverged_epoch),  # the epoch (1-based)
                }
            }

        part = ctx.cached(scheme, shared | {"scheme": scheme}, run)["arrays"]
        arrays[f"{scheme}/losses"] = part["losses"]
        arrays[f"{scheme}/diverged_at"] = part["diverged_at"]
    sharp_key = shared | {k: config[k] for k in ("sharpness_images", "sharpness_rtol")}
    sharp = ctx.cached(
        "sharpness",
        sharp_key,
        lambda: {"arrays": {"start": np.array(start_sharpness(prob, config, loss))}},
    )["arrays"]["start"]
    plateau = mean_image_error(prob.data)
    arrays["plateau"] = np.array(plateau)
    summary = summarise(arrays, config, exps, hs, prob, plateau, sharp)
    return {"arrays": arrays, "summary": summary}


def summarise(arrays, config, exps, hs, prob, plateau, sharp):
    schemes, lam = config["schemes"], config["lam"]
    ours = {
        s: [
            None if d > 0 else float(v)
            for v, d in zip(arrays[f"{s}/losses"][:, -1], arrays[f"{s}/diverged_at"])
        ]
        for s in schemes
    }
    diverged = {
        s: [h_label(e) for e, d in zip(exps, arrays[f"{s}/diverged_at"]) if d > 0] for s in schemes
    }
    flags = qualitative(ours, exps)
    paper_flags = qualitative(PAPER_TABLE, PAPER_EXPONENTS)
    holds = flags["hb_nag_track_gd"] and flags["momentum_beats_vanishing_friction"]
    gd = arrays["gd_effective/losses"][0]
    rate = hs[0] / (1 - lam)
    margin = rate * sharp[0]
    gd_big_h = {
        "h": h_label(exps[0]),
        "effective_rate": float(rate),
        "diverged": bool(arrays["gd_effective/diverged_at"][0] > 0),
        "diverged_epoch": int(arrays["gd_effective/diverged_at"][0]),
        "error_after_epoch_1": float(gd[1]) if gd.size > 1 else None,
        "final_error": ours["gd_effective"][0],
        "sharpness_at_start": sharp[0],
        "sharpness_residual": sharp[1],
        "rate_times_sharpness": float(margin),
        "note": "GD is linearly unstable when rate * sharpness > 2 (docs/theory.md §5)",
    }
    below = {s: [v is not None and v < plateau for v in ours[s]] for s in schemes}
    verdict = [
        f"HB/NAG closer to GD than any vanishing-friction scheme at h in "
        f"{flags['hb_nag_track_gd_h'] or 'none'} (largest relative difference "
        f"{flags['hb_nag_max_relative_difference_to_gd']:.3g})",
        f"GD, HB and NAG all below Wilson, HB-mu and NAG-mu at h in "
        f"{flags['momentum_beats_vanishing_friction_h'] or 'none'}",
        f"lowest error at h={h_label(exps[0])}: {flags['best_at_largest_h']}",
        (
            f"GD at h={h_label(exps[0])} (rate {rate:g}) diverged in epoch "
            f"{gd_big_h['diverged_epoch']}"
            if gd_big_h["diverged"]
            else f"GD at h={h_label(exps[0])} (rate {rate:g}) stays bounded: rate x sharpness "
            f"at the start {margin:.3g} < 2; error {gd_big_h['error_after_epoch_1']:.4g} "
            f"after epoch 1, {gd_big_h['final_error']:.4g} at the end"
        ),
        f"mean-image plateau {plateau:.4g}; runs below it: "
        + ", ".join(f"{s} {sum(b)}/{len(b)}" for s, b in below.items()),
    ]
    epochs = config["epochs"]
    summary = {
        "dataset": prob.dataset,
        "data": prob.description,
        "epochs": epochs,
        "steps_per_epoch": -(-prob.data.shape[0] // config["batch_size"]),
        "training_loss": config["training_loss"],
        "error": ERROR_AXIS + " (the paper's units); the mean image scores the plateau",
        "mean_image_plateau": plateau,
        "h": [h_label(e) for e in exps],
        "final_training_error": ours,
        "below_plateau": below,
        "diverged": diverged,
        "diverged_epoch": {s: arrays[f"{s}/diverged_at"].tolist() for s in schemes},
        "paper_h": [h_label(e) for e in PAPER_EXPONENTS],
        "paper_final_training_error": PAPER_TABLE,
        "paper_protocol": "MNIST training set (60,000 images), 500 epochs, batch 200",
        "qualitative": flags,
        "paper_qualitative": paper_flags,
        "paper_result_holds": holds,
        "gd_at_largest_h": gd_big_h,
        "verdict": "; ".join(verdict),
    }
    n = len(exps)
    summary["headline"] = (
        f"{prob.dataset}, {epochs} epochs: HB/NAG track GD at {len(flags['hb_nag_track_gd_h'])}"
        f"/{n} h, GD/HB/NAG beat Wilson/HB-mu/NAG-mu at "
        f"{len(flags['momentum_beats_vanishing_friction_h'])}/{n} h, NAG best at "
        f"h={h_label(exps[0])}: {flags['nag_best_at_largest_h']}, GD at h={h_label(exps[0])} "
        + (
            "diverges"
            if gd_big_h["diverged"]
            else f"bounded (error {ours['gd_effective'][0]:.4g}, plateau {plateau:.4g})"
        )
        + " (paper: all h, all h, True, blows up)"
    )
    return summary


def qualitative(table, exps):
    """The paper's claims, checked on a table `{scheme: [final error or None (diverged)]}`."""

    def val(s, i):
        v = table[s][i]
        return np.nan if v is None else v

    track, beat, worst_rel = [], [], 0.0
    for i in range(len(exps)):
        gd = val("gd_effective", i)
        if np.isfinite(gd):
            near = max(abs(val(s, i) - gd) for s in ("hb", "nag"))
            far = min(abs(val(s, i) - gd) for s in VANISHING)
            track.append(bool(near < far))  # nan (a diverged HB/NAG) compares False
            worst_rel = max(worst_rel, near / gd)
        fast = [val(s, i) for s in MOMENTUM if np.isfinite(val(s, i)) or s != "gd_effective"]
        slow = [val(s, i) for s in VANISHING if np.isfinite(val(s, i))]
        beat.append(bool(np.all(np.isfinite(fast)) and (not slow or max(fast) < min(slow))))
    finite0 = {s: val(s, 0) for s in table if np.isfinite(val(s, 0))}
    gd_ok = [i for i in range(len(exps)) if np.isfinite(val("gd_effective", i))]
    return {
        "hb_nag_track_gd": all(track),
        "hb_nag_track_gd_per_h": track,
        "hb_nag_track_gd_h": [h_label(exps[i]) for i, t in zip(gd_ok, track) if t],
        "hb_nag_max_relative_difference_to_gd": float(worst_rel),
        "hb_nag_relative_difference_to_gd_at_smallest_h": float(
            max(abs(val(s, -1) - val("gd_effective", -1)) for s in ("hb", "nag"))
            / val("gd_effective", -1)
        ),
        "momentum_beats_vanishing_friction": all(beat),
        "momentum_beats_vanishing_friction_per_h": beat,
        "momentum_beats_vanishing_friction_h": [h_label(e) for e, b in zip(exps, beat) if b],
        "nag_best_at_largest_h": bool(finite0) and min(finite0, key=finite0.get) == "nag",
        "best_at_largest_h": min(finite0, key=finite0.get) if finite0 else None,
        "gd_diverges_at_largest_h": table["gd_effective"][0] is None,
    }


def _errors_panel(ax, exps, table, title, plateau=None):
    x = np.asarray(exps, dtype=float)
    finite = [v for s in table for v in table[s] if v is not None and np.isfinite(v)]
    top = max(finite + ([plateau] if plateau else [])) if finite else 1.0
    first = True
    for k, (s, values) in enumerate(table.items()):
        y = np.array([np.nan if v is None else v for v in values], dtype=float)
        ax.plot(x, y, marker="o", ms=3, ls=STYLES[s], color=COLORS[k], label=LABELS[s])
        bad = ~np.isfinite(y)
        if np.any(bad):
            ax.plot(
                x[bad],
                np.full(bad.sum(), top * 1.08),
                "x",
                color="k",
                ms=8,
                mew=2,
                label="diverged" if first else None,
            )
            for xi in x[bad]:
                ax.annotate(
                    f"{LABELS[s].split()[0]} diverged",
                    (xi, top * 1.08),
                    fontsize=6,
                    xytext=(4, -10),
                    textcoords="offset points",
                    color="k",
                )
            first = False
    if plateau:
        ax.axhline(plateau, color="0.5", lw=0.8, ls=":", label="mean image (plateau)")
    ax.set_xlabel(r"$-\log_2 h$")
    ax.set_ylabel("final training error (per-image sum)")
    ax.set_title(title, fontsize=8)
    ax.set_ylim(top=top * 1.15)


def plot(data, config, path):
    arrays, summary = data["arrays"], data["summary"]
    lo, hi = config["h_exponents"]
    exps = list(range(lo, hi + 1))
    plateau = summary.get("mean_image_plateau")
    fig, axes = new_figure(1, 3, width=4.6, height=3.8)
    _errors_panel(
        axes[0, 0],
        exps,
        summary["final_training_error"],
        f"(a) ours: {summary['dataset']}, {config['epochs']} epochs, "
        f"trained on the {config['training_loss'].replace('_', ' ')}",
        plateau,
    )
    axes[0, 0].legend(fontsize=6, loc="lower left")
    _errors_panel(
        axes[0, 1],
        PAPER_EXPONENTS,
        summary["paper_final_training_error"],
        "(b) paper: MNIST 60k, 500 epochs (published table)",
    )
    ax = axes[0, 2]
    e = config["curve_h_exponent"]
    i = exps.index(e) if e in exps else 0
    epochs = np.arange(config["epochs"] + 1)
    for k, s in enumerate(config["schemes"]):
        curve = arrays[f"{s}/losses"][i]
        ax.semilogy(epochs, curve, ls=STYLES[s], color=COLORS[k], label=LABELS[s])
        d = int(arrays[f"{s}/diverged_at"][i])
        if d > 0:
            ax.semilogy([d - 1], [curve[d - 1]], "x", color="k", ms=8, mew=2)
    if plateau:
        ax.axhline(plateau, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training error (per-image sum)")
    ax.set_title(f"(c) ours: training curves at h = {h_label(exps[i])}", fontsize=8)
    q, n = summary["qualitative"], len(exps)
    gd = summary["gd_at_largest_h"]
    fig.suptitle(
        f"Fig 6 on {summary['data']}, batch {config['batch_size']}, no shuffling, "
        f"{config['epochs']} epochs.\nHB/NAG track GD at {len(q['hb_nag_track_gd_h'])}/{n} h; "
        f"GD/HB/NAG beat Wilson/HB-μ/NAG-μ at "
        f"{len(q['momentum_beats_vanishing_friction_h'])}/{n} h; best at "
        f"h={h_label(exps[0])}: {LABELS[q['best_at_largest_h']].split()[0]}; GD at "
        f"h={h_label(exps[0])} " + ("diverges" if gd["diverged"] else "stays bounded"),
        fontsize=8,
    )
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
