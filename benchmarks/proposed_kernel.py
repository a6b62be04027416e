"""A proposed replacement for the inner kernel of `momentum_jax._study` (benchmark row (a*)).

Not library code: a measured prototype for the recommendation in `benchmarks/RESULTS.md`. It
computes the same errors as `convergence_study` (to the ODE solver's tolerance; checked by
`python -m benchmarks.run`), for `init="zero"` and the second-order models' `"taylor"` or
`"paper"` start.

**Streaming instead of chunks.** For each grid point and model there is ONE adaptive
diffrax Tsit5/PID integration over `[0, N h]`, driven step by step through diffrax's public
solver and controller interfaces (`solver.step`, `controller.adapt_step_size`): no restart per
chunk, no `SaveAt(ts)` buffer. After every accepted ODE step `[t_a, t_b]` the discrete method is
advanced over every `n` with `n h` in `(t_a, t_b]` and `|u_n - u(n h)|` is taken from the step's
dense interpolant into a running maximum. Memory is `O(P d)`; work is the ODE steps plus `N`
discrete steps and interpolant evaluations per point and model (the discrete run is repeated per
model: it is the cheap part).

**A traced loss parameter.** `errors(family, ..., thetas=...)` takes a loss family
`family(theta, u)`; the parameter is an ordinary traced argument, so every kappa of Fig 2 runs
through the same compiled kernel: one compile instead of one per kappa.

**Grouping.** Under `jax.vmap` a while loop runs until its slowest lane is done, and nested
loops cost `max(outer) x max(inner)` over the lanes. So the points are vmapped in groups that
share `theta` and `h` (the same `N`, similar ODE steps: here HB and NAG), and the groups run one
after another through the same compiled kernel (`group_by_h=True`). Measured on the Fig 2 grid
(2 CPU cores, warm): kappa = 10 alone, one vmap over its 28 points 1.7 s, groups by `h`
0.64 s; all three kappas, one vmap per `h` 5.5 s, groups by `(kappa, h)` 2.0 s. `block > 1`
unrolls the comparison loop in masked blocks; it was slower at every block size tried (4-32).
"""

from __future__ import annotations

from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from momentum_jax._models import initial_state as model_state
from momentum_jax._models import position, vector_field

from momentum_jax import _tree
from momentum_jax._iterate import initial_state, is_bounded, step
from momentum_jax._method import Momentum
from momentum_jax._solve import DEFAULT_SOLVER, SolverConfig


def _one_model(loss, model, config: SolverConfig, velocity, block, u0, limit, h, lam, a, N):
    meth = Momentum(h, lam, a)
    term = diffrax.ODETerm(vector_field(model, loss))
    solver, ctrl = config.solver(), config.controller()
    order = solver.error_order(term)
    y0 = model_state(model, loss, u0, meth, velocity)
    T = N * h
    tnext, cs = ctrl.init(term, 0.0, T, y0, None, meth, solver.func, order)
    tnext = jnp.minimum(tnext, T)
    ss = solver.init(term, 0.0, tnext, y0, meth)
    zero = jnp.zeros((), jnp.result_type(h))
    s0 = initial_state(loss, u0, meth, "zero", 1)
    carry = (
        zero,
        tnext,
        y0,
        ss,
        cs,
        s0,
        jnp.int32(1),
        zero,
        jnp.int32(-1),
        jnp.int32(0),
        jnp.int32(0),
    )

    def cond(c):
        n, k, res = c[6], c[9], c[10]
        return (n <= N) & (k < config.max_steps) & (res == 0)

    def body(c):
        t, tn, y, ss, cs, s, n, err, div, k, res = c
        y1, yerr, dense, ss1, r1 = solver.step(term, t, tn, y, meth, ss, False)
        keep, t_new, tn_new, _, cs, r2 = ctrl.adapt_step_size(t, tn, y, y1, meth, yerr, order, cs)
        interp = solver.interpolation_cls(t0=t, t1=tn, **dense)

        def due(n):  # discrete step n lies in this accepted ODE step
            return keep & (n <= N) & (n * h <= tn * (1 + 1e-13))

        def compare_one(ic, _):
            s, n, err, div = ic
            act = due(n)
            s_new = step(loss, meth, s)
            div = jnp.where(act & (div < 0) & ~is_bounded(s_new.u, limit), n, div)
            u_model = position(model, interp.evaluate(jnp.minimum(n * h, tn)))
            e = _tree.norm(_tree.sub(s_new.u, u_model))
            err = jnp.where(act & (div < 0), jnp.maximum(err, e), err)
            s = jax.tree.map(lambda x, y: jnp.where(act, x, y), s_new, s)
            return (s, n + act.astype(n.dtype), err, div), None

        def compare_block(ic):  # `block` steps per loop iteration, masked past the ODE step
            return jax.lax.scan(compare_one, ic, None, length=block, unroll=True)[0]

        s, n, err, div = jax.lax.while_loop(lambda ic: due(ic[1]), compare_block, (s, n, err, div))
        y, ss = jax.tree.map(lambda new, old: jnp.where(keep, new, old), (y1, ss1), (y, ss))
        res = jnp.where(r1._value != 0, r1._value, r2._value).astype(jnp.int32)
        return t_new, jnp.minimum(tn_new, T), y, ss, cs, s, n, err, div, k + 1, res

    out = jax.lax.while_loop(cond, body, carry)
    n, err, div, res = out[6], out[7], out[8], out[10]
    res = jnp.where((n <= N) & (res == 0), 1, res)  # 1: out of steps
    return err, div, res


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def kernel(family, models, config, velocity, block, u0, limit, theta, h, lam, a, N):
    """Per point `(theta, h, lam, a, N)` of the loss `family(theta, u)`:
    `(errors (len(models),), diverged_at, result codes (len(models),))`."""

    def point(theta, h, lam, a, N):
        loss = partial(family, theta)
        outs = [
            _one_model(loss, m, config, velocity, block, u0, limit, h, lam, a, N) for m in models
        ]
        return (jnp.stack([o[0] for o in outs]), outs[0][1], jnp.stack([o[2] for o in outs]))

    return jax.vmap(point)(theta, h, lam, a, N)


