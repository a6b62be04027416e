"""Mini-batch momentum: HB/NAG (any `Momentum`) driven by mini-batch gradients drawn from a
finite data set, vmapped over independent paths with explicit PRNG keys (docs/stochastic.md).

A loss is per-example, `loss(params, batch) -> (B,)`, and `data` a pytree of arrays whose
leading axis indexes the `N` examples (`momentum_jax._batches`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._batches import batch_mean, num_examples, take
from .._iterate import MomentumState, initial_state, saved_scan, step
from .._method import Momentum
from .._types import PyTree
from .._validate import check_init, check_u0, check_whole


def noise_factor(batch_size: int, n: int, replace: bool = True) -> float:
    """The factor `f` with `Cov(batch gradient) = f Sigma`: `1/B` for `B` draws with
    replacement, `(N - B) / (B (N - 1))` for `B` distinct examples (finite-population
    correction; 0 for the full batch)."""
    b = min(int(batch_size), int(n))
    if replace:
        return 1.0 / b
    return 0.0 if n == 1 else (n - b) / (b * (n - 1.0))


def sample_indices(key, n: int, batch_size: int, replace: bool = True) -> jax.Array:
    """`batch_size` example indices drawn uniformly from `range(n)` (i.i.d. with replacement, or
    distinct without)."""
    if replace:
        return jax.random.randint(key, (batch_size,), 0, n)
    return jax.random.choice(key, n, (batch_size,), replace=False)


def minibatch_step(
    loss,
    method: Momentum,
    data,
    key,
    state: MomentumState,
    *,
    batch_size: int = 1,
    replace: bool = True,
) -> MomentumState:
    r"""One step of eq. (15) with a fresh mini-batch drawn with `key`: the gradient (at the
    look-ahead point for NAG) is that of the batch mean loss,

    $$w_{n+1} = \lambda w_n - \nabla\Phi_{\xi_n}(u_n + h a w_n),\qquad u_{n+1} = u_n + h w_{n+1}.$$
    """
    n = num_examples(data)
    idx = sample_indices(key, n, min(batch_size, n), replace)
    return step(batch_mean(loss, take(data, idx)), method, state)


def _check_minibatch(loss, u0, data, batch_size, init):
    check_u0(u0)
    check_whole("batch_size", batch_size, low=1)
    n = num_examples(data)
    check_init(init, u0)
    if not callable(loss):
        raise TypeError(
            f"loss must be a callable (params, batch) -> per-example losses, got {loss!r}"
        )
    return n


def _keys(keys):
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        if keys.ndim != 1:
            raise ValueError(
                f"keys must be a 1-D array of PRNG keys (one per path), got shape {keys.shape}"
            )
        return keys
    if keys.ndim != 2 or keys.shape[-1] != 2:
        raise ValueError(
            "keys must be jax.random.split(key, num_paths): one key per path, "
            f"got shape {keys.shape}"
        )
    return keys


def minibatch_iterate(
    loss,
    u0: PyTree,
    method: Momentum,
    data: PyTree,
    num_steps: int,
    keys,
    *,
    batch_size: int = 1,
    replace: bool = True,
    init="zero",
    save_every: int = 1,
) -> PyTree:
    """Mini-batch HB/NAG (any `Momentum`) along many independent paths at once.

    **Arguments:**

    - `loss`: per-example losses `(params, batch) -> (B,)`; pass a module-level function (a
      new function object recompiles).
    - `u0`: the start (a pytree of float arrays), shared by every path.
    - `method`: a `Momentum`; its fields are traced.
    - `data`: a pytree whose leading axis indexes the `N` examples.
    - `num_steps`: steps per path (a Python int; it fixes the output's shape).
    - `keys`: one PRNG key per path (`jax.random.split(key, num_paths)`); step `n` of a path
      draws its batch with `jax.random.fold_in(key, n)`, so a path is reproducible from its key
      whatever is saved.
    - `batch_size`, `replace`: `batch_size` examples per step, i.i.d. uniform with replacement
      (default) or distinct.
    - `init`: `"zero"` (zero initial velocity), `"manifold"` (the invariant-manifold velocity of
      the full-batch loss) or an explicit velocity pytree.
    - `save_every`: keep every `save_every`-th iterate.

    **Returns:** `u0`'s pytree with leading axes `(num_paths, num_steps // save_every + 1)`.
    """
    _check_minibatch(loss, u0, data, batch_size, init)
    check_whole("num_steps", num_steps, low=0)
    check_whole("save_every", save_every, low=1)
    return _minibatch_paths(
        loss, batch_size, replace, init, num_steps, save_every, u0, method, data, _keys(keys)
    )


def minibatch_final(
    loss,
    u0: PyTree,
    method: Momentum,
    data: PyTree,
    num_steps,
    keys,
    *,
    batch_size: int = 1,
    replace: bool = True,
    init="zero",
) -> PyTree:
    """Like `minibatch_iterate` but keep only `u` after `num_steps` steps (the same paths: the same
    keys give the same final iterates). `num_steps` is traced, so a new step count (a new `h`
    at fixed `T`) reuses the compiled loop. **Returns:** `u0`'s pytree with a leading path axis."""
    _check_minibatch(loss, u0, data, batch_size, init)
    if not isinstance(num_steps, jax.Array):
        check_whole("num_steps", num_steps, low=0)
    return _minibatch_final(
        loss,
        batch_size,
        replace,
        init,
        u0,
        method,
        data,
        _keys(keys),
        jnp.asarray(num_steps, dtype=jnp.int32),
    )


def _start(loss, data, u0, method, init):
    return initial_state(batch_mean(loss, data), u0, method, init)


@eqx.filter_jit
def _minibatch_paths(
    loss, batch_size, replace, init, num_steps, save_every, u0, method, data, keys
):
    state0 = _start(loss, data, u0, method, init)

    def path(key):
        def advance(n, s):
            key_n = jax.random.fold_in(key, n)
            return minibatch_step(
                loss, method, data, key_n, s, batch_size=batch_size, replace=replace
            )

        return saved_scan(advance, state0, num_steps, save_every, save=lambda s: s.u)

    return jax.vmap(path)(keys)


@eqx.filter_jit
def _minibatch_final(loss, batch_size, replace, init, u0, method, data, keys, num_steps):
    state0 = _start(loss, data, u0, method, init)

    def path(key):
        def body(n, s):
            return minibatch_step(
                loss,
                method,
                data,
                jax.random.fold_in(key, n),
                s,
                batch_size=batch_size,
                replace=replace,
            )

        return jax.lax.fori_loop(0, num_steps, body, state0).u

    return jax.vmap(path)(keys)
