"""Performance benchmark of `momentum_jax` (issue 5), one process, one table.

    python -m benchmarks.run                 # the full benchmark (about 15 min on 2 cores)
    python -m benchmarks.run --quick         # a smoke run on a reduced grid (a few minutes)
    python -m benchmarks.run --json out.json # also write every number to a JSON file

Rows of the table (paper Fig 2 for the grid):

- (a) `convergence_study` on the paper's Fig 2 grid: kappa 5, 10, 20 (one call each, the loss is
  a different compiled function for each kappa), HB and NAG, lam = 0.9, h = 2^-4 ... 2^-17, T = 2,
  all three models (gradient_flow, hamiltonian, modified_flow). Compile time is the first call
  minus the median warm call, summed over the three kappas. Peak memory is the maximum resident
  set size (`getrusage`) of a fresh subprocess that runs only (a).
- (a') the same engine called once per learning rate (what grouping the kernel's points by
  step count would give; available to users today).
- (a*) the streaming kernel proposed in `benchmarks/proposed_kernel.py` (not yet in the
  library) on the same grid, all kappas through one compiled kernel; its errors are checked
  against (a).
- (b) the same grid in NumPy loops + `scipy.integrate.solve_ivp` (`benchmarks/baseline_numpy.py`),
  which computes the same errors (checked here on the run's own grid, and in the tests).
- (c) `optax.sgd` (HB; `nesterov=True` for NAG) with a jitted step in a Python loop, one
  configuration at a time, keeping the trajectory: the discrete part only. The per-step cost is
  measured on the subset `h >= 2^-OPTAX_MAX_EXP` of the grid and scaled by the ratio of step
  counts to the full grid (stated in the table); compile time is the sum of the first calls.
- (d) `torch.optim.SGD` on the CPU, the same way as (c), when torch is installed.
- (e) sweeps: `jax.vmap(iterate_final)` over 32 momenta x 16 learning rates (HB) on a d = 256
  dense quadratic (10^4 steps) and on the digits logistic regression (500 steps by default:
  3.5 GFLOP per step for the 512 runs, so 10^4 steps take about an hour on 2 cores; the cost per
  step does not depend on the number of steps). Reported: gradient evaluations per second, and
  GFLOP/s from XLA's own flop count of one loop iteration (the gradient plus the loss that
  `iterate_final` also evaluates) against the float64 matmul peak measured beside each sweep
  (best of jitted 1024^2 and 2048^2 matmuls; float32 is printed for reference).

Times are wall-clock medians over `--repeats` runs (the CPU time of the process is printed beside
them: on a shared machine it is the steadier number). Float64 is on from the start.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import momentum_jax as mj  # noqa: E402
from momentum_jax._losses import paper_quadratic  # noqa: E402

from . import baseline_numpy  # noqa: E402

KAPPAS = (5.0, 10.0, 20.0)
LAM = 0.9
T = 2.0
MODELS = ("gradient_flow", "hamiltonian", "modified_flow")
METHODS = ("hb", "nag")
U0 = (1.0, 1.0)

TARGETS = {
    "a_vs_b": 100.0,
    "a_vs_c": 10.0,
    "compile_s": 15.0,
    "peak_fraction": 0.30,
    "memory_gb": 2.0,
}


# ----------------------------------------------------------------------------- measuring


def timed(fn, *, repeats: int, include_first: bool = False):
    """`(result, first_wall, warm_walls, warm_cpus)`: one first call, then `repeats` more
    (with `include_first`, the first call counts as one of the repeats: nothing to compile)."""
    walls, cpus = [], []
    for _ in range(repeats + (0 if include_first else 1)):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    if include_first:
        return out, walls[0], walls, cpus
    return out, walls[0], walls[1:], cpus[1:]


def block(x):
    return jax.block_until_ready(x)


def machine() -> dict:
    model, cores = platform.processor() or "unknown", os.cpu_count()
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
        cores = int(fields.get("CPU(s)", cores))
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    return {
        "cpu": model,
        "cores": cores,
        "load_average": os.getloadavg(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def steps_of(hs) -> np.ndarray:
    return np.floor(T / np.asarray(hs) * (1 + 1e-12)).astype(np.int64)


def grid_hs(quick: bool) -> np.ndarray:
    return 2.0 ** -np.arange(4, 11 if quick else 18)


# ----------------------------------------------------------------------------- (peak) matmul


def matmul_peak(dtype, sizes=(1024, 2048), repeats: int = 7) -> dict:
    """The machine's matmul peak: the best GFLOP/s of a jitted `n x n` matmul over `sizes` and
    `repeats` (a peak is a best case), and GFLOP per CPU-second of the median run (steadier on
    a shared machine: time taken by other processes is not counted)."""
    best, per_cpu = 0.0, 0.0
    key = jax.random.PRNGKey(0)
    for n in sizes:
        a = jax.random.normal(key, (n, n), dtype=dtype)
        b = jax.random.normal(jax.random.split(key)[0], (n, n), dtype=dtype)
        f = jax.jit(jnp.matmul)
        _, _, walls, cpus = timed(lambda f=f, a=a, b=b: block(f(a, b)), repeats=repeats)
        best = max(best, 2.0 * n**3 / min(walls) / 1e9)
        per_cpu = max(per_cpu, 2.0 * n**3 / statistics.median(cpus) / 1e9)
    return {"gflops": best, "gflop_per_cpu_s": per_cpu}


# ----------------------------------------------------------------------------- (a) engine


def engine(hs, kappas=KAPPAS):
    """One `convergence_study` per kappa; returns `{kappa: Study}`."""
    u0 = jnp.asarray(U0)
    out = {}
    for kappa in kappas:
        st = mj.convergence_study(
            paper_quadratic(kappa), u0, hs=hs, lams=[LAM], T=T, methods=METHODS, models=MODELS
        )
        out[kappa] = st
    return out


def bench_engine(hs, repeats):
    """Per-kappa first call and warm calls, so compile is first - warm for each kappa."""
    u0 = jnp.asarray(U0)
    firsts, warm_walls, warm_cpus, studies = [], np.zeros(repeats), np.zeros(repeats), {}
    for kappa in KAPPAS:
        call = lambda k=kappa: mj.convergence_study(  # noqa: E731
            paper_quadratic(k), u0, hs=hs, lams=[LAM], T=T, methods=METHODS, models=MODELS
        )
        st, first, walls, cpus = timed(call, repeats=repeats)
        studies[kappa] = st
        firsts.append(first)
        warm_walls += walls
        warm_cpus += cpus
    warm = float(np.median(warm_walls))
    per_kappa_warm = warm / len(KAPPAS)
    compile_s = float(sum(f - per_kappa_warm for f in firsts))
    return studies, {
        "warm_s": warm,
        "warm_cpu_s": float(np.median(warm_cpus)),
        "compile_s": compile_s,
        "first_calls_s": firsts,
        "repeats": [float(x) for x in warm_walls],
    }


def bench_per_h(hs, repeats):
    """Row (a'): the same engine called once per learning rate (points that share `h` share
    the step count, so no point waits in lockstep for a smaller `h`); every call after the first
    reuses the compiled kernel."""
    u0 = jnp.asarray(U0)
    out = {}

    def call():
        for kappa in KAPPAS:
            sts = [
                mj.convergence_study(
                    paper_quadratic(kappa),
                    u0,
                    hs=[h],
                    lams=[LAM],
                    T=T,
                    methods=METHODS,
                    models=MODELS,
                )
                for h in hs
            ]
            out[kappa] = {m: np.concatenate([st.errors[m] for st in sts], axis=-1) for m in MODELS}
        return out

    _, first, walls, cpus = timed(call, repeats=repeats)
    warm = float(np.median(walls))
    return out, {
        "warm_s": warm,
        "warm_cpu_s": float(np.median(cpus)),
        "compile_s": first - warm,
        "repeats": [float(x) for x in walls],
    }


def bench_proposed(hs, repeats):
    """Row (a*): the streaming kernel prototype of `benchmarks/proposed_kernel.py`, every kappa
    in one compiled kernel (the loss family `1/2 <u, diag(q) u>` with `q` traced)."""
    from . import proposed_kernel

    def family(q, u):
        return 0.5 * jnp.sum(q * jnp.square(u))

    qs = jnp.asarray([[k, 1.0] for k in KAPPAS])
    call = lambda: proposed_kernel.errors(  # noqa: E731
        family, jnp.asarray(U0), hs=hs, lams=[LAM], T=T, thetas=qs, methods=METHODS, models=MODELS
    )
    out, first, walls, cpus = timed(call, repeats=repeats)
    warm = float(np.median(walls))
    return (
        {k: {m: out[m][i] for m in MODELS} for i, k in enumerate(KAPPAS)},
        {
            "warm_s": warm,
            "warm_cpu_s": float(np.median(cpus)),
            "compile_s": first - warm,
            "repeats": [float(x) for x in walls],
        },
    )


def engine_peak_memory(quick: bool) -> float:
    """Peak RSS in GB of a fresh interpreter that runs (a) only (compile and one run)."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--engine-memory-probe"]
    cmd += ["--quick"] if quick else []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=True)
    return float(json.loads(res.stdout.strip().splitlines()[-1])["maxrss_gb"])


