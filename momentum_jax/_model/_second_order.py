"""Second-order models: the damped Hamiltonian (paper Thm 3) and its Hessian-damped variant."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._derivatives import hvp
from .._manifold import manifold_velocity
from .._method import Momentum
from .._validate import check_choice, concrete
from ._base import AbstractModel
from ._stiff import MAX_STIFF_SIZE, DampedESDIRK, stiff_pays

VELOCITIES = ("match", "taylor", "paper", "manifold", "discrete")
"""The named starts `u'(0)` of a second-order model. `"match"` (the default) matches the discrete
run's start: `"discrete"` when the run starts with a velocity (`init="manifold"` or a given
`w_0`), `"taylor"` from the paper's zero start (docs/theory.md §4)."""


class _SecondOrder(AbstractModel):
    """`h inertia u'' + (1 - lam) u' + damping(u, u') = -grad Phi(u)` as the first-order system
    `y = (u, v)`, `v = u'`, with the initial velocity chosen by `velocity`."""

    second_order: ClassVar[bool] = True
    linear: ClassVar[bool] = True
    velocity: Any = eqx.field(default="match", converter=lambda v: "match" if v is None else v)
    """`u'(0)`: `"match"` (the default: `"discrete"` when the discrete run starts with a
    velocity, `"taylor"` from a zero start), `"taylor"` (matches `u(h)` to the first step),
    `"paper"` (eq. 12), `"manifold"` (Thm 5, first order), `"discrete"` (the discrete run's own
    start velocity `w_0`), or a pytree shaped like `u0`. The same default in `solve`,
    `convergence_study`, `sweep` and the CLI; results name the start used
    (`hamiltonian[velocity='taylor']`)."""

    def __check_init__(self):
        if isinstance(self.velocity, str):
            check_choice("velocity", self.velocity, VELOCITIES)

    def for_start(self, init) -> _SecondOrder:
        """The model with `velocity="match"` replaced by the start it means for the discrete
        start `init` (`"zero"`: `"taylor"`; `"manifold"` or a velocity pytree: `"discrete"`), so
        that a result's label names the start used."""
        if not (isinstance(self.velocity, str) and self.velocity == "match"):
            return self
        zero = isinstance(init, str) and init == "zero"
        return eqx.tree_at(lambda m: m.velocity, self, "taylor" if zero else "discrete")

    def inertia(self, method: Momentum):
        """The coefficient of `h u''`."""
        raise NotImplementedError

    def extra_damping(self, loss, u, v, method: Momentum):
        """A damping term besides `(1 - lam) u'`, or None."""
        del loss, u, v, method
        return None

    def vector_field(self, loss):
        def f(t, y, m):
            u, v = y
            force = jax.grad(loss)(u)
            extra = self.extra_damping(loss, u, v, m)
            if extra is not None:
                force = _tree.axpy(1.0, extra, force)
            acc = jax.tree.map(lambda g, vi: -(g + (1.0 - m.lam) * vi), force, v)
            return v, _tree.scale(1.0 / (m.h * self.inertia(m)), acc)

        return f

    def taylor_coefficient(self, method: Momentum):
        """`(2 alpha - 1)/(2 alpha - 1 + lam)`: `u'(0) = -coef grad Phi(u0)` matches `u(h)` to
        `u_1` (docs/theory.md §4). At gradient descent (`lam = a = 0`) it is `0/0`; its limit
        along heavy ball, `1/2`, is used."""
        al = self.inertia(method)
        num, den = 2 * al - 1, 2 * al - 1 + method.lam
        safe = jnp.where(den == 0, 1.0, den)
        return jnp.where(den == 0, 0.5, num / safe)

    def initial_velocity(self, loss, u0, method: Momentum, w0=None):
        """`u'(0)` (see `velocity`); `w0` is the discrete run's start velocity (None: zero)."""
        velocity = self.velocity
        if velocity == "match":
            velocity = "taylor" if w0 is None else "discrete"
        if not isinstance(velocity, str):
            return velocity
        if velocity == "discrete":
            return _tree.zeros_like(u0) if w0 is None else w0
        if velocity == "manifold":
            return manifold_velocity(loss, u0, method, 1)
        if velocity == "taylor":
            coef = self.taylor_coefficient(method)
        else:
            al = self.inertia(method)
            coef = (1 - 2 * al) / (2 * al - method.lam + 1)
        return _tree.scale(-coef, jax.grad(loss)(u0))

    def initial_state(self, loss, u0, method, w0=None):
        return (u0, self.initial_velocity(loss, u0, method, w0))

    def position(self, y):
        return y[0]

    def check(self, method: Momentum) -> None:
        al = concrete(self.inertia(method))
        if al is not None and np.any(al <= 0):
            raise ValueError(
                f"model={self.name!r} needs inertia alpha = (1 + lam - 2a(1 - lam))/2 > 0; "
                f"got alpha={np.ravel(al).tolist()}"
            )
        lam = concrete(method.lam)
        if self.velocity in ("match", "taylor") and al is not None and lam is not None:
            lam = np.broadcast_to(lam, np.shape(al))
            num, den = 2 * al - 1, 2 * al - 1 + lam
            bad = (den == 0) & (num != 0)
            if np.any(bad):
                raise ValueError(
                    f"velocity='taylor' of model={self.name!r} is undefined at "
                    f"lam={np.ravel(lam[bad]).tolist()}, a={np.ravel(method.a).tolist()}"
                    " (2 alpha - 1 + lam = 0); use velocity='paper' or 'manifold'"
                )

    def _defaults(self):
        return {"velocity": "match"}

    @property
    def key(self) -> str:
        """The alias with the start always named (`hamiltonian[velocity='taylor']`) and the
        other options that differ from their defaults."""
        base = super().key
        if isinstance(self.velocity, str) and "velocity=" not in base:
            rest = base[len(self.name) + 1 : -1] if "[" in base else ""
            shown = ", ".join([f"velocity={self.velocity!r}"] + ([rest] if rest else []))
            return f"{self.name}[{shown}]"
        return base


