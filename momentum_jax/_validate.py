"""Input checks that run before anything is compiled: each error names the argument and the
allowed range."""

from __future__ import annotations

import functools
import numbers
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def concrete(x) -> np.ndarray | None:
    """The value of `x` as a float NumPy array, or None when it is traced (not known yet)."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return None


def _interval(low, high, low_open, high_open) -> str:
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{lo}, {hi}{right}"


def check_range(name: str, value, *, low=None, high=None, low_open=False, high_open=False):
    """Raise `ValueError` naming `name` unless every element of a concrete `value` is finite and
    inside the given interval. Traced values pass through unchecked."""
    arr = concrete(value)
    if arr is None:
        return
    bad = ~np.isfinite(arr)
    if low is not None:
        bad |= (arr <= low) if low_open else (arr < low)
    if high is not None:
        bad |= (arr >= high) if high_open else (arr > high)
    if np.any(bad):
        shown = arr.tolist() if arr.ndim == 0 else arr[bad].tolist()
        allowed = _interval(low, high, low_open, high_open)
        raise ValueError(f"{name}={shown} is outside the allowed range {allowed} (finite values)")


def check_whole(name: str, value, *, low: int = 0):
    """`value` must be a Python integer `>= low`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name}={value} is outside the allowed range: an integer >= {low}")


def loss_name(loss) -> str:
    """A short name for messages and a study's `config["loss"]`: the loss's `name`, its function
    name (`partial(f)` for a `functools.partial` or `jax.tree_util.Partial`), else its class
    name; never a repr, which may hold every value of the loss's arrays."""
    if isinstance(getattr(loss, "name", None), str):
        return loss.name
    if isinstance(loss, functools.partial):  # jax.tree_util.Partial is one too
        return f"partial({loss_name(loss.func)})"
    for attribute in ("__qualname__", "__name__"):
        name = getattr(loss, attribute, None)
        if isinstance(name, str):
            return name
    return type(loss).__qualname__


_CHECKED_LOSSES: dict = {}
"""The `(loss, u0)` signatures `check_loss` has passed (`_loss_signature`), at most 256."""


def _loss_signature(loss, u0):
    """A hashable key of what `check_loss`'s answer depends on: the loss and `u0` with every
    array leaf replaced by its shape and dtype; None when a leaf is not hashable."""
    leaves, treedef = jax.tree.flatten((loss, u0))
    key = tuple((x.shape, x.dtype) if isinstance(x, np.ndarray | jax.Array) else x for x in leaves)
    try:
        hash(key)
    except TypeError:
        return None
    return treedef, key


def check_loss(loss, u0):
    """The loss must be callable on `u0` and return a real floating scalar; checked by
    abstract evaluation (`jax.eval_shape`), which compiles nothing, once for each signature
    (a later call with arrays of the same shapes and dtypes skips the tracing)."""
    if not callable(loss):
        raise TypeError(f"loss must be a callable taking a pytree shaped like u0, got {loss!r}")
    signature = _loss_signature(loss, u0)
    if signature is not None and signature in _CHECKED_LOSSES:
        return
    _check_loss(loss, u0)
    if signature is not None:
        if len(_CHECKED_LOSSES) >= 256:
            _CHECKED_LOSSES.clear()
        _CHECKED_LOSSES[signature] = True


def _check_loss(loss, u0):
    name = loss_name(loss)
    try:
        out = jax.eval_shape(loss, u0)
    except Exception as e:  # the user's function failed to trace: report it with its name
        raise TypeError(f"loss {name!r} cannot be evaluated on u0: {type(e).__name__}: {e}") from e
    if not hasattr(out, "shape") or out.shape != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise TypeError(f"loss {name!r} must return a scalar, got shape {shape}")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"loss {name!r} must return a real floating scalar, got dtype {out.dtype}")
    try:
        jax.eval_shape(jax.grad(loss), u0)
    except Exception as e:
        raise TypeError(f"loss {name!r} is not differentiable by jax.grad: {e}") from e


