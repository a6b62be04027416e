"""Fig 6: the training error of the six Section 5 schemes off the mean-image plateau, beside the
paper's published MNIST table (docs/theory.md §6).

Every run is one `sweep` call per group of schemes and seed: the paper's network and Glorot
start, batch 200 in a fixed order, `lam = 0.9`, `mu = 1`, trained on `loss_scale` times the
per-image summed squared error; the error reported is the mean over images of the per-image sum
(the recorded full-data loss divided by the scale). The default runs HB and NAG at `h = 1` long
enough to leave the plateau, GD, HB and NAG at `h = 1/2`, and GD at `h = 1` (effective rate 10)
with the vanishing-friction schemes for fewer steps; `epochs` (`--epochs`, `--full`) instead
runs every group for that many epochs, the paper's protocol. `seeds` (`--seeds`) are those of
the Glorot start (the data and their order are the same for every seed): with several, the curves
are the median with the min-max band over the seeds, and the summary holds each claim per seed,
whether it holds on every seed, and the spread of the numbers it is decided on (`every_seed`)."""

import jax
import jax.numpy as jnp
import numpy as np

import momentum_jax as mj
from momentum_jax.paper import h_label, mean_image_error, script_main, section5_from_config
from momentum_jax.plotting import COLORS, new_figure, save_figure

NAME = "fig6_training"
DESCRIPTION = (
    "Training error of GD at rate h/(1-lam), HB, NAG, Wilson, HB-mu, NAG-mu (deep "
    "autoencoder, batch 200, no shuffling) off the mean-image plateau, beside the paper's table."
)
# Default: the MNIST 5k subset, 16,500 point-steps (measured: 8.2 min wall on the idle 2-core CPU
# within a cold `reproduce`; 10.9 min, 1049 s CPU, shared with other jobs at load 1.3-3.4).
# The loss scale c = 1/8 is the one measured scale at which GD at the effective rate fails at
# h = 1 and trains at h = 1/2 while HB and NAG train at h = 1 (experiments/mnist_protocol.py).
CONFIG = {
    "dataset": "auto",
    "lam": 0.9,
    "mu": 1.0,
    "loss_scale": 1 / 8,
    "hidden": "sigmoid",
    "batch_size": 200,
    "seeds": [0],
    # groups of schemes run together: h = 2^-e for e in h_exponents, `steps` steps each
    "runs": [  # the cheap group first: an interrupted run keeps the finished groups
        {
            "schemes": ["wilson", "hb_mu", "nag_mu"],
            "h_exponents": [0],
            "steps": 1000,
            "record_every": 50,
        },
        {
            "schemes": ["gd_effective", "hb", "nag"],
            "h_exponents": [0],
            "steps": 3000,
            "record_every": 50,
        },
        {
            "schemes": ["gd_effective", "hb", "nag"],
            "h_exponents": [1],
            "steps": 1500,
            "record_every": 50,
        },
    ],
    "epochs": None,  # an integer: every group runs that many epochs instead (the paper: 500)
    "mnist_dtype": "float32",
    "mnist_limit": None,
    "sharpness_images": 1000,
    "sharpness_rtol": 1e-3,
}
QUICK = {
    "dataset": "digits",
    "loss_scale": 1.0,
    "runs": [
        {"schemes": ["hb", "nag"], "h_exponents": [0], "steps": 60, "record_every": 10},
        {
            "schemes": ["gd_effective", "hb", "nag"],
            "h_exponents": [1],
            "steps": 60,
            "record_every": 20,
        },
        {
            "schemes": ["gd_effective", "wilson", "hb_mu", "nag_mu"],
            "h_exponents": [0],
            "steps": 40,
            "record_every": 10,
        },
    ],
    "sharpness_images": 200,
}
FULL = {"epochs": 500}

