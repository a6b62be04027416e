"""Fig 15 (ours): HB, NAG and GD at the edge of stability on a small network trained full batch,
against the stable (rescaled gradient) flow, the rod flow and the central flow
(docs/edge_of_stability.md).

A tanh MLP 64-32-32-32-10 on 256 standardised digits, squared error on one-hot labels, trained
full batch from the same start by each method at an `(h, lam)` whose linear-stability threshold
`q* = 2 (1 + lam)/(h (1 + 2a))` the sharpness reaches after a short progressive sharpening.
Rows: the sharpness of the iterates and of each model's position against `q*`; the loss of the
iterates and of each model; the distance `|u_n - u(n h)|` to each model; the toy maps of where
the rod flow and the central flow beat the gradient flow.
"""

import time

import numpy as np

from momentum_jax.paper import _edge_map, script_main
from momentum_jax.paper._edge_map import TOY

NAME = "fig15_edge_of_stability"
DESCRIPTION = (
    "Edge of stability on a digits MLP (full batch): sharpness of HB, NAG and GD against "
    "2(1+lam)/(h(1+2a)), loss and distance of the iterates to the stable flows, the rod flow and "
    "the central flow."
)
CONFIG = {
    "images": 256,
    "sizes": [64, 32, 32, 32, 10],
    "init_scale": 0.5,
    "threshold": 4.0,
    "T": 200.0,
    "records": 50,
    "runs": [["gd", 0.0], ["hb", 0.5], ["nag", 0.5]],
    "seed": 0,
    **_edge_map.GRID,
    "rtol": 1e-6,
    "atol": 1e-9,
    "sharpness_rtol": 1e-4,
}
QUICK = {"T": 120.0, "records": 20, "runs": [["hb", 0.5]], "map_points_h": 4, "map_points_lam": 3}


