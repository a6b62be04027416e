"""Fig 6: final training error of the six Section 5 schemes for h = 2^0 ... 2^-6, beside the
paper's published MNIST table."""

import numpy as np

from momentum_jax import train_over_h
from momentum_jax.paper import script_main, section5_problem
from momentum_jax.plotting import COLORS, new_figure, save_figure

NAME = "fig6_training"
DESCRIPTION = (
    "Final training error of GD at rate h/(1-lam), HB, NAG, Wilson, HB-mu, NAG-mu "
    "(autoencoder, batch 200, no shuffling) against h, beside the paper's table."
)
CONFIG = {
    "lam": 0.9,
    "mu": 1.0,
    "h_exponents": [0, 6],
    "epochs": 500,
    "batch_size": 200,
    "seed": 0,
    "curve_h_exponent": 1,
    "mnist_dtype": "float32",
    "mnist_limit": None,
    "schemes": ["gd", "hb", "nag", "wilson", "hb_mu", "nag_mu"],
}
QUICK = {"epochs": 30}

LABELS = {
    "gd": "GD (rate h/(1-λ))",
    "hb": "HB",
    "nag": "NAG",
    "wilson": "Wilson",
    "hb_mu": "HB-μ",
    "nag_mu": "NAG-μ",
}
STYLES = {"gd": "-", "hb": "-", "nag": "-", "wilson": "--", "hb_mu": "--", "nag_mu": "--"}
MOMENTUM, VANISHING = ("gd", "hb", "nag"), ("wilson", "hb_mu", "nag_mu")

# Kovachki & Stuart (2021), Fig 6: MNIST, h = 2^0 ... 2^-6; GD could not be trained at h = 1.
PAPER_TABLE = {
    "gd": [None, 4.3948, 4.5954, 5.6769, 7.0049, 8.6468, 10.6548],
    "hb": [3.6775, 4.0157, 4.5429, 5.6447, 7.0720, 8.7070, 10.6848],
    "nag": [3.2808, 3.7166, 4.4579, 5.6087, 7.0557, 8.6987, 10.6814],
    "wilson": [6.7395, 7.5177, 8.3491, 9.2543, 10.2761, 11.3776, 12.4123],
    "hb_mu": [5.7099, 6.6146, 7.6202, 8.6629, 9.7838, 11.0039, 12.1743],
    "nag_mu": [5.6867, 6.6033, 7.6131, 8.6556, 9.7783, 11.0015, 12.1738],
}
PAPER_EXPONENTS = list(range(0, 7))


def h_label(e):
    return "2^0" if e == 0 else f"2^-{e}"


def problem(config, ctx):
    mnist_dir = ctx.options.get("mnist_dir")
    return section5_problem(
        mnist_dir,
        seed=config["seed"],
        limit=config["mnist_limit"],
        dtype=config["mnist_dtype"] if mnist_dir else None,
    ), mnist_dir


def compute(config, ctx):
    prob, mnist_dir = problem(config, ctx)
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
        "mnist_dtype",
        "mnist_limit",
    )
    shared = {k: config[k] for k in keys} | {"data": prob.description, "mnist_dir": mnist_dir}
    arrays = {"hs": hs}
    for scheme in ctx.progress_iter(config["schemes"], "schemes"):

        def run(scheme=scheme):
            r = train_over_h(
                scheme,
                prob.params0,
                prob.data,
                hs,
                epochs=config["epochs"],
                batch_size=config["batch_size"],
                lam=config["lam"],
                mu=config["mu"],
            )
            return {
                "arrays": {"losses": np.asarray(r.losses), "diverged_at": np.asarray(r.diverged_at)}
            }

        part = ctx.cached(scheme, shared | {"scheme": scheme}, run)["arrays"]
        arrays[f"{scheme}/losses"] = part["losses"]
        arrays[f"{scheme}/diverged_at"] = part["diverged_at"]

    ours = {
        s: [
            None if d > 0 else float(v)
            for v, d in zip(arrays[f"{s}/losses"][:, -1], arrays[f"{s}/diverged_at"])
        ]
        for s in config["schemes"]
    }
    diverged = {
        s: [h_label(e) for e, d in zip(exps, arrays[f"{s}/diverged_at"]) if d > 0]
        for s in config["schemes"]
    }
    flags = qualitative(ours, exps)
    paper_flags = qualitative(PAPER_TABLE, PAPER_EXPONENTS)
    holds = flags["hb_nag_track_gd"] and flags["momentum_beats_vanishing_friction"]
    gd = arrays["gd/losses"][0]
    gd_big_h = {
        "h": h_label(exps[0]),
        "diverged": bool(arrays["gd/diverged_at"][0] > 0),
        "diverged_epoch": int(arrays["gd/diverged_at"][0]),
        "error_after_epoch_1": float(gd[1]) if gd.size > 1 else None,
        "final_error": ours["gd"][0],
    }
    verdict = [
        f"HB/NAG closer to GD than any vanishing-friction scheme at h in "
        f"{flags['hb_nag_track_gd_h'] or 'none'}",
        f"GD, HB and NAG all below Wilson, HB-mu and NAG-mu at h in "
        f"{flags['momentum_beats_vanishing_friction_h'] or 'none'}",
        f"lowest error at h={h_label(exps[0])}: {flags['best_at_largest_h']}",
        (
            f"GD at h={h_label(exps[0])} (rate {hs[0] / (1 - config['lam']):g}) diverged in epoch "
            f"{gd_big_h['diverged_epoch']}"
            if gd_big_h["diverged"]
            else f"GD at h={h_label(exps[0])} (rate {hs[0] / (1 - config['lam']):g}) stays "
            "bounded: "
            f"error {gd_big_h['error_after_epoch_1']:.3g} after epoch 1, "
            f"{gd_big_h['final_error']:.3g} at the end"
        ),
    ]
    summary = {
        "dataset": prob.dataset,
        "data": prob.description,
        "h": [h_label(e) for e in exps],
        "final_training_error": ours,
        "diverged": diverged,
        "diverged_epoch": {s: arrays[f"{s}/diverged_at"].tolist() for s in config["schemes"]},
        "paper_h": [h_label(e) for e in PAPER_EXPONENTS],
        "paper_final_training_error": PAPER_TABLE,
        "qualitative": flags,
        "paper_qualitative": paper_flags,
        "paper_result_holds": holds,
        "gd_at_largest_h": gd_big_h,
        "verdict": "; ".join(verdict),
    }
    n = len(exps)
    summary["headline"] = (
        f"{prob.dataset}: HB/NAG track GD at {len(flags['hb_nag_track_gd_h'])}/{n} h, "
        f"GD/HB/NAG beat Wilson/HB-mu/NAG-mu at "
        f"{len(flags['momentum_beats_vanishing_friction_h'])}/{n} h, NAG best at "
        f"h={h_label(exps[0])}: {flags['nag_best_at_largest_h']}, GD at h={h_label(exps[0])} "
        + ("diverges" if gd_big_h["diverged"] else f"bounded (error {ours['gd'][0]:.3g})")
        + " (paper: all h, all h, True, blows up)"
    )
    return {"arrays": arrays, "summary": summary}


