"""The `momentum-jax` command line: `reproduce`, `study`, `sweep`, `losses`.

Every wrong argument is answered with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

EXIT_USAGE = 2
EXIT_FAILURE = 1


class UsageError(Exception):
    """A wrong command-line argument: reported in one line, exit status 2."""


class HelpFormatter(argparse.HelpFormatter):
    """`--help` shows each option's default (unless its help already says it, or it has none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or default == []
            or action.option_strings == []
        ):
            return text
        return f"{text} (default: %(default)s)"


class Once(argparse.Action):
    """A single-valued option: given twice, it is an error, not a silent "last one wins"."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_given", {})
        if self.dest in given:
            raise UsageError(
                f"{option_string} given twice ({given[self.dest]!r}, then {values!r}); give it once"
            )
        given[self.dest] = values
        setattr(namespace, self.dest, values)


class Repeatable(argparse.Action):
    """A list option: each occurrence adds its values (`--lam 0.5 --lam 0.9` is `--lam 0.5,0.9`);
    the option's value is the list of the texts given, or its default text."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, (current if isinstance(current, list) else []) + [values])


def texts(value) -> list[str]:
    """The texts of a `Repeatable` option: what was given, or its default."""
    return value if isinstance(value, list) else [value]


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # argparse's own errors: one line, exit 2
        raise UsageError(message)

    def exit(self, status=0, message=None):
        if status:
            raise UsageError((message or "invalid arguments").strip())
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