class _IgnoreTheta:
    """`family(theta, u) = loss(u)`, hashable by `loss` so the compiled kernel is reused."""

    def __init__(self, loss):
        self.loss = loss
        self.__name__ = getattr(loss, "__name__", "loss")

    def __call__(self, theta, u):
        return self.loss(u)

    def __eq__(self, other):
        return isinstance(other, _IgnoreTheta) and other.loss == self.loss

    def __hash__(self):
        return hash((_IgnoreTheta, self.loss))


def errors(loss, u0, *, hs, lams, T, thetas=None, **kw):
    """`{model: array (len(methods), len(lams), len(hs))}` as `convergence_study(...).errors`
    (nan where the run diverged or the solver failed). With `thetas`, `loss` is a family
    `loss(theta, u)` and every array gains a leading axis over `thetas`: the whole family is
    one compiled kernel, its parameter traced (one compile for, e.g., every kappa of Fig 2)."""
    if thetas is None:
        out = _errors(_IgnoreTheta(loss), jnp.zeros((1,)), u0, hs=hs, lams=lams, T=T, **kw)
        return {m: x[0] for m, x in out.items()}
    return _errors(loss, jnp.asarray(thetas), u0, hs=hs, lams=lams, T=T, **kw)


def _errors(
    family,
    thetas,
    u0,
    *,
    hs,
    lams,
    methods=("hb", "nag"),
    models=("gradient_flow", "hamiltonian", "modified_flow"),
    T,
    velocity="taylor",
    divergence_limit=1e8,
    group_by_h=True,
    block=1,
    config: SolverConfig = DEFAULT_SOLVER,
):
    hs, lams = np.asarray(hs, float), np.asarray(lams, float)
    K, M, L, H = thetas.shape[0], len(methods), len(lams), len(hs)
    shape = (K, M, L, H)
    gk = np.broadcast_to(np.arange(K)[:, None, None, None], shape).reshape(-1)
    gh = np.broadcast_to(hs, shape).reshape(-1)
    gl = np.broadcast_to(lams[:, None], shape).reshape(-1)
    ga = np.broadcast_to(
        np.stack([lams if m == "nag" else 0 * lams for m in methods])[:, :, None], shape
    ).reshape(-1)
    N = np.broadcast_to(np.floor(T / hs * (1 + 1e-12)).astype(np.int32), shape).reshape(-1)
    limit = divergence_limit * max(1.0, float(np.linalg.norm(np.asarray(u0))))
    # one group per (theta, h): lanes of one group take the same discrete steps and similar ODE
    # steps, so the nested loops do not wait in lockstep (see the module's docstring)
    groups = (
        [np.flatnonzero((gh == h) & (gk == k)) for k in range(K) for h in hs]
        if group_by_h
        else [np.arange(gh.size)]
    )
    e = np.empty((gh.size, len(models)))
    d = np.empty(gh.size, int)
    r = np.empty((gh.size, len(models)), int)
    for idx in groups:
        out = kernel(
            family,
            tuple(models),
            config,
            velocity,
            block,
            u0,
            limit,
            thetas[gk[idx]],
            *(jnp.asarray(x[idx]) for x in (gh, gl, ga, N)),
        )
        e[idx], d[idx], r[idx] = (np.asarray(x) for x in out)
    bad = (d[:, None] >= 0) | (r != 0)
    e = np.where(bad, np.nan, e)
    return {m: e[:, i].reshape(shape) for i, m in enumerate(models)}
