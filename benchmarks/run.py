"""Benchmarks of `momentum_jax`'s convergence engine, each against the alternative a user would
otherwise run, side by side in the same process (results: `benchmarks/RESULTS.md`).

    python -m benchmarks.run                       # every row (about an hour on 2 cores)
    python -m benchmarks.run --quick               # a smoke run on reduced grids
    python -m benchmarks.run --only fig2,wide      # some rows
    python -m benchmarks.run --json out.json       # also write every number

Rows:

- `fig2`: the paper's Fig 2 grid (kappa 5, 10, 20; HB and NAG; lam = 0.9; h = 2^-4 ... 2^-17;
  T = 2; the three models) through `convergence_study`, one call per kappa, as Fig 2 runs it
  (the models in closed form, `solver=ClosedForm()`) and with the models' ODEs
  solved by diffrax (and, to show where the time of those solves goes, the kappa = 10 column
  with one model at a time), against the same
  errors computed with NumPy loops and `scipy.integrate.solve_ivp` (`benchmarks/baseline_numpy`),
  with NumPy loops and the models' closed forms in NumPy,
  and against `optax.sgd` stepped from a Python loop (the discrete part only, timed on
  `h >= 2^-12` and scaled by the ratio of step counts).
- `wide`: a wide gradient-flow sweep, HB and NAG x 32 lams x h = 2^-3 ... 2^-9 (448 points),
  d = 20 dense quadratic, against the hand-written masked `lax.scan` with one shared diffrax
  solve of `benchmarks/handwritten.py` (the errors agree, checked here).
- `scaling`: the same sweep with all three models for d = 2, 20, 200, and a narrow variant
  (4 momenta instead of 32) for d = 2, 20, 200, 1000: warm time, time per discrete
  step and point, compile time, peak memory (a fresh process per d).
- `closed`: the `scaling` sweep (32 momenta) with the models in closed form
  (`solver=ClosedForm()`) for d = 2, 20, 200, 1000.
- `stiff`: the damped-Hamiltonian solve alone against 1/h: steps and time of the explicit
  (Tsit5) and the stiff-aware (`Hamiltonian(stiff=True)`) solve.
- `memory`: peak memory of the same study with 1x and 8x the steps (T = 2 and 16).
- `sweep`: `mj.sweep` against the bare `jax.jit(jax.vmap(run))` of the HB/NAG step
  (`benchmarks/bare.py`) on the regime map's quadratic (2048 points, 4000 steps, float64) and
  on the digits autoencoder in float32 (256 points, 200 steps), with its FLOP rate against a
  2048 x 2048 float32 matmul's (`benchmarks/sweep_speed.py`). The final losses agree, checked.
- `latency`: the first call of the README's study example in a fresh process, without and with
  JAX's persistent compilation cache (a first process fills it, a second one reads it), with
  the number of compilations (`benchmarks/latency.py`).
- `overhead`: a warm 1-point study and a 1-point sweep (4 steps): the host's work per call.

Times are the best of `--repeats` warm calls (the machine is shared: the best is the least
disturbed); compile time is the first call minus the best warm call. Float64 throughout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import momentum_jax as mj  # noqa: E402

from . import baseline_numpy, handwritten, latency, sweep_speed  # noqa: E402

KAPPAS = (5.0, 10.0, 20.0)
LAM, T = 0.9, 2.0
MODELS = ("gradient_flow", "hamiltonian", "modified_flow")
U0 = (1.0, 1.0)
EXACT = mj.ClosedForm()
ROWS = ("fig2", "wide", "scaling", "closed", "stiff", "memory", "sweep", "latency", "overhead")


def best_of(fn, repeats):
    """`(result, first_s, best_warm_s)`; with `repeats = 0` the one call is also the "warm"
    one (compile included; for runs long enough that the compile does not matter)."""
    t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t
    if repeats == 0:
        return out, first, first
    warm = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        warm.append(time.perf_counter() - t)
    return out, first, min(warm)


def machine() -> dict:
    model = platform.processor() or "unknown"
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def peak_rss_gb(args) -> dict:
    """Run this module with `args` in a fresh interpreter; its JSON report (with `ru_maxrss`)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-m", "benchmarks.run", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _report_rss(extra: dict):
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps(extra | {"maxrss_gb": kb / 2**20}))


# ------------------------------------------------------------------------------------- fig2


