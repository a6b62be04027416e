"""The values of `momentum-jax`'s options: numbers, names from the library's tables, grids of
`h` and `lam`, output files; each wrong one a `UsageError` naming its option."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import momentum_jax as mj

from ._arguments import UsageError


def texts(value) -> list[str]:
    """The texts of a `Repeatable` option: what was given, or its default."""
    return value if isinstance(value, list) else [value]


def number(text: str) -> float:
    """A number, `2^-3` allowed for a power; `ValueError` otherwise."""
    text = text.strip()
    if "^" in text:
        base, exp = text.split("^", 1)
        return float(base) ** float(exp)
    return float(text)


def floats(name: str, text: str) -> list[float]:
    """The numbers of a comma list given to `--name`."""
    try:
        values = [number(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--{name} expects comma-separated numbers, got {text!r}") from None
    if not values:
        raise UsageError(f"--{name} expects at least one number")
    return values


def one_number(name: str, text: str) -> float:
    """The one number of a single-valued numeric option (a comma list is refused)."""
    values = floats(name, text)
    if len(values) != 1:
        raise UsageError(f"--{name} expects one number, got {text!r}")
    return values[0]


def whole(name: str, text: str, low: int) -> int:
    """The integer `>= low` given to `--name`."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--{name} expects an integer >= {low}, got {text!r}") from None
    if value < low:
        raise UsageError(f"--{name} expects an integer >= {low}, got {value}")
    return value


def choices(name: str, text: str, allowed) -> list[str]:
    """The names of a comma list given to `--name`, each one of `allowed`."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise UsageError(
            f"--{name} got {','.join(bad) or repr(text)}; allowed: {', '.join(allowed)}"
        )
    return items


def all_choices(name: str, value, allowed, *, none: bool = False) -> list[str]:
    """The names of a `Repeatable` choice option, over every occurrence (with `none`, an empty
    text is no name rather than an error)."""
    return [m for t in texts(value) if t.strip() or not none for m in choices(name, t, allowed)]


def one_choice(name: str, text: str, allowed) -> str:
    """The one value of a single-valued choice option (a comma list is refused)."""
    items = choices(name, text, allowed)
    if len(items) != 1:
        raise UsageError(f"--{name} expects one of {', '.join(allowed)}, got {text!r}")
    return items[0]


def _power_of_two(x: float) -> int | None:
    """The integer `e` with `x == 2**e` exactly, else None."""
    mantissa, exponent = math.frexp(x)
    return exponent - 1 if mantissa == 0.5 else None


def parse_grid(name: str, text: str) -> list[float]:
    """The values of a grid option of `study` and `sweep` (one syntax for both):

    - `A:B:n`: `n` values from `A` to `B`, geometrically spaced for `--h` and evenly for `--lam`;
      when `A` and `B` are powers of two and the `n - 1` steps are whole halvings, the values are
      the exact powers of two (`2^-1:2^-6:6` is `0.5, 0.25, ..., 2^-6`, not `0.25000000000000006`);
    - `A:B` (`--h` only): every power of two from `A` down to `B`;
    - a comma list, `2^-3` allowed for a power.

    Anything else is a `UsageError` naming the option."""
    import numpy as np

    parts = text.split(":")
    geometric = name == "h"
    if len(parts) == 3:
        try:
            a, b = number(parts[0]), number(parts[1])
            n = int(parts[2])
        except ValueError:
            raise UsageError(
                f"--{name} expects A:B:n with numbers A, B and a count n, got {text!r}"
            ) from None
        if n < 1:
            raise UsageError(f"--{name} A:B:n needs n >= 1, got {text!r}")
        if not (math.isfinite(a) and math.isfinite(b)):
            raise UsageError(f"--{name} bounds must be finite, got {text!r}")
        if not geometric:
            return np.linspace(a, b, n).tolist()
        if not (a > 0 and b > 0):
            raise UsageError(f"--{name} bounds must be finite and > 0, got {text!r}")
        ea, eb = _power_of_two(a), _power_of_two(b)
        if n == 1:
            return [a]
        if ea is not None and eb is not None and (ea - eb) % (n - 1) == 0:
            step = (eb - ea) // (n - 1)
            return [2.0 ** (ea + i * step) for i in range(n)]
        return np.geomspace(a, b, n).tolist()
    if len(parts) == 2 and geometric:
        try:
            a, b = (number(x) for x in parts)
        except ValueError:
            raise UsageError(
                f"--{name} expects A:B with powers of two, e.g. 2^-4:2^-12, got {text!r}"
            ) from None
        if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
            raise UsageError(f"--{name} bounds must be finite and > 0, got {text!r}")
        ea, eb = _power_of_two(a), _power_of_two(b)
        if ea is None or eb is None or eb > ea:
            raise UsageError(f"--{name} A:B needs powers of two with A >= B, got {text!r}")
        if ea - eb > 40:
            raise UsageError(f"--{name} spans more than 40 halvings: {text!r}")
        return [2.0**e for e in range(ea, eb - 1, -1)]
    if ":" in text:
        forms = "A:B, A:B:n" if geometric else "A:B:n"
        raise UsageError(f"--{name} expects {forms} or a comma list, got {text!r}")
    return floats(name, text)


def parse_hs(text: str) -> list[float]:
    """`parse_grid("h", text)`: `"2^-4:2^-12"` is every power of two from `2^-4` to `2^-12`."""
    return parse_grid("h", text)


def grid(args) -> tuple[list[float], list[float]]:
    """`(lams, hs)` of `--lam` and `--h`, over every occurrence."""
    lams = [x for t in texts(args.lam) for x in parse_grid("lam", t)]
    hs = [x for t in texts(args.h) for x in parse_grid("h", t)]
    return lams, hs


def check_output_file(option: str, path: str) -> Path:
    """`path` as an output file of `option`, checked before anything is computed: not empty,
    not a folder, inside a folder (existing, or to be made inside one) that can be written in.
    Anything else is a `UsageError` naming `option`."""
    if not path.strip():
        raise UsageError(f"{option} expects a file name, got {path!r}")
    target = Path(path)
    if path.endswith(("/", os.sep)) or target.is_dir():
        raise UsageError(
            f"{option} {path!r} is a folder; give a file name, e.g. {str(target / 'study.json')!r}"
        )
    folder = target.parent
    while not folder.exists() and folder != folder.parent:  # the nearest existing folder
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {path!r}: {str(folder)!r} is not a folder")
    try:  # the one reliable test (permissions, read-only mounts, root): write a file there
        fd, probe = tempfile.mkstemp(prefix=".momentum_jax_probe.", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise UsageError(
            f"{option} {path!r}: cannot write in {str(folder)!r} ({e.strerror or e})"
        ) from None
    return target


def check_result_file(path: str) -> Path:
    """`--out` of `study` and `sweep`, checked before anything is computed: a writable file
    whose suffix names the format by the rule of `Study.save` and `Sweep.save`
    (`mj.check_result_path`: `.json` JSON, `.nc` netCDF, which needs the xarray extra);
    anything else is a `UsageError`."""
    target = check_output_file("--out", path)
    try:
        mj.check_result_path(target)
    except ValueError:
        raise UsageError(
            f"--out {path!r}: the file name must end in .json or .nc (.json: JSON, .nc: netCDF)"
        ) from None
    except ImportError as e:
        raise UsageError(f"--out {path!r}: {e} (or use .json)") from None
    return target