class Hamiltonian(_SecondOrder):
    r"""The damped-Hamiltonian modified equation of Thm 3:

    $$h\alpha\,\ddot u + (1 - \lambda)\,\dot u = -\nabla\Phi(u),\qquad
      \alpha = \tfrac12(1 + \lambda - 2a(1 - \lambda)),$$

    first order in `h` for any start, second order from the invariant manifold. Stiff for small
    `h`: its fast rate is `mu = (1 - lam) / (h alpha)` (docs/theory.md §2).

    **Arguments:**

    - `velocity`: the initial velocity `u'(0)`: `"taylor"` (matches `u(h)` to the first
      step), `"paper"` (eq. 12), `"manifold"` (Thm 5), a pytree, or None (see `_SecondOrder`).
    - `stiff`: solve with `DampedESDIRK` (implicit, cost flat in `h`) instead of the
      configured explicit solver (cost `~ T mu`). None (the default): when `T mu` exceeds the
      measured crossover for the state's size and the start is a flat array of at most
      `MAX_STIFF_SIZE` numbers (`_model/_stiff.py`).
    """

    name: ClassVar[str] = "hamiltonian"
    stiff: bool | None = eqx.field(default=None, static=True)

    def inertia(self, method):
        return method.alpha

    def ode_solver(self, loss, config):
        if not self.stiff:
            return config.solver()

        def f_v(t, u, v, m):
            return -((1.0 - m.lam) * v + jax.grad(loss)(u)) / (m.h * self.inertia(m))

        return DampedESDIRK(f_v, rtol=config.rtol, atol=config.atol)

    def resolve(self, method, u0, T):
        leaves = jax.tree.leaves(u0)
        flat = len(leaves) == 1 and jnp.ndim(leaves[0]) == 1
        if self.stiff and not flat:
            raise ValueError(
                "stiff=True needs a flat 1-D start u0 (its Newton systems are d x d); ravel the "
                "parameters (jax.flatten_util.ravel_pytree) or use stiff=False"
            )
        if self.stiff is not None:
            return self
        mu = concrete((1.0 - method.lam) / (method.h * self.inertia(method)))
        size = int(jnp.size(leaves[0])) if flat else MAX_STIFF_SIZE + 1
        stiff = mu is not None and flat and stiff_pays(T, float(np.max(mu)), size)
        return type(self)(velocity=self.velocity, stiff=stiff)

    def _defaults(self):
        return {"velocity": "match", "stiff": None}


class HessianDamped(_SecondOrder):
    r"""The Hessian-damped variant of the second-order model (the "high-resolution" form):

    $$h\alpha_0\,\ddot u + (1 - \lambda)\,\dot u + a h\,\nabla^2\Phi(u)\,\dot u = -\nabla\Phi(u),
      \qquad \alpha_0 = (1 + \lambda)/2,$$

    equally second order on the invariant manifold for Nesterov (docs/theory.md §2).
    **Arguments:** `velocity`, as for `Hamiltonian`.
    """

    name: ClassVar[str] = "hessian_damped"

    def inertia(self, method):
        return (1.0 + method.lam) / 2.0

    def extra_damping(self, loss, u, v, method):
        return _tree.scale(method.a * method.h, hvp(loss, u, v))
