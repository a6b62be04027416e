"""The compiled loop of the convergence engine: every point of a grid (see `_grid`), every model,
in one vectorised `lax.while_loop` per device.

**One loop, balanced lanes.** The loop runs `lanes` lanes in lockstep, `chunk` discrete steps
per iteration (a `lax.scan`, masked past a point's last step). A lane whose point is finished,
has diverged or has no model left to solve takes the next point of its device's queue; the
start of every point (its discrete state and every model's initial state) is computed before
the loop, so taking a point is a gather.

**Shared solves.** A model whose solution is `v(s t)` for one `v` common to every point (the
gradient flow, `s = 1 / (1 - lam)`) is solved once, before the loop, with dense output
(`_solve.solve_shared`, the sweep's solve too), and evaluated at `s n h` for every step of
every lane. A chunk's times are sorted, so their steps
of the solve are found by locating the few step boundaries the chunk spans among its times
(`_dense.evaluate_sorted`, `SHARED_WINDOW`) rather than by a binary search per time.

**Closed forms.** With `solver=ClosedForm()` no model is solved: each is evaluated
exactly in the eigenbasis of the quadratic loss (`_model/_closed_form.py`). A lane keeps the
propagator's first row at `1 .. chunk` steps of its point (recomputed only in the iterations
where some lane takes a new point), and each chunk applies it to the exact state at the
chunk's start: two multiply-adds per component and time.

**Per-point solves.** Every other model is integrated lane by lane, continuing one adaptive
diffrax solve across the chunks (the solver state, the step-size controller's state and the
step size are carried from one chunk to the next) in windows of at most
`SolverConfig.window_steps` steps whose dense output is kept until the discrete run has been
compared with all of it. The lanes' solves are vectorised (`jax.vmap`) on accelerators; on a
CPU they run one lane after the other (`lax.map`), because a vectorised adaptive loop runs
every lane until the slowest one is done (measured: 1.5-9 times faster on 2 CPU cores).

Errors `max_n |u_n - u(n h)|` are kept as running maxima, so memory is
`O(points d + lanes (chunk + window_steps) d)` whatever the number of steps.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _dense, _tree
from .._iterate import initial_state, step
from .._method import Momentum
from .._model import AbstractModel
from .._model._closed_form import ClosedForm, Eigen, ExactSolution, along
from .._runtime import divergence_bound, is_bounded, report
from .._solve import SolverConfig, diffeqsolve, solve_shared

SHARED_WINDOW = 128
"""A chunk's times are located among at most this many steps of a shared solve after its first
time (`_dense.evaluate_sorted`, for chunks of at least `8 * 16` steps: `chunk / 8` steps); a
loop iteration where a chunk spans more steps searches the whole table instead (typically the
first iterations, whose large-`h` chunks span the whole solve)."""

_RESULT_MAX_STEPS = int(diffrax.RESULTS.max_steps_reached._value)  # type: ignore[attr-defined]

# ------------------------------------------------------------------------------- the kernel


def _take(tree, index):
    return jax.tree.map(lambda x: x[index], tree)


def _select(mask, new, old):
    """`new` on the lanes where `mask` (shape `(lanes,)`) holds, else `old`."""

    def sel(a, b):
        m = mask.reshape(mask.shape + (1,) * (jnp.ndim(a) - 1))
        return jnp.where(m, a, b)

    return jax.tree.map(sel, new, old)


class _ModelLane(eqx.Module):
    """One per-point model's solve on every lane: state `y` at time `t`, the next step `dt`,
    diffrax's solver and controller states, steps taken, result code, running error, and the
    dense output of the last window (`table`, covering `(t_start, t]`), kept until the discrete
    run has been compared with all of it: a window's steps are not cut at chunk boundaries.
    `scale` is the running maximum of the model's own norm at the compared times."""

    y: object
    t: jax.Array
    dt: jax.Array
    solver_state: object
    controller_state: object
    steps: jax.Array
    result: jax.Array
    error: jax.Array
    scale: jax.Array
    t_start: jax.Array
    table: _dense.Table


