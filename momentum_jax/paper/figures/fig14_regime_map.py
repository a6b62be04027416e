"""Fig 14 (ours): a regime map over the (h, lam) plane. Where does each continuous-time model
hold, and where does the method leave it (instability, edge of stability)?

Top: the paper's quadratic (kappa = 10, T = 2), HB and NAG on a 32 x 32 grid of (h, lam): the
error against the rescaled gradient flow and against the modified-loss flow, the observed order
between neighbouring h, and the measured divergence boundary beside the linear-stability
thresholds (docs/theory.md §5): HB is stable for h q < 2 (1 + lam), NAG for
h q (1 + 2 lam) < 2 (1 + lam), q the largest curvature.

Bottom: the digits autoencoder (full batch), over the same ranges of (h, lam) on a 16 x 16 grid
(32 x 32 with `--full`: each point trains a network and measures its sharpness), trained for a
fixed number of steps with `sweep`: the loss reached, the sharpness reached against the threshold
2 (1 + lam) / (h (1 + 2a)) (the edge of stability), and the divergence boundary.

Last two rows: where the edge-of-stability models beat the stable flow. On the toy
`Phi(x, y) = -c x + (s0 + x) y^2/2 + e y`, whose sharpness `s0 + x` rises along the gradient flow,
HB and NAG over a grid of (h, lam): the largest distance of the iterates to the rod flow, and to
the central flow, over that to the rescaled gradient flow (docs/edge_of_stability.md), the
computation of Fig 15's last rows (`momentum_jax.paper._edge_map.toy_map`), with the linear
thresholds at the toy's starting sharpness and at the gradient flow's sharpness at the end of
the run.
"""

import jax.numpy as jnp
import numpy as np

import momentum_jax as mj
from momentum_jax.paper import _edge_map, script_main
from momentum_jax.plotting import new_figure, plot_sweep, save_figure

NAME = "fig14_regime_map"
DESCRIPTION = (
    "Regime map over (h, lam), HB and NAG: on the paper's quadratic the error against the "
    "gradient flow and the modified-loss flow, the observed order and the divergence boundary "
    "beside the linear-stability thresholds; on the digits autoencoder the loss and sharpness "
    "reached against the edge of stability; on a sharpening toy, where the rod flow beats the "
    "gradient flow at the edge of stability."
)
CONFIG = {
    "kappa": 10.0,
    "T": 2.0,
    "h_exponents": [-1.0, -8.0],
    "points_h": 32,
    "lam_range": [0.0, 0.95],
    "points_lam": 32,
    "solver_max_steps": 2**14,
    "divergence_steps": 4000,
    # the digits row on its own, coarser grid over the same ranges: each of its points trains a
    # network and measures its sharpness (32 x 32 took 10 of the figure's 11 min, --full)
    "digits_points_h": 16,
    "digits_points_lam": 16,
    "digits_images": 256,
    "digits_steps": 200,
    "digits_record_every": 50,
    "sharpness_rtol": 1e-4,
    "sharpness_max_iters": 500,
    "seed": 0,
    **_edge_map.GRID,
}
QUICK = {
    "points_h": 12,
    "points_lam": 12,
    "digits_steps": 60,
    "digits_record_every": 20,
    "map_points_h": 4,
    "map_points_lam": 3,
    "digits_points_h": 8,
    "digits_points_lam": 8,
}
FULL = {"digits_points_h": 32, "digits_points_lam": 32}
METHODS = ("hb", "nag")


def grid(config, prefix=""):
    """The `(hs, lams)` of the quadratic rows, or with `prefix="digits_"` of the digits row:
    `h` log-spaced over `2^h_exponents`, `lam` linear over `lam_range`."""
    lo, hi = config["h_exponents"]
    hs = 2.0 ** np.linspace(lo, hi, config[f"{prefix}points_h"])
    lams = np.linspace(*config["lam_range"], config[f"{prefix}points_lam"])
    return hs, lams


def threshold(method, q):
    """`lam -> h*`: the largest stable h of the method on a quadratic of curvature q."""
    if method == "hb":
        return lambda lam: 2.0 * (1.0 + lam) / q
    return lambda lam: 2.0 * (1.0 + lam) / (q * (1.0 + 2.0 * lam))


def boundary(hs, lams, diverged):
    """Per lam, the measured edge: the geometric mean of the largest h that stayed bounded and
    the smallest h that diverged (NaN where the grid does not bracket it)."""
    out = []
    order = np.argsort(hs)
    for j in range(lams.size):
        d = diverged[j][order]
        h = hs[order]
        stable, bad = h[~d], h[d]
        if stable.size and bad.size and stable.max() < bad.min():
            out.append(float(np.sqrt(stable.max() * bad.min())))
        else:
            out.append(float("nan"))
    return np.array(out)


