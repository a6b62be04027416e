r"""The paper's Section 5 protocol: mini-batch training with fixed-order batches, compared
across schemes (Figs 6-7; the schemes are in `momentum_jax._schemes`, docs/theory.md §6).

Step `n` of every scheme uses mini-batch `n mod n_batches`, in the data's own order (no
shuffling), so two schemes given the same data see the same noise. The comparisons of Fig 7 are
at equal step index: HB/NAG with step `h` against `"gd_effective"` (gradient descent at rate
`h / (1 - lam)`, eq. 35) with the same `h` (both approximate the rescaled gradient flow (8) at
time `t = n h`), and HB-mu/NAG-mu against `"wilson"` (both approximate the damped ODE of the
vanishing-friction regime at time `t = n sqrt(h)`). Comparing across `h` needs a fixed time
horizon (`steps = T / h`, or `T / sqrt(h)`; docs/theory.md §6): `parameter_gap(..., steps=n)`
(`_gaps.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from . import _tree
from ._autoencoder import squared_error
from ._batches import batched_mean_loss, make_batches, masked_batch_mean, num_examples
from ._iterate import MomentumState
from ._runtime import (
    DIVERGENCE_LIMIT,
    check_divergence_limit,
    divergence_bound,
    guard,
)
from ._schemes import check_scheme, scheme_step
from ._types import PyTree
from ._validate import check_range, check_u0, check_whole


class _Carry(NamedTuple):
    state: MomentumState
    diverged_at: jax.Array  # first step whose iterate is unbounded, -1 if none
    n: jax.Array  # steps done


def _guarded_step(scheme, loss, h, lam, mu, bound, carry: _Carry, batch, mask_b) -> _Carry:
    """A step under the divergence rule (`momentum_jax._runtime.guard`): once an iterate is
    not finite or its norm exceeds `bound`, the state is frozen at its last bounded value and
    the step recorded."""
    new = scheme_step(scheme, masked_batch_mean(loss, mask_b, batch), h, lam, mu, carry.state)
    state, diverged, _ = guard(new, carry.state, carry.diverged_at, carry.n + 1, bound)
    return _Carry(state, diverged, carry.n + 1)


def _epoch(scheme, loss, error, h, lam, mu, bound, batches, mask, carry: _Carry):
    def body(c, xs):
        return _guarded_step(scheme, loss, h, lam, mu, bound, c, *xs), None

    carry, _ = jax.lax.scan(body, carry, (batches, mask))
    return carry, batched_mean_loss(error, carry.state.u, batches, mask)


@eqx.filter_jit
def _run(
    scheme,
    loss,
    error,
    batch_size,
    epochs,
    every,
    with_initial,
    carry,
    data,
    h,
    lam,
    mu,
    limit,
    start,
):
    batches, mask = make_batches(data, batch_size)
    initial = batched_mean_loss(error, carry.state.u, batches, mask) if with_initial else None
    bound = divergence_bound(limit, start)

    def epoch(c, _):
        return _epoch(scheme, loss, error, h, lam, mu, bound, batches, mask, c)

    if every is None:
        carry, losses = jax.lax.scan(epoch, carry, None, length=epochs)
        return carry, initial, losses, None

    def group(c, _):
        c, values = jax.lax.scan(epoch, c, None, length=every)
        return c, (values, c.state.u)

    groups, rest = divmod(epochs, every)
    carry, (values, snapshots) = jax.lax.scan(group, carry, None, length=groups)
    carry, tail = jax.lax.scan(epoch, carry, None, length=rest)
    losses = jnp.concatenate([values.reshape(-1), tail])
    return carry, initial, losses, snapshots


class TrainResult(NamedTuple):
    """What `train` returns."""

    params: PyTree
    """Final parameters (the last bounded ones if the run diverged)."""
    velocity: PyTree
    """Final velocity: `w_n = (u_n - u_{n-1}) / h` (eq. 15) for the eq. (7) schemes, `v_n` for
    `"wilson"`; pass it back as `velocity0` to continue a run."""
    losses: jax.Array
    """`(epochs + 1,)`: the mean of the per-example `error` (by default the training `loss`)
    over the whole data set before training and after each epoch; NaN from the epoch in which
    the run diverged on."""
    diverged_at: jax.Array
    """The first step `n` (1-based) whose parameters `u_n` are not finite or have norm above
    `divergence_limit * max(1, |params0|)`; -1 if none. The rule of `iterate_final`, `sweep`
    and `convergence_study`."""
    diverged_epoch: jax.Array
    """The epoch (1-based) holding step `diverged_at`; -1 if none."""
    snapshots: PyTree | None
    """With `record_params_every=k`: the parameters after epochs `0, k, 2k, ...` stacked on a
    leading axis (`epochs // k + 1` entries); None otherwise."""


def _check(scheme, params0, data, h, lam, mu, epochs, batch_size, loss, limit, name="loss"):
    check_scheme("scheme", scheme)
    check_divergence_limit(limit)
    check_u0(params0, "params0")
    check_range("h", h, low=0.0, low_open=True)
    check_range("lam", lam, low=0.0, high=1.0, high_open=True)
    check_range("mu", mu, low=0.0, low_open=True)
    if epochs is not None:
        check_whole("epochs", epochs, low=0)
    check_whole("batch_size", batch_size, low=1)
    n = num_examples(data)
    _check_per_example(name, loss, params0, data, batch_size, n)
    return n


def _check_per_example(name, loss, params0, data, batch_size, n):
    if not callable(loss):
        raise TypeError(
            f"{name} must be a callable (params, batch) -> per-example losses, got {loss!r}"
        )
    b = min(batch_size, n)
    batch = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct((b, *jnp.shape(x)[1:]), jnp.result_type(x)), data
    )
    try:
        out = jax.eval_shape(loss, params0, batch)
    except Exception as e:
        raise TypeError(
            f"{name} cannot be evaluated on (params0, a batch of data): {type(e).__name__}: {e}"
        ) from e
    if getattr(out, "shape", None) != (b,) or not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(
            f"{name} must return one float per example, shape ({b},), got "
            f"{getattr(out, 'shape', type(out).__name__)} {getattr(out, 'dtype', '')}"
        )


def _as_inputs(params0, data, h, lam, mu, limit):
    dtype = _tree.dtype(params0)
    data = jax.tree.map(jnp.asarray, data)
    return data, *(jnp.asarray(x, dtype=dtype) for x in (h, lam, mu, limit))


def train(
    scheme: str,
    params0: PyTree,
    data: PyTree,
    h,
    *,
    epochs: int,
    batch_size: int = 200,
    lam=0.9,
    mu=1.0,
    record_params_every: int | None = None,
    loss: Callable = squared_error,
    error: Callable | None = None,
    velocity0: PyTree | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    divergence_limit: float = DIVERGENCE_LIMIT,
) -> TrainResult:
    """Train with `scheme` on fixed-order mini-batches (paper Section 5).

    **Arguments:**

    - `scheme`: one of `"gd_effective"` (eq. 35, gradient descent at rate `h / (1 - lam)`),
      `"hb"`, `"nag"` (eq. 7), `"wilson"` (eq. 36), `"hb_mu"`, `"nag_mu"` (eq. 7 with `lam`
      from eq. 5); the table `SCHEMES`.
    - `params0`: the start, a pytree of float arrays (e.g. `init_autoencoder(sizes, seed)`).
    - `data`: an array, or a pytree of arrays, whose leading axis indexes the examples (e.g.
      images `(N, 784)`, or `(x, y)`).
    - `h`: the learning rate; traced, so a new value reuses the compiled loop and `jax.vmap`
      over an array of `h` works.
    - `epochs`: passes over the data.
    - `batch_size`: examples per step, consecutive in the data's order (no shuffling); a last,
      smaller batch takes the remainder when `batch_size` does not divide `N`.
    - `lam`: the fixed momentum of `"hb"`, `"nag"` and the effective rate of `"gd_effective"`.
    - `mu`: the strong-convexity parameter of `"wilson"`, `"hb_mu"`, `"nag_mu"`.
    - `record_params_every`: keep the parameters every this many epochs (see `TrainResult`).
    - `loss`: `(params, batch) -> per-example losses (B,)`; a batch's loss is their mean. The
      default is the autoencoder's squared error per example, so the reported loss is the
      paper's training error (mean over examples of `||x - x_hat||^2`). Pass a module-level
      function: a new function object recompiles. `pixel_mean_squared_error` is the same
      error divided by the number of pixels (PyTorch's `nn.MSELoss()`), the normalisation
      under which the paper's learning rates behave as published (docs/theory.md §6).
    - `error`: the per-example error reported in `losses`, `(params, batch) -> (B,)`; default
      `loss`. E.g. train on `pixel_mean_squared_error` and report `squared_error`.
    - `velocity0`: a starting velocity (default zero, the paper's start).
    - `on_epoch`: called as `on_epoch(epoch, loss)` after each epoch (1-based), for progress
      reports. It makes the epochs a Python loop over one compiled epoch, so it cannot be used
      under `jax.vmap`.
    - `divergence_limit`: the run diverges at the first step `n` whose parameters are not
      finite or have norm above `divergence_limit * max(1, |params0|)`; they are then frozen at
      step `n - 1` and the losses are NaN from the epoch holding step `n` on (the rule of
      `iterate_final`, `sweep` and `convergence_study`). A loss that overflows while the
      parameters stay bounded is reported as it is (inf), not as a divergence.

    **Returns:** a `TrainResult`. Divergence is reported in `diverged_at`, not as a silent NaN.
    """
    n = _check(scheme, params0, data, h, lam, mu, epochs, batch_size, loss, divergence_limit)
    if error is None:
        error = loss
    else:
        _check_per_example("error", error, params0, data, batch_size, n)
    if record_params_every is not None:
        check_whole("record_params_every", record_params_every, low=1)
    data, h, lam, mu, limit = _as_inputs(params0, data, h, lam, mu, divergence_limit)
    velocity0 = _tree.zeros_like(params0) if velocity0 is None else velocity0
    carry = _Carry(MomentumState(params0, velocity0), jnp.asarray(-1), jnp.asarray(0))
    every = record_params_every
    rest = (data, h, lam, mu, limit, params0)

    if on_epoch is None:
        carry, initial, losses, snaps = _run(
            scheme, loss, error, batch_size, epochs, every, True, carry, *rest
        )
    else:
        _, initial, _, _ = _run(scheme, loss, error, batch_size, 0, None, True, carry, *rest)
        values, snaps = [], []
        for epoch in range(1, epochs + 1):
            carry, _, value, _ = _run(scheme, loss, error, batch_size, 1, None, False, carry, *rest)
            value = jnp.where(carry.diverged_at >= 0, jnp.nan, value[0])
            values.append(value)
            if every is not None and epoch % every == 0:
                snaps.append(carry.state.u)
            on_epoch(epoch, float(value))
        losses = jnp.stack(values) if values else jnp.zeros((0,), initial.dtype)
        snaps = None if every is None else _stack(snaps, params0)

    nb = -(-n // min(batch_size, n))
    diverged_epoch = _epoch_of(carry.diverged_at, nb)
    epoch_index = jnp.arange(1, epochs + 1)
    losses = jnp.where((diverged_epoch > 0) & (epoch_index >= diverged_epoch), jnp.nan, losses)
    if every is not None:
        snaps = jax.tree.map(lambda p, later: jnp.concatenate([p[None], later]), params0, snaps)
    return TrainResult(
        carry.state.u,
        carry.state.w,
        jnp.concatenate([initial[None], losses]),
        carry.diverged_at,
        diverged_epoch,
        snaps,
    )


def _epoch_of(step, nb):
    """The epoch (1-based) of `nb` steps holding the 1-based `step`; -1 for `-1`."""
    return jnp.where(step >= 0, (step - 1) // nb + 1, -1)


def _stack(trees, like):
    if not trees:
        return jax.tree.map(lambda x: jnp.zeros((0, *jnp.shape(x)), jnp.result_type(x)), like)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)