def fig2(quick, repeats):
    hs = 2.0 ** -np.arange(4, 12 if quick else 18)
    u0 = jnp.asarray(U0)

    def engine(solver):
        return {
            k: mj.convergence_study(
                mj.paper_quadratic(k), u0, hs=hs, lams=[LAM], T=T, models=MODELS, solver=solver
            )
            for k in KAPPAS
        }

    # as Fig 2 runs it (the models in closed form) and with the ODE solves (diffrax)
    studies, first, warm = best_of(lambda: engine(EXACT), repeats)
    solved, first_solved, warm_solved = best_of(lambda: engine(None), repeats)
    t = time.perf_counter()
    base = baseline_numpy.fig2_grid(KAPPAS, hs, lam=LAM, T=T)
    numpy_s = time.perf_counter() - t
    t = time.perf_counter()
    base_closed = baseline_numpy.fig2_grid(KAPPAS, hs, lam=LAM, T=T, closed_form=True)
    numpy_closed_s = time.perf_counter() - t

    def worst(runs, ref=base):
        return max(
            float(np.max(np.abs(runs[k].errors[m][:, 0, :] / ref[k][m] - 1)))
            for k in KAPPAS
            for m in MODELS
        )

    optax_sub = optax_loop(hs[hs >= 2.0 ** -(8 if quick else 12)])
    steps_full = 2 * len(KAPPAS) * int(np.floor(T / hs).sum())
    optax_s = optax_sub["seconds"] * steps_full / optax_sub["steps"]
    st = solved[KAPPAS[0]]
    return {
        "per_model_kappa_10": fig2_per_model(hs, u0, repeats),
        "grid_points": 2 * len(KAPPAS) * hs.size,
        "discrete_steps": steps_full,
        "engine_warm_s": warm,
        "engine_compile_s": first - warm,
        "engine_solver": "closed_form",
        "lanes": studies[KAPPAS[0]].config["lanes"],
        "chunk": studies[KAPPAS[0]].config["chunk_size"],
        "numpy_scipy_s": numpy_s,
        "ratio_numpy_over_engine": numpy_s / warm,
        "max_relative_difference_to_numpy": worst(studies),
        "numpy_closed_form_s": numpy_closed_s,
        "ratio_numpy_closed_form_over_engine": numpy_closed_s / warm,
        "max_relative_difference_to_numpy_closed_form": worst(studies, base_closed),
        "engine_ode_warm_s": warm_solved,
        "engine_ode_compile_s": first_solved - warm_solved,
        "ratio_numpy_over_engine_ode": numpy_s / warm_solved,
        "max_relative_difference_to_numpy_ode": worst(solved),
        "optax_loop_s_scaled": optax_s,
        "optax_subset": optax_sub,
        "ratio_optax_over_engine": optax_s / warm,
        "hamiltonian_stiff": st.config["models"]["hamiltonian"],
    }


def fig2_per_model(hs, u0, repeats):
    """Where the time goes: the kappa = 10 column of the grid with one model at a time (each
    includes the discrete steps and the loop), its warm time and its solver steps."""
    out = {}
    for model in MODELS:
        st, _, warm = best_of(
            lambda model=model: mj.convergence_study(
                mj.paper_quadratic(10.0), u0, hs=hs, lams=[LAM], T=T, models=(model,)
            ),
            repeats,
        )
        steps = int(np.sum(st.solver_steps[st.models[0]]))
        out[model] = {"warm_s": warm, "solver_steps": steps, "config": st.config["models"]}
    return out


def optax_loop(hs):
    """`optax.sgd` (HB; `nesterov=True` for NAG) with a jitted step, one configuration at a time
    in a Python loop, keeping the trajectory: the discrete part of the grid only."""
    import optax

    configs = []
    for kappa in KAPPAS:
        q = jnp.asarray([kappa, 1.0])
        for nesterov in (False, True):
            for h in hs:
                opt = optax.sgd(float(h), momentum=LAM, nesterov=nesterov)

                @jax.jit
                def step(p, s, opt=opt, q=q):
                    g = q * p
                    upd, s = opt.update(g, s, p)
                    return optax.apply_updates(p, upd), s

                configs.append((step, opt, int(np.floor(T / h))))
    for step, opt, _ in configs:  # compile every configuration (the state's weak types
        p = jnp.asarray(U0)  # settle after the first update: two calls)
        jax.block_until_ready(step(*step(p, opt.init(p))))
    t = time.perf_counter()
    for step, opt, n in configs:
        p = jnp.asarray(U0)
        s = opt.init(p)
        traj = [p]
        for _ in range(n):
            p, s = step(p, s)
            traj.append(p)
        np.stack(jax.device_get(traj))  # the trajectory on the host (jnp.stack of
        # thousands of arrays costs more than the steps)
    return {"seconds": time.perf_counter() - t, "steps": sum(n for *_, n in configs)}


