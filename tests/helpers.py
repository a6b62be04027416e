"""Test helpers (kept out of the installed package)."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

import momentum_jax as mj

_COMPILES = [0]


def _on_event(name, *args, **kwargs):
    if name == "/jax/core/compile/backend_compile_duration":
        _COMPILES[0] += 1


jax.monitoring.register_event_duration_secs_listener(_on_event)


class CompileCount:
    """The number of XLA compilations seen inside a `count_compiles()` block (`.n`)."""

    n = 0


@contextlib.contextmanager
def count_compiles():
    """Count every XLA compilation in the block (public `jax.monitoring` events): a second call
    with new values that does not recompile anything gives `n == 0`."""
    counter = CompileCount()
    start = _COMPILES[0]
    try:
        yield counter
    finally:
        counter.n = _COMPILES[0] - start


def tree_max_abs_diff(x, y) -> float:
    """Largest absolute difference between two pytrees of the same structure."""
    diffs = jax.tree.map(lambda a, b: np.max(np.abs(np.asarray(a) - np.asarray(b))), x, y)
    return float(max(jax.tree.leaves(diffs)))


def small_study(hs):
    """A real two-model study on the paper's quadratic (kappa 10), cheap enough for a fixture."""
    return mj.convergence_study(
        mj.paper_quadratic(10.0),
        jnp.array([1.0, 1.0]),
        hs=hs,
        lams=[0.5, 0.9],
        methods=("hb", "nag"),
        models=("gradient_flow", "hamiltonian"),
        T=1.0,
        fit_points=3,
    )


def fake_study_loop(loss, u0, points, steps, queues, *args, models, **kwargs):
    """Stands in for the study's compiled loop (`momentum_jax._study._convergence._run`, tested
    on its own elsewhere) in tests about argument handling, so they pay for no compilation:
    errors `0.1 h` for every model, no divergence, no solver steps, solutions of norm 1, one
    loop iteration."""
    D, P, M = queues.shape[0], steps.shape[0], len(models)
    h = np.asarray(points.h)
    return (
        np.broadcast_to(0.1 * h[None, :, None], (D, P, M)),
        np.full((D, P), -1),
        np.zeros((D, P, M), int),
        np.zeros((D, P, M), int),
        np.ones((D, P, M)),
        np.ones(D, int),
    )


CLI_STUDY = ["study", "--loss", "quadratic", "--h", "2^-3:2^-4", "--lam", "0.5", "--T", "1"]
"""A small `momentum-jax study` command line (with `main`, the CLI's entry point)."""


def synthetic_study():
    """A small `Study` made without computing anything (2 methods x 1 lam x 3 hs)."""
    shape = (2, 1, 3)
    hs = np.array([0.1, 0.05, 0.025])
    errors = {"gradient_flow": np.broadcast_to(hs, shape) * 0.3}
    return mj.Study(
        methods=("hb", "nag"),
        lams=np.array([0.9]),
        hs=hs,
        models=("gradient_flow",),
        errors=errors,
        diverged_at=np.full(shape, -1),
        solver_failure={"gradient_flow": np.full(shape, "", dtype=object)},
        config={"loss": "synthetic"},
        meta={},
        fit_points=2,
        solver_steps={"gradient_flow": np.full(shape, 7)},
    )


def scaled_quadratic(u, k):
    return 0.5 * jnp.sum(k * u**2)


U0 = jnp.array([1.0, 1.0])
"""The start of the small studies and solves of the argument, CLI and file tests."""
TS = jnp.array([0.0, 0.5, 1.0])
"""Times at which those tests evaluate a solve."""


def half_square(u):
    """`|u|^2 / 2`."""
    return 0.5 * jnp.sum(u**2)


def quad5(u):
    """The quadratic `(5 u_1^2 + u_2^2) / 2`."""
    return 0.5 * (5.0 * u[0] ** 2 + u[1] ** 2)


def record_figure_runs(monkeypatch) -> dict:
    """Replace `momentum_jax.paper.run_experiment` by a recorder, so that `reproduce` computes
    nothing: returns `{figure name: keyword arguments}` of every figure it would run."""
    calls: dict = {}

    def record(module, **kw):
        calls[module.NAME] = kw
        return {"summary": {}}

    monkeypatch.setattr("momentum_jax.paper.run_experiment", record)
    return calls


def refuse_figure_runs(monkeypatch) -> None:
    """Fail the test if `reproduce` computes a figure (its arguments must be refused first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a figure was computed before the arguments were checked")

    monkeypatch.setattr("momentum_jax.paper.run_experiment", refuse)


def sharpening_quartic(w):
    """`k (x1 + x2 - m)^2/2 + (s0 + x1) y^2/2 - y^4/4 + e y`, `k, m, s0, e = 0.005, 20, 15, 0.01`:
    the gradient flow raises the sharpness `s0 + x1 - 3 y^2` along `x1` while it lowers the loss
    along `x1 + x2`; at the edge of stability the oscillation in `y` pushes `x1` back, and the
    loss can keep falling along `x2` only."""
    x1, x2, y = w[0], w[1], w[2]
    return 0.0025 * (x1 + x2 - 20.0) ** 2 + 0.5 * (15.0 + x1) * y**2 - 0.25 * y**4 + 0.01 * y


def top_dense(loss, w):
    """The sharpness and the top eigenvector of the Hessian, dense (`eigh`)."""
    ev, vecs = jnp.linalg.eigh(jax.hessian(loss)(w))
    return ev[-1], vecs[:, -1]


def central_flow_reference(loss, w0, method, steps, substeps=4, gain=None):
    """The central flow with one critical eigenvalue, integrated as the reference code of Cohen,
    Damian et al. integrates GD's (`step_central` of minimal.py), written here for the momentum
    family: per substep `dt = 1/substeps` of a step, with the dense top eigenpair `(S, u)`, the
    variance `X >= 0` solves the one-dimensional complementarity problem `X (A + B X) = 0`,
    `A + B X >= 0`, `A = gain dt (q* - S) - dt h lbar <grad S, -grad L>`,
    `B = dt h lbar |grad S|^2/2` (with `gain = substeps`, the default, the sharpness one
    substep ahead stays at most `q*`: at `lam = a = 0`, `q* = 2/h`, the authors' step), and
    `w += -dt h lbar (grad L + X/2 grad S)`. Returns `w` and `X` at every step."""
    hess = jax.hessian(loss)
    dt = 1.0 / substeps
    gain = float(substeps) if gain is None else gain
    q = float(2.0 * (1.0 + method.lam) / (method.h * (1.0 + 2.0 * method.a)))
    h, lbar = float(method.h), float(method.lbar)

    def substep(w, _):
        g = jax.grad(loss)(w)
        ev, vecs = jnp.linalg.eigh(hess(w))
        sharp, u = ev[-1], vecs[:, -1]
        grad_s = jax.grad(lambda v: u @ hess(v) @ u)(w)
        a = gain * dt * (q - sharp) - dt * h * lbar * jnp.dot(grad_s, -g)
        b = dt * h * lbar * 0.5 * jnp.dot(grad_s, grad_s)
        var = jnp.maximum(0.0, -a / b)
        return w - dt * h * lbar * (g + 0.5 * var * grad_s), (w, var)

    _, (ws, var) = jax.lax.scan(substep, w0, None, length=steps * substeps + 1)
    return np.asarray(ws[::substeps]), np.asarray(var[::substeps])
