"""The `momentum-jax` command line: `reproduce`, `study`, `sweep`, `losses`.

Every wrong argument is answered with one line on stderr and exit status 2, never a traceback.
`study`, `sweep` and `reproduce` keep JAX's compiled programs in a persistent compilation cache
(`--compile-cache DIR`, `--no-compile-cache`, `MOMENTUM_JAX_COMPILE_CACHE`), so that a second
run loads them instead of compiling again. Built on the public API (`import momentum_jax as
mj`); a new command is a module here with `run(args)`, its options in `_arguments.parser`.
"""

from __future__ import annotations

import os
import sys
import warnings

import momentum_jax as mj

from . import _losses, _reproduce, _study, _sweep
from ._arguments import UsageError as UsageError
from ._arguments import glue_negative_values, parser
from ._loading import one_line
from ._values import parse_grid as parse_grid
from ._values import parse_hs as parse_hs

EXIT_USAGE = 2
EXIT_FAILURE = 1

COMMANDS = {
    "reproduce": _reproduce.run,
    "study": _study.run,
    "sweep": _sweep.run,
    "losses": _losses.run,
}
"""Command name -> `run(args)`, which returns the exit status."""


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
                f"momentum-jax: error: {one_line(e)} (MOMENTUM_JAX_TRACEBACK=1 shows where)\n"
            )
            return EXIT_FAILURE


def _main(argv) -> int:
    argv = glue_negative_values(list(sys.argv[1:] if argv is None else argv))
    args = parser().parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)  # once, at program start
    if hasattr(args, "no_compile_cache"):
        _compilation_cache(args.compile_cache, args.no_compile_cache)
    return COMMANDS[args.command](args)


def _compilation_cache(folder: str | None, off: bool) -> None:
    """Turn on JAX's persistent compilation cache (`mj.enable_compilation_cache`) in `folder`
    (None: `MOMENTUM_JAX_COMPILE_CACHE`, else the user's cache folder), unless `off`."""
    if off:
        if folder is not None:
            raise UsageError("give --compile-cache DIR or --no-compile-cache, not both")
        return
    try:
        mj.enable_compilation_cache(folder)
    except OSError as e:
        raise UsageError(
            f"--compile-cache {folder!r}: cannot make the folder ({e.strerror or e})"
        ) from None