LABELS = mj.SCHEME_LABELS
SCHEMES = ("gd_effective", "hb", "nag", "wilson", "hb_mu", "nag_mu")
STYLES = {"gd_effective": "-", "hb": "-", "nag": "-", "wilson": "--", "hb_mu": "--", "nag_mu": "--"}
SCHEME_COLORS = dict(zip(SCHEMES, COLORS))
MOMENTUM, VANISHING = ("gd_effective", "hb", "nag"), ("wilson", "hb_mu", "nag_mu")
TRAINED = 0.9  # a run has left the plateau when its error is below 0.9 x the mean image's

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


def flow_rate(scheme: str, h: float, lam: float, mu: float) -> float:
    """The gradient-flow time one step advances, to first order at a steady velocity:
    `h/(1 - lam)` for GD at the effective rate, HB and NAG; `h/(1 - lam_mu)` with
    `lam_mu = (1 - sqrt(mu h))/(1 + sqrt(mu h))` for HB-mu and NAG-mu; `sqrt(h)/(2 sqrt(mu))`
    for Wilson (its steady drift). Times the loss scale: the time of the per-image sum."""
    if scheme in MOMENTUM:
        return h / (1 - lam)
    if scheme == "wilson":
        return float(np.sqrt(h) / (2 * np.sqrt(mu)))
    s = float(np.sqrt(mu * h))
    return h / (1 - (1 - s) / (1 + s))


def groups(config, steps_per_epoch):
    """The runs of `config` as `(label, schemes, exponents, steps, record_every)`."""
    out = []
    for k, g in enumerate(config["runs"]):
        steps, every = g["steps"], g["record_every"]
        if config["epochs"] is not None:
            steps = config["epochs"] * steps_per_epoch
            every = steps_per_epoch
        out.append((f"group{k}", list(g["schemes"]), list(g["h_exponents"]), steps, every))
    return out


def start_sharpness(prob, config):
    """The top Hessian eigenvalue of the per-image sum at the seed's start (on the first
    `sharpness_images` images): GD at the effective rate `r` is linearly unstable at the start
    when `r c` times it is above 2 (docs/theory.md §5)."""
    ae = mj.Autoencoder(hidden=config["hidden"])
    data = prob.data[: config["sharpness_images"]]

    def phi(p):
        return jnp.mean(ae.squared_error(p, data))

    top = mj.top_hessian_eigenvalue(
        phi, prob.params0, rtol=config["sharpness_rtol"], key=jax.random.PRNGKey(0)
    )
    return np.array([float(top.value), float(top.residual)])