# ------------------------------------------------------------------------------------- wide


def wide_grid(d, quick, n_lams=None):
    spec = mj.get_loss("dense_quadratic", dim=d, condition=10.0)
    hs = 2.0 ** -np.arange(3, 8 if quick else 10)
    lams = np.linspace(0.0, 0.95, n_lams or (8 if quick else 32))
    return spec, hs, lams


def wide(quick, repeats):
    spec, hs, lams = wide_grid(20, quick)
    kw = dict(hs=hs, lams=lams, T=T, models=("gradient_flow",))
    st, first, warm = best_of(lambda: mj.convergence_study(spec.fn, spec.u0, **kw), repeats)
    H, L = np.meshgrid(hs, lams)
    pts = [mj.method_from_name(m, H, L) for m in ("hb", "nag")]
    h, lam, a = (np.concatenate([np.ravel(getattr(p, f)) for p in pts]) for f in ("h", "lam", "a"))
    N = np.floor(T / h * (1 + 1e-12))

    def user_loss(u):
        return spec.fn(u)

    def hand():
        out = handwritten.gradient_flow_errors_jit(user_loss, int(N.max()), spec.u0, h, lam, a, N)
        return np.asarray(jax.block_until_ready(out))

    ref, hand_first, hand_warm = best_of(hand, repeats)
    ours = st.errors["gradient_flow"].reshape(2, -1).ravel()
    exact, exact_first, exact_warm = best_of(
        lambda: mj.convergence_study(spec.fn, spec.u0, solver=EXACT, **kw), repeats
    )
    ours_exact = exact.errors["gradient_flow"].reshape(2, -1).ravel()
    return {
        "points": int(h.size),
        "discrete_steps": int(N.sum()),
        "engine_warm_s": warm,
        "engine_compile_s": first - warm,
        "lanes": st.config["lanes"],
        "chunk": st.config["chunk_size"],
        "loop_iterations": st.config["loop_iterations"],
        "handwritten_warm_s": hand_warm,
        "handwritten_compile_s": hand_first - hand_warm,
        "handwritten_point_steps": int(h.size * N.max()),
        "ratio_handwritten_over_engine": hand_warm / warm,
        "max_relative_difference": float(np.max(np.abs(ours / ref - 1))),
        "engine_closed_form_warm_s": exact_warm,
        "engine_closed_form_compile_s": exact_first - exact_warm,
        "ratio_handwritten_over_engine_closed_form": hand_warm / exact_warm,
        "max_relative_difference_closed_form": float(np.max(np.abs(ours_exact / ref - 1))),
    }


def scaling_probe(d, quick, repeats, n_lams=None, solver=None):
    """One process per d (run through `peak_rss_gb`): the wide sweep with all three models
    (`n_lams` momenta instead of the wide grid's, for the narrow variant; `solver=EXACT` for
    the models in closed form)."""
    spec, hs, lams = wide_grid(d, quick, n_lams)
    kw = dict(hs=hs, lams=lams, T=T, models=MODELS, solver=solver)
    st, first, warm = best_of(lambda: mj.convergence_study(spec.fn, spec.u0, **kw), repeats)
    steps = 2 * len(lams) * int(np.floor(T / hs).sum())
    solver_steps = {m: int(np.sum(st.solver_steps[m])) for m in MODELS}
    _report_rss(
        {
            "d": d,
            "closed_form": solver is not None,
            "lams": len(lams),
            "repeats": repeats,
            "warm_s": warm,
            "compile_s": first - warm,
            "points": int(st.config["points"]),
            "discrete_steps": steps,
            "us_per_step_and_point": warm / steps * 1e6,
            "solver_steps": solver_steps,
            "failures": {m: int(np.sum(st.solver_failure[m] != "")) for m in MODELS},
            "hamiltonian": st.config["models"]["hamiltonian"],
        }
    )


# ------------------------------------------------------------------------------------ stiff


