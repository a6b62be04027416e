"""Progress reports from compiled loops to a host callback, without recompiling.

A compiled loop receives an integer token (a traced array) and calls `report(token, ...)` once
per iteration; the host looks the token up in a registry. A new callback gets a new token, so
it never becomes part of the compiled program (which a callback passed as a static argument
would be, recompiling for every new function).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax

_CALLBACKS: dict[int, Callable] = {}
_DONE: dict[int, dict[int, int]] = {}
_TOKENS = itertools.count()


def register_progress(callback: Callable) -> int:
    """A token under which compiled loops report `callback(done, total)`."""
    token = next(_TOKENS)
    _CALLBACKS[token] = callback
    _DONE[token] = {}
    return token


def release_progress(token: int) -> None:
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
