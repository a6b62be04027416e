"""A fully connected autoencoder as a plain pytree of `(W, b)` layers (Hinton & Salakhutdinov,
Science 2006), the model of the paper's Section 5 experiment, with any layer sizes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

MNIST_SIZES = (784, 1000, 500, 250, 30, 250, 500, 1000, 784)
"""Hinton & Salakhutdinov's MNIST autoencoder, as trained by Sutskever et al. (2013) and in
the paper's Section 5."""

DIGITS_SIZES = (64, 32, 16, 8, 16, 32, 64)
"""A scaled-down version for scikit-learn's 8x8 digits (about 5 000 parameters)."""

ACTIVATIONS = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "linear": lambda x: x,
}


def init_autoencoder(sizes: Sequence[int] = DIGITS_SIZES, seed: int = 0, dtype=None):
    """Glorot-uniform weights and zero biases (Glorot & Bengio, 2010), deterministically from
    `seed` (NumPy's generator, so the same numbers whatever JAX's precision or platform).

    `W` of layer `i` is `(sizes[i], sizes[i+1])`, drawn from `U(-r, r)` with
    `r = sqrt(6 / (sizes[i] + sizes[i+1]))`.

    **Returns:** a list of `(W, b)` tuples, one per layer (`len(sizes) - 1` of them), as JAX
    arrays of `dtype` (JAX's default float when None).
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes={sizes} must list at least two positive layer widths")
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        r = np.sqrt(6.0 / (fan_in + fan_out))
        W = rng.uniform(-r, r, size=(fan_in, fan_out))
        layers.append((jnp.asarray(W, dtype=dtype), jnp.zeros(fan_out, dtype=dtype)))
    return layers


def code_layer(params) -> int:
    """Index of the code layer: the first layer with the narrowest output."""
    widths = [W.shape[1] for W, _ in params]
    return int(np.argmin(widths))


@dataclasses.dataclass(frozen=True)
class Autoencoder:
    """The forward map and the loss, with the activations as names (hashable, so it can key a
    compiled function).

    Every layer applies `x @ W + b` then an activation: `hidden` for the hidden layers, none for
    the code layer (the narrowest one, linear as in Hinton & Salakhutdinov), `output` for the
    last layer (`"sigmoid"`: the data lie in `[0, 1]`).

    `scale` is the factor `c` of the training loss `c ||x - x_hat||^2` that `__call__` returns
    (`c = 1`: the per-image sum; `c = 1/784` on MNIST: the per-pixel mean). For GD, HB and NAG
    a factor `c` on the loss is a factor `c` on the learning rate, so `c` places the paper's
    `h` range; the paper does not state it (docs/theory.md §6).
    """

    hidden: str = "sigmoid"
    output: str = "sigmoid"
    scale: float = 1.0

    def __post_init__(self):
        for name in ("hidden", "output"):
            if getattr(self, name) not in ACTIVATIONS:
                value = getattr(self, name)
                raise ValueError(f"{name}={value!r} is not one of {sorted(ACTIVATIONS)}")
        if not (isinstance(self.scale, (int, float)) and 0 < self.scale < float("inf")):
            raise ValueError(f"scale={self.scale!r} is outside the allowed range (0, inf)")

    def reconstruct(self, params, x):
        """`x_hat`, the reconstruction of a batch `x` of shape `(B, n_in)`."""
        code = code_layer(params)
        last = len(params) - 1
        for i, (W, b) in enumerate(params):
            x = x @ W + b[(None,) * (x.ndim - 1)]  # b broadcast over the batch axes
            if i == last:
                x = ACTIVATIONS[self.output](x)
            elif i != code:
                x = ACTIVATIONS[self.hidden](x)
        return x

    def squared_error(self, params, x):
        """Per-example `||x - x_hat||^2` (summed over pixels), shape `(B,)`."""
        return jnp.sum(jnp.square(x - self.reconstruct(params, x)), axis=-1)

    def pixel_mean_squared_error(self, params, x):
        """Per-example `||x - x_hat||^2 / n_pixels` (the mean over pixels, PyTorch's
        `nn.MSELoss()` convention), shape `(B,)`."""
        return jnp.mean(jnp.square(x - self.reconstruct(params, x)), axis=-1)

    def __call__(self, params, x):
        """`scale * squared_error`: the per-example training loss the training loop averages."""
        if self.scale == 1:
            return self.squared_error(params, x)
        return self.scale * self.squared_error(params, x)


def squared_error(params, x):
    """Per-example `||x - x_hat||^2` of the default `Autoencoder()` (sigmoid hidden and output
    units, linear code layer): the default per-example loss of `train`."""
    return Autoencoder().squared_error(params, x)


def pixel_mean_squared_error(params, x):
    """Per-example `||x - x_hat||^2 / n_pixels` of the default `Autoencoder()`: the squared
    error averaged over pixels (PyTorch's `nn.MSELoss()`), i.e. `squared_error / 784` on MNIST.

    It is `Autoencoder(scale=1/784)` on MNIST, one of the normalisations compared in
    `experiments/mnist_normalisation.py`; Figs 6, 7 and 10 train on `Autoencoder(scale=1/8)`.
    The paper does not state its normalisation, and this one is not the measured fit: under it
    the paper's own 150,000 steps at `h = 2^-6` reach a gradient-flow time of about 30, on the
    mean-image plateau, where the paper reports 10.65 (docs/theory.md §6,
    `experiments/mnist_protocol.py`)."""
    return Autoencoder().pixel_mean_squared_error(params, x)