def quadratic_part(config, ctx):
    hs, lams = grid(config)
    kappa = config["kappa"]
    # the gradient flow from the paper's zero-velocity start (order 1), the modified-loss flow
    # from the invariant manifold (order 2, Thm 6)
    solver = mj.SolverConfig(max_steps=config["solver_max_steps"])
    kw = dict(hs=hs, lams=lams, T=config["T"], solver=solver)
    loss, u0 = mj.paper_quadratic(kappa), jnp.array([1.0, 1.0])
    flow = mj.convergence_study(loss, u0, models=("gradient_flow",), **kw)
    # (the map crosses out of the manifold series' range on purpose: the warning goes into the
    # figure's summary, see `momentum_jax.paper.run_experiment`)
    modified = mj.convergence_study(loss, u0, models=("modified_flow",), init="manifold", **kw)
    # the divergence boundary: runs of many steps (at T = 2 a mildly unstable run at large h
    # takes too few steps to leave every bound)
    long = mj.sweep(
        mj.paper_quadratic(kappa),
        jnp.array([1.0, 1.0]),
        hs=hs,
        lams=lams,
        methods=METHODS,
        steps=config["divergence_steps"],
        min_loss=False,  # only where each run diverges is used: HB and NAG in one loop
    )
    diverged = long.diverged[..., 0]
    arrays = {"hs": hs, "lams": lams, "diverged_long": diverged}
    summary = {
        "points": int(diverged.size),
        "status": {"gradient_flow": flow.summary_line(), "modified_flow": modified.summary_line()},
        "starts": {"gradient_flow": "zero velocity", "modified_flow": "invariant manifold"},
        "divergence_steps": config["divergence_steps"],
    }
    studies = {"gradient_flow": flow, "modified_flow": modified}
    for model, st in studies.items():
        arrays[f"error/{model}"] = st.errors[model]
        arrays[f"rate/{model}"] = st.rates[model]
        arrays[f"failed/{model}"] = st.solver_failure[model] != ""
    for i, method in enumerate(METHODS):
        measured = boundary(hs, lams, diverged[i])
        predicted = threshold(method, kappa)(lams)
        ok = np.isfinite(measured)
        ratio = measured[ok] / predicted[ok]
        arrays[f"boundary/{method}"] = measured
        summary[method] = {
            "measured_boundary_over_threshold": {
                "median": float(np.median(ratio)) if ratio.size else None,
                "min": float(ratio.min()) if ratio.size else None,
                "max": float(ratio.max()) if ratio.size else None,
                "lams_bracketed": int(ok.sum()),
            },
            "diverged_points": int(np.sum(diverged[i])),
        }
        for model, st in studies.items():
            err = st.errors[model][i]
            rate = st.rates[model][i]
            stable_small = (hs[None, 1:] < 0.5 * predicted[:, None]) & np.isfinite(rate)
            summary[method][model] = {
                "median_error": float(np.nanmedian(err)),
                "solver_failures": int(np.sum(st.solver_failure[model][i] != "")),
                "median_rate_well_inside_stability": float(np.median(rate[stable_small]))
                if np.any(stable_small)
                else None,
            }
    return arrays, summary