def mlp_problem(images: int, sizes, seed: int, init_scale: float = 1.0):
    """`(loss, w0)`: the squared error of a tanh MLP on `images` standardised digits, as a
    function of the flat parameter vector `w0` (normal init, standard deviation
    `init_scale / sqrt(fan_in)`, seeded)."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    import momentum_jax as mj

    x_all, labels = mj.load_digits_images()
    raw = np.asarray(x_all[:images], dtype=float)
    x = jnp.asarray((raw - raw.mean(0)) / (raw.std(0) + 0.1))
    y = jax.nn.one_hot(jnp.asarray(np.asarray(labels[:images])), sizes[-1], dtype=x.dtype)
    rng = np.random.default_rng(seed)
    layers = [
        (
            jnp.asarray(init_scale * rng.normal(size=(a, b)) / np.sqrt(a)),
            jnp.zeros(b),
        )
        for a, b in zip(sizes[:-1], sizes[1:])
    ]
    w0, unravel = ravel_pytree(layers)

    def loss(w):
        act = x
        params = unravel(w)
        for i, (W, b) in enumerate(params):
            act = act @ W + b
            if i < len(params) - 1:
                act = jnp.tanh(act)
        return 0.5 * jnp.mean(jnp.sum(jnp.square(act - y), axis=-1))

    return loss, w0


def run_case(loss, w0, method, config) -> dict:
    """The discrete run against the models `MODELS` over the time `T` of the rescaled gradient
    flow (`steps = T (1 - lam)/h`), recorded `records` times: sharpness, loss, distance to the
    iterate and to the two-step average of the iterates `(u_n + u_{n+1})/2` (what the central
    flow models), and the summary numbers of the edge-of-stability phase."""
    import jax
    import jax.numpy as jnp

    import momentum_jax as mj

    every = max(1, round(config["T"] / float(method.h * method.lbar) / config["records"]))
    steps = every * config["records"]
    us = mj.iterate(loss, w0, method, steps + 1)
    n = np.arange(0, steps + 1, every)
    ts = jnp.asarray(n, dtype=w0.dtype) * method.h
    solver = mj.SolverConfig(rtol=config["rtol"], atol=config["atol"])
    models = model_objects()
    sol, seconds = {}, {}
    for k, model in models.items():
        start = time.perf_counter()
        sol[k] = jax.block_until_ready(
            mj.solve(loss, w0, method, ts, model=model, solver=solver, return_state=True)
        )
        seconds[k] = time.perf_counter() - start  # compilation included
    states = sol
    sol = {k: model.position(states[k]) for k, model in models.items()}
    ui, average = us[n], (us[n] + us[n + 1]) / 2
    # one compiled call per record: `jax.vmap` or `lax.map` of it over the records gives the
    # same numbers (within 7e-16) but was slower on CPU, 11 records of this MLP after
    # compilation: 1.7 s (vmap; a batched LOBPCG iterates every record until the slowest
    # converges) and 1.2 s (lax.map) against 0.48 s
    top = jax.jit(lambda w: mj.top_hessian_eigenvalue(loss, w, rtol=config["sharpness_rtol"]))

    def sharp(w):
        return top(w).value

    batch_loss = jax.jit(jax.vmap(loss))
    out = {
        "steps": n.tolist(),
        "h": float(method.h),
        "threshold": float(mj.rod_threshold(method)),
        "loss/iterates": np.asarray(batch_loss(ui)).tolist(),
        "sharpness/iterates": [float(sharp(w)) for w in ui],
    }
    for k in MODELS:
        out[f"loss/{k}"] = np.asarray(batch_loss(sol[k])).tolist()
        out[f"distance/{k}"] = np.asarray(jnp.linalg.norm(ui - sol[k], axis=1)).tolist()
        out[f"average_distance/{k}"] = np.asarray(
            jnp.linalg.norm(average - sol[k], axis=1)
        ).tolist()
    for k in MODELS:  # at the predicted iterate, as for the iterates themselves
        out[f"sharpness/{k}"] = [float(sharp(w)) for w in sol[k]]
        out[f"seconds/{k}"] = seconds[k]
    # the central flow's prediction of the iterates' loss, `Phi(x) + S X/(2 (1 + 2a)^2)`, and the
    # curvature `S` along its tracked direction (what it holds at q*), from its state `(x, v)`
    flow, grow = mj.CentralFlow(), (1.0 + 2.0 * float(method.a)) ** 2
    xs, vs = states["central_flow"]
    var = np.asarray(jax.vmap(lambda x, v: flow.variance(loss, (x, v), method))(xs, vs))
    curv = np.asarray(jax.vmap(lambda x, v: v @ mj.hvp(loss, x, v) / (v @ v))(xs, vs))
    out["predicted_loss/central_flow"] = (
        np.asarray(batch_loss(xs)) + curv * var / (2.0 * grow)
    ).tolist()
    out["tracked_sharpness/central_flow"] = curv.tolist()
    out["summary"] = summarise(out)
    return out


MODELS = ("gradient_flow", "rod_flow", "modified_flow", "rod_modified", "central_flow")
"""The models compared: two stable flows (Thms 2 and 6), the rod flow with each center, and the
central flow."""


def model_objects() -> dict:
    """`{name: model}` for the names of `MODELS` (Fig 15 and `experiments/edge_of_stability.py`
    compare the same objects)."""
    import momentum_jax as mj

    return {
        "gradient_flow": mj.GradientFlow(),
        "rod_flow": mj.RodFlow(),
        "modified_flow": mj.ModifiedFlow(),
        "rod_modified": mj.RodFlow(center="modified"),
        "central_flow": mj.CentralFlow(),
    }


PAIRS = {
    "rod_flow": "gradient_flow",
    "rod_modified": "modified_flow",
    "central_flow": "gradient_flow",
}
"""Each edge-of-stability model and the stable flow it is where no oscillation is present."""


def summarise(out: dict) -> dict:
    """The edge-of-stability phase starts at the first recorded step whose measured sharpness is
    at least 95% of the threshold; the mean distances over it and their ratio."""
    s = np.asarray(out["sharpness/iterates"])
    q = out["threshold"]
    hit = np.nonzero(s >= 0.95 * q)[0]
    res: dict = {"threshold": q, "max_sharpness_over_threshold": float(s.max() / q)}
    if hit.size == 0:
        res["edge_step"] = None
        return res
    k = int(hit[0])
    res["edge_step"] = out["steps"][k]
    for name in MODELS:
        res[f"mean_distance/{name}"] = float(np.mean(out[f"distance/{name}"][k:]))
        res[f"mean_average_distance/{name}"] = float(np.mean(out[f"average_distance/{name}"][k:]))
        res[f"solve_seconds/{name}"] = float(out[f"seconds/{name}"])
        res[f"final_distance/{name}"] = float(out[f"distance/{name}"][-1])
        res[f"late_sharpness_over_threshold/{name}"] = float(
            np.mean(out[f"sharpness/{name}"][k:]) / q
        )
    res["late_sharpness_over_threshold/iterates"] = float(np.mean(s[k:]) / q)
    if "tracked_sharpness/central_flow" in out:  # what the central flow holds at q*
        res["late_tracked_sharpness_over_threshold/central_flow"] = float(
            np.mean(out["tracked_sharpness/central_flow"][k:]) / q
        )
        pred = np.asarray(out["predicted_loss/central_flow"][k:])
        seen = np.asarray(out["loss/iterates"][k:])
        res["mean_predicted_loss_error/central_flow"] = float(np.mean(np.abs(pred - seen) / seen))
        res["mean_position_loss_error/central_flow"] = float(
            np.mean(np.abs(np.asarray(out["loss/central_flow"][k:]) - seen) / seen)
        )
    add_ratios(res)
    return res


def add_ratios(res: dict) -> None:
    """Into `res`, for each pair of `PAIRS`, the ratios edge model / stable flow of its
    `mean_distance/...` (to the iterates) and `mean_average_distance/...` (to their two-step
    average)."""
    for edge, stable in PAIRS.items():
        for measure in ("mean_distance", "mean_average_distance"):
            res[f"{measure}_ratio/{edge}"] = res[f"{measure}/{edge}"] / res[f"{measure}/{stable}"]


def method_at(name: str, lam: float, threshold: float):
    """The method `name` at `lam` with `h` chosen so that its linear-stability threshold is
    `threshold`: `h = 2 (1 + lam)/(threshold (1 + 2a))`."""
    import momentum_jax as mj

    a = lam if name == "nag" else 0.0
    h = 2.0 * (1.0 + lam) / (threshold * (1.0 + 2.0 * a))
    return mj.Momentum(h, lam, a)


def compute(config, ctx):
    loss, w0 = mlp_problem(config["images"], config["sizes"], config["seed"], config["init_scale"])
    runs = config["runs"]
    results = {}
    for name, lam in ctx.progress_iter(runs, "edge of stability runs"):
        method = method_at(name, lam, config["threshold"])
        results[f"{name} lam={lam:g}"] = run_case(loss, w0, method, config)
    arrays = {
        f"{key}|{field}": np.asarray(value)
        for key, r in results.items()
        for field, value in r.items()
        if field != "summary"
    }
    arrays |= _edge_map.cached_toy_map(config, ctx)
    parts = []
    for k, r in results.items():
        ratios = [r["summary"].get(f"mean_distance_ratio/{m}") for m in PAIRS]
        shown = "no edge" if ratios[0] is None else " / ".join(f"{x:.2f}" for x in ratios)
        parts.append(f"{k}: {shown}")
    summary = {
        "runs": {k: r["summary"] for k, r in results.items()},
        "toy_map": _edge_map.maps_summary(arrays),
        "headline": (
            "mean distance over the edge phase, rod / gradient flow, rod (modified center) / "
            "modified flow, central / gradient flow: " + ", ".join(parts)
        ),
    }
    return {"arrays": arrays, "summary": summary}


MAP_RED = {
    "rod": "the onset of the edge mistimed",
    "central": "S held at q* before the\n  iterates oscillate",
}
"""What a red cell of each map means."""


def _plot_map(data, config, axes, model: str) -> None:
    """A map row: log2 of the ratio `model` (a key of `_edge_map.MAP_MODELS`) / gradient flow on
    the toy over `(h, lam)`, with the lines where the threshold equals the start's sharpness
    `s0` (left of it the run is unstable from the start) and the gradient flow's sharpness at
    the end of the run (right of it the edge is never reached)."""
    a = data["arrays"]
    hs, lams = np.asarray(a["map_hs"]), np.asarray(a["map_lams"])
    ratio = a[_edge_map.MAP_MODELS[model]]
    name_of = _edge_map.MAP_LABELS[model]
    lam_line = np.linspace(lams[0], lams[-1], 50)
    mesh = None
    for g, name in enumerate(("hb", "nag")):
        ax = axes[g]
        mesh = ax.pcolormesh(
            np.log2(hs),
            lams,
            np.log2(np.asarray(ratio)[g]),
            cmap="coolwarm",
            vmin=-3,
            vmax=3,
            shading="nearest",
        )
        a_factor = 1.0 if name == "nag" else 0.0
        start = _edge_map.start_threshold_h(lam_line, a_factor)
        end = _edge_map.end_threshold_h(lam_line, a_factor, config["map_steps"])
        ax.plot(np.log2(start), lam_line, "k-", lw=0.8)
        ax.plot(np.log2(end), lam_line, "k--", lw=0.8)
        ax.set_xlim(np.log2(hs[0]) - 0.3, np.log2(hs[-1]) + 0.3)
        ax.set_xlabel("log2 h", fontsize=7)
        ax.set_ylabel("λ", fontsize=7)
        ax.set_title(f"toy, {name.upper()}: log2(max dist {name_of} / gradient flow)", fontsize=8)
    if mesh is not None:
        axes[1].figure.colorbar(mesh, ax=axes[1], shrink=0.8, label="log2 ratio")
    for ax in axes[2:]:
        ax.axis("off")
        ax.text(
            0.0,
            0.5,
            "toy: Φ = -c x + (s0 + x) y²/2 + e y\n"
            f"c={TOY['c']:g}, s0={TOY['s0']:g}, e={TOY['e']:g}, {config['map_steps']} steps\n"
            "solid: q* = s0; to its right the run is\n  unstable from the start\n"
            "dashed: q* = the gradient flow's sharpness\n  at the end; to its left no edge\n"
            f"blue: the {name_of} is closer; red: farther\n  ({MAP_RED[model]});"
            " grey: equal;\n  white: the iterates diverged",
            fontsize=7,
            va="center",
        )


def _runs(data) -> dict:
    """`{run: {field: array}}` from the flat arrays of `compute`, with each run's summary."""
    runs: dict = {}
    for name, value in data["arrays"].items():
        if "|" not in name:
            continue
        key, field = name.split("|", 1)
        runs.setdefault(key, {})[field] = np.asarray(value)
    for key in runs:
        runs[key]["summary"] = data["summary"]["runs"][key]
    return runs


