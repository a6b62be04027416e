"""A small registry of named losses: each a plain JAX function of a pytree, with a default start
and a one-line description. Any user function is accepted wherever a loss is."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .._types import PyTree


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A registered loss: `fn(u) -> scalar`, its default start `u0`, a description."""

    name: str
    fn: Callable
    u0: PyTree
    description: str


_REGISTRY: dict[str, Callable[..., LossSpec]] = {}


def register_loss(name: str):
    """Decorator: register a factory `(**options) -> LossSpec` under `name`, so that
    `get_loss(name, **options)` and the command line's `--loss name` find it."""

    def wrap(factory):
        _REGISTRY[name] = factory
        return factory

    return wrap


def registered() -> list[str]:
    """The registered names, sorted."""
    return sorted(_REGISTRY)


def get_loss(name: str, **options) -> LossSpec:
    """The registered loss `name` (see `list_losses()`), built with `options`."""
    try:
        factory = _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"loss={name!r} is not registered; choose from {registered()}") from None
    return factory(**options)


def list_losses() -> dict[str, str]:
    """`{name: description}` of every registered loss (with default options)."""
    return {name: get_loss(name).description for name in registered()}
