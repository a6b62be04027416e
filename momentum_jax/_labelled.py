"""Labelled results: a `Study` or a `Sweep` as an `xarray.Dataset` with named coordinates, and
the file formats beside the open JSON one of `_io.py`: netCDF (`.nc`, HDF5-based netCDF-4).

xarray is an optional extra (`pip install "momentum_jax[xarray]"`); without it `to_xarray` and
`.nc` paths raise `ImportError` with that hint, while JSON works as before. Nothing here ever
unpickles: a netCDF file holds numbers, strings and attributes only, and loading goes through the
same validation as JSON (`study_from_dict`, `sweep_from_dict`).

**The optimizer dimension.** The methods (`"hb"`, `"nag"`, ...; `Study.methods`,
`Sweep.methods`) are the dimension and coordinate `optimizer` (`METHOD_DIM`), not `method`:
`method` is a keyword of xarray's `.sel` (the fill method), so `.sel(method="hb")` cannot select
it, while every dimension here works as a keyword:
`ds.final_loss.sel(optimizer="hb", lam=0.5, h=0.1)`. netCDF files written before the rename,
with a `method` dimension, are still read (`load_labelled` renames it).

**The layout of a study** (`STUDY_FORMAT`): coordinates `model`, `optimizer`, `lam`, `h` and
`h_pair` (the *larger* `h_i` of each neighbouring pair `(h_i, h_{i+1})`, with the smaller one as
the auxiliary coordinate `h_next` on the same dimension); data variables `errors`,
`solver_failure` (strings, `""` where the solve succeeded) and, where recorded, `solver_steps`
on `(model, optimizer, lam, h)`, `rates` on `(model, optimizer, lam, h_pair)`, `orders` on
`(model, optimizer, lam)`, `diverged_at` (integers, `-1` if not) and `status` (strings) on
`(optimizer, lam, h)`. One variable per quantity with a `model` dimension holds every model:
`ds.errors.sel(model="hamiltonian", optimizer="hb")`.

**The layout of a sweep** (`SWEEP_FORMAT`): coordinates `optimizer`, `lam`, `h`, `seed`; data
variables `final_loss`, `min_loss`, `diverged_at` on `(optimizer, lam, h, seed)`; where
recorded, `curve` on `(optimizer, lam, h, seed, step)` with the coordinate `step` (the curve's
steps) and the 2-D coordinate `t` on `(h, step)`, `t = h * step` (the time of each curve point
depends on `h`); `sharpness` and `sharpness_residual` on `(..., sharpness_step)` with
`sharpness_t` on `(h, sharpness_step)`; `distance` on `(model, optimizer, lam, h, seed)` with the
coordinate `model`.

Both carry the attributes `format`, `version` (those of the JSON format), `config` and `meta`
(JSON strings), and `fit_points` (study) or `steps` (sweep).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._io import _jsonable, atomic_path, dump_json, load_json
from ._study._result import STUDY_FORMAT, Study, study_from_dict
from ._sweep._result import SWEEP_FORMAT, Sweep, sweep_from_dict

SUFFIXES = (".json", ".nc")
"""The file suffixes `save_labelled` and `load_labelled` accept: JSON and netCDF."""

INSTALL_HINT = 'pip install "momentum_jax[xarray]"'

METHOD_DIM = "optimizer"
"""The name of the methods' dimension in datasets and netCDF files (`method` is a keyword of
xarray's `.sel`; files with a `method` dimension, written before, are still read)."""

_STUDY_DIMS = ("model", METHOD_DIM, "lam", "h")
_GRID = (METHOD_DIM, "lam", "h")
_SWEEP_DIMS = (METHOD_DIM, "lam", "h", "seed")


def _xarray():
    try:
        import xarray
    except ImportError:
        raise ImportError(
            f"labelled results (to_xarray, .nc files) need xarray: {INSTALL_HINT}"
        ) from None
    return xarray


def netcdf_engine() -> str:
    """The xarray engine used for `.nc` files: `"h5netcdf"` (with h5py) when installed, else
    `"netcdf4"`. Both write and read the same netCDF-4 (HDF5) files, with int64 and
    variable-length strings; `ImportError` with the install hint when neither is there."""
    _xarray()
    try:
        import h5netcdf  # noqa: F401
        import h5py  # noqa: F401

        return "h5netcdf"
    except ImportError:
        pass
    try:
        import netCDF4  # noqa: F401

        return "netcdf4"
    except ImportError:
        raise ImportError(
            f"netCDF files need h5netcdf with h5py (or netCDF4): {INSTALL_HINT}"
        ) from None


