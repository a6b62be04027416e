"""Labelled results on disk: the one save rule and the xarray/netCDF plumbing that `Study` and
`Sweep` share, beside the open JSON format of `_io.py`. Nothing here knows a result type: each
result builds its own dataset (`Study.to_xarray`, `Sweep.to_xarray`) and its own dict, and reads
its own dataset back (`momentum_jax._study._result`, `momentum_jax._sweep._result`).

**The save rule** (`check_result_path`): the suffix decides the format, for `Study.save`,
`Sweep.save`, `load_study`, `load_sweep` and the command line's `--out` alike: `.json` is the
open JSON format of the result's `to_dict()`, `.nc` netCDF-4 (HDF5-based) of its `to_xarray()`,
anything else a `ValueError` naming the path and the allowed suffixes, before anything is
written or read.

xarray is an optional extra (`pip install "momentum_jax[xarray]"`); without it datasets and `.nc`
paths raise `ImportError` with that hint, while JSON works. Nothing here ever unpickles: a netCDF
file holds numbers, strings and attributes only, and loading goes through the same validation as
JSON (the result's `from_dict`).

**The optimizer dimension.** The methods (`"hb"`, `"nag"`, ...) are the dimension and coordinate
`optimizer` (`METHOD_DIM`), not `method`: `method` is a keyword of xarray's `.sel` (the fill
method), so `.sel(method="hb")` cannot select it, while every dimension of a result's dataset
works as a keyword: `ds.final_loss.sel(optimizer="hb", lam=0.5, h=0.1)`. netCDF files with a
`method` dimension, written before the rename, are still read (`load_result` renames it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_path, dump_json, load_json, to_json

SUFFIXES = (".json", ".nc")
"""The file suffixes of results: JSON and netCDF."""

INSTALL_HINT = 'pip install "momentum_jax[xarray]"'

METHOD_DIM = "optimizer"
"""The name of the methods' dimension in datasets and netCDF files."""


def xarray():
    """The `xarray` module, or `ImportError` with the install hint."""
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
    xarray()
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


def check_result_path(path) -> str:
    """The format of a result file (`Study`, `Sweep`) by its suffix: the one rule of
    `Study.save`, `Sweep.save`, `load_study`, `load_sweep` and the command line's `--out`.

    **Arguments:**

    - `path`: the file's path.

    **Returns:** its suffix in lower case: `".json"` (the open JSON format) or `".nc"` (netCDF-4).

    Any other suffix raises `ValueError` naming the path and the allowed suffixes; `.nc` without
    the `xarray` extra raises `ImportError` with the install hint.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"{path}: unknown suffix {path.suffix!r}; the allowed suffixes are "
            f"'.json' (JSON) and '.nc' (netCDF)"
        )
    if suffix == ".nc":
        netcdf_engine()
    return suffix


def save_result(path, to_dict: Callable[[], dict], to_dataset: Callable[[], Any]) -> None:
    """Write a result atomically (a temporary file renamed into place) in the format its suffix
    names (`check_result_path`, checked before anything is computed or written).

    **Arguments:**

    - `path`: the file, `.json` or `.nc`.
    - `to_dict`: the result's open representation, for `.json`.
    - `to_dataset`: the result's `xarray.Dataset`, for `.nc` (needs the `xarray` extra).
    """
    path = Path(path)
    if check_result_path(path) == ".json":
        dump_json(path, to_dict())
        return
    ds = to_dataset()
    engine = netcdf_engine()
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=engine)


def load_result(
    path,
    kind: str,
    from_dict: Callable[[dict, Any], Any],
    dataset_dict: Callable[[Any], dict],
):
    """Read a result file written by `save_result`.

    **Arguments:**

    - `path`: a `.json` or `.nc` file (any other suffix: `ValueError`).
    - `kind`: the result's format name (the `format` field or attribute the file must carry).
    - `from_dict`: `from_dict(d, path)`, the result from its open representation, validated.
    - `dataset_dict`: the open representation of a netCDF file's dataset.

    **Returns:** the result. A corrupted, truncated, edited or foreign file raises `ValueError`
    naming the file; a missing one `FileNotFoundError`. Nothing is ever unpickled.
    """
    path = Path(path)
    if check_result_path(path) == ".json":
        return from_dict(load_json(path, kind=kind), path)
    ds = _open_netcdf(path)
    if "method" in ds.dims and METHOD_DIM not in ds.dims:  # written before the rename
        ds = ds.rename({"method": METHOD_DIM})
    if ds.attrs.get("format") != kind:
        raise ValueError(
            f"{path}: not a {kind!r} file (format attribute is {ds.attrs.get('format')!r})"
        )
    try:
        d = dataset_dict(ds)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise ValueError(
            f"{path}: malformed {kind!r} netCDF file ({type(e).__name__}: {e})"
        ) from None
    return from_dict(d, path)


def _open_netcdf(path: Path):
    xr = xarray()
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


def json_attr(x) -> str:
    """`x` as a JSON string attribute (NumPy arrays as lists, non-finite floats as null)."""
    return to_json(x)


def strings(arr) -> np.ndarray:
    """`arr` as an object array of Python strings (netCDF's variable-length strings)."""
    return np.asarray(arr, dtype=object).astype(str).astype(object)


def int_attr(ds, name: str) -> int:
    """The integer attribute `name` of `ds`; `ValueError` if it is not one."""
    value = ds.attrs[name]
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"attribute {name} must be an integer, got {value!r}")
    return int(value)


def json_value(ds, name: str):
    """The JSON string attribute `name` of `ds`, decoded."""
    value = ds.attrs[name]
    if not isinstance(value, str):
        raise ValueError(f"attribute {name} must be a JSON string, got {type(value).__name__}")
    return json.loads(value)


def values(ds, name: str, dims, integer: bool = False) -> np.ndarray:
    """The values of the variable `name` with its axes in the order `dims` (`ValueError` if its
    dimensions are others, or, with `integer`, if it does not hold integers)."""
    var = ds[name]
    if set(var.dims) != set(dims):
        raise ValueError(f"variable {name} has dimensions {var.dims}, expected {dims}")
    arr = var.transpose(*dims).values
    if integer and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, has dtype {arr.dtype}")
    return arr


def integer_coordinate(ds, name: str) -> np.ndarray:
    """The values of the coordinate `name`, which must hold integers."""
    arr = ds[name].values
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"coordinate {name} must hold integers, has dtype {arr.dtype}")
    return arr


def labels(ds, name: str) -> list[str]:
    """The string labels of the coordinate `name`."""
    return [str(x) for x in ds[name].values.tolist()]