def _parser() -> argparse.ArgumentParser:
    import momentum_jax as mj

    p = _Parser(prog="momentum-jax", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("reproduce", help="regenerate the paper's figures (all, or those named)")
    r.add_argument("figures", nargs="*", metavar="FIG", help="e.g. fig2 or fig2_rates")
    r.add_argument("--quick", action="store_true", help="reduced CPU settings")
    r.add_argument("--out", default="figures", help="output folder (default: figures)")
    r.add_argument("--mnist-dir", default=None, help="folder with the MNIST IDX files")
    r.add_argument(
        "--dataset",
        default=None,
        choices=("auto", "mnist5k", "digits"),
        help="data of Figs 6, 7, 10: auto (default; the MNIST 5k subset of the mnist extra if "
        "installed, else the digits; --quick: digits), mnist5k, digits",
    )
    r.add_argument(
        "--full",
        action="store_true",
        help="the paper's Section 5 protocol for Figs 6, 7, 10 (500 epochs; for a GPU: hours)",
    )
    r.add_argument("--epochs", default=None, help="epochs of the Fig 6 runs (integer >= 1)")
    r.add_argument("--cache", default=None, help="cache folder (default: .cache/momentum_jax)")
    r.add_argument("--no-progress", action="store_true", help="plain log lines only")

    s = sub.add_parser("study", help="a convergence study on any loss")
    s.add_argument(
        "--loss",
        required=True,
        action=Once,
        help="a registered loss, module:function (the current directory is searched first, as "
        "with python -m) or path/to/file.py:function",
    )
    s.add_argument(
        "--loss-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="option of a registered loss, e.g. kappa=20 (repeatable)",
    )
    s.add_argument("--x0", default=None, action=Once, help="start as comma-separated floats")
    s.add_argument(
        "--method", default="hb,nag", action=Repeatable, help="comma-separated: hb, nag, gd"
    )
    s.add_argument(
        "--lam", default="0.9", action=Repeatable, help="momenta in [0, 1): " + GRID_HELP["lam"]
    )
    s.add_argument(
        "--h",
        default="2^-4:2^-10",
        action=Repeatable,
        help="learning rates, strictly decreasing: " + GRID_HELP["h"],
    )
    s.add_argument("--T", default="2", action=Once, help="the time horizon, one number > 0")
    s.add_argument(
        "--model",
        default="gradient_flow,hamiltonian,modified_flow",
        action=Repeatable,
        help="comma-separated models",
    )
    s.add_argument("--init", default="zero", action=Once, help="zero or manifold")
    s.add_argument(
        "--norm",
        default="euclidean",
        action=Once,
        help="norm of the errors: euclidean, or max (the largest component; the paper's norm)",
    )
    s.add_argument(
        "--velocity",
        default="match",
        action=Once,
        help="the damped Hamiltonian's start u'(0): " + ", ".join(mj.VELOCITIES),
    )
    s.add_argument(
        "--order", default="1", action=Once, help="order of modified_flow (integer >= 0)"
    )
    s.add_argument("--constant", default="corrected", action=Once, help="corrected or printed")
    s.add_argument("--fit-points", default="4", action=Once, help="points in the order fit (>= 2)")
    s.add_argument(
        "--rtol",
        default=None,
        action=Once,
        help="the solver's relative tolerance in (0, 1) (default: 1e-12 in float64)",
    )
    s.add_argument(
        "--atol",
        default=None,
        action=Once,
        help="the solver's absolute tolerance >= 0 (default: 1e-14 in float64)",
    )
    s.add_argument(
        "--max-steps",
        default=None,
        action=Once,
        help="the most solver steps of one model's solve at one point (default: 2^20)",
    )
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.add_argument(
        "--out",
        default=None,
        action=Once,
        help="save the study: FILE.json (JSON) or FILE.nc (netCDF, needs the xarray extra)",
    )
    s.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown on a terminal only)"
    )

    w = sub.add_parser("sweep", help="train any loss over an (h, lam) grid: losses, divergence")
    w.add_argument("--loss", required=True, action=Once, help="as for study")
    w.add_argument(
        "--loss-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="option of a registered loss (repeatable)",
    )
    w.add_argument("--x0", default=None, action=Once, help="start as comma-separated floats")
    w.add_argument(
        "--method",
        default="hb,nag",
        action=Repeatable,
        help="comma-separated: hb, nag, gd, gd_effective, wilson, hb_mu, nag_mu",
    )
    w.add_argument(
        "--lam", default="0:0.95:32", action=Repeatable, help="momenta: " + GRID_HELP["lam"]
    )
    w.add_argument(
        "--h", default="2^-1:2^-8:32", action=Repeatable, help="learning rates: " + GRID_HELP["h"]
    )
    w.add_argument("--steps", required=True, action=Once, help="steps per run (integer >= 1)")
    w.add_argument(
        "--record-every", default=None, action=Once, help="record the loss every this many steps"
    )
    w.add_argument(
        "--model",
        default="",
        action=Repeatable,
        help="models to measure the distance to (comma-separated), e.g. gradient_flow",
    )
    w.add_argument(
        "--out",
        default=None,
        action=Once,
        help="save the sweep: FILE.json (JSON) or FILE.nc (netCDF, needs the xarray extra)",
    )
    w.add_argument("--plot", default=None, action=Once, help="draw a heat map to FILE.png")
    w.add_argument(
        "--quantity",
        default=None,
        action=Once,
        help="what --plot draws (with --plot only): final_loss (default), min_loss, "
        "diverged_at, curve (with --record-every), distance:<model> (with --model)",
    )
    w.add_argument("--json", action="store_true", help="print one JSON document")
    w.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown on a terminal only)"
    )

    sub.add_parser("losses", help="list the registered losses")
    return p