def _json_attr(x) -> str:
    return json.dumps(_jsonable(x), allow_nan=False)


def _strings(arr) -> np.ndarray:
    return np.asarray(arr, dtype=object).astype(str).astype(object)


def to_xarray(result: Study | Sweep):
    """A `Study` or `Sweep` as an `xarray.Dataset` with named coordinates (the layouts are in this
    module's docstring: `optimizer` (the methods), `lam`, `h`, `seed`, `t`, ...), each of which
    selects by keyword: `ds.final_loss.sel(optimizer="hb", lam=0.5, h=0.1)`.

    **Arguments:**

    - `result`: a `Study` (from `convergence_study` or `load_study`) or a `Sweep`.

    **Returns:** an `xarray.Dataset`; its attributes `format`, `version`, `config` and `meta`
    (JSON strings) make it a complete record (`save_labelled` writes it as netCDF).

    Raises `ImportError` with the install hint without xarray, `TypeError` for other objects.
    """
    if isinstance(result, Study):
        return _study_dataset(result)
    if isinstance(result, Sweep):
        return _sweep_dataset(result)
    raise TypeError(f"to_xarray takes a Study or a Sweep, got {type(result).__name__}")


def _study_dataset(st: Study):
    xr = _xarray()
    models = list(st.models)
    rates, orders = st.rates, st.orders

    def stack(values, dtype):
        return np.stack([np.asarray(values[m], dtype=dtype) for m in models])

    data: dict[str, Any] = {
        "errors": (_STUDY_DIMS, stack(st.errors, float), {"long_name": "max_{n h <= T} error"}),
        "rates": (
            ("model", METHOD_DIM, "lam", "h_pair"),
            stack(rates, float),
            {"long_name": "observed rate between h_pair and h_next"},
        ),
        "orders": (
            ("model", METHOD_DIM, "lam"),
            stack(orders, float),
            {"long_name": f"fitted order over the {st.fit_points} smallest valid h"},
        ),
        "diverged_at": (_GRID, np.asarray(st.diverged_at, dtype=np.int64), {"missing": -1}),
        "status": (_GRID, _strings(st.status)),
        "solver_failure": (
            _STUDY_DIMS,
            np.stack([_strings(st.solver_failure[m]) for m in models]),
        ),
    }
    if st.solver_steps is not None:
        data["solver_steps"] = (_STUDY_DIMS, stack(st.solver_steps, np.int64))
    if st.solution_norms is not None:
        data["solution_norms"] = (
            _STUDY_DIMS,
            stack(st.solution_norms, float),
            {"long_name": "largest norm of the model's solution over 0 <= t <= T"},
        )
    if st.stability_margin is not None:
        data["stability_margin"] = (
            _GRID,
            np.asarray(st.stability_margin, dtype=float),
            {"long_name": "q_max / q*: above 1 the discrete run is linearly unstable"},
        )
    hs = np.asarray(st.hs, dtype=float)
    coords = {
        "model": _strings(models),
        METHOD_DIM: _strings(st.methods),
        "lam": np.asarray(st.lams, dtype=float),
        "h": hs,
        "h_pair": ("h_pair", hs[:-1], {"long_name": "the larger h of each pair"}),
        "h_next": ("h_pair", hs[1:], {"long_name": "the smaller h of each pair"}),
    }
    attrs = {
        "format": STUDY_FORMAT,
        "version": int(st.to_dict()["version"]),
        "fit_points": int(st.fit_points),
        "config": _json_attr(st.config),
        "meta": _json_attr(st.meta),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _sweep_dataset(sw: Sweep):
    xr = _xarray()
    hs = np.asarray(sw.hs, dtype=float)
    coords: dict[str, Any] = {
        METHOD_DIM: _strings(sw.methods),
        "lam": np.asarray(sw.lams, dtype=float),
        "h": hs,
        "seed": np.asarray(sw.seeds, dtype=np.int64),
    }
    data: dict[str, Any] = {
        "final_loss": (_SWEEP_DIMS, np.asarray(sw.final_loss, dtype=float)),
    }
    if sw.min_loss is not None:  # None with mini-batches (the full loss is not evaluated)
        data["min_loss"] = (_SWEEP_DIMS, np.asarray(sw.min_loss, dtype=float))
    data["diverged_at"] = (
        _SWEEP_DIMS,
        np.asarray(sw.diverged_at, dtype=np.int64),
        {"missing": -1},
    )
    for name, steps_name, dim, t_name in (
        ("curve", "curve_steps", "step", "t"),
        ("sharpness", "sharpness_steps", "sharpness_step", "sharpness_t"),
    ):
        values, steps = getattr(sw, name), getattr(sw, steps_name)
        if steps is not None:
            steps = np.asarray(steps, dtype=np.int64)
            coords[dim] = steps
            coords[t_name] = (("h", dim), hs[:, None] * steps[None, :], {"long_name": "h * step"})
        if values is not None:
            if steps is None:
                raise ValueError(f"Sweep.{name} is set but Sweep.{steps_name} is None")
            data[name] = ((*_SWEEP_DIMS, dim), np.asarray(values, dtype=float))
    if sw.sharpness_residual is not None and sw.sharpness_steps is not None:
        data["sharpness_residual"] = (
            (*_SWEEP_DIMS, "sharpness_step"),
            np.asarray(sw.sharpness_residual, dtype=float),
        )
    if sw.distances:
        models = list(sw.distances)
        coords["model"] = _strings(models)
        data["distance"] = (
            ("model", *_SWEEP_DIMS),
            np.stack([np.asarray(sw.distances[m], dtype=float) for m in models]),
        )
    attrs = {
        "format": SWEEP_FORMAT,
        "version": int(sw.to_dict()["version"]),
        "steps": int(sw.steps),
        "config": _json_attr(sw.config),
        "meta": _json_attr(sw.meta),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"{path}: unknown suffix {path.suffix!r}; the allowed suffixes are "
            f"'.json' (JSON) and '.nc' (netCDF)"
        )
    return suffix


def save_labelled(result: Study | Sweep, path) -> None:
    """Write a `Study` or `Sweep` atomically (a temporary file renamed into place), in the format
    its suffix names.

    **Arguments:**

    - `result`: a `Study` or a `Sweep`.
    - `path`: ending in `.json` (the open JSON format of `result.to_dict()`, no extra needed) or
      `.nc` (netCDF-4 of `to_xarray(result)`; needs the `xarray` extra). Any other suffix raises
      `ValueError` naming the path and the allowed suffixes, before anything is written.
    """
    path = Path(path)
    if _suffix(path) == ".json":
        dump_json(path, result.to_dict())
        return
    ds = to_xarray(result)
    engine = netcdf_engine()
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=engine)


