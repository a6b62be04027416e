"""Closed-form solutions on diagonal quadratics `Phi(u) = 1/2 sum_i q_i u_i^2` (paper Figs 1-5).

Each eigen-direction decouples: the discrete method is a 2x2 linear map per direction
(`A^n` by eigendecomposition), and every continuous model is a scalar linear ODE. These are the
exact references of the test-suite; they run in NumPy float64, independent of JAX and diffrax.
"""

from __future__ import annotations

import numpy as np


def _params(method):
    return (float(np.asarray(method.h)), float(np.asarray(method.lam)), float(np.asarray(method.a)))


def manifold_w0(q, u0, method):
    """First-order manifold velocity `-lbar q u + h lbar^2 (a - lbar) q^2 u` per direction."""
    h, lam, a = _params(method)
    lbar = 1 / (1 - lam)
    q, u0 = np.asarray(q, float), np.asarray(u0, float)
    return (-lbar * q + h * lbar**2 * (a - lbar) * q**2) * u0


def discrete(q, u0, method, n, *, w0=None):
    """`u_n` of the method for every step count in `n` (shape `(len(n), d)`), from `u_0 = u0`
    and scaled velocity `w_0` (zero by default)."""
    h, lam, a = _params(method)
    q, u0 = np.asarray(q, float), np.asarray(u0, float)
    w0 = np.zeros_like(u0) if w0 is None else np.asarray(w0, float)
    n = np.asarray(n)
    out = np.empty((n.size, q.size))
    for i, qi in enumerate(q):
        A = np.array([[1 - h * qi, h * (lam - qi * h * a)], [-qi, lam - qi * h * a]])
        mu, V = np.linalg.eig(A.astype(complex))
        coeff = np.linalg.solve(V, np.array([u0[i], w0[i]], complex))
        out[:, i] = np.real((V[0] * coeff) @ (mu[:, None] ** n[None, :]))
    return out


def _second_order(qi, beta, h_inertia, u0, v0, t):
    """Solution of `h_inertia u'' + beta u' + qi u = 0`, `u(0) = u0`, `u'(0) = v0`."""
    disc = np.sqrt(complex(beta**2 - 4 * h_inertia * qi))
    s_fast = (-beta - disc) / (2 * h_inertia)
    s_slow = qi / (h_inertia * s_fast)  # product of the roots, no cancellation
    A = (v0 - s_fast * u0) / (s_slow - s_fast)
    B = (s_slow * u0 - v0) / (s_slow - s_fast)
    return np.real(A * np.exp(s_slow * t) + B * np.exp(s_fast * t))


def continuous(q, u0, method, t, *, model, velocity="taylor", constant="corrected"):
    """The model's `u(t)` for every time in `t` (shape `(len(t), d)`); `velocity` as in `solve`
    (`"taylor"`, `"paper"`, `"manifold"` or an array)."""
    h, lam, a = _params(method)
    lbar = 1 / (1 - lam)
    alpha = (1 + lam - 2 * a * (1 - lam)) / 2
    q, u0, t = np.asarray(q, float), np.asarray(u0, float), np.asarray(t, float)
    if model == "gradient_flow":
        return np.exp(-lbar * np.outer(t, q)) * u0
    if model == "modified_flow":
        c = alpha * lbar**2 / 2 if constant == "corrected" else lbar * (lbar - a + 0.5) / 2
        return np.exp(-lbar * np.outer(t, q + 2 * h * c * q**2)) * u0
    inertia = alpha if model == "hamiltonian" else (1 + lam) / 2
    if isinstance(velocity, str):
        if velocity == "manifold":
            v0 = manifold_w0(q, u0, method)
        else:
            if velocity == "taylor":  # 0/0 at gradient descent: its heavy-ball limit, 1/2
                den = 2 * inertia - 1 + lam
                coef = 0.5 if den == 0 else (2 * inertia - 1) / den
            else:
                coef = (1 - 2 * inertia) / (2 * inertia - lam + 1)
            v0 = -coef * q * u0
    else:
        v0 = np.asarray(velocity, float)
    out = np.empty((t.size, q.size))
    for i, qi in enumerate(q):
        beta = (1 - lam) + (a * h * qi if model == "hessian_damped" else 0.0)
        out[:, i] = _second_order(qi, beta, h * inertia, u0[i], v0[i], t)
    return out


def error(
    q,
    u0,
    method,
    T,
    *,
    model,
    init="zero",
    velocity="taylor",
    constant="corrected",
    norm="euclidean",
):
    """`max over n h <= T of |u_n - u(n h)|`, Euclidean (`norm="euclidean"`) or component-wise
    (`"max"`, the norm of the paper's Figs 2, 4)."""
    h = _params(method)[0]
    n = np.arange(int(np.floor(T / h + 1e-9)) + 1)
    w0 = manifold_w0(q, u0, method) if init == "manifold" else None
    un = discrete(q, u0, method, n, w0=w0)
    ut = continuous(q, u0, method, n * h, model=model, velocity=velocity, constant=constant)
    if norm == "max":
        return float(np.max(np.abs(un - ut)))
    return float(np.max(np.linalg.norm(un - ut, axis=1)))
