"""The result of a convergence study: errors on a named grid, rates, fitted orders, status,
and its files (the open JSON format of `to_dict`, netCDF of `to_xarray`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import diffrax
import numpy as np

from .._io import as_float_array
from .._labelled import (
    METHOD_DIM,
    int_attr,
    json_attr,
    json_value,
    labels,
    load_result,
    save_result,
    strings,
    values,
    xarray,
)
from .._rates import fit_order, observed_rates

STUDY_FORMAT = "momentum_jax.study"
VERSION = 3
"""The version of the study format this code writes (`SUPPORTED_VERSIONS` are read)."""

_DIMS = ("model", METHOD_DIM, "lam", "h")
_GRID = (METHOD_DIM, "lam", "h")


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
    - `solver_steps[model]`: the solver steps of each point's solve (see below).
    - `solution_norms[model]`: the largest norm of the model's solution at the compared times,
      the yardstick of `relative_errors`.
    - `stability_margin`: `q_max / q*` per point on a quadratic loss (the largest Hessian
      eigenvalue over the sharpness at which the method becomes linearly unstable,
      `stability_threshold`); None where the spectrum is unknown.

    A point enters rates and fits for a model only when its status for that model is `"ok"`:
    it did not diverge, the model's solve succeeded, the discrete run is linearly stable
    (`stability_margin <= 1`) and its relative error is below 1 (an error as large as the
    solution it is compared with is outside any asymptotic regime in `h`).
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
    solution_norms: dict[str, np.ndarray] | None = None
    stability_margin: np.ndarray | None = None

    def label(self, model: str) -> str:
        """The label of `model` naming its options and start (`hamiltonian[velocity='taylor']`);
        the key itself for a study loaded from a file that has none."""
        return self.config.get("labels", {}).get(model, model)

    @property
    def relative_errors(self) -> dict[str, np.ndarray]:
        """`errors[model] / solution_norms[model]` (NaN where either is unknown)."""
        if self.solution_norms is None:
            return {m: np.full(self.diverged_at.shape, np.nan) for m in self.models}
        with np.errstate(divide="ignore", invalid="ignore"):
            return {
                m: np.where(
                    self.errors[m] > 0, self.errors[m] / self.solution_norms[m], self.errors[m]
                )
                for m in self.models
            }

    @property
    def linearly_unstable(self) -> np.ndarray:
        """Boolean per point: the discrete run is linearly unstable (`stability_margin > 1`)."""
        if self.stability_margin is None:
            return np.zeros(self.diverged_at.shape, bool)
        return self.stability_margin > 1

    def outside(self, model: str) -> np.ndarray:
        """Boolean per point: outside any asymptotic regime for `model` (linearly unstable, or a
        relative error of at least 1), though it neither diverged nor failed."""
        rel = self.relative_errors[model]
        return self.linearly_unstable | (np.nan_to_num(rel, nan=0.0) >= 1)

    def valid(self, model: str) -> np.ndarray:
        """Boolean mask of the grid points whose `errors[model]` enter rates and fits: those
        whose `status_of(model)` is `"ok"`."""
        return (self.diverged_at < 0) & (self.solver_failure[model] == "") & ~self.outside(model)

    def status_of(self, model: str) -> np.ndarray:
        """Per grid point, for `model`: `"ok"`, `"diverged at step N"`, `"solver failed: reason"`,
        `"linearly unstable (q_max/q* = r)"` or `"relative error e >= 1"`; only `"ok"` points
        enter rates and fits."""
        out = np.full(self.diverged_at.shape, "ok", dtype=object)
        rel = self.relative_errors[model]
        big = np.nan_to_num(rel, nan=0.0) >= 1
        out[big] = [f"relative error {r:.3g} >= 1" for r in rel[big]]
        if self.stability_margin is not None:
            lin = self.linearly_unstable
            out[lin] = [
                f"linearly unstable (q_max/q* = {r:.3g})" for r in self.stability_margin[lin]
            ]
        bad = self.solver_failure[model] != ""
        out[bad] = [f"solver failed: {r}" for r in self.solver_failure[model][bad]]
        div = self.diverged_at >= 0
        out[div] = [f"diverged at step {n}" for n in self.diverged_at[div]]
        return out

    @property
    def status(self) -> np.ndarray:
        """Per grid point, over every model: `"ok"`, `"diverged at step N"`, or what keeps it out
        of rates and fits, naming each model concerned (`"solver failed (gradient_flow): reason;
        relative error 2.2e+03 >= 1 (hamiltonian)"`; see `status_of`)."""
        out = np.full(self.diverged_at.shape, "ok", dtype=object)
        per = {m: self.status_of(m) for m in self.models}
        for idx in np.ndindex(out.shape):
            if self.diverged_at[idx] >= 0:
                out[idx] = f"diverged at step {self.diverged_at[idx]}"
                continue
            issues = []
            if self.linearly_unstable[idx]:
                assert self.stability_margin is not None
                issues.append(f"linearly unstable (q_max/q* = {self.stability_margin[idx]:.3g})")
            for m in self.models:
                st = str(per[m][idx])
                if st.startswith("linearly unstable"):
                    continue
                if st.startswith("solver failed"):
                    issues.append(f"solver failed ({m}): {self.solver_failure[m][idx]}")
                elif st != "ok":
                    issues.append(f"{st} ({m})")
            if issues:
                out[idx] = "; ".join(issues)
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
        live = self.diverged_at < 0
        unstable = int(np.sum(self.linearly_unstable & live))
        outside = {
            m: int(np.sum(live & ~self.linearly_unstable & self.outside(m))) for m in self.models
        }
        far = ", ".join(f"{m}: {n}" for m, n in outside.items() if n) or "none"
        return (
            f"{total} grid points; {div} diverged, {unstable} linearly unstable, relative error "
            f">= 1: {far}; solver failures: {failed} (all of these excluded from rates and fits)"
        )

    def table(self) -> str:
        """A plain-text table of errors, rates and fitted orders. The rate on the row of `h` is
        `Delta(h) = log(E(h) / E(h')) / log(h / h')` with `h'` the next (smaller) `h` of the
        grid, `log2(E(h) / E(h/2))` for halving `h` (docs/theory.md §6), as in `rates`,
        `plot()` and `to_xarray()` (`h_pair`); the smallest `h` has none."""
        lines = [self.summary_line()]
        lines.append(
            "rate on the row of h: Delta(h) = log(E(h)/E(h'))/log(h/h'), h' the next h "
            "(log2(E(h)/E(h/2)) for halving h); only points with status ok enter rates and fits"
        )
        rates, orders = self.rates, self.orders
        last = len(self.hs) - 1
        for model in self.models:
            status = self.status_of(model)
            lines.append(f"\nmodel {self.label(model)}")
            lines.append(f"{'method':>6} {'lam':>6} {'h':>10} {'error':>12} {'rate':>7}  status")
            for i, meth in enumerate(self.methods):
                for j, lam in enumerate(self.lams):
                    for k, h in enumerate(self.hs):
                        rate = f"{rates[model][i, j, k]:7.3f}" if k < last else f"{'-':>7}"
                        st = status[i, j, k]
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
            "version": VERSION,
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
            "solution_norms": self.solution_norms,
            "stability_margin": self.stability_margin,
            "config": self.config,
            "meta": self.meta,
        }

    def save(self, path) -> None:
        """Write the study atomically (a temporary file renamed into place), in the format the
        suffix names.

        **Arguments:**

        - `path`: ending in `.json`: the open JSON format of `to_dict`; ending in `.nc`:
          netCDF-4 of `to_xarray` (needs the `xarray` extra, `pip install
          "momentum_jax[xarray]"`). Any other suffix raises `ValueError` naming the path and
          the allowed suffixes, before anything is written: the same rule as `Sweep.save` and
          `momentum-jax study --out`. `load_study` reads either back.
        """
        save_result(path, self.to_dict, self.to_xarray)

    def to_xarray(self) -> Any:
        """The study as an `xarray.Dataset`: coordinates `model`, `optimizer` (the methods:
        `method` is a keyword of xarray's `.sel`), `lam`, `h` and `h_pair` (the larger `h` of
        each pair the `rates` compare; the smaller one is the coordinate `h_next` on the same
        dimension); every one selects by keyword,
        `ds.errors.sel(model="hamiltonian", optimizer="hb", lam=0.9)`.

        **Returns:** an `xarray.Dataset` of `errors`, `solver_failure` (strings, `""` where the
        solve succeeded) and, where recorded, `solver_steps` and `solution_norms` on
        `(model, optimizer, lam, h)`; `rates` on `(model, optimizer, lam, h_pair)`; `orders` on
        `(model, optimizer, lam)`; `diverged_at` (integers, `-1` if not), `status` (strings) and,
        where recorded, `stability_margin` on `(optimizer, lam, h)`. The attributes `format`,
        `version` and `fit_points`, and `config` and `meta` (JSON strings), make it a complete
        record. Needs the `xarray` extra (`ImportError` with the install hint otherwise).
        """
        xr = xarray()
        models = list(self.models)

        def stack(per_model, dtype=float):
            return np.stack([np.asarray(per_model[m], dtype=dtype) for m in models])

        data: dict[str, Any] = {
            "errors": (_DIMS, stack(self.errors), {"long_name": "max_{n h <= T} error"}),
            "rates": (
                ("model", METHOD_DIM, "lam", "h_pair"),
                stack(self.rates),
                {"long_name": "observed rate between h_pair and h_next"},
            ),
            "orders": (
                ("model", METHOD_DIM, "lam"),
                stack(self.orders),
                {"long_name": f"fitted order over the {self.fit_points} smallest valid h"},
            ),
            "diverged_at": (_GRID, np.asarray(self.diverged_at, np.int64), {"missing": -1}),
            "status": (_GRID, strings(self.status)),
            "solver_failure": (_DIMS, np.stack([strings(self.solver_failure[m]) for m in models])),
        }
        if self.solver_steps is not None:
            data["solver_steps"] = (_DIMS, stack(self.solver_steps, np.int64))
        if self.solution_norms is not None:
            data["solution_norms"] = (
                _DIMS,
                stack(self.solution_norms),
                {"long_name": "largest norm of the model's solution over 0 <= t <= T"},
            )
        if self.stability_margin is not None:
            data["stability_margin"] = (
                _GRID,
                np.asarray(self.stability_margin, dtype=float),
                {"long_name": "q_max / q*: above 1 the discrete run is linearly unstable"},
            )
        hs = np.asarray(self.hs, dtype=float)
        coords = {
            "model": strings(models),
            METHOD_DIM: strings(self.methods),
            "lam": np.asarray(self.lams, dtype=float),
            "h": hs,
            "h_pair": ("h_pair", hs[:-1], {"long_name": "the larger h of each pair"}),
            "h_next": ("h_pair", hs[1:], {"long_name": "the smaller h of each pair"}),
        }
        attrs = {
            "format": STUDY_FORMAT,
            "version": VERSION,
            "fit_points": int(self.fit_points),
            "config": json_attr(self.config),
            "meta": json_attr(self.meta),
        }
        return xr.Dataset(data, coords=coords, attrs=attrs)

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
    """Read a study written by `Study.save`: JSON for a `.json` path, netCDF for `.nc` (needs the
    `xarray` extra); any other suffix raises `ValueError`, as for `load_sweep`. Corrupted,
    truncated, edited or foreign files raise `ValueError` naming the file and what is wrong
    (format, version, shapes, ranges); nothing is ever unpickled."""
    return load_result(path, STUDY_FORMAT, study_from_dict, _dataset_dict)


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
        norms = d.get("solution_norms")
        solution_norms = (
            None
            if norms is None
            else {
                m: _shaped(as_float_array(norms[m]), shape, f"solution_norms[{m!r}]")
                for m in models
            }
        )
        margin = d.get("stability_margin")
        stability_margin = (
            None if margin is None else _shaped(as_float_array(margin), shape, "stability_margin")
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
            solution_norms=solution_norms,
            stability_margin=stability_margin,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: malformed study file ({type(e).__name__}: {e})") from None


SUPPORTED_VERSIONS = (1, 2, 3)
"""Study file versions this code reads (2 adds `solver_steps` and the `norm` of the errors; 3
adds `solution_norms` and `stability_margin`, which decide the points outside the asymptotic
regime: an older file reports only divergence and solver failures)."""


def _shaped(arr: np.ndarray, shape, name: str) -> np.ndarray:
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, the axes give {shape}")
    return arr


def _dataset_dict(ds) -> dict:
    """`to_dict`'s representation of a dataset written by `Study.to_xarray` (as read from a
    netCDF file), for `study_from_dict` to validate."""
    models = labels(ds, "model")

    def per_model(name, integer=False):
        arr = values(ds, name, _DIMS, integer)
        return {m: arr[i] for i, m in enumerate(models)}

    optional = {
        "solver_steps": lambda: per_model("solver_steps", True),
        "solution_norms": lambda: per_model("solution_norms"),
        "stability_margin": lambda: values(ds, "stability_margin", _GRID),
    }
    return {
        "format": STUDY_FORMAT,
        "version": int_attr(ds, "version"),
        "axes": {"method": labels(ds, METHOD_DIM), "lam": ds["lam"].values, "h": ds["h"].values},
        "models": models,
        "errors": per_model("errors"),
        "diverged_at": values(ds, "diverged_at", _GRID, integer=True),
        "solver_failure": {m: strings(v) for m, v in per_model("solver_failure").items()},
        "fit_points": int_attr(ds, "fit_points"),
        "config": json_value(ds, "config"),
        "meta": json_value(ds, "meta"),
    } | {name: read() if name in ds else None for name, read in optional.items()}