def load_labelled(path, kind: str) -> Any:
    """Read a file written by `save_labelled` back into a `Study` or `Sweep`.

    **Arguments:**

    - `path`: a `.json` or `.nc` file (any other suffix: `ValueError`).
    - `kind`: `STUDY_FORMAT` (`"momentum_jax.study"`) or `SWEEP_FORMAT` (`"momentum_jax.sweep"`).

    **Returns:** a `Study` or a `Sweep`, checked as `load_study` checks JSON (format, version,
    shapes, ranges). A corrupted, truncated, edited or foreign file raises `ValueError` naming the
    file; a missing one `FileNotFoundError`. Nothing is ever unpickled.
    """
    if kind not in (STUDY_FORMAT, SWEEP_FORMAT):
        raise ValueError(f"kind must be {STUDY_FORMAT!r} or {SWEEP_FORMAT!r}, got {kind!r}")
    path = Path(path)
    from_dict = study_from_dict if kind == STUDY_FORMAT else sweep_from_dict
    if _suffix(path) == ".json":
        return from_dict(load_json(path, kind=kind), path)
    ds = _open_netcdf(path)
    if "method" in ds.dims and METHOD_DIM not in ds.dims:  # written before the rename
        ds = ds.rename({"method": METHOD_DIM})
    if ds.attrs.get("format") != kind:
        raise ValueError(
            f"{path}: not a {kind!r} file (format attribute is {ds.attrs.get('format')!r})"
        )
    try:
        d = _study_dict(ds) if kind == STUDY_FORMAT else _sweep_dict(ds)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise ValueError(
            f"{path}: malformed {kind!r} netCDF file ({type(e).__name__}: {e})"
        ) from None
    return from_dict(d, path)