def plot(data, config, path):
    from momentum_jax.plotting import new_figure, save_figure

    runs = _runs(data)
    fig, axes = new_figure(5, max(len(runs), 3), width=3.6, height=2.6, layout="constrained")
    colors = {
        "iterates": "k",
        "gradient_flow": "tab:blue",
        "rod_flow": "tab:red",
        "modified_flow": "tab:cyan",
        "rod_modified": "tab:orange",
        "central_flow": "tab:green",
    }
    labels = {
        "iterates": "iterates",
        "gradient_flow": "gradient flow",
        "rod_flow": "rod flow",
        "modified_flow": "modified flow",
        "rod_modified": "rod flow, modified center",
        "central_flow": "central flow",
    }
    shown = ("iterates", *MODELS)
    for col, (key, r) in enumerate(runs.items()):
        steps = np.asarray(r["steps"])
        ax = axes[0, col]
        for k in shown:
            ax.plot(steps, r[f"sharpness/{k}"], color=colors[k], lw=1.0, label=labels[k])
        ax.axhline(float(r["threshold"]), color="0.5", ls="--", lw=0.8, label="2(1+λ)/(h(1+2a))")
        ax.set_title(f"{key}: sharpness", fontsize=8)
        ax = axes[1, col]
        for k in shown:
            ax.semilogy(steps, r[f"loss/{k}"], color=colors[k], lw=1.0, label=labels[k])
        if "predicted_loss/central_flow" in r:
            ax.semilogy(
                steps,
                r["predicted_loss/central_flow"],
                color=colors["central_flow"],
                ls="--",
                lw=1.0,
                label="central flow, Φ + S X/(2(1+2a)²)",
            )
        ax.set_title("loss (solid: at each model's position)", fontsize=8)
        ax = axes[2, col]
        for k in MODELS:
            ax.plot(steps, r[f"distance/{k}"], color=colors[k], lw=1.0, label=labels[k])
        ratios = [r["summary"].get(f"mean_distance_ratio/{m}") for m in PAIRS]
        title = "|u_n - u(nh)|"
        if ratios[0] is not None:
            title += "; edge ratios " + ", ".join(f"{x:.2f}" for x in ratios)
        edge = r["summary"].get("edge_step")
        if edge is not None:
            ax.axvline(edge, color="0.5", ls=":", lw=0.8)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("step n (dotted: sharpness at 95% of q*)", fontsize=7)
    for col in range(len(runs), axes.shape[1]):
        for row in range(3):
            axes[row, col].axis("off")
    axes[0, 0].legend(fontsize=6)
    axes[1, 0].legend(fontsize=6)
    axes[2, 0].legend(fontsize=6)
    _plot_map(data, config, axes[3], "rod")
    _plot_map(data, config, axes[4], "central")
    fig.suptitle(
        f"Edge of stability, digits MLP {config['images']} images, full batch, "
        f"threshold {config['threshold']:g}",
        fontsize=9,
    )
    save_figure(fig, path)


if __name__ == "__main__":
    script_main(__name__)