def _memory_probe(quick: bool):
    engine(grid_hs(quick))
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"maxrss_gb": kb / 2**20}))


# ----------------------------------------------------------------------------- (b) baseline


def bench_baseline(hs, repeats):
    out, _, walls, cpus = timed(
        lambda: baseline_numpy.fig2_grid(KAPPAS, hs, lam=LAM, T=T),
        repeats=repeats,
        include_first=True,
    )
    return out, {
        "warm_s": float(np.median(walls)),
        "warm_cpu_s": float(np.median(cpus)),
        "repeats": walls,
    }


def max_relative_difference(studies, base) -> float:
    worst = 0.0
    for kappa, st in studies.items():
        for model in MODELS:
            a, b = st.errors[model][:, 0, :], base[kappa][model]
            worst = max(worst, float(np.max(np.abs(a / b - 1))))
    return worst


# ----------------------------------------------------------------------------- (c) optax


def bench_optax(hs_subset, repeats):
    import optax

    steps = []
    for kappa in KAPPAS:
        q = jnp.asarray([kappa, 1.0])
        loss = lambda u, q=q: 0.5 * jnp.sum(q * u**2)  # noqa: E731
        for method in METHODS:
            for h in hs_subset:
                opt = optax.sgd(float(h), momentum=LAM, nesterov=method == "nag")

                @jax.jit
                def step(params, state, opt=opt, loss=loss):
                    grads = jax.grad(loss)(params)
                    updates, state = opt.update(grads, state, params)
                    return optax.apply_updates(params, updates), state

                steps.append((step, opt, int(steps_of([h])[0])))

    def run_all():
        last = None
        for step, opt, n in steps:
            params = jnp.asarray(U0)
            state = opt.init(params)
            traj = [params]
            for _ in range(n):
                params, state = step(params, state)
                traj.append(params)
            last = block(jnp.stack(traj))
        return last

    t = time.perf_counter()
    for step, opt, _ in steps:  # compile every configuration (one call each)
        p = jnp.asarray(U0)
        block(step(p, opt.init(p)))
    compile_s = time.perf_counter() - t
    _, _, walls, cpus = timed(run_all, repeats=repeats)
    return {
        "subset_s": float(np.median(walls)),
        "subset_cpu_s": float(np.median(cpus)),
        "compile_s": compile_s,
        "subset_steps": int(sum(n for *_, n in steps)),
        "configurations": len(steps),
    }


