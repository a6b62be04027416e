"""The result of a sweep: per grid point `(method, lam, h, seed)` the final and minimum loss (over
every step), the step at which the run diverged, and, where asked, the loss curve on a coarse grid
of steps, the sharpness at chosen steps and the distance to continuous-time models."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._io import as_float_array

SWEEP_FORMAT = "momentum_jax.sweep"


@dataclasses.dataclass
class Sweep:
    """What `sweep` returns. Every array has the leading axes `(method, lam, h, seed)` in that
    order (`len(methods), len(lams), len(hs), len(seeds)`).

    **Attributes:**

    - `methods`, `lams`, `hs`, `seeds`: the named axes.
    - `steps`: the number of steps every point ran, all of them whatever `record_every` (a
      point that diverged is frozen from its divergence on).
    - `final_loss`: the full loss after step `steps` (after a divergence at step `n`: of the
      last bounded parameters `u_{n-1}`, where a loss that is not finite everywhere may itself
      be NaN; the point is flagged in `diverged_at` either way).
    - `min_loss`: `min_k loss(u_k)` of the full loss over every step `k = 0 .. steps`
      (`0 .. n-1` after a divergence at step `n`), as `iterate_final(...).min_loss`. None for a
      sweep on mini-batches (`batch_size` below the number of examples), where the full loss
      is not evaluated at every step: take the minimum of `curve` instead.
    - `diverged_at`: the first step `n` whose iterate `u_n` was not finite or had norm above
      `divergence_limit * max(1, |u_0|)`, `-1` if none (the rule of `iterate_final`, `train`
      and `convergence_study`, `momentum_jax._divergence`).
    - `curve_steps`, `curve`: the loss after the steps `curve_steps` (the multiples of
      `record_every` up to `steps`; the coarse time grid is `t = curve_steps * h`), shape
      `(..., len(curve_steps))`; NaN from the divergence step on. None when not asked for.
    - `sharpness_steps`, `sharpness`: the top Hessian eigenvalue of the loss after those steps,
      `(..., len(sharpness_steps))`; NaN after a divergence. None when not asked for.
    - `sharpness_residual`: beside `sharpness`, the relative residual `||H v - s v|| / |s|` of
      each value (`TopEigenpair.residual`); a value whose residual is above
      `config["sharpness_rtol"]` did not converge (`sharpness_converged`). None when not
      recorded (no sharpness, or a file written before it was kept).
    - `distances[model]`: `max_k |u_{n_k} - u(n_k h)|` over the curve steps `n_k` (all of them
      when there is no curve: the final step only), NaN where the run diverged or the solve
      failed. None when no model was asked for.
    - `config`, `meta`: the configuration and provenance (versions, date).
    """

    methods: tuple[str, ...]
    lams: np.ndarray
    hs: np.ndarray
    seeds: np.ndarray
    steps: int
    final_loss: np.ndarray
    min_loss: np.ndarray | None
    diverged_at: np.ndarray
    curve_steps: np.ndarray | None
    curve: np.ndarray | None
    sharpness_steps: np.ndarray | None
    sharpness: np.ndarray | None
    distances: dict[str, np.ndarray] | None
    config: dict[str, Any]
    meta: dict[str, Any]
    sharpness_residual: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.methods), self.lams.size, self.hs.size, self.seeds.size)

    @property
    def sharpness_converged(self) -> np.ndarray | None:
        """Boolean, shaped like `sharpness`: the value reached the relative residual
        `config["sharpness_rtol"]` (False at diverged points, whose sharpness is NaN). None
        without a recorded residual."""
        if self.sharpness_residual is None or "sharpness_rtol" not in self.config:
            return None
        with np.errstate(invalid="ignore"):
            return np.asarray(self.sharpness_residual <= self.config["sharpness_rtol"])

    @property
    def diverged(self) -> np.ndarray:
        """Boolean `(method, lam, h, seed)`: the run diverged."""
        return self.diverged_at >= 0

    def summary_line(self) -> str:
        total, div = self.diverged_at.size, int(np.sum(self.diverged))
        return f"{total} runs of {self.steps} steps; {div} diverged"

    def to_dict(self) -> dict:
        """The open representation written by `save` to a `.json` file."""
        return {
            "format": SWEEP_FORMAT,
            "version": 1,
            "axes": {
                "method": list(self.methods),
                "lam": self.lams,
                "h": self.hs,
                "seed": self.seeds,
            },
            "steps": self.steps,
            "final_loss": self.final_loss,
            "min_loss": self.min_loss,
            "diverged_at": self.diverged_at,
            "curve_steps": self.curve_steps,
            "curve": self.curve,
            "sharpness_steps": self.sharpness_steps,
            "sharpness": self.sharpness,
            "sharpness_residual": self.sharpness_residual,
            "distances": self.distances,
            "config": self.config,
            "meta": self.meta,
        }

    def save(self, path) -> None:
        """Write the sweep atomically: JSON for a `.json` path, netCDF for `.nc` (needs the
        `xarray` extra); any other suffix raises `ValueError` naming the path and the allowed
        suffixes, before anything is written (the rule of `Study.save`)."""
        from .._labelled import save_labelled

        save_labelled(self, path)

    def to_xarray(self):
        """The sweep as an `xarray.Dataset` with the coordinates `optimizer` (the methods:
        `method` is a keyword of xarray's `.sel`), `lam`, `h`, `seed`, each of which selects by
        keyword (`ds.final_loss.sel(optimizer="hb", lam=0.5, h=0.1)`), and, where recorded,
        `step` with the 2-D coordinate `t = h * step` on `(h, step)` (the curve),
        `sharpness_step` with `sharpness_t`, and `model` (the distances); the layout is in
        `momentum_jax._labelled`.

        **Returns:** an `xarray.Dataset` of `final_loss`, `min_loss`, `diverged_at` and the
        optional `curve`, `sharpness`, `distance`; `steps` is an attribute, `config` and `meta`
        JSON string attributes. Needs the `xarray` extra (`ImportError` with the install hint
        otherwise).
        """
        from .._labelled import to_xarray

        return to_xarray(self)

    def plot(self, quantity: str = "final_loss", **kw):
        """Heat maps of `quantity` over `(h, lam)`, one per method, diverged cells masked and
        marked: `momentum_jax.plotting.plot_sweep`.

        **Arguments:** `quantity` and the keywords of `plot_sweep` (`method`, `seed`, `ax`,
        `log`, `thresholds`).

        **Returns:** a matplotlib `Figure` (nothing is shown).
        """
        from ..plotting import plot_sweep

        return plot_sweep(self, quantity, **kw)


def sweep_from_dict(d: dict, path) -> Sweep:
    """A `Sweep` from `to_dict`'s representation; `ValueError` naming `path` if malformed."""
    try:
        if d.get("version") != 1:
            raise ValueError(f"version {d.get('version')!r} is not 1")
        methods = tuple(d["axes"]["method"])
        lams, hs = as_float_array(d["axes"]["lam"]), as_float_array(d["axes"]["h"])
        seeds = np.asarray(d["axes"]["seed"], dtype=int)
        shape = (len(methods), lams.size, hs.size, seeds.size)

        def grid(name, dtype=float, extra=None):
            value = d.get(name)
            if value is None:
                return None
            arr = as_float_array(value) if dtype is float else np.asarray(value, dtype=dtype)
            want = shape if extra is None else shape + (extra,)
            if arr.shape != want:
                raise ValueError(f"{name} has shape {arr.shape}, the axes give {want}")
            return arr

        curve_steps = None if d.get("curve_steps") is None else np.asarray(d["curve_steps"], int)
        sharp_steps = (
            None if d.get("sharpness_steps") is None else np.asarray(d["sharpness_steps"], int)
        )
        distances = d.get("distances")
        return Sweep(
            methods=methods,
            lams=lams,
            hs=hs,
            seeds=seeds,
            steps=int(d["steps"]),
            final_loss=grid("final_loss"),
            min_loss=grid("min_loss"),
            diverged_at=grid("diverged_at", int),
            curve_steps=curve_steps,
            curve=grid("curve", extra=None if curve_steps is None else curve_steps.size),
            sharpness_steps=sharp_steps,
            sharpness=grid("sharpness", extra=None if sharp_steps is None else sharp_steps.size),
            sharpness_residual=grid(
                "sharpness_residual", extra=None if sharp_steps is None else sharp_steps.size
            ),
            distances=None
            if distances is None
            else {m: grid_value(v, shape, m) for m, v in distances.items()},
            config=d["config"],
            meta=d["meta"],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: malformed sweep file ({type(e).__name__}: {e})") from None


def grid_value(value, shape, name) -> np.ndarray:
    arr = as_float_array(value)
    if arr.shape != shape:
        raise ValueError(f"distances[{name!r}] has shape {arr.shape}, the axes give {shape}")
    return arr


def load_sweep(path) -> Sweep:
    """Read a sweep written by `Sweep.save` (`.json` or `.nc`); nothing is ever unpickled."""
    from .._labelled import load_labelled

    return load_labelled(path, kind=SWEEP_FORMAT)