def _is_array(leaf) -> bool:
    """An array (JAX, NumPy, a tracer, a `ShapeDtypeStruct`) or a Python number."""
    if isinstance(leaf, (str, bytes)):
        return False
    return isinstance(leaf, numbers.Number) or (hasattr(leaf, "shape") and hasattr(leaf, "dtype"))


def check_u0(u0, name: str = "u0"):
    """Every leaf of `u0` must be a floating array with finite values, all of one dtype."""
    leaves = jax.tree_util.tree_leaves_with_path(u0)
    if not leaves:
        raise ValueError(f"{name} must be a non-empty pytree of float arrays")
    for path, leaf in leaves:
        if _is_array(leaf):
            continue
        where = f"{name}{jax.tree_util.keystr(path)}"
        if isinstance(u0, eqx.Module):
            raise TypeError(
                f"{name} is an equinox Module with non-array leaves ({where} is a "
                f"{type(leaf).__name__}); pass its arrays only: params, static = "
                f"eqx.partition({name}, eqx.is_inexact_array), with params as {name} and a loss "
                "of params that calls eqx.combine(params, static)"
            )
        shown = repr(leaf) if len(repr(leaf)) <= 40 else repr(leaf)[:37] + "..."
        raise TypeError(
            f"{name} must be a pytree of floating arrays; its leaf {where} is a "
            f"{type(leaf).__name__} ({shown})"
        )
    dtypes = set()
    for _, leaf in leaves:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"{name} must hold floating arrays, got a leaf of dtype {dtype}")
        if not isinstance(leaf, numbers.Number):  # Python numbers take the arrays' dtype
            dtypes.add(np.dtype(dtype).name)
        arr = concrete(leaf)
        if arr is not None and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got non-finite values")
    if len(dtypes) > 1:
        raise TypeError(
            f"{name} mixes the dtypes {', '.join(sorted(dtypes))}; its leaves must have one dtype "
            f"(for example jax.tree.map(lambda x: x.astype(jnp.float64), {name}))"
        )


def check_solvable_dtype(u0, what: str, name: str = "u0"):
    """Refuse half precision where an ODE is solved and rates are fitted: diffrax's step-size
    control and the least-squares fits need float32 or float64. (The discrete steps alone,
    `iterate`, keep any floating dtype.)"""
    dtype = np.dtype(jnp.result_type(*jax.tree.leaves(u0)))
    if jnp.finfo(dtype).bits < 32:
        raise TypeError(
            f"{name} has dtype {dtype.name}: half precision is refused by {what} (diffrax's "
            "step-size control and the least-squares fits of the rates need float32 or float64); "
            f"cast the start, e.g. jax.tree.map(lambda x: x.astype(jnp.float32), {name})"
        )


def check_finite_start(loss, u0, name: str = "u0"):
    """The loss and its gradient must be finite at a concrete `u0` (a non-finite gradient would
    otherwise show up as a run that "diverged at step 1"). Compiled once per loss and shape;
    skipped for traced values."""
    if any(concrete(x) is None for x in jax.tree.leaves(u0)):
        return
    value, grad = _value_and_grad(loss, u0)
    if isinstance(value, jax.core.Tracer):  # the loss closes over traced values
        return
    lname = loss_name(loss)
    if not np.isfinite(float(value)):
        raise ValueError(
            f"loss {lname!r} is not finite at {name}: {float(value)}; start where it is defined"
        )
    grads = [np.asarray(g) for g in jax.tree.leaves(grad)]
    bad = int(sum(np.sum(~np.isfinite(g)) for g in grads))
    if bad:
        total = int(sum(g.size for g in grads))
        raise ValueError(
            f"the gradient of loss {lname!r} is not finite at {name} ({bad} of {total} "
            "components are nan or inf); start where the loss is differentiable"
        )
    if all(not np.any(g) for g in grads):
        _check_moving(loss, u0, name, lname)