def bench_torch(hs_subset, repeats):
    try:
        import torch
    except ImportError:
        return None
    torch.set_default_dtype(torch.float64)
    configs = [(k, m, float(h)) for k in KAPPAS for m in METHODS for h in hs_subset]

    def run_all():
        for kappa, method, h in configs:
            q = torch.tensor([kappa, 1.0])
            p = torch.nn.Parameter(torch.tensor(U0))
            opt = torch.optim.SGD([p], lr=h, momentum=LAM, nesterov=method == "nag")
            traj = [p.detach().clone()]
            for _ in range(int(steps_of([h])[0])):
                opt.zero_grad()
                (0.5 * torch.sum(q * p**2)).backward()
                opt.step()
                traj.append(p.detach().clone())
            torch.stack(traj)

    _, _, walls, cpus = timed(run_all, repeats=repeats)
    return {
        "subset_s": float(np.median(walls)),
        "subset_cpu_s": float(np.median(cpus)),
        "subset_steps": int(sum(steps_of([h])[0] for *_, h in configs)),
    }


# ----------------------------------------------------------------------------- (e) sweeps


def sweep_case(name):
    if name == "dense_quadratic":
        spec = mj.get_loss("dense_quadratic", dim=256, condition=100.0)
        lrs = np.geomspace(1e-3, 3e-2, 16)
    else:
        spec = mj.get_loss("digits_logistic")
        lrs = np.geomspace(1e-2, 1.0, 16)
    lams = np.linspace(0.0, 0.95, 32)
    H, L = np.meshgrid(lrs, lams, indexing="ij")
    return spec, mj.heavy_ball(jnp.asarray(H.ravel()), jnp.asarray(L.ravel()))


