"""The Fig 2 convergence grid written as a researcher would without `momentum_jax`: a NumPy loop
for each discrete method and `scipy.integrate.solve_ivp` for each continuous-time model.

It computes the same numbers as `momentum_jax.convergence_study` on the paper's quadratic
`Phi(u) = 1/2 <u, diag(q) u>` (docs/theory.md §1-§2; paper Figs 1-5): for every
`(method, h)` and model,

    E(h) = max over n = 1..N of |u_n - u(n h)|,   N = floor(T / h),

with zero initial velocity for the discrete method (`u_1 = u_0 - h grad Phi(u_0)`) and the
Taylor-matched `u'(0)` for the damped-Hamiltonian model. The models are integrated with
`solve_ivp(method="DOP853", rtol=1e-12, atol=1e-14)` evaluated at `t_eval = n h`; its error is far
below the discretisation errors measured (`tests/test_benchmarks.py` checks the agreement).
With `closed_form=True` the models are their closed forms instead (NumPy exponentials, the
counterpart of `solver=ClosedForm()`), and only the discrete loop is left to Python.

Nothing here imports JAX: this is the reference point of the benchmark, not library code.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

RTOL, ATOL = 1e-12, 1e-14
MODELS = ("gradient_flow", "hamiltonian", "modified_flow")


def look_ahead(method: str, lam: float) -> float:
    """`a` of the family: 0 for heavy ball, `lam` for Nesterov."""
    return lam if method == "nag" else 0.0


def discrete_trajectory(q, u0, h, lam, a, num_steps):
    """`u_0, ..., u_N` of `u_{n+1} = u_n + lam (u_n - u_{n-1}) - h q (u_n + a (u_n - u_{n-1}))`,
    `u_{-1} = u_0`, as an array `(N + 1, d)`: one Python iteration per step."""
    u = np.array(u0, dtype=float)
    u_prev = u.copy()
    out = np.empty((num_steps + 1, u.size))
    out[0] = u
    for n in range(num_steps):
        v = u - u_prev
        grad = q * (u + a * v)
        u_prev, u = u, u + lam * v - h * grad
        out[n + 1] = u
    return out


def model_trajectory(model, q, u0, h, lam, a, ts):
    """The model's `u(t)` at `ts` (shape `(len(ts), d)`) from `solve_ivp` (DOP853)."""
    q, u0 = np.asarray(q, float), np.asarray(u0, float)
    d = q.size
    lbar = 1.0 / (1.0 - lam)
    alpha = (1.0 + lam - 2.0 * a * (1.0 - lam)) / 2.0
    if model == "gradient_flow":  # u' = -lbar grad Phi

        def f(t, u):
            return -lbar * q * u

        y0 = u0
    elif model == "modified_flow":  # u' = -lbar grad(Phi + h c |grad Phi|^2)
        c = alpha / (2.0 * (1.0 - lam) ** 2)

        def f(t, u):
            return -lbar * (q * u + 2.0 * h * c * q * q * u)

        y0 = u0
    elif model == "hamiltonian":  # h alpha u'' + (1 - lam) u' = -grad Phi, Taylor-matched u'(0)
        coef = (2 * alpha - 1) / (2 * alpha - 1 + lam)

        def f(t, y):
            u, v = y[:d], y[d:]
            return np.concatenate([v, -(q * u + (1.0 - lam) * v) / (h * alpha)])

        y0 = np.concatenate([u0, -coef * q * u0])
    else:
        raise ValueError(f"model={model!r} is not one of {MODELS}")
    sol = solve_ivp(f, (0.0, float(ts[-1])), y0, method="DOP853", t_eval=ts, rtol=RTOL, atol=ATOL)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed for model={model!r}, h={h}: {sol.message}")
    return sol.y[:d].T


def model_closed_form(model, q, u0, h, lam, a, ts):
    """The model's `u(t)` at `ts` (shape `(len(ts), d)`) from its closed form on the quadratic:
    one exponential per eigenvalue `q_i` (for the damped Hamiltonian the two roots of
    `h alpha s^2 + (1 - lam) s + q_i = 0`, complex when it oscillates)."""
    q, u0, ts = np.asarray(q, float), np.asarray(u0, float), np.asarray(ts, float)
    lbar = 1.0 / (1.0 - lam)
    alpha = (1.0 + lam - 2.0 * a * (1.0 - lam)) / 2.0
    if model == "gradient_flow":
        return np.exp(-lbar * np.outer(ts, q)) * u0
    if model == "modified_flow":
        c = alpha / (2.0 * (1.0 - lam) ** 2)
        return np.exp(-lbar * np.outer(ts, q + 2.0 * h * c * q * q)) * u0
    if model != "hamiltonian":
        raise ValueError(f"model={model!r} is not one of {MODELS}")
    coef = (2 * alpha - 1) / (2 * alpha - 1 + lam)
    v0 = -coef * q * u0
    root = np.sqrt((1.0 - lam) ** 2 - 4.0 * h * alpha * q + 0j)
    fast = (-(1.0 - lam) - root) / (2.0 * h * alpha)
    slow = q / (h * alpha * fast)  # the product of the roots: no cancellation
    A = (v0 - fast * u0) / (slow - fast)
    B = (slow * u0 - v0) / (slow - fast)
    return np.real(A * np.exp(np.outer(ts, slow)) + B * np.exp(np.outer(ts, fast)))


def errors(q, u0, *, hs, lam, methods=("hb", "nag"), models=MODELS, T=2.0, closed_form=False):
    """`{model: array (len(methods), len(hs))}` of `max_n |u_n - u(n h)|`, as
    `convergence_study(...).errors[model][:, 0, :]` for one momentum `lam`; the models from
    `solve_ivp`, or from their closed forms (`closed_form=True`)."""
    model_at = model_closed_form if closed_form else model_trajectory
    q = np.asarray(q, float)
    out = {m: np.empty((len(methods), len(hs))) for m in models}
    for i, method in enumerate(methods):
        a = look_ahead(method, lam)
        for k, h in enumerate(hs):
            n_steps = int(np.floor(T / h * (1 + 1e-12)))
            us = discrete_trajectory(q, u0, h, lam, a, n_steps)[1:]
            ts = h * np.arange(1, n_steps + 1)
            for model in models:
                ref = model_at(model, q, u0, h, lam, a, ts)
                out[model][i, k] = np.max(np.linalg.norm(us - ref, axis=1))
    return out


def fig2_grid(
    kappas=(5.0, 10.0, 20.0), hs=None, *, lam=0.9, T=2.0, models=MODELS, closed_form=False
):
    """The benchmark grid for every `kappa`: `{kappa: errors(...)}`."""
    hs = 2.0 ** -np.arange(4, 18) if hs is None else np.asarray(hs, float)
    return {
        k: errors([k, 1.0], [1.0, 1.0], hs=hs, lam=lam, T=T, models=models, closed_form=closed_form)
        for k in kappas
    }
