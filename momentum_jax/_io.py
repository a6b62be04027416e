"""Atomic writes and the open (JSON) results format. Nothing here ever unpickles."""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib.metadata
import json
import math
import os
import stat
import tempfile
from pathlib import Path

import numpy as np


def _umask() -> int:
    """The process's file-creation mask (read without changing it where the OS allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the usual read-and-restore
    os.umask(mask)
    return mask


def _final_mode(path: Path) -> int:
    """The permissions a written file gets: those of the file it replaces, else the usual ones
    of a new file (`0o666` less the umask; `mkstemp` alone would give `0o600`)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it is renamed onto `path` in one step
    (`os.replace`), on any error or interruption it is removed. Readers never see a partial file.
    The file gets the permissions of the one it replaces, or those of a new file (umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _final_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_text_atomic(path, text: str):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if hasattr(x, "__array__") and not isinstance(x, (str, bytes)):
        return _jsonable(np.asarray(x))
    return x


def to_json(obj, *, indent: int | None = None) -> str:
    """`obj` as JSON text: NumPy and JAX arrays become lists, non-finite floats `null`."""
    return json.dumps(_jsonable(obj), indent=indent, allow_nan=False)


def dump_json(path, obj):
    """Write `obj` as JSON atomically (`to_json`, indented)."""
    write_text_atomic(path, to_json(obj, indent=1) + "\n")


def load_json(path, *, kind: str) -> dict:
    """Read a JSON results file written by this package and check its `format` field is `kind`.
    Raises `ValueError` naming the file for anything truncated, corrupted or foreign."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(
            f"{path}: not a momentum_jax results file (corrupted or truncated: {e})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != kind:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path}: not a {kind!r} file (format field is {found!r})")
    return data


def as_float_array(values) -> np.ndarray:
    """A JSON (nested) list with `null` for non-finite values back to a float NumPy array."""
    arr = np.array(values, dtype=object)
    return np.where(arr == None, np.nan, arr).astype(float)  # noqa: E711


@functools.cache
def _versions() -> tuple[tuple[str, str | None], ...]:
    """The installed versions (read once per process: the lookup takes about 1 ms a package)."""
    versions: list[tuple[str, str | None]] = []
    for pkg in ("momentum_jax", "jax", "jaxlib", "diffrax", "equinox", "optax", "numpy"):
        try:
            versions.append((pkg, importlib.metadata.version(pkg)))
        except importlib.metadata.PackageNotFoundError:
            versions.append((pkg, None))
    return tuple(versions)


def provenance() -> dict:
    """Package versions and the date, recorded in every results file."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"versions": dict(_versions()), "date": now}