def iteration_flops(spec, method) -> float:
    """XLA's flop count of one iteration of `iterate_final`'s loop for the whole batch: one
    momentum step (gradient) and one loss evaluation at the new iterate."""
    from momentum_jax._iterate import initial_state, step

    def one(m):
        s = initial_state(spec.fn, spec.u0, m)
        s = step(spec.fn, m, s)
        return s.u, spec.fn(s.u)

    cost = jax.jit(jax.vmap(one)).lower(method).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"])


def bench_sweep(name, steps, repeats):
    spec, method = sweep_case(name)
    f = jax.jit(jax.vmap(lambda m: mj.iterate_final(spec.fn, spec.u0, m, steps).loss))
    _, first, walls, cpus = timed(lambda: block(f(method)), repeats=repeats)
    warm = float(np.median(walls))
    configs = int(np.size(method.h))
    flops = iteration_flops(spec, method) * steps
    cpu = float(np.median(cpus))
    return {
        "configurations": configs,
        "steps": steps,
        "warm_s": warm,
        "warm_cpu_s": cpu,
        "compile_s": first - warm,
        "grad_evals_per_s": configs * steps / warm,
        "gflops": flops / warm / 1e9,
        "gflop_per_cpu_s": flops / cpu / 1e9,
        "flops_per_iteration": flops / steps,
    }


# ----------------------------------------------------------------------------- main


