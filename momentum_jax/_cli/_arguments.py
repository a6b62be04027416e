"""The arguments of `momentum-jax`: the parser of the commands and their options (those `study`
and `sweep` share declared once, in `run_options`; their values are read in `_values.py`).
Every wrong argument is a `UsageError`, reported in one line with exit status 2."""

from __future__ import annotations

import argparse
import sys

import momentum_jax as mj
from momentum_jax import paper


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


class Parser(argparse.ArgumentParser):
    """argparse's parser with its own errors raised as `UsageError` (one line, exit 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(message)

    def exit(self, status=0, message=None):
        if status:
            raise UsageError((message or "invalid arguments").strip())
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


GRID_HELP = {
    "h": "A:B for every power of two from A down to B, A:B:n for n values geometrically from A "
    "to B (exact powers of two when A, B and their ratio allow), or a comma list; repeatable",
    "lam": "A:B:n for n values evenly from A to B, or a comma list; repeatable",
}


def compile_cache_options() -> Parser:
    """The parent parser of the persistent compilation cache's options (`reproduce`, `study`,
    `sweep`)."""
    p = Parser(add_help=False)
    p.add_argument(
        "--compile-cache",
        default=None,
        action=Once,
        metavar="DIR",
        help="folder of JAX's persistent compilation cache, which later runs load instead of "
        "compiling again (default: $MOMENTUM_JAX_COMPILE_CACHE if set, else "
        "$XDG_CACHE_HOME/momentum_jax/jax or ~/.cache/momentum_jax/jax)",
    )
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="compile everything in this process (as MOMENTUM_JAX_COMPILE_CACHE=off)",
    )
    return p


def run_options(noun: str, *, methods, lam: str, h: str, model: str, model_help: str) -> Parser:
    """The parent parser of the options `study` and `sweep` share, with the command's defaults:
    the loss and its start, the grid (`--method`, `--lam`, `--h`), `--model`, and the output
    (`--out`, `--json`, `--no-progress`)."""
    p = Parser(add_help=False)
    p.add_argument(
        "--loss",
        required=True,
        action=Once,
        help="a registered loss, module:function (the current directory is searched first, as "
        "with python -m) or path/to/file.py:function",
    )
    p.add_argument(
        "--loss-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="option of a registered loss, e.g. kappa=20 (repeatable)",
    )
    p.add_argument("--x0", default=None, action=Once, help="start as comma-separated floats")
    p.add_argument(
        "--method",
        default="hb,nag",
        action=Repeatable,
        help="comma-separated: " + ", ".join(methods),
    )
    p.add_argument(
        "--lam", default=lam, action=Repeatable, help="momenta in [0, 1): " + GRID_HELP["lam"]
    )
    p.add_argument(
        "--h",
        default=h,
        action=Repeatable,
        help="learning rates (strictly decreasing for a study): " + GRID_HELP["h"],
    )
    p.add_argument("--model", default=model, action=Repeatable, help=model_help)
    p.add_argument(
        "--out",
        default=None,
        action=Once,
        help=f"save the {noun}: FILE.json (JSON) or FILE.nc (netCDF, needs the xarray extra)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown on a terminal only)"
    )
    return p


def parser() -> argparse.ArgumentParser:
    """The parser of `momentum-jax` and its commands; the choices come from the library's
    tables (`METHODS`, `SWEEP_METHODS`, `MODELS`, `VELOCITIES`, `CONSTANTS`, `NORMS`)."""
    p = Parser(
        prog="momentum-jax",
        description="The `momentum-jax` command line: `reproduce`, `study`, `sweep`, `losses`.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    cache = compile_cache_options()

    r = sub.add_parser(
        "reproduce", parents=[cache], help="regenerate the paper's figures (all, or those named)"
    )
    r.add_argument("figures", nargs="*", metavar="FIG", help="e.g. fig2 or fig2_rates")
    r.add_argument("--quick", action="store_true", help="reduced CPU settings")
    r.add_argument("--out", default="figures", help="output folder (default: figures)")
    r.add_argument("--mnist-dir", default=None, help="folder with the MNIST IDX files")
    r.add_argument(
        "--dataset",
        default=None,
        choices=("auto", *paper.DATASETS[:2]),
        help="data of Figs 6, 7, 10: auto (default; the MNIST 5k subset of the mnist extra if "
        "installed, else the digits; --quick: digits), mnist5k, digits",
    )
    r.add_argument(
        "--full",
        action="store_true",
        help="the paper's Section 5 protocol for Figs 6, 7, 10 (500 epochs; for a GPU: "
        "hours) and Fig 14's digits row on the 32 x 32 grid",
    )
    r.add_argument("--epochs", default=None, help="epochs of the Fig 6 runs (integer >= 1)")
    r.add_argument(
        "--seeds",
        nargs="+",
        default=None,
        metavar="N",
        help="seeds of the Section 5 figures (integers >= 0, no repeats; default: seed 0 for "
        "Figs 6, 7, 10), e.g. --seeds 0 1 2",
    )
    r.add_argument(
        "--set",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="one configuration key of the named figures that have it, the value as JSON, "
        "applied after --full (repeatable), e.g. fig7 --set 'h_exponents=[2, 10]'",
    )
    r.add_argument("--cache", default=None, help="cache folder (default: .cache/momentum_jax)")
    r.add_argument("--no-progress", action="store_true", help="plain log lines only")

    study = run_options(
        "study",
        methods=mj.METHODS,
        lam="0.9",
        h="2^-4:2^-10",
        model="gradient_flow,hamiltonian,modified_flow",
        model_help="comma-separated: " + ", ".join(mj.MODELS),
    )
    s = sub.add_parser("study", parents=[study, cache], help="a convergence study on any loss")
    s.add_argument("--T", default="2", action=Once, help="the time horizon, one number > 0")
    s.add_argument("--init", default="zero", action=Once, help="zero or manifold")
    s.add_argument(
        "--norm",
        default="euclidean",
        action=Once,
        help="norm of the errors: " + ", ".join(mj.NORMS) + " (max: the largest component; "
        "the paper's norm)",
    )
    s.add_argument(
        "--velocity",
        default="match",
        action=Once,
        help="the start u'(0) of the second-order models: " + ", ".join(mj.VELOCITIES),
    )
    s.add_argument(
        "--order",
        default="1",
        action=Once,
        help="order of modified_flow and of the manifold start (integer >= 0)",
    )
    s.add_argument(
        "--constant",
        default="corrected",
        action=Once,
        help="constant of modified_flow: " + ", ".join(mj.CONSTANTS),
    )
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

    sweep = run_options(
        "sweep",
        methods=mj.SWEEP_METHODS,
        lam="0:0.95:32",
        h="2^-1:2^-8:32",
        model="",
        model_help="models to measure the distance to (comma-separated), e.g. gradient_flow",
    )
    w = sub.add_parser(
        "sweep",
        parents=[sweep, cache],
        help="train any loss over an (h, lam) grid: losses, divergence",
    )
    w.add_argument("--steps", required=True, action=Once, help="steps per run (integer >= 1)")
    w.add_argument(
        "--record-every", default=None, action=Once, help="record the loss every this many steps"
    )
    w.add_argument(
        "--no-min-loss",
        action="store_true",
        help="leave out the minimum loss over every step (faster: the bare loop's speed)",
    )
    w.add_argument("--plot", default=None, action=Once, help="draw a heat map to FILE.png")
    w.add_argument(
        "--quantity",
        default=None,
        action=Once,
        help="what --plot draws (with --plot only): final_loss (default), min_loss, "
        "diverged_at, curve (with --record-every), distance:<model> (with --model)",
    )

    sub.add_parser("losses", help="list the registered losses")
    return p


VALUE_OPTIONS = ("--x0", "--h", "--lam", "--T")
"""The options whose values may start with `-` (negative numbers)."""


def glue_negative_values(argv: list[str]) -> list[str]:
    """`--x0 -1.2,1` -> `--x0=-1.2,1`: values starting with '-' are not taken for options."""
    out, i = [], 0
    while i < len(argv):
        if (
            argv[i] in VALUE_OPTIONS
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
