"""The result of a sweep: per grid point `(method, lam, h, seed)` the final and minimum loss (over
every step), the step at which the run diverged, and, where asked, the loss curve on a coarse grid
of steps, the sharpness at chosen steps and the distance to continuous-time models."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._io import as_float_array
from .._labelled import (
    METHOD_DIM,
    int_attr,
    integer_coordinate,
    json_attr,
    json_value,
    labels,
    load_result,
    save_result,
    strings,
    values,
    xarray,
)

SWEEP_FORMAT = "momentum_jax.sweep"
VERSION = 1
"""The version of the sweep format (the one this code writes and reads)."""

_DIMS = (METHOD_DIM, "lam", "h", "seed")
_RECORDED = (
    ("curve", "curve_steps", "step", "t"),
    ("sharpness", "sharpness_steps", "sharpness_step", "sharpness_t"),
)
"""The recorded quantities: name, their steps, the steps' dimension, the time coordinate."""


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
      and `convergence_study`).
    - `curve_steps`, `curve`: the loss after the steps `curve_steps` (the multiples of
      `record_every` up to `steps`; the coarse time grid is `t = curve_steps * h`), shape
      `(..., len(curve_steps))`; NaN from the divergence step on. None when not asked for
      (`gap_to` alone asks for it at the final step).
    - `sharpness_steps`, `sharpness`: the top Hessian eigenvalue of the loss after those steps,
      `(..., len(sharpness_steps))`; NaN after a divergence. None when not asked for.
    - `sharpness_residual`: beside `sharpness`, the relative residual `||H v - s v|| / |s|` of
      each value (`TopEigenpair.residual`); a value whose residual is above
      `config["sharpness_rtol"]` did not converge (`sharpness_converged`). None when not
      recorded (no sharpness, or a file written before it was kept).
    - `distances[model]`: `max_k |u_{n_k} - u(n_k h)|` over the curve steps `n_k` (all of them
      when there is no curve: the final step only), NaN where the run diverged or the solve
      failed. None when no model was asked for.
    - `gaps`: with `gap_to`, `|u_n - u'_n|` of every run to the run of the method
      `config["gap_to"]` at the same `(lam, h, seed)` after the steps `curve_steps`, shape
      `(..., len(curve_steps))` (0 on that method's own row); NaN from the step on which either
      run diverged. None when not asked for.
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
    gaps: np.ndarray | None = None

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
            "version": VERSION,
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
            "gaps": self.gaps,
            "config": self.config,
            "meta": self.meta,
        }

    def table(self) -> str:
        """A few lines per method: the runs that diverged, the lowest final loss and where, and
        per `lam` the largest `h` whose runs stayed bounded (`nan` where none did)."""
        lines = [self.summary_line()]
        for i, method in enumerate(self.methods):
            diverged = self.diverged[i]
            final = np.where(diverged, np.inf, self.final_loss[i])
            j, k, s = np.unravel_index(np.argmin(final), final.shape)
            stable = ~diverged.any(axis=-1)  # (lam, h)
            largest = [float(self.hs[row].max()) if row.any() else float("nan") for row in stable]
            lines.append(
                f"{method:>12}: {int(diverged.sum())} of {diverged.size} diverged; "
                f"lowest final loss {final[j, k, s]:.4g} at lam={self.lams[j]:.3g}, "
                f"h={self.hs[k]:.3g}; largest h that stayed bounded, per lam: "
                + ", ".join(f"{lam:.3g}:{h:.3g}" for lam, h in zip(self.lams, largest))
            )
        return "\n".join(lines)

    def save(self, path) -> None:
        """Write the sweep atomically: JSON for a `.json` path, netCDF for `.nc` (needs the
        `xarray` extra); any other suffix raises `ValueError` naming the path and the allowed
        suffixes, before anything is written (the rule of `Study.save`)."""
        save_result(path, self.to_dict, self.to_xarray)

    def to_xarray(self) -> Any:
        """The sweep as an `xarray.Dataset`: coordinates `optimizer` (the methods: `method` is
        a keyword of xarray's `.sel`), `lam`, `h`, `seed`, each of which selects by keyword
        (`ds.final_loss.sel(optimizer="hb", lam=0.5, h=0.1)`), and, where recorded, `step` with
        the 2-D coordinate `t = h * step` on `(h, step)` (the time of a curve point depends on
        `h`), `sharpness_step` with `sharpness_t` on `(h, sharpness_step)`, and `model`.

        **Returns:** an `xarray.Dataset` of `final_loss`, `min_loss` (where recorded) and
        `diverged_at` (integers, `-1` if not) on `(optimizer, lam, h, seed)`; where recorded,
        `curve` on `(..., step)`, `sharpness` and `sharpness_residual` on
        `(..., sharpness_step)`, `gap` on `(..., step)`, `distance` on `(model, optimizer, lam,
        h, seed)`. The attributes `format`, `version` and `steps`, and `config` and `meta` (JSON
        strings), make it a complete record. Needs the `xarray` extra (`ImportError` with the
        install hint otherwise).
        """
        xr = xarray()
        hs = np.asarray(self.hs, dtype=float)
        coords: dict[str, Any] = {
            METHOD_DIM: strings(self.methods),
            "lam": np.asarray(self.lams, dtype=float),
            "h": hs,
            "seed": np.asarray(self.seeds, dtype=np.int64),
        }
        data: dict[str, Any] = {"final_loss": (_DIMS, np.asarray(self.final_loss, dtype=float))}
        if self.min_loss is not None:  # None with mini-batches (the full loss is not evaluated)
            data["min_loss"] = (_DIMS, np.asarray(self.min_loss, dtype=float))
        data["diverged_at"] = (_DIMS, np.asarray(self.diverged_at, np.int64), {"missing": -1})
        for name, steps_name, dim, t_name in _RECORDED:
            recorded, steps = getattr(self, name), getattr(self, steps_name)
            if steps is not None:
                steps = np.asarray(steps, dtype=np.int64)
                coords[dim] = steps
                coords[t_name] = (
                    ("h", dim),
                    hs[:, None] * steps[None, :],
                    {"long_name": "h * step"},
                )
            if recorded is not None:
                if steps is None:
                    raise ValueError(f"Sweep.{name} is set but Sweep.{steps_name} is None")
                data[name] = ((*_DIMS, dim), np.asarray(recorded, dtype=float))
        if self.sharpness_residual is not None and self.sharpness_steps is not None:
            data["sharpness_residual"] = (
                (*_DIMS, "sharpness_step"),
                np.asarray(self.sharpness_residual, dtype=float),
            )
        if self.gaps is not None:
            if self.curve_steps is None:
                raise ValueError("Sweep.gaps is set but Sweep.curve_steps is None")
            data["gap"] = ((*_DIMS, "step"), np.asarray(self.gaps, dtype=float))
        if self.distances:
            models = list(self.distances)
            coords["model"] = strings(models)
            data["distance"] = (
                ("model", *_DIMS),
                np.stack([np.asarray(self.distances[m], dtype=float) for m in models]),
            )
        attrs = {
            "format": SWEEP_FORMAT,
            "version": VERSION,
            "steps": int(self.steps),
            "config": json_attr(self.config),
            "meta": json_attr(self.meta),
        }
        return xr.Dataset(data, coords=coords, attrs=attrs)

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
        if d.get("version") != VERSION:
            raise ValueError(f"version {d.get('version')!r} is not {VERSION}")
        methods = tuple(d["axes"]["method"])
        lams, hs = as_float_array(d["axes"]["lam"]), as_float_array(d["axes"]["h"])
        seeds = np.asarray(d["axes"]["seed"], dtype=int)
        shape = (len(methods), lams.size, hs.size, seeds.size)

        def grid(name, dtype=float, extra=None, value=None):
            value = d.get(name) if value is None else value
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
            gaps=grid("gaps", extra=None if curve_steps is None else curve_steps.size),
            distances=None
            if distances is None
            else {m: grid(f"distances[{m!r}]", value=v) for m, v in distances.items()},
            config=d["config"],
            meta=d["meta"],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: malformed sweep file ({type(e).__name__}: {e})") from None