def fmt_s(x):
    return "-" if x is None else (f"{x:.3g}" if x < 100 else f"{x:.0f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="reduced grid and sweeps (smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="warm repeats (default 3; quick 1)")
    p.add_argument(
        "--optax-max-exp",
        type=int,
        default=None,
        help="(c)/(d) are timed on h >= 2^-E and scaled (default 12; quick 8)",
    )
    p.add_argument(
        "--baseline-max-exp",
        type=int,
        default=None,
        help="(b) is timed on h >= 2^-E and scaled (default: the full grid)",
    )
    p.add_argument(
        "--sweep-steps",
        type=int,
        default=None,
        help="(e) steps of the dense-quadratic sweep (default 10^4; quick 200)",
    )
    p.add_argument(
        "--digits-steps",
        type=int,
        default=None,
        help="(e) steps of the digits sweep (default 500; quick 20)",
    )
    p.add_argument("--skip", default="", help="rows to skip, comma-separated: a',a*,b,c,d,e,mem")
    p.add_argument("--json", default=None, help="write all numbers to this JSON file")
    p.add_argument("--engine-memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.engine_memory_probe:
        return _memory_probe(args.quick)

    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    hs = grid_hs(quick)
    n_cfg = len(KAPPAS) * len(METHODS)
    full_steps = n_cfg * int(steps_of(hs).sum())
    optax_exp = args.optax_max_exp or (8 if quick else 12)
    base_exp = args.baseline_max_exp or int(-np.log2(hs[-1]))
    sweep_steps = args.sweep_steps or (200 if quick else 10_000)
    digits_steps = args.digits_steps or (20 if quick else 500)
    skip = set(filter(None, args.skip.split(",")))
    info = machine()
    res = {
        "machine": info,
        "grid": {
            "kappas": KAPPAS,
            "hs_exponents": [4, int(-np.log2(hs[-1]))],
            "lam": LAM,
            "T": T,
            "models": MODELS,
            "methods": METHODS,
            "discrete_steps": full_steps,
        },
    }
    print(
        f"# {info['date']}  {info['cpu']}, {info['cores']} CPUs, load {info['load_average']}, "
        f"jax {info['jax']}, devices {info['devices']}",
        flush=True,
    )
    print(
        f"# grid: kappa {KAPPAS}, HB+NAG, lam {LAM}, h 2^-4..2^-{int(-np.log2(hs[-1]))}, T {T}, "
        f"models {MODELS}; {full_steps} discrete steps in all",
        flush=True,
    )

    rows = []  # (name, scope, compile s, warm s (full grid), cpu s (full grid))
    studies, a = bench_engine(hs, repeats)
    a["peak_memory_gb"] = None if "mem" in skip else engine_peak_memory(quick)
    res["a"] = a
    rows.append(
        (
            "(a) convergence_study",
            "full grid, measured",
            a["compile_s"],
            a["warm_s"],
            a["warm_cpu_s"],
        )
    )
    print(
        f"(a) warm {a['warm_s']:.3f} s, compile {a['compile_s']:.2f} s, "
        f"peak memory {a['peak_memory_gb']} GB",
        flush=True,
    )

    if "a'" not in skip:
        per_h, a1 = bench_per_h(hs, repeats)
        a1["max_rel_diff_vs_a"] = max(
            float(np.nanmax(np.abs(per_h[k][m] / studies[k].errors[m] - 1)))
            for k in KAPPAS
            for m in MODELS
        )
        res["a_per_h"] = a1
        rows.append(
            (
                "(a') convergence_study once per h",
                "full grid, measured",
                a1["compile_s"],
                a1["warm_s"],
                a1["warm_cpu_s"],
            )
        )
        print(
            f"(a') warm {a1['warm_s']:.3f} s, compile {a1['compile_s']:.2f} s; errors agree "
            f"with (a) to {a1['max_rel_diff_vs_a']:.1e} (relative)",
            flush=True,
        )

    if "a*" not in skip:
        prop, a2 = bench_proposed(hs, repeats)
        a2["max_rel_diff_vs_a"] = max(
            float(np.nanmax(np.abs(prop[k][m] / studies[k].errors[m] - 1)))
            for k in KAPPAS
            for m in MODELS
        )
        res["a_proposed"] = a2
        rows.append(
            (
                "(a*) proposed streaming kernel",
                "full grid, measured",
                a2["compile_s"],
                a2["warm_s"],
                a2["warm_cpu_s"],
            )
        )
        print(
            f"(a*) warm {a2['warm_s']:.3f} s, compile {a2['compile_s']:.2f} s; errors agree "
            f"with (a) to {a2['max_rel_diff_vs_a']:.1e} (relative)",
            flush=True,
        )

    if "b" not in skip:
        sub = hs[hs >= 2.0**-base_exp]
        base, b = bench_baseline(sub, repeats)
        scale = full_steps / (n_cfg * steps_of(sub).sum())
        b.update(
            scale=float(scale),
            full_s=b["warm_s"] * scale,
            full_cpu_s=b["warm_cpu_s"] * scale,
            max_rel_diff_vs_a=max_relative_difference(
                {k: _restrict(st, len(sub)) for k, st in studies.items()}, base
            ),
        )
        res["b"] = b
        how = "full grid, measured" if scale == 1 else f"h>=2^-{base_exp}, x{scale:.3g} steps"
        rows.append(("(b) NumPy loop + solve_ivp", how, None, b["full_s"], b["full_cpu_s"]))
        print(
            f"(b) {b['warm_s']:.2f} s measured; errors agree with (a) to "
            f"{b['max_rel_diff_vs_a']:.1e} (relative)",
            flush=True,
        )

    sub = hs[hs >= 2.0**-optax_exp]
    scale = full_steps / (n_cfg * steps_of(sub).sum())
    scope = f"h>=2^-{optax_exp}, x{scale:.3g} steps"
    if "c" not in skip:
        c = bench_optax(sub, repeats)
        c.update(
            scale=float(scale), full_s=c["subset_s"] * scale, full_cpu_s=c["subset_cpu_s"] * scale
        )
        res["c"] = c
        rows.append(
            (
                "(c) optax.sgd, jit step, Python loop",
                scope,
                c["compile_s"],
                c["full_s"],
                c["full_cpu_s"],
            )
        )
        print(f"(c) {c['subset_s']:.2f} s on {c['subset_steps']} steps", flush=True)
    if "d" not in skip:
        d = bench_torch(sub, repeats)
        res["d"] = d
        if d is None:
            print("(d) skipped: torch is not installed", flush=True)
            rows.append(
                ("(d) torch.optim.SGD (CPU)", "skipped: torch not installed", None, None, None)
            )
        else:
            d.update(
                scale=float(scale),
                full_s=d["subset_s"] * scale,
                full_cpu_s=d["subset_cpu_s"] * scale,
            )
            rows.append(("(d) torch.optim.SGD (CPU)", scope, None, d["full_s"], d["full_cpu_s"]))

    if "e" not in skip:
        for name, n in (("dense_quadratic", sweep_steps), ("digits_logistic", digits_steps)):
            peak = matmul_peak(jnp.float64)  # measured next to each sweep: the load varies
            e = bench_sweep(name, n, repeats)
            e["peak_float64"] = peak
            e["fraction_of_peak"] = e["gflops"] / peak["gflops"]
            e["fraction_of_peak_cpu"] = e["gflop_per_cpu_s"] / peak["gflop_per_cpu_s"]
            res[f"e_{name}"] = e
            rows.append(
                (
                    f"(e) sweep {name}",
                    f"{e['configurations']} configs x {n} steps",
                    e["compile_s"],
                    e["warm_s"],
                    e["warm_cpu_s"],
                )
            )
            print(
                f"(e) {name}: {e['grad_evals_per_s']:.3g} grad/s, {e['gflops']:.1f} GFLOP/s "
                f"= {100 * e['fraction_of_peak']:.0f}% of float64 matmul peak",
                flush=True,
            )
        res["peak_float32"] = matmul_peak(jnp.float32)

    print()
    print(table(rows, res))
    print(targets_report(res))
    if args.json:
        from momentum_jax._io import dump_json

        dump_json(args.json, res)
    return res


def table(rows, res) -> str:
    ta = res["a"]["warm_s"]
    tp = res.get("a_proposed", {}).get("warm_s")
    lines = [
        f"{'benchmark':38} {'scope':34} {'compile s':>9} {'warm s':>8} {'cpu s':>8} "
        f"{'t/t(a)':>7} {'t/t(a*)':>7}"
    ]
    for name, scope, comp, warm, cpu in rows:
        ra = "-" if warm is None or name.startswith("(e)") else f"{warm / ta:.3g}"
        rp = "-" if warm is None or tp is None or name.startswith("(e)") else f"{warm / tp:.3g}"
        lines.append(
            f"{name:38} {scope:34} {fmt_s(comp):>9} {fmt_s(warm):>8} {fmt_s(cpu):>8} "
            f"{ra:>7} {rp:>7}"
        )
    lines.append(
        "warm s: median wall-clock time for the full grid (scaled where the scope says "
        "so); cpu s: CPU time of the process; t/t(a) > 1: (a) is that many times faster"
    )
    for name in ("dense_quadratic", "digits_logistic"):
        e = res.get(f"e_{name}")
        if e:
            lines.append(
                f"(e) {name}: {e['grad_evals_per_s']:.3g} gradient evaluations/s, "
                f"{e['gflops']:.1f} GFLOP/s = {100 * e['fraction_of_peak']:.0f}% of the float64 "
                f"matmul peak ({e['peak_float64']['gflops']:.1f} GFLOP/s) measured beside it; per "
                f"CPU-second {100 * e['fraction_of_peak_cpu']:.0f}%"
            )
    if "peak_float32" in res:
        lines.append(f"float32 matmul peak: {res['peak_float32']['gflops']:.1f} GFLOP/s")
    return "\n".join(lines)


def _restrict(st, n_h):
    """A view of a study's errors on its first `n_h` learning rates (duck-typed for the check)."""

    class View:
        errors = {m: st.errors[m][..., :n_h] for m in st.models}

    return View


def targets_report(res) -> str:
    a, lines = res["a"], ["", "targets:"]

    def line(label, ok, text):
        lines.append(f"  [{'ok' if ok else 'MISS'}] {label}: {text}")

    if "b" in res:
        r = res["b"]["full_s"] / a["warm_s"]
        line("(a) >= 100x faster than (b)", r >= TARGETS["a_vs_b"], f"{r:.3g}x")
    if "c" in res:
        r = res["c"]["full_s"] / a["warm_s"]
        line("(a) >= 10x faster than (c)", r >= TARGETS["a_vs_c"], f"{r:.3g}x")
    line("(a) compile <= 15 s", a["compile_s"] <= TARGETS["compile_s"], f"{a['compile_s']:.1f} s")
    if a.get("peak_memory_gb") is not None:
        line(
            "(a) peak memory < 2 GB",
            a["peak_memory_gb"] < TARGETS["memory_gb"],
            f"{a['peak_memory_gb']:.2f} GB",
        )
    p = res.get("a_proposed")
    if p:
        for key, label, target in (
            ("b", "(a*) >= 100x faster than (b)", TARGETS["a_vs_b"]),
            ("c", "(a*) >= 10x faster than (c)", TARGETS["a_vs_c"]),
        ):
            if key in res:
                r = res[key]["full_s"] / p["warm_s"]
                line(label, r >= target, f"{r:.3g}x")
        line(
            "(a*) compile <= 15 s",
            p["compile_s"] <= TARGETS["compile_s"],
            f"{p['compile_s']:.1f} s",
        )
    e = res.get("e_dense_quadratic")
    if e:
        frac = e["fraction_of_peak"]
        line(
            "(e) dense quadratic >= 30% of matmul peak",
            frac >= TARGETS["peak_fraction"],
            f"{100 * frac:.0f}%",
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
