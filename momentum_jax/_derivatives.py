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