def qualitative(table, exps):
    """The paper's claims, checked on a table `{scheme: [final error or None (diverged)]}`."""

    def val(s, i):
        v = table[s][i]
        return np.nan if v is None else v

    track, beat, worst_rel = [], [], 0.0
    for i in range(len(exps)):
        gd = val("gd", i)
        if np.isfinite(gd):
            near = max(abs(val(s, i) - gd) for s in ("hb", "nag"))
            far = min(abs(val(s, i) - gd) for s in VANISHING)
            track.append(bool(near < far))  # nan (a diverged HB/NAG) compares False
            worst_rel = max(worst_rel, near / gd)
        fast = [val(s, i) for s in MOMENTUM if np.isfinite(val(s, i)) or s != "gd"]
        slow = [val(s, i) for s in VANISHING if np.isfinite(val(s, i))]
        beat.append(bool(np.all(np.isfinite(fast)) and (not slow or max(fast) < min(slow))))
    finite0 = {s: val(s, 0) for s in table if np.isfinite(val(s, 0))}
    gd_ok = [i for i in range(len(exps)) if np.isfinite(val("gd", i))]
    return {
        "hb_nag_track_gd": all(track),
        "hb_nag_track_gd_per_h": track,
        "hb_nag_track_gd_h": [h_label(exps[i]) for i, t in zip(gd_ok, track) if t],
        "hb_nag_max_relative_difference_to_gd": float(worst_rel),
        "hb_nag_relative_difference_to_gd_at_smallest_h": float(
            max(abs(val(s, -1) - val("gd", -1)) for s in ("hb", "nag")) / val("gd", -1)
        ),
        "momentum_beats_vanishing_friction": all(beat),
        "momentum_beats_vanishing_friction_per_h": beat,
        "momentum_beats_vanishing_friction_h": [h_label(e) for e, b in zip(exps, beat) if b],
        "nag_best_at_largest_h": bool(finite0) and min(finite0, key=finite0.get) == "nag",
        "best_at_largest_h": min(finite0, key=finite0.get) if finite0 else None,
        "gd_diverges_at_largest_h": table["gd"][0] is None,
    }


def _errors_panel(ax, exps, table, title):
    x = np.asarray(exps, dtype=float)
    finite = [v for s in table for v in table[s] if v is not None and np.isfinite(v)]
    top = max(finite) if finite else 1.0
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
    ax.set_xlabel(r"$-\log_2 h$")
    ax.set_ylabel("final training error")
    ax.set_title(title, fontsize=9)
    ax.set_ylim(top=top * 1.15)


def plot(data, config, path):
    arrays, summary = data["arrays"], data["summary"]
    lo, hi = config["h_exponents"]
    exps = list(range(lo, hi + 1))
    fig, axes = new_figure(1, 3, width=4.4, height=3.6)
    _errors_panel(
        axes[0, 0],
        exps,
        summary["final_training_error"],
        f"ours: {summary['dataset']}, {config['epochs']} epochs",
    )
    _errors_panel(
        axes[0, 1],
        PAPER_EXPONENTS,
        summary["paper_final_training_error"],
        "paper (MNIST, 500 epochs), published table",
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
    ax.set_xlabel("epoch")
    ax.set_ylabel("training error")
    ax.set_title(f"ours: training curves at h = {h_label(exps[i])}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    q, n = summary["qualitative"], len(exps)
    fig.suptitle(
        f"Fig 6 on {summary['data']}, batch {config['batch_size']}, no shuffling.  "
        f"HB/NAG track GD at {len(q['hb_nag_track_gd_h'])}/{n} h; GD/HB/NAG beat "
        f"Wilson/HB-μ/NAG-μ at {len(q['momentum_beats_vanishing_friction_h'])}/{n} h; "
        f"best at h={h_label(exps[0])}: {LABELS[q['best_at_largest_h']].split()[0]}",
        fontsize=9,
    )
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
