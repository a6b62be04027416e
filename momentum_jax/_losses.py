"""A small registry of named losses: each a plain JAX function of a pytree, with a default start
and a one-line description. Any user function is accepted wherever a loss is."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

from ._autoencoder import DIGITS_SIZES, init_autoencoder, squared_error
from ._types import PyTree


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A registered loss: `fn(u) -> scalar`, its default start `u0`, a description."""

    name: str
    fn: Callable
    u0: PyTree
    description: str


_REGISTRY: dict[str, Callable[..., LossSpec]] = {}


def register(name: str):
    """Decorator: register a factory `(**options) -> LossSpec` under `name`."""

    def wrap(factory):
        _REGISTRY[name] = factory
        return factory

    return wrap


register_loss = register
"""Public name of `register`: `@register_loss("name")` adds a factory to the registry."""


def get_loss(name: str, **options) -> LossSpec:
    """The registered loss `name` (see `list_losses()`), built with `options`."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"loss={name!r} is not registered; choose from {sorted(_REGISTRY)}"
        ) from None
    return factory(**options)


def list_losses() -> dict[str, str]:
    """`{name: description}` of every registered loss (with default options)."""
    return {name: get_loss(name).description for name in sorted(_REGISTRY)}


@jax.tree_util.register_pytree_node_class
class DiagonalQuadratic:
    """`Phi(u) = 1/2 <u, diag(q) u>`: the paper's loss with `q = (kappa, 1)` (Figs 1-5).

    A pytree whose leaf is `q`, so `convergence_study` passes `q` as a traced argument: studies of
    several `kappa` share one compilation. It is also hashable by value (equal for equal `q`), so
    functions that take the loss as a static argument reuse their compilations too.
    """

    def __init__(self, q):
        self.q = np.asarray(q, dtype=float).ravel()

    @property
    def name(self) -> str:
        return "quadratic" if self.q is None else f"quadratic{tuple(np.asarray(self.q).tolist())}"

    def __call__(self, u):
        return 0.5 * jnp.sum(jnp.asarray(self.q) * jnp.square(u))

    def _key(self):
        return None if self.q is None else tuple(np.asarray(self.q).tolist())

    def __eq__(self, other):
        return isinstance(other, DiagonalQuadratic) and other._key() == self._key()

    def __hash__(self):
        return hash(("DiagonalQuadratic", self._key()))

    def tree_flatten(self):
        return (self.q,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.q = children[0]
        return obj


@cache
def paper_quadratic(kappa: float = 10.0) -> DiagonalQuadratic:
    """The paper's `Phi(u) = 1/2 (kappa u_1^2 + u_2^2)`."""
    return DiagonalQuadratic((kappa, 1.0))


@register("quadratic")
def _quadratic(kappa: float = 10.0) -> LossSpec:
    return LossSpec(
        "quadratic",
        paper_quadratic(float(kappa)),
        jnp.array([1.0, 1.0]),
        f"paper's quadratic 1/2 <u, diag(kappa, 1) u>, kappa={kappa:g}, u0=(1, 1) (Figs 1-5)",
    )


@register("dense_quadratic")
def _dense_quadratic(dim: int = 10, condition: float = 100.0, seed: int = 0) -> LossSpec:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    eig = np.geomspace(1.0, condition, dim)
    A = jnp.asarray((q * eig) @ q.T)

    def dense_quadratic(u):
        return 0.5 * u @ (A @ u)

    return LossSpec(
        "dense_quadratic",
        dense_quadratic,
        jnp.ones(dim) / np.sqrt(dim),
        f"1/2 u^T A u, dense A of dimension {dim} with condition number {condition:g}",
    )


def rosenbrock(u):
    """`(1 - x)^2 + 100 (y - x^2)^2`."""
    return (1.0 - u[0]) ** 2 + 100.0 * (u[1] - u[0] ** 2) ** 2


@register("rosenbrock")
def _rosenbrock() -> LossSpec:
    return LossSpec(
        "rosenbrock",
        rosenbrock,
        jnp.array([-1.2, 1.0]),
        "Rosenbrock's banana (1-x)^2 + 100 (y-x^2)^2, nonconvex, u0=(-1.2, 1)",
    )


def double_well(u):
    """`(x^2 - 1)^2 / 4 + y^2 / 2 + x y / 4`: two minima, a saddle between (nonconvex)."""
    return 0.25 * (u[0] ** 2 - 1.0) ** 2 + 0.5 * u[1] ** 2 + 0.25 * u[0] * u[1]


@register("double_well")
def _double_well() -> LossSpec:
    return LossSpec(
        "double_well",
        double_well,
        jnp.array([0.3, 1.0]),
        "2-D nonconvex double well (x^2-1)^2/4 + y^2/2 + xy/4, u0=(0.3, 1)",
    )


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
    from ._data import load_digits_images

    images, labels = load_digits_images()
    return (images, labels) if n is None else (images[:n], labels[:n])


def softmax_cross_entropy(params, x, y):
    """Per-example `-log softmax(x W + b)[y]` of multinomial logistic regression, shape `(B,)`."""
    logits = x @ params["W"] + params["b"]
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]


@register("digits_logistic")
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


@register("digits_autoencoder")
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


def least_squares_example(u, batch):
    """Per-example losses `(1/2) (a_i . u - b_i)^2`, shape `(B,)`, of a batch `(a, b)` with
    `a` `(B, d)` and `b` `(B,)`: the `(params, batch)` loss of the mini-batch code."""
    a, b = batch
    return 0.5 * jnp.square(a @ u - b)


@cache
def _least_squares_arrays(n: int, dim: int, seed: int, scales: tuple, sigma: float):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, dim)) * np.resize(np.asarray(scales, dtype=float), dim)
    e = rng.standard_normal(n)
    e -= a @ np.linalg.lstsq(a, e, rcond=None)[0]  # residual orthogonal to a's columns
    b = sigma * np.sqrt(n) * e / np.linalg.norm(e)
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


def least_squares_data(
    n: int = 32, dim: int = 2, seed: int = 0, scales=(1.0, 0.8), sigma: float = 1.0
):
    """A small synthetic regression data set `(a, b)`: `a_i ~ N(0, diag(scales)^2)` (`n x dim`),
    labels `b` chosen orthogonal to the columns of `a` with mean square `sigma^2`, so the
    least-squares loss `Phi(u) = (1/2n) sum_i (a_i . u - b_i)^2` has its minimiser exactly at
    `u* = 0` with residual noise `sigma` there (mini-batch gradient noise does not vanish at
    the minimum). Deterministic in `seed`; float64 NumPy arrays."""
    if n < dim + 1:
        raise ValueError(f"n={n} must exceed dim={dim} (labels need a nonzero residual)")
    a, b = _least_squares_arrays(
        int(n), int(dim), int(seed), tuple(float(s) for s in np.ravel(scales)), float(sigma)
    )
    return a.copy(), b.copy()


@register("least_squares")
def _least_squares(n: int = 32, dim: int = 2, seed: int = 0, sigma: float = 1.0) -> LossSpec:
    a, b = (jnp.asarray(x) for x in least_squares_data(n, dim, seed, sigma=sigma))

    def least_squares(u):
        return jnp.mean(least_squares_example(u, (a, b)))

    return LossSpec(
        "least_squares",
        least_squares,
        jnp.ones(dim),
        f"linear least squares on {n} synthetic points in dimension {dim} (minimiser 0, residual "
        f"noise {sigma:g}); per-example form least_squares_example for mini-batches",
    )