def digits_part(config, ctx):
    hs, lams = grid(config, "digits_")
    images, _ = mj.load_digits_images()
    x = jnp.asarray(images[: config["digits_images"]])
    params0 = mj.init_autoencoder(mj.DIGITS_SIZES, config["seed"])

    def loss(params):
        return jnp.mean(mj.squared_error(params, x))

    bar = ctx.progress(1, "digits sweep")
    steps = config["digits_steps"]
    sw = mj.sweep(
        loss,
        params0,
        hs=hs,
        lams=lams,
        methods=METHODS,
        steps=steps,
        record_every=config["digits_record_every"],
        sharpness_at=[steps],
        sharpness_rtol=config["sharpness_rtol"],
        sharpness_max_iters=config["sharpness_max_iters"],
        min_loss=False,  # not drawn: HB and NAG in one loop, no extra forward pass for NAG
    )
    bar.advance()
    arrays = {
        "d/hs": hs,
        "d/lams": lams,
        "d/final_loss": sw.final_loss[..., 0],
        "d/diverged_at": sw.diverged_at[..., 0],
        "d/sharpness": sw.sharpness[..., 0, -1],
        "d/sharpness_residual": sw.sharpness_residual[..., 0, -1],
        "d/curve": sw.curve[..., 0, :],
    }
    summary = {
        "images": int(x.shape[0]),
        "steps": steps,
        "status": sw.summary_line(),
        "sharpness": "top Hessian eigenvalue (top_hessian_eigenvalue, LOBPCG) to the relative "
        f"residual {config['sharpness_rtol']:g}; points that did not get there within "
        f"{config['sharpness_max_iters']} Hessian-vector products are left out of the ratios",
    }
    for i, method in enumerate(METHODS):
        a = 1.0 if method == "nag" else 0.0
        thr = 2.0 * (1.0 + lams[:, None]) / (hs[None, :] * (1.0 + 2.0 * a * lams[:, None]))
        ratio = sw.sharpness[i, :, :, 0, -1] / thr
        residual = sw.sharpness_residual[i, :, :, 0, -1]
        converged = residual <= config["sharpness_rtol"]
        ok = np.isfinite(ratio) & ~sw.diverged[i, :, :, 0] & converged
        summary[method] = {
            "diverged_points": int(np.sum(sw.diverged[i])),
            "sharpness_unconverged_points": int(np.sum(np.isfinite(residual) & ~converged)),
            "sharpness_residual_max": float(np.nanmax(residual)),
            "sharpness_over_threshold": {  # None where no point got a converged value
                "points": int(ok.sum()),
                "median": float(np.median(ratio[ok])) if ok.any() else None,
                "max": float(np.max(ratio[ok])) if ok.any() else None,
                "fraction_above_0.9": float(np.mean(ratio[ok] > 0.9)) if ok.any() else None,
            },
        }
        arrays[f"d/threshold_ratio/{method}"] = np.where(ok, ratio, np.nan)
    return arrays, summary, sw


def edge_map_part(config, ctx):
    """The toy maps of the rod flow and of the central flow against the gradient flow (Fig 15's
    last rows, the same function and grid): the arrays under `rod/` and, under `"rod"` and
    `"central"`, the counts of `_edge_map.map_summary`."""
    bar = ctx.progress(1, "edge-of-stability toy map")
    m = _edge_map.cached_toy_map(config, ctx)
    bar.advance()
    arrays = {f"rod/{k}": v for k, v in m.items()}
    summary = {
        "potential": dict(_edge_map.TOY),
        "steps": config["map_steps"],
        "ratio": "largest distance of the iterates (every second step) to the rod flow (or the "
        "central flow) over that to the rescaled gradient flow; points where the iterates "
        "diverged left out",
    } | _edge_map.maps_summary(m)
    return arrays, summary


def compute(config, ctx):
    arrays, quad = quadratic_part(config, ctx)
    d_arrays, digits, _ = digits_part(config, ctx)
    arrays |= d_arrays
    r_arrays, rod = edge_map_part(config, ctx)
    arrays |= r_arrays

    def fmt(x):
        return "n/a" if x is None else f"{x:.3g}"

    edge = {m: quad[m]["measured_boundary_over_threshold"]["median"] for m in METHODS}
    sharp = {m: digits[m]["sharpness_over_threshold"]["median"] for m in METHODS}
    summary = {
        "quadratic": quad,
        "digits": digits,
        "rod_map": rod,
        "headline": (
            f"quadratic kappa={config['kappa']:g}: measured divergence boundary / linear "
            f"threshold, median HB {fmt(edge['hb'])}, NAG {fmt(edge['nag'])}; digits: final "
            f"sharpness / edge of stability, median HB {fmt(sharp['hb'])}, NAG {fmt(sharp['nag'])}"
        ),
    }
    return {"arrays": arrays, "summary": summary}


def _map(values, diverged_at, hs, lams):
    """Any `(method, lam, h)` array as a `Sweep` whose `final_loss` it is, so that every panel
    is drawn by `plot_sweep` (masked where `diverged_at >= 0`)."""
    v = np.asarray(values, dtype=float)[..., None]
    return mj.Sweep(
        METHODS,
        lams,
        hs,
        np.asarray([0]),
        0,
        final_loss=v,
        min_loss=v,
        diverged_at=np.asarray(diverged_at)[..., None],
        curve_steps=None,
        curve=None,
        sharpness_steps=None,
        sharpness=None,
        distances=None,
        config={},
        meta={},
    )


