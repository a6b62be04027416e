"""The result of a convergence study: errors on a named grid, rates, fitted orders, status,
and its open JSON format."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import diffrax
import numpy as np

from .._io import as_float_array, dump_json, load_json
from .._rates import fit_order, observed_rates

STUDY_FORMAT = "momentum_jax.study"


def result_message(code: int) -> str:
    """diffrax's own text for an integer `RESULTS` code."""
    messages = diffrax.RESULTS._index_to_message
    msg = messages[code] if 0 <= code < len(messages) else ""
    return msg.strip() or f"diffrax result code {code}"


@dataclasses.dataclass
class Study:
    """The result of `convergence_study`.

    **Attributes:**

    - `methods`, `lams`, `hs`, `models`: the named axes of every array below, in that order.
    - `errors[model]`: shape `(len(methods), len(lams), len(hs))`, each entry
      `max over n h <= T of |u_n - u(n h)|` (Euclidean over all leaves); `nan` where the point is
      not valid for that model (see `status`).
    - `diverged_at`: the first step at which the discrete run was not finite or exceeded
      the divergence limit in norm, `-1` if it did not diverge.
    - `solver_failure[model]`: diffrax's reason where the model's solve failed, `""` otherwise.
    - `config`: the study's configuration; `meta`: package versions and the date.
    """

    methods: tuple[str, ...]
    lams: np.ndarray
    hs: np.ndarray
    models: tuple[str, ...]
    errors: dict[str, np.ndarray]
    diverged_at: np.ndarray
    solver_failure: dict[str, np.ndarray]
    config: dict[str, Any]
    meta: dict[str, Any]
    fit_points: int = 4
    solver_steps: dict[str, np.ndarray] | None = None
    """Per model, the solver steps its solve took at each grid point (a solve shared by every
    point reports its own count everywhere); None for a study loaded from a file that has none."""

    def valid(self, model: str) -> np.ndarray:
        """Boolean mask of the grid points whose `errors[model]` enter rates and fits."""
        return (self.diverged_at < 0) & (self.solver_failure[model] == "")

    @property
    def status(self) -> np.ndarray:
        """Per grid point: `"ok"`, `"diverged at step N"` or `"solver failed (model): reason"`."""
        out = np.full(self.diverged_at.shape, "ok", dtype=object)
        for model in self.models:
            bad = self.solver_failure[model] != ""
            out[bad] = [f"solver failed ({model}): {r}" for r in self.solver_failure[model][bad]]
        div = self.diverged_at >= 0
        out[div] = [f"diverged at step {n}" for n in self.diverged_at[div]]
        return out

    @property
    def rates(self) -> dict[str, np.ndarray]:
        """`Delta = log(E(h_i) / E(h_{i+1})) / log(h_i / h_{i+1})` along the `hs` axis (for halving
        `h` this is the paper's `log2(E(h) / E(h/2))`); shape `(..., len(hs) - 1)`, `nan` where
        either end is not valid."""
        return {m: observed_rates(self.hs, self.errors[m], self.valid(m)) for m in self.models}

    @property
    def orders(self) -> dict[str, np.ndarray]:
        """Least-squares slope of `log E` against `log h` over the `fit_points` smallest valid `hs`
        of each `(method, lam)`; shape `(len(methods), len(lams))`."""
        return {
            m: fit_order(self.hs, self.errors[m], self.fit_points, self.valid(m))
            for m in self.models
        }

    def summary_line(self) -> str:
        """One line counting the grid points and those excluded."""
        total = self.diverged_at.size
        div = int(np.sum(self.diverged_at >= 0))
        fails = {m: int(np.sum(self.solver_failure[m] != "")) for m in self.models}
        failed = ", ".join(f"{m}: {n}" for m, n in fails.items() if n) or "none"
        return (
            f"{total} grid points; {div} diverged (excluded from rates and fits); "
            f"solver failures: {failed}"
        )

    def table(self) -> str:
        """A plain-text table of errors, rates and fitted orders."""
        lines = [self.summary_line()]
        rates, orders = self.rates, self.orders
        for model in self.models:
            lines.append(f"\nmodel {model}")
            lines.append(f"{'method':>6} {'lam':>6} {'h':>10} {'error':>12} {'rate':>7}  status")
            for i, meth in enumerate(self.methods):
                for j, lam in enumerate(self.lams):
                    for k, h in enumerate(self.hs):
                        rate = f"{rates[model][i, j, k - 1]:7.3f}" if k else f"{'-':>7}"
                        st = self.status[i, j, k]
                        lines.append(
                            f"{meth:>6} {lam:6.3g} {_fmt_h(h):>10} "
                            f"{self.errors[model][i, j, k]:12.4e} {rate}  {st}"
                        )
                    lines.append(
                        f"{meth:>6} {lam:6.3g} fitted order over the {self.fit_points} "
                        f"smallest h: {orders[model][i, j]:.3f}"
                    )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The open representation written by `save` (named axes, configuration, provenance)."""
        return {
            "format": STUDY_FORMAT,
            "version": 2,
            "axes": {"method": list(self.methods), "lam": self.lams, "h": self.hs},
            "models": list(self.models),
            "errors": self.errors,
            "rates": self.rates,
            "orders": self.orders,
            "diverged_at": self.diverged_at,
            "solver_failure": {m: self.solver_failure[m].tolist() for m in self.models},
            "status": self.status.tolist(),
            "fit_points": self.fit_points,
            "solver_steps": self.solver_steps,
            "config": self.config,
            "meta": self.meta,
        }

    def save(self, path) -> None:
        """Write the study atomically (a temporary file renamed into place), in the format the
        suffix names.

        **Arguments:**

        - `path`: ending in `.nc`: netCDF-4 of `to_xarray` (needs the `xarray` extra,
          `pip install "momentum_jax[xarray]"`); any other path (`.json` by convention): the
          open JSON format of `to_dict`, the default, as before (so `momentum-jax study --out
          FILE` keeps writing JSON whatever the name). `load_study` reads either back.
        """
        if Path(path).suffix.lower() == ".nc":
            from .._labelled import save_labelled

            save_labelled(self, path)
        else:
            dump_json(path, self.to_dict())

    def to_xarray(self):
        """The study as an `xarray.Dataset` with the coordinates `model`, `method`, `lam`, `h`
        and `h_pair` (the larger `h` of each pair the `rates` compare; the smaller one is the
        coordinate `h_next`); the layout is in `momentum_jax._labelled`.

        **Returns:** an `xarray.Dataset` of `errors`, `rates`, `orders`, `diverged_at`, `status`,
        `solver_failure` and, where recorded, `solver_steps`; `config` and `meta` are JSON string
        attributes. Needs the `xarray` extra (`ImportError` with the install hint otherwise).
        """
        from .._labelled import to_xarray

        return to_xarray(self)

    def plot(self, **kw):
        """Errors against `h` with the fitted slopes (top row) and the observed rates `Delta(h)`
        (bottom row), one column per model: `momentum_jax.plotting.plot_study`.

        **Arguments:** the keywords of `plot_study` (`models`, `methods`, `lams`, `fit`).

        **Returns:** a matplotlib `Figure` (nothing is shown).
        """
        from ..plotting import plot_study

        return plot_study(self, **kw)


def _fmt_h(h: float) -> str:
    e = math.log2(h)
    return f"2^{int(e)}" if e == int(e) else f"{h:.4g}"


def load_study(path) -> Study:
    """Read a study written by `Study.save`: netCDF for a `.nc` path (needs the `xarray` extra),
    JSON otherwise. Corrupted, truncated, edited or foreign files raise `ValueError` naming the
    file and what is wrong (format, version, shapes, ranges); nothing is ever unpickled."""
    if Path(path).suffix.lower() == ".nc":
        from .._labelled import load_labelled

        return load_labelled(path, kind=STUDY_FORMAT)
    return study_from_dict(load_json(path, kind=STUDY_FORMAT), path)


def study_from_dict(d: dict, path) -> Study:
    """A `Study` from `to_dict`'s representation (as read from JSON or netCDF), validated;
    `ValueError` naming `path` if malformed."""
    try:
        version = d["version"]
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"version {version!r} is not one of {list(SUPPORTED_VERSIONS)}")
        models = tuple(d["models"])
        methods = tuple(d["axes"]["method"])
        lams = as_float_array(d["axes"]["lam"])
        hs = as_float_array(d["axes"]["h"])
        shape = (len(methods), lams.size, hs.size)
        if lams.ndim != 1 or hs.ndim != 1 or not models or not methods:
            raise ValueError("the axes must be non-empty lists")
        if not np.all(np.isfinite(hs)) or np.any(hs <= 0) or np.any(np.diff(hs) >= 0):
            raise ValueError("axis h must hold finite, positive, strictly decreasing values")
        if not np.all(np.isfinite(lams)) or np.any((lams < 0) | (lams >= 1)):
            raise ValueError("axis lam must hold values in [0, 1)")
        errors = {
            m: _shaped(as_float_array(d["errors"][m]), shape, f"errors[{m!r}]") for m in models
        }
        diverged = _shaped(np.asarray(d["diverged_at"], dtype=float), shape, "diverged_at")
        if (
            not np.all(np.isfinite(diverged))
            or np.any(diverged != np.round(diverged))
            or np.any(diverged < -1)
        ):
            raise ValueError("diverged_at must hold integers >= -1")
        failures = {
            m: _shaped(
                np.asarray(d["solver_failure"][m], dtype=object), shape, f"solver_failure[{m!r}]"
            )
            for m in models
        }
        for m in models:
            ok = (diverged < 0) & (failures[m] == "")
            bad = ok & ~(np.isfinite(errors[m]) & (errors[m] >= 0))
            if np.any(bad):
                raise ValueError(
                    f"errors[{m!r}] must be finite and >= 0 at the {int(ok.sum())} points that "
                    f"neither diverged nor failed; {int(bad.sum())} are not (null, NaN or negative)"
                )
        fit_points = d["fit_points"]
        if isinstance(fit_points, bool) or not isinstance(fit_points, int) or fit_points < 2:
            raise ValueError(f"fit_points must be an integer >= 2, got {fit_points!r}")
        steps = d.get("solver_steps")
        solver_steps = (
            None
            if steps is None
            else {
                m: _shaped(np.asarray(steps[m], dtype=int), shape, f"solver_steps[{m!r}]")
                for m in models
            }
        )
        return Study(
            methods=methods,
            lams=lams,
            hs=hs,
            models=models,
            errors=errors,
            diverged_at=diverged.astype(int),
            solver_failure=failures,
            config=d["config"],
            meta=d["meta"],
            fit_points=fit_points,
            solver_steps=solver_steps,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: malformed study file ({type(e).__name__}: {e})") from None


SUPPORTED_VERSIONS = (1, 2)
"""Study file versions this code reads (2 adds `solver_steps` and the `norm` of the errors)."""


def _shaped(arr: np.ndarray, shape, name: str) -> np.ndarray:
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, the axes give {shape}")
    return arr