def stiff(quick, repeats):
    """The damped-Hamiltonian solve alone (`solve` to `T`, saving only `T`)."""
    loss, u0 = mj.paper_quadratic(10.0), jnp.asarray(U0)
    exps = range(4, 12 if quick else 18)
    rows = []
    for name, make in (
        ("HB lam=0.9", lambda h: mj.heavy_ball(h, 0.9)),
        ("HB lam=0.5", lambda h: mj.heavy_ball(h, 0.5)),
        ("GD", lambda h: mj.gradient_descent(h)),
    ):
        for e in exps:
            h = 2.0**-e
            row = {"method": name, "h_exp": e}
            for stiff_flag in (False, True):
                model = mj.Hamiltonian(stiff=stiff_flag)
                solver = mj.SolverConfig(max_steps=2**21)
                _, _, warm = best_of(
                    lambda: jax.block_until_ready(
                        mj.solve(loss, u0, make(h), jnp.asarray([T]), model=model, solver=solver)
                    ),
                    repeats,
                )
                row["stiff" if stiff_flag else "tsit5"] = {"s": warm}
            rows.append(row)
    hs = 2.0 ** -np.asarray(list(exps), dtype=float)
    for name, method, lams in (
        ("HB lam=0.9", "hb", [0.9]),
        ("HB lam=0.5", "hb", [0.5]),
        ("GD", "gd", [0.0]),
    ):
        for stiff_flag in (False, True):
            st = mj.convergence_study(
                loss,
                u0,
                hs=hs,
                lams=lams,
                T=T,
                methods=(method,),
                models=(mj.Hamiltonian(stiff=stiff_flag),),
                solver=mj.SolverConfig(max_steps=2**21),
            )
            key = st.models[0]
            for row, n in zip((r for r in rows if r["method"] == name), st.solver_steps[key][0, 0]):
                row["stiff" if stiff_flag else "tsit5"]["steps"] = int(n)
    return rows


# ----------------------------------------------------------------------------------- memory


def memory_probe(T_probe, quick):
    spec, hs, lams = wide_grid(20, quick)
    st = mj.convergence_study(spec.fn, spec.u0, hs=hs, lams=lams, T=T_probe, models=MODELS)
    _report_rss(
        {
            "T": T_probe,
            "discrete_steps": 2 * len(lams) * int(np.floor(T_probe / hs).sum()),
            "loop_iterations": st.config["loop_iterations"],
        }
    )


# ------------------------------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="reduced grids (a smoke run)")
    p.add_argument(
        "--repeats", type=int, default=None, help="warm repeats (default 3; quick 1; 0: one call)"
    )
    p.add_argument("--only", default=",".join(ROWS), help=f"rows, comma-separated: {ROWS}")
    p.add_argument("--json", default=None, help="write all numbers to this JSON file")
    p.add_argument(
        "--cpu-time",
        action="store_true",
        help="time the sweep rows by the process's CPU time (less sensitive to the load)",
    )
    p.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    clock = time.process_time if args.cpu_time else time.perf_counter
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if args.probe:
        kind, value = args.probe.split("=")
        if kind in ("scaling", "closed"):  # D or D/LAMS
            d, _, n_lams = value.partition("/")
            solver = EXACT if kind == "closed" else None
            lams = int(n_lams) if n_lams else None
            return scaling_probe(int(d), args.quick, repeats, lams, solver)
        return memory_probe(float(value), args.quick)
    rows = [r for r in args.only.split(",") if r]
    unknown = set(rows) - set(ROWS)
    if unknown:
        p.error(f"unknown rows {sorted(unknown)}; choose from {ROWS}")
    res = {"machine": machine(), "quick": args.quick}
    quick = ["--quick"] if args.quick else []
    for row in rows:
        t = time.perf_counter()
        if row == "fig2":
            res[row] = fig2(args.quick, repeats)
        elif row == "wide":
            res[row] = wide(args.quick, repeats)
        elif row == "scaling":
            dims = (2, 20) if args.quick else (2, 20, 200)
            res[row] = [peak_rss_gb([f"--probe=scaling={d}", *quick]) for d in dims]
            # the narrow variant (4 momenta) reaches d = 1000 (about 37 minutes for it)
            narrow = (2, 20) if args.quick else (2, 20, 200, 1000)
            for d in narrow:
                once = ["--repeats=0"] if d >= 1000 else []  # one call: its compile is noise
                res[row].append(peak_rss_gb([f"--probe=scaling={d}/4", *quick, *once]))
        elif row == "closed":
            dims = (2, 20) if args.quick else (2, 20, 200, 1000)
            res[row] = [peak_rss_gb([f"--probe=closed={d}", *quick]) for d in dims]
        elif row == "stiff":
            res[row] = stiff(args.quick, repeats)
        elif row == "sweep":
            res[row] = sweep_speed.rows(args.quick, repeats, clock)
        elif row == "latency":
            res[row] = latency.latency()
        elif row == "overhead":
            res[row] = latency.overhead(repeats)
        elif row == "memory":
            res[row] = [peak_rss_gb([f"--probe=memory={x}", *quick]) for x in (2.0, 16.0)]
        print(f"# {row} ({time.perf_counter() - t:.0f} s)")
        print(json.dumps(res[row], indent=1))
    res["machine"]["load_average_end"] = os.getloadavg()
    if args.json:
        mj.dump_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
