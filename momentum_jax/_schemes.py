r"""The training schemes of the paper's Section 5 and the vanishing-friction schemes: one step
of each, below both `_training` (fixed-order mini-batches, Figs 6-7) and `_vanishing` (their
ODE limits). Every scheme starts with zero velocity (docs/theory.md §6).

- `"gd_effective"`: gradient descent at the effective rate, eq. (35):
  $u_{n+1} = u_n - \frac{h}{1-\lambda} \nabla\Phi(u_n)$, the forward-Euler discretisation of
  the rescaled gradient flow (8). (Not the engine's `"gd"` of `METHODS`, which is plain
  gradient descent at rate `h`.)
- `"hb"`, `"nag"`: eq. (7) with `a = 0` and `a = lam`.
- `"wilson"`: the split-step scheme (36) for $\ddot u + 2\sqrt\mu\,\dot u + \nabla\Phi(u) = 0$
  with time step $\sqrt h$ (paper Appendix D: the exact flow of the linear part, then a
  gradient kick at the *new* position).
- `"hb_mu"`, `"nag_mu"`: eq. (7) with the vanishing friction (5),
  $\lambda = (1 - \sqrt{\mu h}) / (1 + \sqrt{\mu h})$ (Wilson et al., 2016).
- `"nesterov"` (vanishing friction only): Nesterov's method with `lam_n = (n - 1)/(n + 2)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _tree
from ._iterate import MomentumState, step
from ._method import Momentum, gradient_descent, heavy_ball, nesterov, vanishing_friction_lam

SCHEMES = ("gd_effective", "hb", "nag", "wilson", "hb_mu", "nag_mu")
"""The six schemes of the paper's Fig 6."""

SCHEME_LABELS = {
    "gd_effective": "GD (rate h/(1-λ))",
    "hb": "HB",
    "nag": "NAG",
    "wilson": "Wilson",
    "hb_mu": "HB-μ",
    "nag_mu": "NAG-μ",
}
"""Plot labels of the schemes (the paper labels GD at the effective rate "GF" in its Fig 6)."""

GD_HINT = (
    " (the training scheme 'gradient descent at the effective rate h/(1-lam)', eq. (35), is "
    "'gd_effective'; 'gd' is the engine's plain gradient descent at rate h)"
)


def check_scheme(name: str, scheme, allowed=SCHEMES) -> None:
    """`ValueError` naming the argument and the allowed schemes (with a pointer to
    `"gd_effective"` when given the engine's `"gd"`)."""
    if scheme not in allowed:
        hint = GD_HINT if scheme == "gd" else ""
        raise ValueError(f"{name}={scheme!r} is not one of {', '.join(map(repr, allowed))}{hint}")


def scheme_method(scheme: str, h, lam=0.9, mu=1.0) -> Momentum:
    """The `Momentum` of a scheme of the eq. (7) family: `"gd_effective"` is gradient descent at
    rate `h / (1 - lam)` (eq. 35); `"hb_mu"`, `"nag_mu"` use `lam = vanishing_friction_lam(h,
    mu)`. `"wilson"` is not of this family (see `wilson_step`)."""
    if scheme == "gd_effective":
        return gradient_descent(h / (1.0 - lam))
    if scheme == "hb":
        return heavy_ball(h, lam)
    if scheme == "nag":
        return nesterov(h, lam)
    if scheme in ("hb_mu", "nag_mu"):
        lam_mu = vanishing_friction_lam(h, mu)
        return heavy_ball(h, lam_mu) if scheme == "hb_mu" else nesterov(h, lam_mu)
    allowed = ", ".join(repr(s) for s in SCHEMES if s != "wilson")
    hint = GD_HINT if scheme == "gd" else ""
    raise ValueError(f"scheme={scheme!r} is not one of {allowed}{hint}")


def wilson_step(loss, h, mu, state: MomentumState) -> MomentumState:
    r"""One step of the split-step scheme (36), with `state.w` holding the velocity `v_n`:

    $$u_{n+1} = u_n + \frac{1 - e^{-2\sqrt{\mu h}}}{2\sqrt\mu} v_n,\qquad
      v_{n+1} = e^{-2\sqrt{\mu h}} v_n - \sqrt h\,\nabla\Phi(u_{n+1}).$$
    """
    s = jnp.sqrt(mu * h)
    decay = jnp.exp(-2.0 * s)
    drift = -jnp.expm1(-2.0 * s) / (2.0 * jnp.sqrt(mu))
    u = _tree.axpy(drift, state.w, state.u)
    g = jax.grad(loss)(u)
    v = jax.tree.map(lambda vi, gi: decay * vi - jnp.sqrt(h) * gi, state.w, g)
    return MomentumState(u, v)


def scheme_step(scheme: str, loss, h, lam, mu, state: MomentumState) -> MomentumState:
    """One step of `scheme` on `loss` (a function of the parameters only)."""
    if scheme == "wilson":
        return wilson_step(loss, h, mu, state)
    return step(loss, scheme_method(scheme, h, lam, mu), state)


def nesterov_lam(n):
    """Nesterov's momentum `lam_n = (n - 1)/(n + 2)` at step `n` (clipped at 0 for `n = 0`, where
    the velocity is zero anyway)."""
    n = jnp.asarray(n, dtype=jnp.result_type(float))
    return jnp.maximum((n - 1.0) / (n + 2.0), 0.0)


def vanishing_step(scheme: str, loss, h, mu, n, state: MomentumState) -> MomentumState:
    """Step `n -> n + 1` of a vanishing-friction scheme (`"hb_mu"`, `"nag_mu"`, `"wilson"`,
    `"nesterov"`); `state.w` is the scaled velocity `(u_n - u_{n-1})/h` of eq. 15 for the eq.
    (7) schemes, the velocity `v_n` for `"wilson"`."""
    if scheme == "nesterov":
        lam = nesterov_lam(n)
        return step(loss, Momentum(h, lam, lam), state)
    return scheme_step(scheme, loss, h, 0.0, mu, state)