def compute(config, ctx):
    c = float(config["loss_scale"])
    loss = mj.Autoencoder(hidden=config["hidden"], scale=c)
    keys = ("lam", "mu", "loss_scale", "hidden", "batch_size", "mnist_dtype", "mnist_limit")
    arrays, description, plateau, dataset = {}, None, None, None
    for seed in ctx.progress_iter(config["seeds"], "seeds"):
        prob = section5_from_config(config | {"seed": seed}, ctx.options)
        description, dataset = prob.description, prob.dataset
        plateau = mean_image_error(prob.data)
        per_epoch = -(-prob.data.shape[0] // config["batch_size"])
        shared = {k: config[k] for k in keys} | {
            "data": prob.description,
            "mnist_dir": ctx.options.get("mnist_dir"),
            "seed": seed,
        }
        for label, schemes, exps, steps, every in groups(config, per_epoch):
            hs = 2.0 ** -np.array(exps, dtype=float)

            def run(schemes=schemes, hs=hs, steps=steps, every=every, prob=prob):
                r = mj.sweep(
                    loss,
                    prob.params0,
                    hs=hs,
                    lams=[config["lam"]],
                    methods=schemes,
                    steps=steps,
                    mu=config["mu"],
                    data=prob.data,
                    batch_size=config["batch_size"],
                    record_every=every,
                )
                start = float(np.mean(loss(prob.params0, prob.data))) / c
                curve = np.asarray(r.curve[:, 0], dtype=float) / c  # (scheme, h, seed=1, k)
                curve = np.concatenate([np.full(curve.shape[:-1] + (1,), start), curve], -1)
                return {
                    "arrays": {
                        "steps": np.concatenate([[0], r.curve_steps]),
                        "errors": curve[:, :, 0],
                        "diverged_at": np.asarray(r.diverged_at[:, 0, :, 0]),
                    }
                }

            sub = shared | {"schemes": schemes, "h_exponents": exps, "steps": steps}
            part = ctx.cached(f"{label}-seed{seed}", sub | {"record_every": every}, run)["arrays"]
            for i, s in enumerate(schemes):
                for j, e in enumerate(exps):
                    key = f"{s}/{e}/{seed}"
                    arrays[f"{key}/steps"] = part["steps"]
                    arrays[f"{key}/errors"] = part["errors"][i, j]
                    arrays[f"{key}/diverged_at"] = np.asarray(part["diverged_at"][i, j])
        sharp_key = shared | {k: config[k] for k in ("sharpness_images", "sharpness_rtol")}
        arrays[f"sharpness/{seed}"] = ctx.cached(
            f"sharpness-seed{seed}",
            sharp_key,
            lambda prob=prob: {"arrays": {"start": start_sharpness(prob, config)}},
        )["arrays"]["start"]
    arrays["plateau"] = np.array(plateau)
    summary = summarise(arrays, config, description, dataset, plateau, per_epoch)
    return {"arrays": arrays, "summary": summary}


def _runs(arrays, config):
    """`{(scheme, exponent): steps}` of the configured runs (from the arrays' keys)."""
    seed = config["seeds"][0]
    out = {}
    for key in arrays:
        parts = key.split("/")
        if len(parts) == 4 and parts[2] == str(seed) and parts[3] == "steps":
            out[(parts[0], int(parts[1]))] = int(arrays[key][-1])
    return out


def error_at(arrays, scheme, e, seed, step):
    """The recorded error of a run at `step` (None when not recorded, or after a divergence)."""
    steps = arrays[f"{scheme}/{e}/{seed}/steps"]
    hit = np.flatnonzero(steps == step)
    if not hit.size:
        return None
    v = float(arrays[f"{scheme}/{e}/{seed}/errors"][hit[0]])
    return v if np.isfinite(v) else None


def run_record(arrays, scheme, e, seed, c, lam, mu, plateau):
    """One run's numbers: divergence, final and minimum error, when it left the plateau (the
    first recorded error below `TRAINED` times the mean image's), in steps and in the
    gradient-flow time `t = c n rate` of the per-image sum."""
    steps = arrays[f"{scheme}/{e}/{seed}/steps"]
    err = arrays[f"{scheme}/{e}/{seed}/errors"]
    div = int(arrays[f"{scheme}/{e}/{seed}/diverged_at"])
    finite = np.isfinite(err)
    below = np.flatnonzero(finite & (err < TRAINED * plateau))
    n = int(steps[below[0]]) if below.size else None
    rate = flow_rate(scheme, 2.0**-e, lam, mu)
    return {
        "steps": int(steps[-1]),
        "diverged_at": div,
        "final_error": float(err[-1]) if finite[-1] else None,
        "min_error": float(np.min(err[finite])) if finite.any() else None,
        "exit_step": n,
        "exit_t": None if n is None else c * n * rate,
        "t_final": c * int(steps[-1]) * rate,
    }


def claims_for_seed(arrays, config, seed, plateau):
    """The paper's claims, checked on one seed's runs (None where a run needed is absent): each
    claim of `CLAIMS` as a bool (or None: not decidable on this seed), the records behind them,
    and under `"numbers"` `{claim: {name: number or None}}`, the numbers each claim is decided
    on (what `every_seed` spreads over the seeds)."""
    c, lam, mu = config["loss_scale"], config["lam"], config["mu"]
    runs = _runs(arrays, config)

    def rec(s, e):
        return run_record(arrays, s, e, seed, c, lam, mu, plateau) if (s, e) in runs else None

    out = {}
    numbers = {}
    gd1, hb1, nag1 = rec("gd_effective", 0), rec("hb", 0), rec("nag", 0)
    gd2, hb2, nag2 = rec("gd_effective", 1), rec("hb", 1), rec("nag", 1)
    trained = TRAINED * plateau
    if gd1 and hb1 and nag1:
        # GD at the effective rate 10 has HB's clock: compare them after the same steps
        same = gd1["steps"] == hb1["steps"] == nag1["steps"]
        gd_fails = gd1["diverged_at"] >= 0 or (same and (gd1["final_error"] or np.inf) >= trained)
        train = [
            r["diverged_at"] < 0 and (r["final_error"] or np.inf) < trained for r in (hb1, nag1)
        ]
        out["gd_rate10_fails_while_hb_nag_h1_train"] = bool(gd_fails and all(train))
        out["gd_rate10_final_error"] = gd1["final_error"]
        out["gd_rate10_diverges"] = gd1["diverged_at"] >= 0
        out["gd_rate10_diverged_at"] = gd1["diverged_at"]
        out["hb_nag_h1_below_0.9_plateau"] = [bool(x) for x in train]
        numbers["gd_rate10_fails_while_hb_nag_h1_train"] = {
            "gd_final_error": gd1["final_error"],
            "hb_final_error": hb1["final_error"],
            "nag_final_error": nag1["final_error"],
        }
        numbers["gd_rate10_diverges"] = {"gd_diverged_at": gd1["diverged_at"]}
    if gd2:
        gd_final = gd2["final_error"]
        out["gd_rate5_trains"] = gd2["diverged_at"] < 0 and (gd_final or np.inf) < trained
        numbers["gd_rate5_trains"] = {"gd_final_error": gd_final, "gd_exit_step": gd2["exit_step"]}
    if gd2 and hb2 and nag2:
        rel = {}
        for s in ("hb", "nag"):
            a = arrays[f"{s}/1/{seed}/errors"]
            b = arrays[f"gd_effective/1/{seed}/errors"]
            rel[s] = {
                "final": None
                if gd_final is None or rec(s, 1)["final_error"] is None
                else abs(rec(s, 1)["final_error"] - gd_final) / gd_final,
                "max_over_curve": float(np.nanmax(np.abs(a - b) / b)),
                "exit_step": rec(s, 1)["exit_step"],
            }
        rel["gd_exit_step"] = gd2["exit_step"]
        out["h1/2_relative_difference_to_gd"] = rel
        # the paper's own largest relative difference at h = 1/2 (NAG: 3.7166 against 4.3948)
        out["hb_nag_track_gd_at_h1/2"] = bool(
            all(
                rel[s]["final"] is not None and rel[s]["final"] < PAPER_TRACK for s in ("hb", "nag")
            )
        )
        numbers["hb_nag_track_gd_at_h1/2"] = {
            "largest_relative_difference": worst([rel["hb"]["final"], rel["nag"]["final"]]),
            "hb_relative_difference": rel["hb"]["final"],
            "nag_relative_difference": rel["nag"]["final"],
            "hb_final_error": hb2["final_error"],
            "nag_final_error": nag2["final_error"],
            "gd_final_error": gd_final,
        }
    if hb1 and nag1:
        out["nag_below_hb_at_h1"] = bool(
            (nag1["final_error"] or np.inf) < (hb1["final_error"] or np.inf)
        )
        out["nag_minus_hb_at_h1"] = (
            None
            if nag1["final_error"] is None or hb1["final_error"] is None
            else nag1["final_error"] - hb1["final_error"]
        )
        numbers["nag_below_hb_at_h1"] = {
            "nag_minus_hb": out["nag_minus_hb_at_h1"],
            "hb_exit_step": hb1["exit_step"],
            "nag_exit_step": nag1["exit_step"],
        }
    vanishing = {s: rec(s, 0) for s in VANISHING if (s, 0) in runs}
    if vanishing and hb1 and nag1:
        equal_steps, equal_time = {}, {}
        for v, rv in vanishing.items():
            n_v = rv["steps"]
            tau = n_v * flow_rate(v, 1.0, lam, mu)  # the vanishing scheme's flow time
            ev = rv["final_error"]
            for m in ("hb", "nag"):
                n_m = tau / flow_rate(m, 1.0, lam, mu)
                whole = abs(n_m - round(n_m)) < 1e-9 * n_m  # a recorded step, or none
                em_t = error_at(arrays, m, 0, seed, round(n_m)) if whole else None
                em_n = error_at(arrays, m, 0, seed, n_v)
                equal_steps[f"{m}-{v}"] = {"step": n_v, m: em_n, v: ev}
                equal_time[f"{m}-{v}"] = {
                    "t": c * tau,
                    "step_" + m: round(n_m, 6),
                    "step_" + v: n_v,
                    m: em_t,
                    v: ev,
                }
        out["momentum_vs_vanishing_equal_steps"] = equal_steps
        out["momentum_vs_vanishing_equal_time"] = equal_time

        def wins(d, k):
            m, v = k.split("-")
            return d[k][m] is not None and d[k][v] is not None and d[k][m] < d[k][v]

        out["momentum_beats_vanishing_equal_steps"] = all(wins(equal_steps, k) for k in equal_steps)
        known = [k for k in equal_time if equal_time[k][k.split("-")[0]] is not None]
        out["momentum_beats_vanishing_equal_time"] = (
            all(wins(equal_time, k) for k in known) if known else None
        )
        for claim, d, keys in (
            ("momentum_beats_vanishing_equal_steps", equal_steps, list(equal_steps)),
            ("momentum_beats_vanishing_equal_time", equal_time, known),
        ):
            gaps = [margin(d, k) for k in keys]
            numbers[claim] = {
                # the claim holds where the largest is below 0
                "largest_momentum_minus_vanishing": worst(gaps),
                "smallest_momentum_minus_vanishing": None
                if not gaps or None in gaps
                else min(gaps),
            }
    out["numbers"] = numbers
    return out


def margin(d, k):
    """The error of the fixed-momentum run minus the vanishing-friction run's for the pair
    `k = "m-v"` of `d` (None where either is missing)."""
    m, v = k.split("-")
    return None if d[k][m] is None or d[k][v] is None else d[k][m] - d[k][v]


def worst(gaps):
    """The largest of `gaps` (None if there are none, or one is None)."""
    return None if not gaps or None in gaps else max(gaps)


def every_seed(per_seed, claims=None):
    """Each claim over the seeds, from `{seed: claims_for_seed(...)}`: `{claim: {"holds":
    True (on every seed) / False (fails on at least one) / None (holds where decidable, not
    decidable on some seed), "holds_on": seeds where it holds, "seeds": seeds, "per_seed":
    {seed: bool or None}, "numbers": {name: {"per_seed": [...], "min": ..., "max": ...}}}}`,
    the numbers being those of each seed's `"numbers"` (min and max over the seeds where they
    are known). Claims that no seed decides or records are left out."""
    seeds = list(per_seed)
    claims = CLAIMS if claims is None else claims
    out = {}
    for k in claims:
        if not any(k in per_seed[s] for s in seeds):
            continue
        verdicts = {s: per_seed[s].get(k) for s in seeds}
        if any(v is False for v in verdicts.values()):
            holds = False
        elif all(v is True for v in verdicts.values()):
            holds = True
        else:
            holds = None
        names = []
        for s in seeds:
            for name in per_seed[s].get("numbers", {}).get(k, {}):
                if name not in names:
                    names.append(name)
        numbers = {}
        for name in names:
            vals = [per_seed[s].get("numbers", {}).get(k, {}).get(name) for s in seeds]
            known = [v for v in vals if v is not None]
            numbers[name] = {"per_seed": vals} | (
                {"min": min(known), "max": max(known)} if known else {}
            )
        out[k] = {
            "holds": holds,
            "holds_on": sum(v is True for v in verdicts.values()),
            "seeds": len(seeds),
            "per_seed": verdicts,
            "numbers": numbers,
        }
    return out


PAPER_TRACK = 0.16
"""`HB`/`NAG` "track" GD at the effective rate when their final error is within this relative
difference of GD's: the paper's own largest at `h = 1/2` is 0.154 (NAG 3.7166, GD 4.3948)."""

CLAIMS = (
    "gd_rate10_fails_while_hb_nag_h1_train",
    "gd_rate10_diverges",
    "gd_rate5_trains",
    "hb_nag_track_gd_at_h1/2",
    "nag_below_hb_at_h1",
    "momentum_beats_vanishing_equal_steps",
    "momentum_beats_vanishing_equal_time",
)


def summarise(arrays, config, description, dataset, plateau, steps_per_epoch):
    seeds, c = config["seeds"], config["loss_scale"]
    runs = _runs(arrays, config)
    per_seed = {str(s): claims_for_seed(arrays, config, s, plateau) for s in seeds}
    over_seeds = every_seed(per_seed)
    survive = {k: v["holds"] for k, v in over_seeds.items()}
    exps = sorted({e for _, e in runs})
    table = {s: [None] * len(exps) for s in SCHEMES if any(r[0] == s for r in runs)}
    final, spread = {}, {}
    for (s, e), n in sorted(runs.items(), key=lambda x: (SCHEMES.index(x[0][0]), x[0][1])):
        vals = [
            run_record(arrays, s, e, seed, c, config["lam"], config["mu"], plateau)["final_error"]
            for seed in seeds
        ]
        key = f"{s}@{h_label(e)}"
        final[key] = {"steps": n, "per_seed": vals}
        ok = [v for v in vals if v is not None]
        spread[key] = (
            {
                "min": min(ok),
                "median": float(np.median(ok)),
                "mean": float(np.mean(ok)),
                "max": max(ok),
                "diverged": len(vals) - len(ok),
            }
            if ok
            else {"diverged": len(vals)}
        )
        # the median: over seeds a final error is often bimodal (on or off the plateau), and a
        # mean would be a value no seed reached
        table[s][exps.index(e)] = spread[key].get("median")
    protocol_runs = {}
    for s, e in runs:
        if s in MOMENTUM:
            r = run_record(arrays, s, e, seeds[0], c, config["lam"], config["mu"], plateau)
            hp = 128 * c * 2.0**-e  # the step at the reference scale 1/128 (same run)
            err = arrays[f"{s}/{e}/{seeds[0]}/errors"]
            protocol_runs[f"{s}@{hp:g}"] = r | {
                "method": s,
                "h_prime": hp,
                "curve": [float(v) if np.isfinite(v) else None for v in err[1:]],
            }
    sharp = {str(s): arrays[f"sharpness/{s}"].tolist() for s in seeds}
    s0 = arrays[f"sharpness/{seeds[0]}"][0]

    def ends(key):  # one seed: its final error; several: each seed's, then the median
        row = final.get(key, {}).get("per_seed", [])
        each = "/".join("diverged" if v is None else f"{v:.4g}" for v in row)
        median = spread.get(key, {}).get("median")
        return each if len(seeds) == 1 or median is None else f"{each} (median {median:.4g})"

    headline = (
        f"{dataset}, c = 1/{1 / c:.0f} x per-image sum, {len(seeds)} seed(s): at h=1 HB ends at "
        f"{ends('hb@2^0')}, NAG at {ends('nag@2^0')} (mean image {plateau:.4g}); claims on "
        "every seed: " + ", ".join(f"{k} {v}" for k, v in survive.items())
    )
    return {
        "dataset": dataset,
        "data": description,
        "loss_scale": c,
        "hidden": config["hidden"],
        "seeds": seeds,
        "error": "mean over images of the per-image summed squared error (the paper's units)",
        "mean_image_plateau": plateau,
        "trained_below": TRAINED * plateau,
        "epochs": config["epochs"],
        "steps_per_epoch": steps_per_epoch,
        "h": [h_label(e) for e in exps],
        "final_training_error": table,
        "final_training_error_per_seed": final,
        "spread": spread,
        "claims": {
            "per_seed": per_seed,
            "survive_every_seed": survive,
            "over_seeds": over_seeds,
        },
        "protocol_runs": protocol_runs,
        "sharpness_image_sum_at_start": sharp,
        "gd_rate10_times_c_times_sharpness": float(10 * c * s0),
        "gd_rate5_times_c_times_sharpness": float(5 * c * s0),
        "paper_h": [h_label(e) for e in PAPER_EXPONENTS],
        "paper_final_training_error": PAPER_TABLE,
        "paper_qualitative": qualitative(PAPER_TABLE, PAPER_EXPONENTS),
        "paper_protocol": "MNIST training set (60,000 images), 500 epochs (150,000 steps), "
        "batch 200",
        "differs_from_paper": differences(config, dataset, runs),
        "headline": headline,
    }


def differences(config, dataset, runs):
    """What this run does differently from the paper, one line each."""
    c = config["loss_scale"]
    return [
        f"data: {dataset}" + (" (paper: 60,000 MNIST images)" if dataset != "mnist" else ""),
        "steps: the table's (paper: 500 epochs, 150,000 steps)",
        f"loss: {c:.4g} x per-image sum (paper: 'mean-squared error', scale unstated)",
        f"h: {', '.join(sorted({h_label(e) for _, e in runs}))} (paper: 2^0 ... 2^-6)",
        f"hidden units: {config['hidden']} (paper: unstated)",
    ]


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


def _curves(ax, arrays, config, e, schemes, x="step", plateau=None):
    c, lam, mu = config["loss_scale"], config["lam"], config["mu"]
    for s in schemes:
        keys = [f"{s}/{e}/{seed}" for seed in config["seeds"]]
        if f"{keys[0]}/errors" not in arrays:
            continue
        steps = arrays[f"{keys[0]}/steps"].astype(float)
        if x != "step":  # a log axis: from the first recorded step on
            keys_slice = slice(1, None)
        else:
            keys_slice = slice(None)
        steps = steps[keys_slice]
        xs = steps if x == "step" else c * steps * flow_rate(s, 2.0**-e, lam, mu)
        ys = np.stack([arrays[f"{k}/errors"][keys_slice] for k in keys])
        kw = dict(color=SCHEME_COLORS[s], ls=STYLES[s])
        label = f"{LABELS[s]}, h={h_label(e)}"
        kw["lw"] = 1.0 if e == 0 else 1.8
        ax.plot(xs, np.nanmedian(ys, axis=0) if len(keys) > 1 else ys[0], label=label, **kw)
        if len(keys) > 1:
            ax.fill_between(xs, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), alpha=0.2, **kw)
        for k in keys:
            d = int(arrays[f"{k}/diverged_at"])
            if d >= 0:
                xd = d if x == "step" else c * d * flow_rate(s, 2.0**-e, lam, mu)
                ax.plot([xd], [plateau or 1], "x", color="k", ms=8, mew=2)
    if plateau:
        ax.axhline(plateau, color="0.5", lw=0.8, ls=":", label="mean image")
        ax.axhline(TRAINED * plateau, color="0.5", lw=0.6, ls="-.", label="0.9 x mean image")
    ax.set_yscale("log")
    ax.set_ylabel("training error (per-image sum)")


