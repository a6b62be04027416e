"""The interface of a continuous-time model of the momentum family."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx

from .._method import Momentum
from .._types import PyTree


class AbstractModel(eqx.Module):
    """A continuous-time model of the momentum family (paper eq. 7): a diffrax vector field in
    the time `t = n h` of the discrete method, with its initial state and options.

    Subclasses carry their own options as fields (validated at construction) and implement
    `vector_field`; first-order models evolve `y = u`, second-order models `y = (u, u')`. Every
    Hessian appears only as a Hessian-vector product.

    **Sharing.** A model whose solution for a grid point `(h, lam, a)` is `v(s * t)` for one
    function `v` common to every point (the gradient flow: `u(t) = v(t / (1 - lam))` with
    `v' = -grad Phi(v)`) says so by returning the time scale `s` from `shared_time_scale` and the
    common field from `shared_field`; the engine then solves it once per loss and start.
    """

    name: ClassVar[str]
    """The alias of the model (`"gradient_flow"`, `"hamiltonian"`, ...)."""
    second_order: ClassVar[bool] = False
    linear: ClassVar[bool] = False
    """Whether, on a quadratic loss `1/2 u^T A u`, the field is linear in the state and a
    function of `A` (true of a field built from `grad Phi` and Hessian-vector products alone):
    the model then has a closed form there (`solver=ClosedForm()`, `_closed_form`)."""

    @abc.abstractmethod
    def vector_field(self, loss) -> Callable:
        """`f(t, y, method)`: the right-hand side for diffrax's `ODETerm`, `method` a
        `Momentum` passed as diffrax's `args`."""

    def initial_state(self, loss, u0: PyTree, method: Momentum, w0: PyTree | None = None):
        """The state at `t = 0`. `w0` is the discrete run's start velocity, used by models
        whose initial velocity follows the discrete start (see `Hamiltonian`)."""
        del loss, method, w0
        return u0

    def position(self, y) -> PyTree:
        """The `u` part of a model state."""
        return y

    def check(self, method: Momentum) -> None:
        """Raise `ValueError` naming the option or hyperparameter when the model is undefined
        for the concrete values of `method` (traced values pass). Called before compiling."""
        del method

    def ode_solver(self, loss, config):
        """The diffrax solver for this model (default: the `SolverConfig`'s)."""
        del loss
        return config.solver()

    def resolve(self, method: Momentum, u0: PyTree, T: float) -> AbstractModel:
        """The model with its automatic options decided for the concrete grid `method` (fields
        of any shape), start `u0` and horizon `T` (default: itself)."""
        del method, u0, T
        return self

    def for_start(self, init) -> AbstractModel:
        """The model with any option that follows the discrete start decided for the start
        `init` of the discrete runs (`"zero"`, `"manifold"` or a velocity pytree); default:
        itself (see `Hamiltonian`'s `velocity="match"`)."""
        del init
        return self

    def shared_time_scale(self, method: Momentum):
        """`s` with `u(t) = v(s t)` for a `v` shared by every grid point, or None (the default:
        the solution depends on the point)."""
        del method
        return None

    def shared_field(self, loss) -> Callable | None:
        """The field `g(s, v, args)` of the shared solution `v` (see `shared_time_scale`)."""
        del loss
        return None

    @property
    def key(self) -> str:
        """A short label: the alias, with the options that differ from their defaults."""
        options = []
        for field, default in self._defaults().items():
            value = getattr(self, field)
            if isinstance(value, str | int | float | type(None)) and value != default:
                options.append(f"{field}={value!r}")
            elif not isinstance(value, str | int | float | type(None)):
                options.append(f"{field}=<array>")
        return self.name + (f"[{', '.join(options)}]" if options else "")

    def _defaults(self) -> dict:
        return {}
