"""The Section 5 protocol question, answered by measurement: which loss scale `c` (the training
loss is `c` times the per-image summed squared error; the per-pixel mean is `c = 1/784`) and
which hidden activation fit the paper's published facts about Fig 6, and which of the paper's
claims survive off the mean-image plateau (docs/theory.md §6).

    python experiments/mnist_protocol.py protocol [--steps 1500]   # item 1: scale, activation
    python experiments/mnist_protocol.py rate5                     # GD, h' = 1/2, 7000 steps
    python experiments/mnist_protocol.py claims [--seeds 0,1,2]    # the claims over seeds
    python experiments/mnist_protocol.py summary                   # only rewrite the verdicts

Both parts write into `experiments/mnist_protocol.json` (each keeps the other's entry).

**protocol.** For GD, HB and NAG, training on `c Phi` at step `h` is training on `c' Phi` at
`h' = (c / c') h`, step for step: one run at the reference scale `c' = 1/128` and step `h'`
answers for every `(c, h)` with `c h = h' / 128`. The columns `h = 1, 1/2` of the paper's table
at the scale `c` are the runs at `h' = 128 c` and `64 c`. We run GD at the effective rate
`h/(1 - lam)`, HB and NAG (`lam = 0.9`) at `h' = 8, 4, 2` for `--steps` steps, with sigmoid and
with tanh hidden units, in one `sweep` per activation (MNIST 5k subset, the paper's network and
Glorot start, float32, batch 200, fixed order); the runs at `h' = 1, 1/2` are Fig 6's own
(sigmoid, `c = 1/128`, read from its cache when it is there). The reported error is the
recorded full-data loss divided by `c'`: the mean over images of the per-image sum. Also kept:
the sharpness of the per-image sum at the start (GD at the effective rate `r` is linearly
unstable at the start when `r c` times it is above 2), the gradient-flow time
`t = c n h / (1 - lam)` at which each run leaves the plateau (first recorded error below 0.9
times the mean image's), and the time the paper's own runs reach (`150,000` steps at `h`).

**claims.** Fig 6's configuration run for every seed (its cache shared, so seed 0 is the
figure's own run); each claim of the paper is checked per seed, and the spread is kept.

Costs, measured on the 2 shared CPU cores: a step of the full network, batch 200, float32,
is 15-55 ms per point, load dependent. `protocol` at 1500 steps is 27,000 point-steps.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import momentum_jax as mj
from momentum_jax.paper import load_module, mean_image_error, run_experiment, section5_problem

HERE = Path(__file__).resolve().parent
OUT = HERE / "mnist_protocol.json"
C_REF = 1.0 / 128
LAM = 0.9
METHODS = ("gd_effective", "hb", "nag")
H_PRIME = (8.0, 4.0, 2.0)  # runs here; 1 and 1/2 come from Fig 6 (sigmoid)
ACTIVATIONS = ("sigmoid", "tanh")
SCALES = {  # name -> c; the columns h = 1, 1/2 are the runs at h' = 128 c, 64 c
    "1/8": 1 / 8,
    "1/16": 1 / 16,
    "1/32": 1 / 32,
    "1/64": 1 / 64,
    "1/128": 1 / 128,
    "1/256": 1 / 256,
    "1/784 (per-pixel mean)": 1 / 784,
    "1 (per-image sum)": 1.0,
}
PAPER_STEPS = 500 * 300  # 500 epochs of 300 batches of 200
EXIT_FRACTION = 0.9


def load() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def save(out: dict) -> None:
    """Write `out` over what the file holds now (another part may have written since)."""
    mj.dump_json(OUT, load() | out | mj.provenance())


def exit_step(curve_steps, errors, plateau):
    """The first recorded step with error below `EXIT_FRACTION * plateau` (None if none)."""
    below = np.flatnonzero(np.asarray(errors) < EXIT_FRACTION * plateau)
    return int(curve_steps[below[0]]) if below.size else None


def sharpness(ae, params, sample, key=0):
    def phi(p):
        return jnp.mean(ae.squared_error(p, sample))

    top = mj.top_hessian_eigenvalue(phi, params, rtol=1e-3, key=jax.random.PRNGKey(key))
    return float(top.value), float(top.residual)


def protocol(steps: int, record_every: int) -> dict:
    prob = section5_problem(dataset="mnist5k", seed=0, dtype=jnp.float32)
    plateau = mean_image_error(prob.data)
    sample = prob.data[:1000]
    out = {
        "what": (
            "GD at the effective rate, HB, NAG (lam 0.9) on c'=1/128 times the per-image "
            "sum at h' (= 128 c h for the scale c), MNIST 5k subset, Glorot seed 0, float32, "
            "batch 200, fixed order; error = recorded full-data loss / c'"
        ),
        "c_ref": C_REF,
        "lam": LAM,
        "steps": steps,
        "record_every": record_every,
        "mean_image_error": plateau,
        "exit_fraction": EXIT_FRACTION,
        "activations": {},
    }
    for act in ACTIVATIONS:
        ae = mj.Autoencoder(hidden=act, scale=C_REF)
        s0, res = sharpness(ae, prob.params0, sample)
        print(f"{act}: sharpness of the per-image sum at the start {s0:.4g} (residual {res:.1g})")
        t0, cpu0 = time.perf_counter(), time.process_time()
        r = mj.sweep(
            ae,
            prob.params0,
            hs=np.array(H_PRIME),
            lams=[LAM],
            methods=METHODS,
            steps=steps,
            data=prob.data,
            batch_size=200,
            record_every=record_every,
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        runs = {}
        for i, m in enumerate(METHODS):
            for j, hp in enumerate(H_PRIME):
                rec = run_record(r, i, j, m, hp, plateau)
                runs[f"{m}@{hp:g}"] = rec
                print(
                    f"  {act:7s} {m:12s} h'={hp:g}: final {rec['final_error']}, "
                    f"diverged at {rec['diverged_at']}, leaves at step {rec['exit_step']}"
                )
        out["activations"][act] = {
            "sharpness_image_sum_at_start": s0,
            "sharpness_residual": res,
            "curve_steps": r.curve_steps.tolist(),
            "runs": runs,
            "wall_s": wall,
            "cpu_s": cpu,
            "point_steps": len(METHODS) * len(H_PRIME) * steps,
            "load_after": os.getloadavg()[0],
        }
        print(f"  {act}: {wall:.0f} s wall, {cpu:.0f} s CPU, load {os.getloadavg()[0]:.2f}")
    return out


def run_record(r, i: int, j: int, method: str, hp: float, plateau: float) -> dict:
    """The record of run `(i, j)` (method, `h'`) of the sweep `r` at the reference scale: its
    error curve per image, divergence, final and minimum error, and the step and flow time at
    which it left the plateau (`exit_step`)."""
    err = r.curve[i, 0, j, 0] / C_REF
    n = exit_step(r.curve_steps, err, plateau)
    return {
        "method": method,
        "h_prime": hp,
        "diverged_at": int(r.diverged_at[i, 0, j, 0]),
        "final_error": float(err[-1]) if np.isfinite(err[-1]) else None,
        "min_error": float(np.nanmin(err)) if np.any(np.isfinite(err)) else None,
        "exit_step": n,
        "exit_t": None if n is None else C_REF * n * hp / (1 - LAM),
        "curve": [None if not np.isfinite(v) else float(v) for v in err],
    }


def extra(methods, h_prime, steps: int, record_every: int) -> dict:
    """More sigmoid runs at the reference scale (e.g. GD at `h' = 1/2`: the effective rate 5 of
    the scale 1/128), kept beside the protocol's."""
    prob = section5_problem(dataset="mnist5k", seed=0, dtype=jnp.float32)
    plateau = mean_image_error(prob.data)
    t0, cpu0 = time.perf_counter(), time.process_time()
    r = mj.sweep(
        mj.Autoencoder(scale=C_REF),
        prob.params0,
        hs=np.array(h_prime),
        lams=[LAM],
        methods=methods,
        steps=steps,
        data=prob.data,
        batch_size=200,
        record_every=record_every,
    )
    runs = {}
    for i, m in enumerate(methods):
        for j, hp in enumerate(h_prime):
            rec = run_record(r, i, j, m, hp, plateau)
            runs[f"{m}@{hp:g}"] = rec | {"steps": steps, "curve_steps": r.curve_steps.tolist()}
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"runs": runs, "wall_s": wall, "cpu_s": cpu, "load_after": os.getloadavg()[0]}