KEY_NUMBER = {
    "gd_rate10_fails_while_hb_nag_h1_train": ("gd_final_error", "GD final"),
    "gd_rate10_diverges": ("gd_diverged_at", "divergence step (-1: none)"),
    "gd_rate5_trains": ("gd_final_error", "GD final"),
    "hb_nag_track_gd_at_h1/2": ("largest_relative_difference", "max |HB,NAG - GD|/GD"),
    "nag_below_hb_at_h1": ("nag_minus_hb", "NAG-HB"),
    "momentum_beats_vanishing_equal_steps": ("largest_momentum_minus_vanishing", "max m-v"),
    "momentum_beats_vanishing_equal_time": ("largest_momentum_minus_vanishing", "max m-v"),
}
"""The number of each claim that the figure prints beside it: `(name in "numbers", label)`."""


def claim_line(claim, over):
    """One line of the figure's claim list: the claim, on how many seeds it holds, and the
    range over the seeds of its `KEY_NUMBER` (from one entry of `every_seed`)."""
    line = f"  {claim}: {over['holds_on']}/{over['seeds']}"
    if over["holds"] is None:
        line += " (undecided on some)"
    name, label = KEY_NUMBER.get(claim, (None, ""))
    n = over["numbers"].get(name, {})
    if "min" in n:
        lo, hi = n["min"], n["max"]
        line += f"  {label} {lo:.4g}" + (f" to {hi:.4g}" if hi != lo else "")
    return line


