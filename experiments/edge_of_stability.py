"""Validation of the rod flow at the edge of stability (docs/edge_of_stability.md §5).

1. A toy potential whose dynamics are understood, `Phi(x, y) = -c x + (s0 + x) y^2 / 2 + e y`:
   the sharpness `s0 + x` grows along the gradient flow; GD, HB and NAG stop it near their
   threshold `2 (1 + lam)/(h (1 + 2a))` by an oscillation in `y` (self-stabilisation). The mean
   distance of the iterates (and of their two-step average) to the rod flow, the central flow
   and the rescaled gradient flow over the second half of the run.
2. The digits MLP of Fig 15 (full batch), over seeds, thresholds and methods: the mean distance
   over the edge-of-stability phase to each stable flow, to the rod flow with the matching
   center and to the central flow, the ratios, and the sharpness each model predicts against
   the measured one.

    python experiments/edge_of_stability.py [--quick]

writes `experiments/edge_of_stability.json` (summaries only).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import momentum_jax as mj  # noqa: E402
from momentum_jax.paper import _edge_map  # noqa: E402
from momentum_jax.paper.figures import fig15_edge_of_stability as fig15  # noqa: E402

HERE = Path(__file__).resolve().parent
TOY = _edge_map.TOY | {"threshold": 20.0, "T": 200.0}
toy_loss = _edge_map.toy_loss


def toy_case(name: str, lam: float) -> dict:
    """One method on the toy, from `(x, y) = (0, 0.1)`, with `h` set so that the threshold is
    `TOY["threshold"]`, over the flow time `T`."""
    method = fig15.method_at(name, lam, TOY["threshold"])
    steps = int(round(TOY["T"] / float(method.h * method.lbar)))
    u0 = jnp.array([0.0, 0.1])
    us = np.asarray(mj.iterate(toy_loss, u0, method, steps + 1))
    average = (us[1:] + us[:-1]) / 2  # (u_n + u_{n+1})/2, n = 0 ... steps
    us = us[:-1]
    ts = jnp.arange(0.0, steps + 1.0) * method.h
    models = fig15.model_objects()
    late = slice(steps // 2, None)
    out: dict = {"h": float(method.h), "steps": steps}
    avg = average[:-1, 0]  # the two-step average of x: the sharpness is s0 + x
    out["late_sharpness_over_threshold/iterates"] = float(
        np.mean(TOY["s0"] + avg[late]) / TOY["threshold"]
    )
    for key, model in models.items():
        sol = np.asarray(mj.solve(toy_loss, u0, method, ts, model=model))
        out[f"mean_distance/{key}"] = float(np.linalg.norm(us - sol, axis=1)[late].mean())
        out[f"mean_average_distance/{key}"] = float(
            np.linalg.norm(average - sol, axis=1)[late].mean()
        )
        centre = (sol[1:, 0] + sol[:-1, 0]) / 2
        out[f"late_sharpness_over_threshold/{key}"] = float(
            np.mean(TOY["s0"] + centre[late]) / TOY["threshold"]
        )
    fig15.add_ratios(out)
    return out


def network_cases(seeds, thresholds, runs, config) -> list[dict]:
    rows = []
    for seed in seeds:
        loss, w0 = fig15.mlp_problem(config["images"], config["sizes"], seed, config["init_scale"])
        for threshold in thresholds:
            for name, lam in runs:
                t0 = time.perf_counter()
                method = fig15.method_at(name, lam, threshold)
                r = fig15.run_case(loss, w0, method, config)
                row = {
                    "seed": seed,
                    "threshold": threshold,
                    "method": name,
                    "lam": lam,
                    "h": float(method.h),
                    "steps": r["steps"][-1],
                    "seconds": round(time.perf_counter() - t0, 1),
                } | r["summary"]
                print(
                    f"seed {seed} q*={threshold:g} {name} lam={lam:g}: edge at "
                    f"{row['edge_step']}, ratios "
                    f"{row.get('mean_distance_ratio/rod_flow')}, "
                    f"{row.get('mean_distance_ratio/rod_modified')}, "
                    f"{row.get('mean_distance_ratio/central_flow')} ({row['seconds']} s)",
                    flush=True,
                )
                rows.append(row)
    return rows


def ratio_table(rows, measure: str = "mean_distance") -> dict:
    """Median, min and max of each edge/stable ratio of `measure` (to the iterates, or
    `"mean_average_distance"`: to their two-step average), per method and over all rows."""
    out = {}
    for rod in fig15.PAIRS:
        key = f"{measure}_ratio/{rod}"
        groups: dict = {}
        for r in rows:
            if r.get(key) is not None:
                groups.setdefault(f"{r['method']} lam={r['lam']:g}", []).append(r[key])
                groups.setdefault("all", []).append(r[key])
        out[rod] = {
            g: {
                "median": float(np.median(v)),
                "min": float(np.min(v)),
                "max": float(np.max(v)),
                "n": len(v),
                "below_1": int(np.sum(np.asarray(v) < 1)),
            }
            for g, v in groups.items()
        }
    return out


def main(*, quick: bool = False, out: Path = HERE / "edge_of_stability.json") -> dict:
    t0 = time.perf_counter()
    toy_runs = [("gd", 0.0), ("hb", 0.5), ("nag", 0.5)]
    toy = {f"{n} lam={lam:g}": toy_case(n, lam) for n, lam in toy_runs}
    for k, v in toy.items():
        print(
            f"toy {k}: ratios {v['mean_distance_ratio/rod_flow']:.3f}, "
            f"{v['mean_distance_ratio/rod_modified']:.3f}, "
            f"{v['mean_distance_ratio/central_flow']:.3f} "
            f"(to the average {v['mean_average_distance_ratio/central_flow']:.3f})",
            flush=True,
        )
    config = dict(fig15.CONFIG)
    if quick:
        seeds, thresholds, runs = [0], [4.0], [["hb", 0.5]]
        config["T"], config["records"] = 120.0, 20
    else:
        seeds, thresholds = [0, 1, 2], [4.0]
        runs = [["gd", 0.0], ["hb", 0.5], ["nag", 0.5]]
    rows = network_cases(seeds, thresholds, runs, config)
    if not quick:  # other (h, lam): a larger threshold (smaller h), larger momenta; seed 0
        rows += network_cases([0], [5.0], runs, config)
        rows += network_cases([0], [4.0], [["hb", 0.8], ["nag", 0.8], ["hb", 0.3]], config)
    result = {
        "toy": {"potential": TOY, "runs": toy},
        "network": {
            "config": config,
            "seeds": seeds,
            "thresholds": thresholds,
            "rows": rows,
            "ratios": ratio_table(rows),
            "average_ratios": ratio_table(rows, "mean_average_distance"),
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    mj.dump_json(out, result | mj.provenance())
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    main(quick=args.quick)