def _floats(name: str, text: str) -> list[float]:
    try:
        values = [_number(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--{name} expects comma-separated numbers, got {text!r}") from None
    if not values:
        raise UsageError(f"--{name} expects at least one number")
    return values


def _number(text: str) -> float:
    text = text.strip()
    if "^" in text:
        base, exp = text.split("^", 1)
        return float(base) ** float(exp)
    return float(text)


def _int(name: str, text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--{name} expects an integer >= {low}, got {text!r}") from None
    if value < low:
        raise UsageError(f"--{name} expects an integer >= {low}, got {value}")
    return value


GRID_HELP = {
    "h": "A:B for every power of two from A down to B, A:B:n for n values geometrically from A "
    "to B (exact powers of two when A, B and their ratio allow), or a comma list; repeatable",
    "lam": "A:B:n for n values evenly from A to B, or a comma list; repeatable",
}


def _power_of_two(x: float) -> int | None:
    """The integer `e` with `x == 2**e` exactly, else None."""
    import math

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
    import math

    import numpy as np

    parts = text.split(":")
    geometric = name == "h"
    if len(parts) == 3:
        try:
            a, b = _number(parts[0]), _number(parts[1])
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
            a, b = (_number(x) for x in parts)
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
    return _floats(name, text)


def parse_hs(text: str) -> list[float]:
    """`parse_grid("h", text)`: `"2^-4:2^-12"` is every power of two from `2^-4` to `2^-12`."""
    return parse_grid("h", text)


def _choices(name: str, text: str, allowed) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise UsageError(
            f"--{name} got {','.join(bad) or repr(text)}; allowed: {', '.join(allowed)}"
        )
    return items


def one_choice(name: str, text: str, allowed) -> str:
    """The one value of a single-valued choice option (a comma list is refused)."""
    items = _choices(name, text, allowed)
    if len(items) != 1:
        raise UsageError(f"--{name} expects one of {', '.join(allowed)}, got {text!r}")
    return items[0]


def one_number(name: str, text: str) -> float:
    """The one number of a single-valued numeric option (a comma list is refused)."""
    values = _floats(name, text)
    if len(values) != 1:
        raise UsageError(f"--{name} expects one number, got {text!r}")
    return values[0]


def _one_line(e: BaseException) -> str:
    """`Type: message` of an exception, on one line."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _import(module_name: str):
    """A module by name, the current directory searched first (as `python -m` does), or a
    Python file by its path (`*.py`, or any name with a `/`), whose folder is then searched
    for the modules it imports (as `python path/to/file.py` does)."""
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        path = Path(module_name).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no such file {module_name!r}")
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        name = f"_momentum_jax_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"{module_name!r} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # (dataclasses and pickling look their module up there)
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    return importlib.import_module(module_name)


def load_function(option: str, spec: str):
    """The function named by `spec`, `module:function` or `path/to/file.py:function`; any
    failure of the import (no such module or file, the module raises or has a syntax error) is
    a `UsageError` naming `option`."""
    module_name, sep, fn_name = spec.rpartition(":")
    if not sep or not module_name.strip() or not fn_name.strip():
        raise UsageError(
            f"{option} expects module:function or path/to/file.py:function, got {spec!r}"
        )
    try:
        module = _import(module_name)
    except (Exception, SystemExit) as e:  # the user's module failed: report it on one line
        why = str(e) if isinstance(e, FileNotFoundError) else _one_line(e)
        raise UsageError(f"{option} {spec!r} cannot be imported: {why}") from None
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise UsageError(
            f"{option} {spec!r} cannot be imported: module {module_name!r} has no attribute "
            f"{fn_name!r}"
        )
    if not callable(fn):
        raise UsageError(f"{option} {spec!r} is a {type(fn).__name__}, not a function")
    return fn


def progress_bar(args, label: str):
    """A progress bar (`momentum_jax.paper.Progress`, usable as a `progress(done, total)`
    callback) when stderr is a terminal and `--no-progress` was not given; else None."""
    if getattr(args, "no_progress", False) or not getattr(sys.stderr, "isatty", lambda: False)():
        return None
    from .paper import Progress

    return Progress(1, label)


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
    whose suffix names the format, as `Study.save` and `Sweep.save` read it (`.json`: JSON,
    `.nc`: netCDF, which needs the xarray extra); anything else is a `UsageError`."""
    from ._labelled import INSTALL_HINT, SUFFIXES

    target = check_output_file("--out", path)
    if target.suffix.lower() not in SUFFIXES:
        raise UsageError(
            f"--out {path!r}: the file name must end in .json or .nc (.json: JSON, .nc: netCDF)"
        )
    if target.suffix.lower() == ".nc":
        try:
            from ._labelled import netcdf_engine

            netcdf_engine()
        except ImportError:
            raise UsageError(f"--out FILE.nc needs xarray: {INSTALL_HINT} (or use .json)") from None
    return target


def _sweep_quantity_option(text: str | None, plot, every, models) -> str:
    """`--quantity` of `sweep`, checked before the sweep runs: only with `--plot`, and one of
    the quantities that the sweep will record (`momentum_jax.plotting.sweep_quantities`)."""
    from .plotting import sweep_quantities

    if text is None:
        return "final_loss"
    if plot is None:
        raise UsageError(f"--quantity {text!r} chooses what --plot draws; give --plot FILE.png")
    allowed = sweep_quantities(curve=every is not None, sharpness=False, models=models)
    if text not in allowed:
        raise UsageError(f"--quantity got {text!r}; allowed for this sweep: {', '.join(allowed)}")
    return text


def _load_loss(spec: str, loss_args: list[str], x0: str | None):
    import jax
    import jax.numpy as jnp

    from ._losses import get_loss, registered

    options = {}
    for item in loss_args:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--loss-arg expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    start = jnp.asarray(_floats("x0", x0)) if x0 is not None else None
    if ":" in spec:
        if loss_args:
            raise UsageError(
                f"--loss-arg applies to registered losses only; {spec!r} is a function, which "
                "takes no options (give them defaults in the function, or register the loss)"
            )
        fn = load_function("--loss", spec)
        if start is None:
            raise UsageError("--x0 is required for a loss given as module:function")
        return fn, start
    if spec not in registered():
        raise UsageError(
            f"--loss {spec!r} is not registered; choose from "
            f"{', '.join(registered())} or give module:function"
        )
    try:
        loss = get_loss(spec, **options)
    except (TypeError, ValueError) as e:  # an unknown option, or a value of the wrong kind
        given = " ".join(f"{k}={v!r}" for k, v in options.items())
        raise UsageError(f"--loss-arg {given} not accepted by loss {spec!r}: {e}") from None
    if start is None:
        return loss.fn, loss.u0
    leaves = jax.tree.leaves(loss.u0)
    if len(leaves) != 1 or not jax.tree_util.treedef_is_leaf(jax.tree.structure(loss.u0)):
        raise UsageError(
            f"--x0 cannot set the start of loss {spec!r}: its parameters are a pytree of "
            f"{len(leaves)} arrays ({sum(int(jnp.size(x)) for x in leaves)} values); drop --x0 "
            "(the loss's own start is used)"
        )
    if jnp.size(start) != jnp.size(leaves[0]):
        raise UsageError(
            f"--x0 has {jnp.size(start)} values; loss {spec!r} takes {jnp.size(leaves[0])}"
        )
    return loss.fn, jnp.reshape(start, jnp.shape(leaves[0]))


def _cmd_study(args) -> int:
    import momentum_jax as mj

    from ._model import MODELS
    from ._study import NORMS, convergence_study

    methods = [m for t in texts(args.method) for m in _choices("method", t, ("hb", "nag", "gd"))]
    models = [m for t in texts(args.model) for m in _choices("model", t, MODELS)]
    init = one_choice("init", args.init, ("zero", "manifold"))
    velocity = one_choice("velocity", args.velocity, mj.VELOCITIES)
    constant = one_choice("constant", args.constant, ("corrected", "printed"))
    norm = one_choice("norm", args.norm, NORMS)
    lams = [x for t in texts(args.lam) for x in parse_grid("lam", t)]
    hs = [x for t in texts(args.h) for x in parse_grid("h", t)]
    T = one_number("T", args.T)
    order = _int("order", args.order, 0)
    fit_points = _int("fit-points", args.fit_points, 2)
    out = check_result_file(args.out) if args.out is not None else None
    loss, u0 = _load_loss(args.loss, args.loss_arg, args.x0)
    solver = _solver_config(args, u0)
    bar = progress_bar(args, "study")
    try:
        study = convergence_study(
            loss,
            u0,
            hs=hs,
            lams=lams,
            methods=methods,
            models=models,
            T=T,
            init=init,
            norm=norm,
            hamiltonian_velocity=velocity,
            order=order,
            constant=constant,
            fit_points=fit_points,
            progress=bar,
            solver=solver,
        )
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    finally:
        if bar is not None:
            bar.close()
    if args.json:  # printed first: a failing save does not lose the computed study
        from ._io import _jsonable

        print(json.dumps(_jsonable(study.to_dict()), allow_nan=False))
    else:
        print(study.table())
    sys.stdout.flush()
    if out is not None:
        try:
            study.save(out)
        except OSError as e:
            raise UsageError(
                f"--out {args.out!r}: cannot write the study ({e.strerror or e}); it is printed "
                "above"
            ) from None
    return 0


def _solver_config(args, u0):
    """The `SolverConfig` of `--rtol`, `--atol`, `--max-steps` (the defaults of `u0`'s dtype
    for those not given)."""
    import jax

    import momentum_jax as mj

    given = {}
    for name, flag in (("rtol", "--rtol"), ("atol", "--atol")):
        text = getattr(args, name)
        if text is not None:
            given[name] = one_number(flag.lstrip("-"), text)
    if args.max_steps is not None:
        given["max_steps"] = _int("max-steps", args.max_steps, 1)
    leaves = jax.tree.leaves(u0)
    dtype = leaves[0].dtype if leaves else None
    try:
        return mj.SolverConfig.for_dtype(dtype, **given) if dtype is not None else None
    except (ValueError, TypeError) as e:
        raise UsageError(f"--{str(e).split('=')[0].replace('_', '-')}: {e}") from None


def _cmd_sweep(args) -> int:
    from ._model import MODELS
    from ._sweep import SWEEP_METHODS, sweep

    methods = [m for t in texts(args.method) for m in _choices("method", t, SWEEP_METHODS)]
    lams = [x for t in texts(args.lam) for x in parse_grid("lam", t)]
    hs = [x for t in texts(args.h) for x in parse_grid("h", t)]
    models = [m for t in texts(args.model) if t.strip() for m in _choices("model", t, MODELS)]
    steps = _int("steps", args.steps, 1)
    every = None if args.record_every is None else _int("record-every", args.record_every, 1)
    out = check_result_file(args.out) if args.out is not None else None
    plot = check_output_file("--plot", args.plot) if args.plot is not None else None
    quantity = _sweep_quantity_option(args.quantity, plot, every, models)
    loss, u0 = _load_loss(args.loss, args.loss_arg, args.x0)
    bar = progress_bar(args, "sweep")
    try:
        result = sweep(
            loss,
            u0,
            hs=hs,
            lams=lams,
            methods=methods,
            steps=steps,
            record_every=every,
            models=models,
            progress=bar,
        )
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        from ._io import _jsonable

        print(json.dumps(_jsonable(result.to_dict()), allow_nan=False))
    else:
        print(sweep_table(result))
    sys.stdout.flush()
    for option, path, write in (
        ("--out", out, lambda p: result.save(p)),
        ("--plot", plot, lambda p: _save_plot(result, quantity, p)),
    ):
        if path is not None:
            try:
                write(path)
            except OSError as e:
                raise UsageError(
                    f"{option} {str(path)!r}: cannot write it ({e.strerror or e}); the sweep is "
                    "printed above"
                ) from None
    return 0


def sweep_table(result) -> str:
    """A few lines per method: points, diverged, the best point and the largest stable h."""
    import numpy as np

    lines = [result.summary_line()]
    for i, method in enumerate(result.methods):
        final = np.where(result.diverged[i], np.inf, result.final_loss[i])
        j, k, s_ = np.unravel_index(np.argmin(final), final.shape)
        stable = ~result.diverged[i].any(axis=-1)  # (lam, h)
        largest = [
            float(result.hs[stable[jj]].max()) if stable[jj].any() else float("nan")
            for jj in range(result.lams.size)
        ]
        lines.append(
            f"{method:>12}: {int(result.diverged[i].sum())} of {result.diverged[i].size} diverged; "
            f"lowest final loss {final[j, k, s_]:.4g} at lam={result.lams[j]:.3g}, "
            f"h={result.hs[k]:.3g}; largest h that stayed bounded, per lam: "
            + ", ".join(f"{lam:.3g}:{h:.3g}" for lam, h in zip(result.lams, largest))
        )
    return "\n".join(lines)


def _save_plot(result, quantity: str, path) -> None:
    from ._io import atomic_path
    from .plotting import plot_sweep, save_figure

    fig = plot_sweep(result, quantity)
    with atomic_path(path) as tmp:
        save_figure(fig, tmp)


def _cmd_reproduce(args) -> int:
    from . import paper

    try:
        names = paper.resolve(args.figures)
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    if args.mnist_dir is not None:
        from pathlib import Path

        if not Path(args.mnist_dir).is_dir():
            raise UsageError(f"--mnist-dir {args.mnist_dir!r} is not a folder")
        if args.dataset not in (None, "auto"):
            raise UsageError(f"--mnist-dir runs the MNIST IDX files; drop --dataset {args.dataset}")
    epochs = None if args.epochs is None else _int("epochs", args.epochs, 1)
    for name in names:
        module = paper.load_module(name)
        summary = paper.run_experiment(
            module,
            quick=args.quick,
            out=args.out,
            cache_dir=args.cache,
            progress=not args.no_progress,
            options={"mnist_dir": args.mnist_dir},
            **_reproduce_overrides(module, args, epochs),
        )
        print(f"{name}: {args.out}/{name}.png  {summary['summary'].get('headline', '')}".rstrip())
    return 0


def _reproduce_overrides(module, args, epochs) -> dict:
    """Configuration overrides of one figure from `--full`, `--epochs` and `--dataset`; the
    data set is resolved here ("auto" -> what is installed), so that it keys the cache."""
    from . import paper

    config = dict(module.CONFIG) | (getattr(module, "QUICK", {}) if args.quick else {})
    overrides = dict(getattr(module, "FULL", {})) if args.full else {}
    if epochs is not None and "epochs" in config:
        overrides["epochs"] = epochs
    if "dataset" in config:
        name = args.dataset or overrides.get("dataset") or config["dataset"]
        try:
            overrides["dataset"] = paper.section5_dataset(name, args.mnist_dir)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return overrides


def _cmd_losses(args) -> int:
    from ._losses import list_losses

    for name, description in list_losses().items():
        print(f"{name:18s} {description}")
    return 0


_VALUE_OPTIONS = ("--x0", "--h", "--lam", "--T")


def _glue_negative_values(argv):
    """`--x0 -1.2,1` -> `--x0=-1.2,1`: values starting with '-' are not taken for options."""
    out, i = [], 0
    while i < len(argv):
        if (
            argv[i] in _VALUE_OPTIONS
            and i + 1 < len(argv)
            and argv[i + 1].startswith("-")
            and argv[i + 1][1:2].isdigit() | (argv[i + 1][1:2] == ".")
        ):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _warning_line(message, category, filename, lineno, file=None, line=None):
    """Warnings on one line of stderr each, as the errors are."""
    text = " ".join(str(message).split())
    (file or sys.stderr).write(f"momentum-jax: warning: {text}\n")


def main(argv=None) -> int:
    """Entry point of `momentum-jax`; returns the exit status: 0, 2 for a wrong argument (one
    line), 1 for any other failure (one line; `MOMENTUM_JAX_TRACEBACK=1` shows the traceback)."""
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        try:
            return _main(argv)
        except UsageError as e:
            sys.stderr.write(f"momentum-jax: error: {' '.join(str(e).split())}\n")
            return EXIT_USAGE
        except KeyboardInterrupt:
            sys.stderr.write("momentum-jax: interrupted; finished results are kept in the cache\n")
            return 130
        except Exception as e:  # a failure inside a command: one line, never a traceback
            if os.environ.get("MOMENTUM_JAX_TRACEBACK"):
                raise
            sys.stderr.write(
                f"momentum-jax: error: {_one_line(e)} (MOMENTUM_JAX_TRACEBACK=1 shows where)\n"
            )
            return EXIT_FAILURE


def _main(argv) -> int:
    argv = _glue_negative_values(list(sys.argv[1:] if argv is None else argv))
    args = _parser().parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)  # once, at program start
    command = {
        "study": _cmd_study,
        "sweep": _cmd_sweep,
        "reproduce": _cmd_reproduce,
        "losses": _cmd_losses,
    }
    return command[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
