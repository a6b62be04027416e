"""Losses on scikit-learn's bundled 8x8 digits: softmax regression and the scaled autoencoder."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._autoencoder import DIGITS_SIZES, init_autoencoder, squared_error
from ._registry import LossSpec, register_loss

DIGITS_COUNT = 1797
"""Number of images in scikit-learn's digits data set."""


def _check_digits_n(n):
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= DIGITS_COUNT:
        raise ValueError(
            f"n={n!r} is outside the allowed range: None or an integer in [1, {DIGITS_COUNT}]"
        )


def _digits_subset(n: int | None):
    """The first `n` digits (all 1797 when None), as float64 NumPy arrays `(images, labels)`."""
    from .._data import load_digits_images

    images, labels = load_digits_images()
    return (images, labels) if n is None else (images[:n], labels[:n])


def softmax_cross_entropy(params, x, y):
    """Per-example `-log softmax(x W + b)[y]` of multinomial logistic regression, shape `(B,)`."""
    logits = x @ params["W"] + params["b"][None, :]
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]


@register_loss("digits_logistic")
def _digits_logistic(l2: float = 1e-4, n: int | None = None) -> LossSpec:
    _check_digits_n(n)

    # The data are read when the loss is first evaluated, so listing losses needs no sklearn.
    def digits_logistic(params):
        x, y = _digits_subset(n)
        ce = jnp.mean(softmax_cross_entropy(params, jnp.asarray(x), jnp.asarray(y)))
        return ce + 0.5 * l2 * jnp.sum(jnp.square(params["W"]))

    u0 = {"W": jnp.zeros((64, 10)), "b": jnp.zeros(10)}
    return LossSpec(
        "digits_logistic",
        digits_logistic,
        u0,
        f"softmax regression on sklearn's 8x8 digits (mean cross-entropy + {l2:g}/2 |W|^2), "
        "params {'W': (64, 10), 'b': (10,)}, u0 = 0 (convex)",
    )


@register_loss("digits_autoencoder")
def _digits_autoencoder(sizes=DIGITS_SIZES, seed: int = 0, n: int | None = None) -> LossSpec:
    _check_digits_n(n)
    sizes = tuple(int(s) for s in sizes)
    if sizes[0] != 64 or sizes[-1] != 64:
        raise ValueError(f"sizes={sizes} must start and end with 64, the digits' pixel count")

    def digits_autoencoder(params):
        x, _ = _digits_subset(n)
        return jnp.mean(squared_error(params, jnp.asarray(x)))

    return LossSpec(
        "digits_autoencoder",
        digits_autoencoder,
        init_autoencoder(sizes, seed),
        f"autoencoder {'-'.join(map(str, sizes))} on sklearn's 8x8 digits (sigmoid units, linear "
        "code), mean over images of the squared error per image, Glorot start (nonconvex, §5)",
    )
