"""What `study` and `sweep` show and write: the progress bar, the result printed as a table or
one JSON document, then its files."""

from __future__ import annotations

import contextlib
import sys

import momentum_jax as mj
from momentum_jax import paper

from ._arguments import UsageError


@contextlib.contextmanager
def progress_bar(args, label: str):
    """A progress bar (`momentum_jax.paper.Progress`, usable as a `progress(done, total)`
    callback) when stderr is a terminal and `--no-progress` was not given, else None; closed
    on leaving."""
    shown = not args.no_progress and getattr(sys.stderr, "isatty", lambda: False)()
    bar = paper.Progress(1, label) if shown else None
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def show(result, as_json: bool) -> None:
    """Print the result (a `Study` or `Sweep`): its `table()`, or its `to_dict()` as one JSON
    document; printed before any file is written, so a failing write does not lose it."""
    print(mj.to_json(result.to_dict()) if as_json else result.table())
    sys.stdout.flush()


def write(option: str, path, what: str, save) -> None:
    """`save(path)` (nothing if `path` is None), an `OSError` being a `UsageError` naming
    `option` and saying that the `what` is printed above."""
    if path is None:
        return
    try:
        save(path)
    except OSError as e:
        raise UsageError(
            f"{option} {str(path)!r}: cannot write the {what} ({e.strerror or e}); it is printed "
            "above"
        ) from None
