"""Progress reports from compiled loops to a host callback, without recompiling.

A compiled loop receives an integer token (a traced array) and calls `report(token, ...)` once
per iteration; the host looks the token up in a registry. A new callback gets a new token, so
it never becomes part of the compiled program (which a callback passed as a static argument
would be, recompiling for every new function). `progress_token` holds a callback's token for
the duration of a `with` block.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator

import jax

_CALLBACKS: dict[int, Callable] = {}
_DONE: dict[int, dict[int, int]] = {}
_TOKENS = itertools.count()

NO_PROGRESS = -1
"""The token of a run without a callback (its loops are compiled without reports)."""


def check_progress(progress) -> None:
    """`progress` must be None or a callable `progress(done, total)` (`TypeError` naming it)."""
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable (done, total) or None, got {progress!r}")


@contextlib.contextmanager
def progress_token(progress: Callable[[int, int], object] | None) -> Iterator[int]:
    """`with progress_token(progress) as token:` the token under which compiled loops report
    `progress(done, total)` inside the block (`NO_PROGRESS` for None); the callback is
    forgotten when the block ends, however it ends."""
    check_progress(progress)
    if progress is None:
        yield NO_PROGRESS
        return
    token = next(_TOKENS)
    _CALLBACKS[token] = progress
    _DONE[token] = {}
    try:
        yield token
    finally:
        _CALLBACKS.pop(token, None)
        _DONE.pop(token, None)


def _on_host(token, device, done, total):
    token, device = int(token), int(device)
    if token in _CALLBACKS:
        per_device = _DONE[token]
        per_device[device] = int(done)
        _CALLBACKS[token](sum(per_device.values()), int(total))


def report(token, device, done, total) -> None:
    """From compiled code: `done` of `total` on `device` (summed over devices on the host)."""
    jax.debug.callback(_on_host, token, device, done, total)