def _check_moving(loss, u0, name: str, lname: str, tries: int = 4, distance: float = 1e-3):
    """The gradient is exactly zero at `u0`: refuse a loss whose gradient is zero at `tries`
    random points around `u0` too (a piecewise-constant loss, `jnp.floor` say: nothing would
    move, every error would be 0 and every rate undefined); warn that `u0` is a stationary
    point otherwise."""
    leaves, treedef = jax.tree.flatten(u0)
    size = max(1.0, float(np.sqrt(sum(np.sum(np.square(np.asarray(x))) for x in leaves))))
    rng = np.random.default_rng(0)
    for _ in range(tries):
        moved = jax.tree.unflatten(
            treedef,
            [
                np.asarray(x) + distance * size * rng.standard_normal(np.shape(x)).astype(x.dtype)
                for x in leaves
            ],
        )
        _, grad = _value_and_grad(loss, moved)
        if any(np.any(np.asarray(g)) for g in jax.tree.leaves(grad)):
            warnings.warn(
                f"the gradient of loss {lname!r} is zero at {name}: {name} is a stationary point, "
                "where every method and model stays (errors 0, rates undefined); start elsewhere",
                RuntimeWarning,
                stacklevel=3,
            )
            return
    raise ValueError(
        f"the gradient of loss {lname!r} is exactly zero at {name} and at {tries} random points "
        f"within a relative distance {distance:g} of it: nothing would move, every error would "
        "be 0 and every rate undefined; is the loss piecewise constant (jnp.floor, jnp.round, "
        "a comparison)? Give a loss with a nonzero gradient"
    )


@eqx.filter_jit
def _value_and_grad(loss, u0):
    return jax.value_and_grad(loss)(u0)


def check_init(init, u0):
    """`init` is `"zero"`, `"manifold"`, or a pytree with the structure and shapes of `u0`."""
    if isinstance(init, str):
        if init not in ("zero", "manifold"):
            raise ValueError(f"init={init!r} is not one of 'zero', 'manifold' or a pytree like u0")
        return
    if jax.tree.structure(init) != jax.tree.structure(u0) or any(
        jnp.shape(a) != jnp.shape(b) for a, b in zip(jax.tree.leaves(init), jax.tree.leaves(u0))
    ):
        raise ValueError(
            "init, given as a velocity pytree, must have the structure and shapes of u0"
        )
    check_u0(init, "init")


def as_names(name: str, value) -> tuple:
    """`value` as a tuple of names, for arguments such as `methods` and `models`: a single
    string is one name (`"hb"` is `("hb",)`, never the letters `"h"`, `"b"`); any other iterable
    is taken item by item; anything else is a `TypeError` naming `name`."""
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a name or a sequence of names, got {type(value).__name__}"
        ) from None


def check_choice(name: str, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}")


def warn_if_low_precision(u0, rtol: float, what: str):
    """Warn when the computation runs in a floating type too coarse for the requested accuracy
    (for example float32 against the default solver tolerance `1e-12`), and say why it does: with
    float64 off (`jax_enable_x64`), how to turn it on; with float64 on, that the start's dtype
    chose the lower precision and how to cast it (turning float64 on would change nothing)."""
    import warnings

    leaves = jax.tree.leaves(u0)
    dtypes = {jnp.result_type(leaf) for leaf in leaves} | {jnp.result_type(float)}
    eps = max(float(jnp.finfo(d).eps) for d in dtypes if jnp.issubdtype(d, jnp.floating))
    if eps > 1e-10 and rtol < 100 * eps:
        coarse = min(
            (np.dtype(d) for d in dtypes if jnp.issubdtype(d, jnp.floating)),
            key=lambda d: np.finfo(d).bits,
        )
        if np.dtype(jnp.result_type(float)) == np.float64:  # jax_enable_x64 is on
            why = (
                f"float64 is enabled, but the start holds {coarse.name}, so the computation "
                f"runs in {coarse.name}; for float64 results cast the start: "
                "jax.tree.map(lambda x: x.astype(jnp.float64), u0)"
            )
        else:
            why = (
                "float64 is disabled (jax_enable_x64 is off), so JAX computes in float32; "
                "enable it at program start: jax.config.update('jax_enable_x64', True)"
            )
        warnings.warn(
            f"{what} runs in a floating type with resolution {eps:.1e} (solver rtol={rtol:g}); "
            f"errors below about {100 * eps:.0e} are rounding noise. {why}.",
            RuntimeWarning,
            stacklevel=3,
        )
