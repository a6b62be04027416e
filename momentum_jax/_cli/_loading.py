"""Losses for `study` and `sweep`: a registered name with its options (`--loss-arg`), a function
of an importable module (`module:function`, the current directory searched first) or of a
Python file (`path/to/file.py:function`), and the start `--x0`."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import momentum_jax as mj

from ._arguments import UsageError
from ._values import floats


def one_line(e: BaseException) -> str:
    """`Type: message` of an exception, on one line."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def import_module(module_name: str):
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
        module = import_module(module_name)
    except (Exception, SystemExit) as e:  # the user's module failed: report it on one line
        why = str(e) if isinstance(e, FileNotFoundError) else one_line(e)
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


def load_loss(spec: str, loss_args: list[str], x0: str | None):
    """`(loss, u0)` of `--loss`, `--loss-arg` and `--x0`: a registered loss with its options and
    its own start (or `--x0`, for a start of one array), or a user's function with `--x0`."""
    import jax
    import jax.numpy as jnp

    options = {}
    for item in loss_args:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--loss-arg expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    start = jnp.asarray(floats("x0", x0)) if x0 is not None else None
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
    registered = mj.registered_losses()
    if spec not in registered:
        raise UsageError(
            f"--loss {spec!r} is not registered; choose from "
            f"{', '.join(registered)} or give module:function"
        )
    try:
        loss = mj.get_loss(spec, **options)
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
