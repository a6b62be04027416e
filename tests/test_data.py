"""Data loading (IDX reader, MNIST and digits loaders) and the data-driven registered losses."""

import gzip
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from momentum_jax import _data
from momentum_jax._data import load_digits_images, load_mnist, read_idx
from momentum_jax._losses import get_loss, list_losses


def idx_bytes(array, *, magic=None, shape=None):
    """The IDX encoding of a uint8 array; `magic` / `shape` override the header."""
    array = np.asarray(array, dtype=np.uint8)
    shape = array.shape if shape is None else shape
    magic = (0x0800 + len(shape)) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in shape)
    return header + array.tobytes()


def write(path, content, gz=False):
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


@pytest.fixture
def images():
    return np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3) * 4


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, images, gz):
    p = write(tmp_path / ("x.gz" if gz else "x"), idx_bytes(images), gz)
    np.testing.assert_array_equal(read_idx(p, ndim=3), images)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    q = write(tmp_path / "y", idx_bytes(labels), gz)
    np.testing.assert_array_equal(read_idx(q), labels)


@pytest.mark.parametrize(
    "content, ndim, message",
    [
        (b"\x01\x00\x08\x03" + bytes(12), None, "bad magic number 0x01000803"),
        (idx_bytes(np.zeros((2, 2, 2)), magic=0x0D03), None, "data-type byte 0x0d"),
        (
            idx_bytes(np.zeros((2, 2, 2)))[:-3],
            None,
            "truncated: the header declares shape (2, 2, 2), i.e. 8 data bytes, but only 5",
        ),
        (
            idx_bytes(np.zeros((2, 2, 2))) + b"\x00",
            None,
            "size mismatch: the header declares shape (2, 2, 2), i.e. 8 data bytes, but 9",
        ),
        (
            idx_bytes(np.zeros(8)),
            3,
            "wrong number of dimensions: the header declares 1, expected 3",
        ),
        (
            b"\x00\x00\x08\x03" + bytes(5),
            None,
            "truncated header: 3 dimensions need 16 header bytes, the file has 9",
        ),
        (b"\x00\x00", None, "not an IDX file"),
    ],
    ids=["magic", "dtype", "truncated", "trailing", "dims", "header", "short"],
)
def test_read_idx_header_errors(tmp_path, content, ndim, message):
    p = write(tmp_path / "bad-idx", content)
    with pytest.raises(ValueError) as info:
        read_idx(p, ndim=ndim)
    assert message in str(info.value)
    assert str(p) in str(info.value)


def test_read_idx_truncated_gzip(tmp_path, images):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(idx_bytes(images))[:-10])
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        read_idx(p)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist(tmp_path, images, gz):
    suffix = ".gz" if gz else ""
    labels = np.array([0, 9, 2, 3, 4], np.uint8)
    write(tmp_path / f"t10k-images-idx3-ubyte{suffix}", idx_bytes(images), gz)
    write(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz)
    x, y = load_mnist(tmp_path, split="test")
    assert x.shape == (5, 12) and x.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_allclose(x, images.reshape(5, 12) / 255.0)
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_errors(tmp_path, images):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path)
    assert str(tmp_path) in str(info.value) and "train-images-idx3-ubyte" in str(info.value)
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(images))
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(4)))
    with pytest.raises(ValueError, match="holds 5 images but .* holds 4 labels"):
        load_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.array([0, 1, 2, 3, 10])))
    with pytest.raises(ValueError, match="label 10 is outside 0-9"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="split='validation'"):
        load_mnist(tmp_path, split="validation")


def test_digits_images():
    pytest.importorskip("sklearn")
    x, y = load_digits_images()
    assert x.shape == (1797, 64) and x.dtype == np.float64 and y.shape == (1797,)
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))


def test_digits_without_sklearn(monkeypatch):
    _data._digits.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    try:
        with pytest.raises(ImportError, match=r"pip install momentum_jax\[data\]"):
            load_digits_images()
        assert "digits_logistic" in list_losses()  # listing needs no data
    finally:
        _data._digits.cache_clear()


@pytest.mark.parametrize(
    "name, options, shapes",
    [
        ("digits_logistic", {"n": 200}, {"W": (64, 10), "b": (10,)}),
        (
            "digits_autoencoder",
            {"n": 200, "sizes": (64, 8, 3, 8, 64)},
            [((64, 8), (8,)), ((8, 3), (3,)), ((3, 8), (8,)), ((8, 64), (64,))],
        ),
    ],
)
def test_digits_losses(name, options, shapes):
    pytest.importorskip("sklearn")
    spec = get_loss(name, **options)
    assert jax.tree.map(jnp.shape, spec.u0) == shapes
    value = spec.fn(spec.u0)
    assert value.shape == () and np.isfinite(value)
    # gradient against central differences along a random direction (tolerance: O(eps^2) ~ 1e-8)
    rng = np.random.default_rng(1)
    leaves, treedef = jax.tree.flatten(spec.u0)
    u = jax.tree.unflatten(treedef, [x + 0.1 * rng.standard_normal(x.shape) for x in leaves])
    d = jax.tree.unflatten(treedef, [rng.standard_normal(x.shape) for x in leaves])
    g = jax.grad(spec.fn)(u)
    directional = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(d)))
    eps = 1e-5
    shifted = lambda s: spec.fn(jax.tree.map(lambda a, b: a + s * b, u, d))  # noqa: E731
    fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
    np.testing.assert_allclose(directional, fd, rtol=1e-7)


def test_digits_loss_options():
    with pytest.raises(ValueError, match="n=0 is outside"):
        get_loss("digits_logistic", n=0)
    with pytest.raises(ValueError, match="must start and end with 64"):
        get_loss("digits_autoencoder", sizes=(784, 30, 784))
