"""The toy regime map of the edge of stability, shared by Fig 14 (its last row) and Fig 15 (its
last rows): over a grid of `(h, lam)`, HB and NAG on the toy `toy_loss` against the rescaled
gradient flow, the rod flow and the central flow (docs/edge_of_stability.md), in one `sweep`."""

from __future__ import annotations

import numpy as np

TOY = {"c": 0.05, "s0": 15.0, "e": 0.01}
"""The toy `Phi(x, y) = -c x + (s0 + x) y^2 / 2 + e y` (`toy_loss`): its sharpness `s0 + x` grows
along the gradient flow at the rate `c lbar`; `e` keeps `y` off its invariant line `y = 0`."""
START = (0.0, 0.1)
"""The start `(x, y)` of every run of the map."""
METHODS = ("hb", "nag")
"""The methods of the map, in the order of its first axis."""
GRID = {
    "map_h_exponents": [-6.0, -2.5],
    "map_points_h": 8,
    "map_lams": [0.0, 0.9],
    "map_points_lam": 7,
    "map_steps": 400,
    "map_rtol": 1e-6,
    "map_atol": 1e-9,
}
"""The map's grid and solver tolerances, the configuration keys of Figs 14 and 15
(`toy_map_of`)."""


def toy_loss(u):
    """The toy potential of `TOY` at `u = (x, y)`."""
    return -TOY["c"] * u[0] + 0.5 * (TOY["s0"] + u[0]) * u[1] ** 2 + TOY["e"] * u[1]


def toy_map_of(config) -> dict:
    """`toy_map` on the grid of a figure's configuration (the keys of `GRID`)."""
    return toy_map(
        config["map_h_exponents"],
        config["map_points_h"],
        config["map_lams"],
        config["map_points_lam"],
        steps=config["map_steps"],
        rtol=config["map_rtol"],
        atol=config["map_atol"],
    )


OWNER = "fig14_regime_map"
"""The figure under whose name the toy map is cached (`cached_toy_map`)."""


def cached_toy_map(config, ctx) -> dict:
    """`toy_map_of(config)`, cached once for Figs 14 and 15 (under Fig 14, `ctx.of`): the two
    figures draw the same map."""
    key = {k: config[k] for k in GRID}
    owner = ctx.of(OWNER)
    return owner.cached("toy-map", key, lambda: {"arrays": toy_map_of(config)})["arrays"]


def toy_map(h_exponents, points_h: int, lams, points_lam: int, *, steps: int, rtol, atol) -> dict:
    """Over `points_h` values of `h` in `2^h_exponents` (log-spaced) and `points_lam` of `lam`
    in `lams` (linear), HB and NAG on the toy for `steps` steps from `START`, in one `sweep`:
    the largest distance of the iterates (every second step) to the rod flow, to the central
    flow and to the rescaled gradient flow, and the ratios edge model / gradient flow (NaN
    where the iterates diverged).

    **Returns:** `{"map_hs", "map_lams", "map_ratio", "map_ratio_central"}`: the ratios of the
    rod flow and of the central flow, each of shape `(2, points_lam, points_h)` (method, `lam`,
    `h`)."""
    import jax.numpy as jnp

    import momentum_jax as mj

    lo, hi = h_exponents
    hs = 2.0 ** np.linspace(float(lo), float(hi), points_h)
    lam_lo, lam_hi = lams
    lam_grid = np.linspace(float(lam_lo), float(lam_hi), points_lam)
    sw = mj.sweep(
        toy_loss,
        jnp.array(START),
        hs=hs,
        lams=lam_grid,
        methods=METHODS,
        steps=steps,
        record_every=2,
        models=("gradient_flow", "rod_flow", "central_flow"),
        min_loss=False,
        solver=mj.SolverConfig(rtol=rtol, atol=atol),
    )
    dist = sw.distances
    assert dist is not None  # the sweep measured the three models
    stable = dist["gradient_flow"][..., 0]
    return {
        "map_hs": hs,
        "map_lams": lam_grid,
        "map_ratio": dist["rod_flow"][..., 0] / stable,
        "map_ratio_central": dist["central_flow"][..., 0] / stable,
    }


MAP_MODELS = {"rod": "map_ratio", "central": "map_ratio_central"}
"""The edge-of-stability models of the map (the prefix of their counts in `map_summary`) and
the array of their ratio to the gradient flow."""
MAP_LABELS = {"rod": "rod flow", "central": "central flow"}
"""The names of the maps' models in the figures."""
TIE = 0.01
"""Ratios within this of 1 count as a tie in `map_summary`: where the sharpness never reaches
the threshold, the edge models are the gradient flow, and their ratios differ from 1 by the
solver's tolerance only."""


def map_summary(ratio, model: str = "rod") -> dict:
    """Per method, of the grid points of the toy map that did not diverge: how many the edge
    model `model` (a key of `MAP_MODELS`) beats the gradient flow at by more than `TIE` (and by
    2x), ties with it (within `TIE`), and loses at by more than 5%."""
    out = {}
    for g, name in enumerate(METHODS):
        r = np.asarray(ratio)[g]
        ok = np.isfinite(r)
        out[name] = {
            "points": int(ok.sum()),
            f"{model}_better_by_1_percent": int(np.sum(r[ok] < 1.0 - TIE)),
            f"{model}_twice_better": int(np.sum(r[ok] < 0.5)),
            "tie_within_1_percent": int(np.sum(np.abs(r[ok] - 1.0) <= TIE)),
            f"{model}_worse_by_5_percent": int(np.sum(r[ok] > 1.05)),
            "largest_ratio": float(np.max(r[ok])) if ok.any() else None,
            "median_ratio": float(np.median(r[ok])) if ok.any() else None,
        }
    return out


def maps_summary(arrays) -> dict:
    """`map_summary` of every model of `MAP_MODELS` from the arrays of `toy_map`."""
    return {model: map_summary(arrays[key], model) for model, key in MAP_MODELS.items()}


def start_threshold_h(lams, a_factor: float):
    """The `h` at which the method's linear-stability threshold `2 (1 + lam)/(h (1 + 2a))`
    (`a = a_factor lam`: 0 for HB, 1 for NAG) equals the start's sharpness `s0`: to its right
    the run is unstable from the first step."""
    lams = np.asarray(lams, dtype=float)
    return 2.0 * (1.0 + lams) / ((1.0 + 2.0 * a_factor * lams) * TOY["s0"])


def end_threshold_h(lams, a_factor: float, steps: int):
    """The `h` at which the gradient flow's sharpness after `steps` steps, `s0 + c steps h
    lbar`, equals the threshold `2 (1 + lam)/(h (1 + 2a))`: the root of a quadratic in `h`. To
    its left the sharpness never reaches the threshold within the run (no edge of stability)."""
    lams = np.asarray(lams, dtype=float)
    s0, c = TOY["s0"], TOY["c"]
    grow = 1.0 + 2.0 * a_factor * lams
    below = lams < 1.0  # a plot's lam axis may reach 1, where lbar is infinite: no line there
    a2 = c * steps / np.where(below, 1.0 - lams, 1.0)
    h = (-s0 + np.sqrt(s0**2 + 4.0 * a2 * 2.0 * (1.0 + lams) / grow)) / (2.0 * a2)
    return np.where(below, h, np.nan)