def plot(data, config, path):
    arrays, summary = data["arrays"], data["summary"]
    plateau = summary["mean_image_plateau"]
    fig, axes = new_figure(2, 2, width=6.0, height=4.2)
    ax = axes[0, 0]
    _curves(ax, arrays, config, 0, SCHEMES, plateau=plateau)
    ax.set_xlabel("step")
    ax.set_title("(a) h = 1: every scheme (GD's effective rate is 10)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[0, 1]
    _curves(ax, arrays, config, 1, MOMENTUM, plateau=plateau)
    ax.set_xlabel("step")
    ax.set_title("(b) h = 1/2: GD at the effective rate 5, HB, NAG", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[1, 0]
    for e in (0, 1):
        _curves(ax, arrays, config, e, SCHEMES if e == 0 else MOMENTUM, x="t", plateau=plateau)
    ax.set_xscale("log")
    ax.set_xlabel("gradient-flow time t = c x steps x flow rate (of the per-image sum)")
    ax.set_title("(c) the same runs against gradient-flow time (h = 1 and 1/2)", fontsize=9)
    ax = axes[1, 1]
    ax.axis("off")
    seeds = summary["seeds"]
    spread = "median (min-max)" if len(seeds) > 1 else "seed " + str(seeds[0])
    rows = []
    for key, f in summary["final_training_error_per_seed"].items():
        s, h = key.split("@")
        sp = summary["spread"][key]
        if "median" not in sp:
            ours = "diverged"
        elif len(seeds) > 1:
            ours = f"{sp['median']:.2f} ({sp['min']:.2f}-{sp['max']:.2f})"
        else:
            ours = f"{sp['median']:.2f}"
        if sp.get("diverged") and "median" in sp:
            ours += f", {sp['diverged']} diverged"
        paper = PAPER_TABLE[s][int(h.split("^")[1].lstrip("-") or 0)]
        rows.append(
            [
                LABELS[s].split()[0],
                h,
                str(f["steps"]),
                ours,
                "-" if paper is None else f"{paper:.2f}",
            ]
        )
    table = ax.table(
        cellText=rows,
        colLabels=["scheme", "h", "steps", f"final error, {spread}", "paper (150k steps)"],
        colWidths=[0.13, 0.1, 0.1, 0.38, 0.25],
        loc="upper center",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    text = "Differs from the paper:\n" + "\n".join("  " + d for d in summary["differs_from_paper"])
    text += f"\nClaims: seeds where each holds (of {len(seeds)}), and its number:\n" + "\n".join(
        claim_line(k, v) for k, v in summary["claims"]["over_seeds"].items()
    )
    ax.text(0.0, 0.38, text, fontsize=6.8, va="top", transform=ax.transAxes, family="monospace")
    fig.suptitle(
        f"Fig 6 off the plateau: {summary['data']}, batch {config['batch_size']}, no "
        f"shuffling, lam = {config['lam']}, mu = {config['mu']}\nloss = 1/"
        f"{1 / config['loss_scale']:.0f} x per-image summed squared error; error per image "
        f"(mean image {plateau:.4g}); "
        + (
            f"{len(seeds)} init seeds ({', '.join(map(str, seeds))}): line = median, band = min-max"
            if len(seeds) > 1
            else f"init seed {seeds[0]}"
        ),
        fontsize=9,
    )
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