def fig6_runs(cache, seeds):
    """Fig 6 (its default configuration) for `seeds`, outputs beside the cache."""
    fig6 = load_module("fig6_training")
    t0, cpu0 = time.perf_counter(), time.process_time()
    s = run_experiment(
        fig6,
        out=Path(cache) / "protocol_fig6",
        cache_dir=cache,
        progress=False,
        seeds=list(seeds),
    )
    return s, time.perf_counter() - t0, time.process_time() - cpu0


def merge_claims(out: dict) -> dict | None:
    """The claims over every seed: Fig 6's own run (`figures/fig6_training.json`, its seeds)
    and this script's (`claims_runs`), when both used the same configuration but the seeds."""
    parts = []
    fig = HERE.parent / "figures" / "fig6_training.json"
    if fig.exists():
        d = json.loads(fig.read_text())
        if "claims" in d["summary"]:  # a Fig 6 of this protocol (not an older one)
            parts.append((d["config"], d["summary"]))
    if "claims_runs" in out:
        parts.append((out["claims_runs"]["config"], out["claims_runs"]["summary"]))
    if not parts:
        return None

    def bare(config):
        return {k: v for k, v in config.items() if k != "seeds"}

    same = all(bare(c) == bare(parts[0][0]) for c, _ in parts)
    per_seed, finals = {}, {}
    for _, summary in parts:
        per_seed |= summary["claims"]["per_seed"]
        for key, f in summary["final_training_error_per_seed"].items():
            for seed, v in zip(summary["seeds"], f["per_seed"]):
                finals.setdefault(key, {"steps": f["steps"]})[str(seed)] = v
    seeds = sorted(per_seed, key=int)
    claim_names = [k for k, v in per_seed[seeds[0]].items() if isinstance(v, bool) or v is None]
    survive = {k: all(per_seed[s].get(k) is True for s in seeds) for k in claim_names}
    spread = {}
    for key, f in finals.items():
        vals = [f[s] for s in seeds if s in f]
        ok = [v for v in vals if v is not None]
        spread[key] = {"steps": f["steps"], "per_seed": vals, "diverged": len(vals) - len(ok)}
        if ok:
            spread[key] |= {  # the median first: over seeds a final error is often bimodal
                "min": min(ok),
                "median": float(np.median(ok)),
                "mean": float(np.mean(ok)),
                "max": max(ok),
            }
    return {
        "seeds": [int(s) for s in seeds],
        "same_configuration": same,
        "per_seed": per_seed,
        "survive_every_seed": survive,
        "final_error": spread,
        "seed_0_runs": parts[0][1].get("protocol_runs", {}),
    }