def run_points(
    loss,
    u0,
    points: Momentum,
    steps,
    queue,
    total_steps,
    *,
    models: tuple[AbstractModel, ...],
    init: str,
    init_order: int,
    solver: SolverConfig | ClosedForm,
    norm: str,
    lanes: int,
    chunk: int,
    vectorize_solves: bool,
    limit,
    token,
    device,
    report_progress: bool,
):
    """Errors of the points `queue` (indices into `points`, `-1` for none) against `models`.

    **Returns:** `(errors (P, models), diverged_at (P,), results (P, models), solver steps
    (P, models), scales (P, models))` for the `P` points of `points` (rows not in `queue` are
    left at zero); a scale is the largest norm of the model's solution at the compared times,
    the yardstick of the relative error."""
    dtype = _tree.dtype(u0)
    int32 = jnp.int32
    sorted_window = min(SHARED_WINDOW, chunk // 8)
    points = points.astype(dtype)
    P = steps.shape[0]
    euclidean = norm == "euclidean"
    closed = isinstance(solver, ClosedForm)
    config = SolverConfig() if isinstance(solver, ClosedForm) else solver  # unused when closed
    shared_index = [
        i for i, m in enumerate(models) if not closed and m.shared_field(loss) is not None
    ]
    direct_index = list(range(len(models))) if closed else shared_index
    local_index = [i for i in range(len(models)) if i not in direct_index]
    local = [models[i] for i in local_index]
    terms = [diffrax.ODETerm(m.vector_field(loss)) for m in local]
    solvers = [m.ode_solver(loss, config) for m in local]  # per model (a stiff one, say)
    degrees = [_dense.interpolant_degree(ode) for ode in solvers]
    controller = config.controller()
    eigen = Eigen.of(loss, dtype) if closed else None

    # --- the start of every point, before the loop
    def point_start(m):
        s = initial_state(loss, u0, m, init, init_order)
        w0 = s.w if init == "manifold" else None
        ys = tuple(mod.initial_state(loss, u0, m, w0) for mod in local)
        lanes_state = []
        for term, ode, y in zip(terms, solvers, ys):
            # the first step is one discrete step (given, so no evaluations to guess it)
            error_order = ode.error_order(term)
            tnext, cs = controller.init(term, 0.0, m.h, y, m.h, m, ode.func, error_order)
            ss = ode.init(term, 0.0, tnext, y, m)
            lanes_state.append((y, tnext, ss, cs))
        forms = tuple(
            ExactSolution.build(models[i], loss, eigen, u0, m, w0) for i in direct_index if closed
        )
        return s, tuple(lanes_state), forms

    start_state, start_models, start_forms = jax.vmap(point_start)(points)

    # --- models evaluated directly at the discrete times: `(evaluate(lane, times), result
    # code, solver steps)` per model of `direct_index` (`lane`: the lanes' state)
    direct = []
    offsets = jnp.arange(1, chunk + 1, dtype=dtype)

    def closed_rows(p):
        """Per lane and closed-form model, its propagator's first row at `1 .. chunk` steps
        (recomputed only when a lane takes a new point)."""
        return tuple(
            jax.vmap(lambda f, h: f.rows(h * offsets))(_take(form, p), points.h[p])
            for form in start_forms
        )

    for i, form in enumerate(start_forms):
        # a chunk's values are the propagator's rows applied to the state at the chunk's start

        def exact(lane, times, i=i, form=form):
            del times
            p = jnp.maximum(lane["p"], 0)
            t0 = lane["n"].astype(dtype) * lane["m"].h
            at = jax.vmap(lambda f, t: f.state(t))(_take(form, p), t0)
            return eigen.back(along(lane["rows"][i], tuple(x[:, None, :] for x in at)))

        direct.append((exact, jnp.zeros((), int32), jnp.zeros((), int32)))
    # shared solves, once per loss and start
    for mod in [models[i] for i in shared_index]:
        scale = mod.shared_time_scale(points)
        s_max = jnp.max(steps.astype(dtype) * points.h * scale)
        field = mod.shared_field(loss)
        assert field is not None
        shared_sol = solve_shared(field, u0, s_max, config)

        def shared(lane, times, shared_sol=shared_sol, scale=scale):
            at = times * scale[jnp.maximum(lane["p"], 0)][:, None]
            return shared_sol.evaluate(at, window=sorted_window)

        direct.append((shared, shared_sol.result, shared_sol.steps))

    # --- lane state
    first = (
        queue[:lanes]
        if queue.shape[0] >= lanes
        else jnp.pad(queue, (0, lanes - queue.shape[0]), constant_values=-1)
    )
    first = first.astype(int32)

    def load(p):
        """The state of lanes that start point `p` (`p < 0`: idle, any valid values)."""
        q = jnp.maximum(p, 0)
        m = _take(points, q)
        s = _take(start_state, q)
        mls = []
        for degree, (y, tnext, ss, cs) in zip(degrees, _take(start_models, q)):
            zeros = jnp.zeros(p.shape, dtype)
            empty = _dense.empty(y, config.window_steps, degree)
            mls.append(
                _ModelLane(
                    y,
                    zeros,
                    tnext,
                    ss,
                    cs,
                    jnp.zeros(p.shape, int32),
                    jnp.zeros(p.shape, int32),
                    zeros,
                    zeros,
                    zeros,
                    empty,
                )
            )
        return dict(
            p=p,
            m=m,
            N=steps[q].astype(int32),
            n=jnp.zeros(p.shape, int32),
            s=s,
            div=jnp.full(p.shape, -1, int32),
            direct_error=jnp.zeros((p.shape[0], len(direct)), dtype),
            direct_scale=jnp.zeros((p.shape[0], len(direct)), dtype),
            direct_result=jnp.zeros((p.shape[0], len(direct)), int32),
            local=tuple(mls),
        )

    lane0 = load(first)
    lane0["rows"] = closed_rows(jnp.maximum(first, 0))
    outputs0 = (
        jnp.zeros((P, len(models)), dtype),
        jnp.zeros((P,), int32),
        jnp.zeros((P, len(models)), int32),
        jnp.zeros((P, len(models)), int32),
        jnp.zeros((P, len(models)), dtype),
    )
    head0 = jnp.asarray(min(lanes, int(queue.shape[0])), int32)
    done0 = jnp.zeros((), total_steps.dtype)

    # --- one chunk
    def discrete_chunk(s, div, m, N, n, active):
        """`chunk` steps of the method (unmasked: the steps past a point's last step or past
        its divergence are never compared and the point is finished at the chunk's end, so the
        loop body is the bare step); the first unbounded step is found afterwards."""

        def one(s, _):
            s = step(loss, m, s)
            return s, s.u

        s, traj = jax.lax.scan(one, s, None, length=chunk)
        k = n + 1 + jnp.arange(chunk, dtype=int32)
        live = active & (k <= N)
        bound = divergence_bound(limit, u0)  # limit: the study's divergence_limit
        bounded = jax.vmap(lambda u: is_bounded(u, bound))(traj)
        first_bad = jnp.min(jnp.where(live & ~bounded, k, jnp.iinfo(int32).max))
        div = jnp.where((div < 0) & live.any() & (first_bad < jnp.iinfo(int32).max), first_bad, div)
        ok = live & ((div < 0) | (k < div))
        return s, div, traj, ok

    def chunk_error(traj, values, ok):
        """`(max |u_n - v_n|, max |v_n|)` over the times `ok` of a chunk."""
        # the largest squared norm, then its root (the same number as the largest root)
        measure = jax.vmap(_tree.sq_norm if euclidean else _tree.max_abs)
        d, v = measure(_tree.sub(traj, values)), measure(values)
        worst = jnp.max(jnp.where(ok, d.astype(dtype), 0.0))
        big = jnp.max(jnp.where(ok, v.astype(dtype), 0.0))
        return (jnp.sqrt(worst), jnp.sqrt(big)) if euclidean else (worst, big)

    def local_chunk(mod, term, ode, degree, ml: _ModelLane, m, traj, ok, times, t_final, go):
        """Compare one lane's chunk with its solve of `mod`: first with the kept dense output,
        then with new windows of the solve (towards the point's last time `t_final`, at most
        `window_steps` steps each) until every compared time is covered."""

        def compare(ml, covered):
            values = _dense.evaluate(ml.table, jnp.clip(times, ml.t_start, ml.t))
            worst, big = chunk_error(traj, mod.position(values), covered)
            some = jnp.any(covered)
            return (
                jnp.where(some, jnp.maximum(ml.error, worst), ml.error),
                jnp.where(some, jnp.maximum(ml.scale, big), ml.scale),
            )

        ml = eqx.tree_at(
            lambda x: (x.error, x.scale),
            ml,
            compare(ml, ok & (times > ml.t_start) & (times <= ml.t)),
        )

        def more(ml):
            return go & (ml.result == 0) & jnp.any(ok & (times > ml.t))

        def window(ml):
            sol = diffeqsolve(
                term,
                ode,
                ml.t,
                t_final,
                ml.y,
                dt0=ml.dt,
                args=m,
                saveat=diffrax.SaveAt(
                    t1=True, dense=True, solver_state=True, controller_state=True
                ),
                controller=controller,
                max_steps=config.window_steps,
                solver_state=ml.solver_state,
                controller_state=ml.controller_state,
                made_jump=False,
            )
            code = sol.result._value.astype(int32)
            usable = (code == 0) | (code == _RESULT_MAX_STEPS)
            accepted = sol.stats["num_accepted_steps"].astype(int32)
            taken = sol.stats["num_steps"].astype(int32)
            ts = sol.interpolation.ts
            t_reach = jnp.where(code == 0, t_final, sol.ts[-1])
            # the next window starts with the larger of the last two steps (the last one may
            # have been cut at the point's last time)
            last = ts[jnp.maximum(accepted, 1)] - ts[jnp.maximum(accepted - 1, 0)]
            before = ts[jnp.maximum(accepted - 1, 1)] - ts[jnp.maximum(accepted - 2, 0)]
            dt = jnp.where(accepted > 0, jnp.maximum(last, before), ml.dt)
            steps_taken = ml.steps + taken
            stalled = usable & (t_reach <= ml.t)
            result = jnp.where(usable & ~stalled, 0, jnp.where(usable, _RESULT_MAX_STEPS, code))
            result = jnp.where(steps_taken > config.max_steps, _RESULT_MAX_STEPS, result)
            new = _ModelLane(
                jax.tree.map(lambda v: v[-1], sol.ys),
                t_reach,
                dt,
                sol.solver_state,
                sol.controller_state,
                steps_taken,
                result.astype(int32),
                ml.error,
                ml.scale,
                ml.t,
                _dense.table(sol, degree),
            )
            new = eqx.tree_at(
                lambda x: (x.error, x.scale),
                new,
                compare(new, ok & (times > ml.t) & (times <= t_reach)),
            )
            return _tree.where(usable, new, eqx.tree_at(lambda x: x.result, ml, result))

        return jax.lax.while_loop(more, window, ml)

    def body(carry):
        lane, outputs, head, done, iterations = carry
        active = lane["p"] >= 0
        s, div, traj, ok = jax.vmap(discrete_chunk)(
            lane["s"], lane["div"], lane["m"], lane["N"], lane["n"], active
        )
        k = lane["n"][:, None] + 1 + jnp.arange(chunk, dtype=int32)[None, :]
        times = jnp.minimum(k, lane["N"][:, None]).astype(dtype) * lane["m"].h[:, None]

        direct_error, direct_result = lane["direct_error"], lane["direct_result"]
        direct_scale = lane["direct_scale"]
        for i, (evaluate, code, _) in enumerate(direct):
            e, v = jax.vmap(chunk_error)(traj, evaluate(lane, times), ok)
            direct_error = direct_error.at[:, i].max(e)
            direct_scale = direct_scale.at[:, i].max(v)
            direct_result = direct_result.at[:, i].set(jnp.where(active, code, 0))

        t_final = lane["N"].astype(dtype) * lane["m"].h
        go = active & (div < 0)
        new_local = []
        for spec, ml in zip(zip(local, terms, solvers, degrees), lane["local"]):
            args = (ml, lane["m"], traj, ok, times, t_final, go)
            if vectorize_solves:
                ml = jax.vmap(lambda *a, spec=spec: local_chunk(*spec, *a))(*args)
            else:
                ml = jax.lax.map(lambda a, spec=spec: local_chunk(*spec, *a), args)
            new_local.append(ml)

        n = jnp.minimum(lane["n"] + chunk, lane["N"])
        results = [direct_result[:, i] for i in range(len(direct))] + [
            ml.result for ml in new_local
        ]
        any_left = jnp.zeros_like(active)
        for r in results:
            any_left = any_left | (r == 0)
        finished = active & ((n >= lane["N"]) | (div >= 0) | ~any_left)

        # write the finished points (columns in the order of `models`)
        by_model = dict(
            zip(
                direct_index + local_index,
                [direct_error[:, i] for i in range(len(direct))] + [ml.error for ml in new_local],
            )
        )
        errors = jnp.stack([by_model[i] for i in range(len(models))], axis=1)
        scale_by = dict(
            zip(
                direct_index + local_index,
                [direct_scale[:, i] for i in range(len(direct))] + [ml.scale for ml in new_local],
            )
        )
        scales = jnp.stack([scale_by[i] for i in range(len(models))], axis=1)
        codes_by = dict(zip(direct_index + local_index, results))
        codes = jnp.stack([codes_by[i] for i in range(len(models))], axis=1).astype(int32)
        width = lane["p"].shape[0]
        work = [jnp.broadcast_to(n_steps, (width,)) for _, _, n_steps in direct]
        work_by = dict(zip(direct_index + local_index, work + [ml.steps for ml in new_local]))
        work = jnp.stack([work_by[i] for i in range(len(models))], axis=1).astype(int32)
        target = jnp.where(finished, lane["p"], P)
        out_err, out_div, out_res, out_steps, out_scale = outputs
        out_err = out_err.at[target].set(errors, mode="drop")
        out_div = out_div.at[target].set(div, mode="drop")
        out_res = out_res.at[target].set(codes, mode="drop")
        out_steps = out_steps.at[target].set(work, mode="drop")
        out_scale = out_scale.at[target].set(scales, mode="drop")

        # finished lanes take the next points of the queue
        rank = jnp.cumsum(finished.astype(int32), dtype=int32) - 1
        slot = head + rank
        nxt = jnp.where(slot < queue.shape[0], queue[jnp.minimum(slot, queue.shape[0] - 1)], -1)
        p_new = jnp.where(finished, nxt.astype(int32), lane["p"])
        head = head + jnp.sum(finished.astype(int32), dtype=int32)
        done = done + jnp.sum(jnp.where(finished, lane["N"], 0), dtype=done.dtype)
        kept = dict(
            p=p_new,
            m=lane["m"],
            N=lane["N"],
            n=n,
            s=s,
            div=div,
            direct_error=direct_error,
            direct_scale=direct_scale,
            direct_result=direct_result,
            local=tuple(new_local),
        )
        fresh = load(p_new)
        rows = lane["rows"]
        lane = _select(finished, fresh, kept)
        if start_forms:
            lane["rows"] = jax.lax.cond(
                jnp.any(finished),
                lambda: _select(finished, closed_rows(jnp.maximum(p_new, 0)), rows),
                lambda: rows,
            )
        else:
            lane["rows"] = rows
        if report_progress:
            running = jnp.sum(jnp.where(lane["p"] >= 0, lane["n"], 0), dtype=done.dtype)
            report(token, device, done + running, total_steps)
        outputs = (out_err, out_div, out_res, out_steps, out_scale)
        return lane, outputs, head, done, iterations + 1

    # Lanes run until the queue is empty and at most `tail` lanes are still busy; those
    # stragglers (typically stiff solves at the largest h) then continue in a narrower loop, so
    # that the idle lanes stop costing work.
    tail = max(1, lanes // 8) if lanes >= 16 else lanes

    def busy(carry):
        return jnp.any(carry[0]["p"] >= 0)

    def wide(carry):
        lane, _, head, _, _ = carry
        active = jnp.sum((lane["p"] >= 0).astype(int32), dtype=int32)
        queued = (head < queue.shape[0]) & (queue[jnp.minimum(head, queue.shape[0] - 1)] >= 0)
        return busy(carry) & (queued | (active > tail))

    start = (lane0, outputs0, head0, done0, jnp.asarray(0, int32))
    carry = jax.lax.while_loop(wide if tail < lanes else busy, body, start)
    if tail < lanes:
        lane, outputs, head, done, iterations = carry
        keep = jnp.argsort(lane["p"] < 0, stable=True)[:tail]
        lane = jax.tree.map(lambda x: x[keep], lane)
        carry = jax.lax.while_loop(busy, body, (lane, outputs, head, done, iterations))
    return carry[1] + (carry[4],)
