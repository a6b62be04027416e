"""The obvious hand-written alternative to `convergence_study` for a wide gradient-flow sweep, as
a user would write it (benchmark row "handwritten"): ONE diffrax solve of `v' = -grad Phi(v)`
with dense output, and one `lax.scan` that advances every grid point in lockstep to the largest
step count, masking the points that are done, comparing `u_n` with `v(n h / (1 - lam))`.
"""

import diffrax
import jax
import jax.numpy as jnp


def gradient_flow_errors(loss, n_max, u0, h, lam, a, N, *, rtol=1e-12, atol=1e-14):
    """`max_n |u_n - u(n h)|` against the rescaled gradient flow for flat arrays of points
    `(h, lam, a, N)` with `N <= n_max` steps; `u0` a flat array."""
    s_max = jnp.max(N * h / (1 - lam))
    flow = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda s, v, _: -jax.grad(loss)(v)),
        diffrax.Tsit5(),
        0.0,
        s_max,
        None,
        u0,
        saveat=diffrax.SaveAt(dense=True),
        max_steps=2**14,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
    )
    grad = jax.vmap(jax.grad(loss))

    def body(carry, n):
        u, w, err = carry
        w_new = lam[:, None] * w - grad(u + (h * a)[:, None] * w)
        u_new = u + h[:, None] * w_new
        live = (n <= N)[:, None]
        u, w = jnp.where(live, u_new, u), jnp.where(live, w_new, w)
        ref = jax.vmap(flow.evaluate)(jnp.minimum(n, N) * h / (1 - lam))
        err = jnp.where(n <= N, jnp.maximum(err, jnp.linalg.norm(u - ref, axis=1)), err)
        return (u, w, err), None

    P = h.shape[0]
    start = (jnp.broadcast_to(u0, (P, u0.size)), jnp.zeros((P, u0.size)), jnp.zeros(P))
    (_, _, err), _ = jax.lax.scan(body, start, jnp.arange(1, n_max + 1))
    return err


gradient_flow_errors_jit = jax.jit(gradient_flow_errors, static_argnums=(0, 1))
