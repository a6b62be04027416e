"""JAX's persistent compilation cache: compiled programs kept in a folder on disk, so that a new
process loads them instead of compiling them again. The command line turns it on by default;
a script turns it on with one call, `enable_compilation_cache()`, at program start."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

ENVIRONMENT_VARIABLE = "MOMENTUM_JAX_COMPILE_CACHE"
"""The environment variable that moves the cache (a folder) or turns it off (`off`, `0`,
`false`, `no`, `none` or empty)."""

_OFF = ("", "0", "off", "false", "no", "none")


def default_compilation_cache() -> Path | None:
    """The folder of the persistent compilation cache when none is given: the environment
    variable `MOMENTUM_JAX_COMPILE_CACHE` if it is set (None if it says `off`), else
    `$XDG_CACHE_HOME/momentum_jax/jax`, else `~/.cache/momentum_jax/jax`."""
    given = os.environ.get(ENVIRONMENT_VARIABLE)
    if given is not None:
        return None if given.strip().lower() in _OFF else Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "momentum_jax" / "jax"


def enable_compilation_cache(path=None) -> Path | None:
    """Turn on JAX's persistent compilation cache for this process: every program compiled from
    now on, however small or quick to compile, is written to `path`, and a later process with
    the same cache loads it instead of compiling it again (JAX's key covers the program, the
    options, the JAX version and the device; programs with host callbacks, such as progress
    reports, are never written).

    Call it once, at program start, before anything is computed: JAX decides whether to use
    the cache at the first compilation of the process.

    **Arguments:**

    - `path`: the cache folder (made if missing); None: `default_compilation_cache()` (the
      environment variable `MOMENTUM_JAX_COMPILE_CACHE`, else `~/.cache/momentum_jax/jax` or
      its XDG equivalent).

    **Returns:** the folder in use, or None when `path` is None and the cache is off:
    `MOMENTUM_JAX_COMPILE_CACHE` says so, or the default folder cannot be made (a
    `RuntimeWarning` says why). A `path` that cannot be made raises `OSError`.
    """
    import jax

    folder = Path(path).expanduser() if path is not None else default_compilation_cache()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if path is not None:
            raise
        warnings.warn(
            f"no compilation cache: cannot make {folder} ({e.strerror or e}); set "
            f"{ENVIRONMENT_VARIABLE} to a folder, or to off",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size limit
    return folder