def plot(data, config, path):
    a = data["arrays"]
    hs, lams, kappa = a["hs"], a["lams"], config["kappa"]
    div = np.where(a["diverged_long"], 1, -1)
    # the rate between h_k and h_{k+1} is drawn at h_k; the last h has none
    pad = np.full(div.shape[:2] + (1,), np.nan)
    rate = {
        m: np.concatenate([a[f"rate/{m}"], pad], -1) for m in ("gradient_flow", "modified_flow")
    }
    quad, digits = (hs, lams), (a["d/hs"], a["d/lams"])  # the grids of the two parts
    panels = [  # values, divergence, log scale, limits, title, grid (thresholds: quadratic only)
        (a["error/gradient_flow"], div, True, None, "error vs gradient flow (zero start)", quad),
        (rate["gradient_flow"], div, False, (0.0, 3.0), "observed order vs gradient flow", quad),
        (
            a["error/modified_flow"],
            div,
            True,
            None,
            "error vs modified flow (manifold start)",
            quad,
        ),
        (rate["modified_flow"], div, False, (0.0, 3.0), "observed order vs modified flow", quad),
        (
            np.stack([a["d/threshold_ratio/hb"], a["d/threshold_ratio/nag"]]),
            a["d/diverged_at"],
            False,
            (0.0, 1.2),
            "digits: sharpness / 2(1+λ)/(h(1+2a))",
            digits,
        ),
    ]
    fig, axes = new_figure(len(panels) + 2, 2, width=4.6, height=3.3, layout="constrained")
    for col, method in enumerate(METHODS):
        edges = {
            "linear threshold": lambda lam, m=method: threshold(m, kappa)(lam),
            "measured edge": lambda lam, b=a[f"boundary/{method}"]: float(np.interp(lam, lams, b)),
        }
        for row, (values, d, log, limits, title, on) in enumerate(panels):
            plot_sweep(
                _map(values, d, *on),
                "final_loss",
                method=method,
                ax=axes[row, col],
                log=log,
                thresholds=edges if on is quad else None,  # the quadratic's thresholds
                label=title.split(":")[-1].strip(),
                limits=limits,
            )
            axes[row, col].set_title(f"{method.upper()}: {title}", fontsize=8)
    for row, model in enumerate(_edge_map.MAP_MODELS, start=len(panels)):
        _plot_edge_row(data, config, axes[row], model)
    toy = _edge_map.TOY
    fig.suptitle(
        f"Regime map. Rows 1-4: quadratic kappa={kappa:g}, T={config['T']:g} (red: diverges "
        f"within {config['divergence_steps']} steps);\nrow 5: digits autoencoder, "
        f"{config['digits_images']} images, {config['digits_steps']} full-batch steps, "
        f"{a['d/lams'].size} x {a['d/hs'].size} grid;\n"
        f"rows 6-7: toy Φ = -c x + (s0 + x) y²/2 + e y (c={toy['c']:g}, s0={toy['s0']:g}, "
        f"e={toy['e']:g}), {config['map_steps']} steps:\nwhere the rod flow (row 6) and the "
        "central flow (row 7) beat the gradient flow",
        fontsize=9,
    )
    save_figure(fig, path)


def _plot_edge_row(data, config, axes, model: str) -> None:
    """A toy-map row: the ratio of the largest distances, the edge model `model` (a key of
    `_edge_map.MAP_MODELS`) over the rescaled gradient flow, on a log colour scale (below 1: the
    model is closer), with the toy's linear thresholds."""
    a = data["arrays"]
    key, name = _edge_map.MAP_MODELS[model], _edge_map.MAP_LABELS[model]
    hs, lams, ratio = a["rod/map_hs"], a["rod/map_lams"], np.asarray(a[f"rod/{key}"], float)
    diverged = np.where(np.isfinite(ratio), -1, 1)  # the ratio is NaN where the iterates diverged
    for col, method in enumerate(METHODS):
        a_factor = 1.0 if method == "nag" else 0.0
        edges = {
            "q* = s0 (start)": lambda lam, f=a_factor: float(_edge_map.start_threshold_h(lam, f)),
            "q* = end sharpness of gradient flow": (
                lambda lam, f=a_factor: float(
                    _edge_map.end_threshold_h(lam, f, config["map_steps"])
                )
            ),
        }
        plot_sweep(
            _map(ratio, diverged, hs, lams),
            "final_loss",
            method=method,
            ax=axes[col],
            log=True,
            thresholds=edges,
            label=f"{name} / gradient flow (< 1: closer)",
            limits=(0.25, 4.0),
        )
        axes[col].set_title(
            f"{method.upper()}: toy, max distance to {name} / to gradient flow", fontsize=8
        )


if __name__ == "__main__":
    script_main(__name__)