def load_sweep(path) -> Sweep:
    """Read a sweep written by `Sweep.save` (`.json` or `.nc`); nothing is ever unpickled."""
    return load_result(path, SWEEP_FORMAT, sweep_from_dict, _dataset_dict)


def _dataset_dict(ds) -> dict:
    """`to_dict`'s representation of a dataset written by `Sweep.to_xarray` (as read from a
    netCDF file), for `sweep_from_dict` to validate."""
    data: dict[str, Any] = {"final_loss": values(ds, "final_loss", _DIMS)}
    if "min_loss" in ds.data_vars:  # absent for a sweep on mini-batches
        data["min_loss"] = values(ds, "min_loss", _DIMS)
    for name, steps_name, dim, _ in _RECORDED:
        data[steps_name] = integer_coordinate(ds, dim) if dim in ds.coords else None
        data[name] = values(ds, name, (*_DIMS, dim)) if name in ds.data_vars else None
    if "sharpness_residual" in ds.data_vars:
        data["sharpness_residual"] = values(ds, "sharpness_residual", (*_DIMS, "sharpness_step"))
    if "gap" in ds.data_vars:
        data["gaps"] = values(ds, "gap", (*_DIMS, "step"))
    distances = None
    if "distance" in ds.data_vars:
        arr = values(ds, "distance", ("model", *_DIMS))
        distances = {m: arr[i] for i, m in enumerate(labels(ds, "model"))}
    return data | {
        "format": SWEEP_FORMAT,
        "version": int_attr(ds, "version"),
        "axes": {
            "method": labels(ds, METHOD_DIM),
            "lam": ds["lam"].values,
            "h": ds["h"].values,
            "seed": integer_coordinate(ds, "seed"),
        },
        "steps": int_attr(ds, "steps"),
        "diverged_at": values(ds, "diverged_at", _DIMS, integer=True),
        "distances": distances,
        "config": json_value(ds, "config"),
        "meta": json_value(ds, "meta"),
    }