def verdicts(out: dict) -> dict:
    """Per scale `c` (and activation), the paper's facts checked on the runs at `h' = 128 c h`."""
    proto = out.get("protocol")
    claims = out.get("claims")
    if proto is None:
        return {}
    plateau = proto["mean_image_error"]
    table = {}
    for act, a in proto["activations"].items():
        runs = dict(a["runs"])
        if act == "sigmoid":  # h' = 1, 1/2: Fig 6's runs (seed 0) and the extra ones
            for key, run in (claims or {}).get("seed_0_runs", {}).items():
                runs.setdefault(key, run)
            for key, run in out.get("extra", {}).get("runs", {}).items():
                runs.setdefault(key, run)
        s0 = a["sharpness_image_sum_at_start"]
        per_c = {}
        for name, c in SCALES.items():
            top, second = 128 * c, 64 * c

            def get(m, hp, runs=runs):
                return runs.get(f"{m}@{hp:g}")

            gd1, gd2 = get("gd_effective", top), get("gd_effective", second)
            hb1, nag1 = get("hb", top), get("nag", top)
            row = {
                "c": c,
                "h_prime_of_h=1": top,
                "gd_rate10_linearly_unstable_at_start": 10 * c * s0 > 2,
                "gd_rate5_linearly_stable_at_start": 5 * c * s0 < 2,
                "gd_rate10_times_c_times_sharpness": 10 * c * s0,
                "paper_smallest_h_reaches_t": c * PAPER_STEPS * 2.0**-6 / (1 - LAM),
            }
            measured = all(x is not None for x in (gd1, gd2, hb1, nag1))
            row["measured"] = measured
            if measured:

                def trains(run):
                    return run["diverged_at"] < 0 and run["exit_step"] is not None

                def fails(run):
                    return run["diverged_at"] >= 0 or (
                        run["final_error"] is not None and run["final_error"] >= plateau
                    )

                best = min(
                    ("gd_effective", "hb", "nag"),
                    key=lambda m: (
                        np.inf if get(m, top)["diverged_at"] >= 0 else get(m, top)["final_error"]
                    ),
                )
                row |= {
                    "gd_h1_blows_up": gd1["diverged_at"] >= 0,
                    "gd_h1_fails": fails(gd1),
                    "gd_h1/2_trains": trains(gd2),
                    "hb_h1_trains": trains(hb1),
                    "nag_h1_trains": trains(nag1),
                    "best_at_h1": best,
                    "steps": proto["steps"] if top in H_PRIME else None,
                }
                row["fits_paper_facts"] = bool(
                    row["gd_h1_fails"]
                    and row["gd_h1/2_trains"]
                    and row["hb_h1_trains"]
                    and row["nag_h1_trains"]
                    and best == "nag"
                )
            per_c[name] = row
        table[act] = per_c
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("protocol", "rate5", "extra", "claims", "summary"))
    parser.add_argument("--methods", default="gd_effective", help="extra: the methods")
    parser.add_argument("--h-prime", default="1", help="extra: steps at the scale 1/128")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--record-every", type=int, default=100)
    parser.add_argument("--seeds", default="1,2", help="seeds beside Fig 6's own (seed 0)")
    parser.add_argument("--cache", default="/tmp/cache6")
    args = parser.parse_args(argv)
    out: dict = {}  # what this part computes; written over the file's other parts at the end
    if args.part == "protocol":
        out["protocol"] = protocol(args.steps, args.record_every)
    elif args.part in ("rate5", "extra"):  # rate5: GD at the effective rate 5 of c = 1/128
        if args.part == "rate5":
            new = extra(("gd_effective",), (0.5,), 7000, 250)
        else:
            methods = tuple(args.methods.split(","))
            h_prime = tuple(float(x) for x in args.h_prime.split(","))
            new = extra(methods, h_prime, args.steps, args.record_every)
        cur = load().get("extra", {"runs": {}, "timing": []})
        cur.setdefault("timing", []).append({k: v for k, v in new.items() if k != "runs"})
        cur["runs"] = cur.get("runs", {}) | new["runs"]
        out["extra"] = cur
    elif args.part == "claims":
        seeds = [int(x) for x in args.seeds.split(",")]
        s, wall, cpu = fig6_runs(args.cache, seeds)
        out["claims_runs"] = {
            "seeds": seeds,
            "summary": s["summary"],
            "config": s["config"],
            "wall_s": wall,
            "cpu_s": cpu,
            "load_after": os.getloadavg()[0],
        }
    out = load() | out
    out["claims"] = merge_claims(out)
    out["verdicts"] = verdicts(out)
    save(out)
    print(json.dumps(out["verdicts"], indent=1)[:4000])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
