"""Data sets as pytrees of arrays with a leading example axis: their size, mini-batches and the
mean loss over them. Shared by the Section 5 training code and the stochastic code.

A per-example loss is `loss(params, batch) -> (B,)`; `data` is an array or a pytree of arrays
whose leading axis indexes the `N` examples.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from . import _tree
from ._types import PyTree


def num_examples(data: PyTree) -> int:
    """`N`, the common leading length of `data`'s arrays; `ValueError` if there is none."""
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data must be an array or a non-empty pytree of arrays")
    sizes = {int(jnp.shape(x)[0]) if jnp.ndim(x) else -1 for x in leaves}
    if -1 in sizes or len(sizes) != 1:
        raise ValueError(
            "data's arrays must share a leading (example) axis; got shapes "
            f"{[jnp.shape(x) for x in leaves]}"
        )
    (n,) = sizes
    if n < 1:
        raise ValueError("data must hold at least one example")
    return n


def take(data: PyTree, idx) -> PyTree:
    """The examples `idx` of `data` (a batch)."""
    return jax.tree.map(lambda x: x[idx], data)


def batch_mean(loss, batch) -> Callable:
    """`u -> mean(loss(u, batch))`: the loss of one mini-batch (or of the whole data set) as a
    function of the parameters."""
    return lambda u: jnp.mean(loss(u, batch))


def make_batches(data: PyTree, batch_size: int):
    """Split `data` into `ceil(N / batch_size)` consecutive mini-batches in the given order.

    **Returns:** `(batches, mask)`: `batches` is `data` with its leading axis reshaped to
    `(n_batches, batch_size)`, the last batch padded with zeros when `batch_size` does not divide
    `N`; `mask` `(n_batches, batch_size)` is 1 on real examples and 0 on padding. A batch's loss
    is the mean over its real examples, so the last batch is a smaller one, not a padded one.
    A `batch_size` larger than `N` is taken as `N` (full-batch gradient descent).
    """
    n = num_examples(data)
    b = min(batch_size, n)
    nb = -(-n // b)
    pad = nb * b - n

    def split(x):
        x = jnp.asarray(x)
        x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
        return x.reshape(nb, b, *x.shape[1:])

    mask = (jnp.arange(nb * b) < n).reshape(nb, b)
    return jax.tree.map(split, data), mask


def masked_batch_mean(loss, mask_b, batch) -> Callable:
    """The mean of the per-example `loss(params, batch)` over the real examples of a padded
    batch (`make_batches`), as a function of the parameters."""

    def phi(params):
        m = mask_b.astype(_tree.dtype(params))
        return jnp.sum(m * loss(params, batch)) / jnp.sum(m)

    return phi


def batched_mean_loss(loss, params, batches, mask):
    """The mean of the per-example loss over the whole data set, accumulated batch by batch
    (memory of one batch, for data sets too large to evaluate at once)."""

    def body(total, xs):
        batch, m = xs
        return total + jnp.sum(m.astype(total.dtype) * loss(params, batch)), None

    total, _ = jax.lax.scan(body, jnp.zeros((), _tree.dtype(params)), (batches, mask))
    return total / jnp.sum(mask, dtype=total.dtype)