def _open_netcdf(path: Path):
    xr = _xarray()
    engine = netcdf_engine()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with xr.open_dataset(path, engine=engine, decode_times=False, decode_timedelta=False) as ds:
            return ds.load()
    except Exception as e:  # whatever the reader raises on foreign bytes
        raise ValueError(
            f"{path}: not a momentum_jax netCDF file (corrupted, truncated or foreign: "
            f"{type(e).__name__}: {e})"
        ) from None


def _int_attr(ds, name: str) -> int:
    value = ds.attrs[name]
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"attribute {name} must be an integer, got {value!r}")
    return int(value)


def _json_loads(ds, name: str):
    value = ds.attrs[name]
    if not isinstance(value, str):
        raise ValueError(f"attribute {name} must be a JSON string, got {type(value).__name__}")
    return json.loads(value)


def _values(ds, name: str, dims, integer: bool = False) -> np.ndarray:
    var = ds[name]
    if set(var.dims) != set(dims):
        raise ValueError(f"variable {name} has dimensions {var.dims}, expected {dims}")
    arr = var.transpose(*dims).values
    if integer and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, has dtype {arr.dtype}")
    return arr


def _labels(ds, name: str) -> list[str]:
    return [str(x) for x in ds[name].values.tolist()]


def _study_dict(ds) -> dict:
    models = _labels(ds, "model")

    def per_model(name, integer=False):
        arr = _values(ds, name, _STUDY_DIMS, integer)
        return {m: arr[i] for i, m in enumerate(models)}

    failures = per_model("solver_failure")
    return {
        "format": STUDY_FORMAT,
        "version": _int_attr(ds, "version"),
        "axes": {
            "method": _labels(ds, METHOD_DIM),
            "lam": ds["lam"].values,
            "h": ds["h"].values,
        },
        "models": models,
        "errors": per_model("errors"),
        "diverged_at": _values(ds, "diverged_at", _GRID, integer=True),
        "solver_failure": {m: _strings(v) for m, v in failures.items()},
        "fit_points": _int_attr(ds, "fit_points"),
        "solver_steps": per_model("solver_steps", True) if "solver_steps" in ds else None,
        "solution_norms": per_model("solution_norms") if "solution_norms" in ds else None,
        "stability_margin": (
            _values(ds, "stability_margin", _GRID) if "stability_margin" in ds else None
        ),
        "config": _json_loads(ds, "config"),
        "meta": _json_loads(ds, "meta"),
    }


def _sweep_dict(ds) -> dict:
    def optional(name, dim):
        return _values(ds, name, (*_SWEEP_DIMS, dim)) if name in ds.data_vars else None

    def steps(dim):
        if dim not in ds.coords:
            return None
        arr = ds[dim].values
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"coordinate {dim} must hold integers, has dtype {arr.dtype}")
        return arr

    distances = None
    if "distance" in ds.data_vars:
        arr = _values(ds, "distance", ("model", *_SWEEP_DIMS))
        distances = {m: arr[i] for i, m in enumerate(_labels(ds, "model"))}
    seeds = ds["seed"].values
    if not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"coordinate seed must hold integers, has dtype {seeds.dtype}")
    return {
        "format": SWEEP_FORMAT,
        "version": _int_attr(ds, "version"),
        "axes": {
            "method": _labels(ds, METHOD_DIM),
            "lam": ds["lam"].values,
            "h": ds["h"].values,
            "seed": seeds,
        },
        "steps": _int_attr(ds, "steps"),
        "final_loss": _values(ds, "final_loss", _SWEEP_DIMS),
        "min_loss": _values(ds, "min_loss", _SWEEP_DIMS) if "min_loss" in ds.data_vars else None,
        "diverged_at": _values(ds, "diverged_at", _SWEEP_DIMS, integer=True),
        "curve_steps": steps("step"),
        "curve": optional("curve", "step"),
        "sharpness_steps": steps("sharpness_step"),
        "sharpness": optional("sharpness", "sharpness_step"),
        "sharpness_residual": optional("sharpness_residual", "sharpness_step"),
        "distances": distances,
        "config": _json_loads(ds, "config"),
        "meta": _json_loads(ds, "meta"),
    }
