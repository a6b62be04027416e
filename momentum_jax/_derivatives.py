"""Gradients and Hessian-vector products of a loss, never forming a Hessian."""

import jax

from . import _tree


def hvp(loss, u, v):
    """`Hess Phi(u) v` by forward-over-reverse differentiation (`jax.jvp` of `jax.grad`)."""
    return jax.jvp(jax.grad(loss), (u,), (v,))[1]


def grad_and_hess_grad(loss, u):
    """`(grad Phi(u), Hess Phi(u) grad Phi(u))`; the second is `(1/2) grad |grad Phi|^2`."""
    g, hess = jax.linearize(jax.grad(loss), u)
    return g, hess(g)


def modified_grad(loss, u, hc):
    """`grad (Phi + hc |grad Phi|^2)(u) = grad Phi + 2 hc Hess Phi grad Phi`."""
    g, hg = grad_and_hess_grad(loss, u)
    return _tree.axpy(2.0 * hc, hg, g)


def squared_gradient_norm(loss, u):
    """`|grad Phi(u)|^2` (summed over all leaves)."""
    return _tree.sq_norm(jax.grad(loss)(u))


def modified_loss(loss, hc):
    """The modified loss `Phi_h = Phi + hc |grad Phi|^2` of Thm 6 as a function of `u`, with
    `hc = h * c` (for a `Momentum` `m`: `hc = m.h * m.c`; docs/theory.md §2). Its gradient flow
    `u' = -lbar grad Phi_h(u)` is `ModifiedFlow()`."""
    return lambda u: loss(u) + hc * squared_gradient_norm(loss, u)
