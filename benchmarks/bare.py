"""The bare loop a JAX user writes first for a sweep (the baseline of the `sweep` rows of
`benchmarks/run.py`): `jax.jit(jax.vmap(run))` over the flat points, `run` a `lax.scan` of the
HB/NAG step (paper eq. 15) returning the final loss; nothing recorded, no divergence check."""

import jax
import jax.numpy as jnp


def run(loss, u0, h, lam, a, steps):
    """The final loss after `steps` steps of `w <- lam w - grad loss(u + h a w)`, `u <- u + h w`
    from `(u0, 0)`; `u0` any pytree of arrays."""

    def body(state, _):
        u, w = state
        g = jax.grad(loss)(jax.tree.map(lambda ui, wi: ui + h * a * wi, u, w))
        w = jax.tree.map(lambda wi, gi: lam * wi - gi, w, g)
        u = jax.tree.map(lambda ui, wi: ui + h * wi, u, w)
        return (u, w), None

    start = (u0, jax.tree.map(jnp.zeros_like, u0))
    (u, _), _ = jax.lax.scan(body, start, None, length=steps)
    return loss(u)


def final_losses(loss, steps):
    """`f(u0, h, lam, a) -> (P,)` final losses for flat arrays of points `(h, lam, a)` (one
    start `u0` shared by every point), compiled once per `(loss, steps)`."""
    return jax.jit(
        jax.vmap(lambda u0, h, lam, a: run(loss, u0, h, lam, a, steps), in_axes=(None, 0, 0, 0))
    )
