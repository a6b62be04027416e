"""Linear stability on the quadratic: the manifold's contraction factor is the asymptotic one
(against the closed-form root modulus) and the oscillation identity of docs/theory.md §5 holds
(against the roots of the discriminant)."""

import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import momentum_jax as mj

DOCS = Path(__file__).resolve().parents[1] / "docs" / "theory.md"


# The asymptotic contraction of |e_n|.


def nag_root_modulus(h, lam, qs):
    """Closed form (docs/theory.md §5): where NAG's roots are complex their modulus is
    `sqrt(lam (1 - h q))`; the largest over the curvatures is the asymptotic contraction."""
    for q in qs:
        assert ((1 - lam) / (1 + lam)) ** 2 < h * q < 1  # complex for every curvature
    return max(np.sqrt(lam * (1 - h * q)) for q in qs)


@pytest.mark.parametrize("h, lam", [(2.0**-6, 0.9), (2.0**-5, 0.8)])
def test_contraction_factor_is_the_root_modulus_on_the_quadratic(h, lam):
    """Fig 5's setting (kappa = 20, 128 steps, v_0 = 0): NAG's |e_n| oscillates under an
    envelope that shrinks by the largest root modulus per step (0.941 at h = 2^-6, lam = 0.9;
    the old estimator gave 0.857)."""
    kappa, steps = 20.0, 128
    loss, m = mj.paper_quadratic(kappa), mj.nesterov(h, lam)
    us, ws = mj.iterate(loss, jnp.array([1.0, 1.0]), m, steps, return_velocity=True)
    e = mj.distances_along(loss, us, ws, m)
    expected = nag_root_modulus(h, lam, (kappa, 1.0))
    np.testing.assert_allclose(float(mj.contraction_factor(e)), expected, rtol=2e-3)


def test_contraction_factor_is_asymptotic_on_synthetic_sequences():
    n = np.arange(200)
    # two real modes: the slow one (0.9) is the asymptotic factor; exact in the tail
    two_modes = 0.9**n + 100.0 * 0.5**n
    np.testing.assert_allclose(float(mj.contraction_factor(two_modes)), 0.9, rtol=1e-9)
    # an oscillation under a 0.95^n envelope, sampled (period about 17 steps)
    wave = 0.95**n * np.abs(np.cos(0.37 * n + 0.4))
    np.testing.assert_allclose(float(mj.contraction_factor(wave)), 0.95, rtol=1e-3)
    with pytest.raises(ValueError, match="tail"):
        mj.contraction_factor(wave, tail=0.0)


# The oscillation identity of docs/theory.md §5.


def doc_expression(prefix):
    """The backticked expression of docs/theory.md §5 that starts with `prefix`."""
    section = DOCS.read_text().split("## 5.")[1].split("\n## ")[0]
    found = re.findall(r"`(" + re.escape(prefix) + r"[^`]*)`", section.replace("\n", " "))
    assert found, f"docs/theory.md §5 states no `{prefix}...`"
    return found[0]


def evaluate(expression, **values):
    """A plain arithmetic expression of the doc (`a (1 - lam)` is a product)."""
    python = re.sub(r"(\w|\))\s+\(", r"\1*(", expression)  # a (1 - lam)
    python = re.sub(r"(\d)\s+([a-z])", r"\1*\2", python).replace("^", "**")  # 2 alpha
    return eval(python, {"__builtins__": {}}, values)  # noqa: S307 (arithmetic of our own doc)


@pytest.mark.parametrize("method", ["hb", "nag"])
def test_oscillation_identity_in_docs(method):
    """Every side of the doc's `s^2 = ...` is the `s^2` whose `x = (1 +- s)^2/(1 + a)^2` are the
    roots of `S^2 - 4P = 0` in `x = h q` (failed for NAG: `2 alpha - 1` was stated as equal)."""
    sides = doc_expression("s^2 = ").split("=")[1:]
    assert sides
    for lam in np.linspace(0.05, 0.95, 10):
        a = lam if method == "nag" else 0.0
        alpha = (1 + lam - 2 * a * (1 - lam)) / 2
        # S^2 - 4P with S = 1 + lam - (1 + a) x, P = lam - a x, as a polynomial in x
        roots = np.sort(
            np.roots([(1 + a) ** 2, -2 * (1 + lam) * (1 + a) + 4 * a, (1 + lam) ** 2 - 4 * lam])
        )
        for side in sides:
            s2 = evaluate(side, lam=lam, a=a, alpha=alpha)
            s = np.sqrt(s2)
            np.testing.assert_allclose(
                roots, np.sort([(1 - s) ** 2 / (1 + a) ** 2, (1 + s) ** 2 / (1 + a) ** 2]), 1e-9
            )
    assert "no complex regime when `s^2 <= 0`" in DOCS.read_text().replace("\n", " ")
