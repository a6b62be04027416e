"""Continuous-time models of the momentum family as `equinox.Module`s (docs/theory.md §2).

- `GradientFlow()`: `u' = -lbar grad Phi(u)` (eq. 8, Thm 2);
- `Hamiltonian(velocity=...)`: `h alpha u'' + (1 - lam) u' = -grad Phi(u)` (Thm 3);
- `ModifiedFlow(order=..., constant=...)`: `u' = -lbar grad Phi_h(u)` with
  `Phi_h = Phi + h c |grad Phi|^2` (Thms 5-6);
- `HessianDamped(velocity=...)`: `h alpha_0 u'' + (1 - lam) u' + a h Hess Phi(u) u' = -grad Phi(u)`;
- `RodFlow(track=..., floor=...)`: the rod `u_n = x + (-1)^n delta` at the edge of stability
  (docs/edge_of_stability.md);
- `CentralFlow(gain=..., tracking=...)`: the time average held at the linear-stability threshold
  at the edge of stability (docs/edge_of_stability.md §6).

The names `"gradient_flow"`, `"hamiltonian"`, `"modified_flow"`, `"hessian_damped"`,
`"rod_flow"`, `"central_flow"` are aliases for these objects (`as_model`).
"""

from ._base import AbstractModel as AbstractModel
from ._closed_form import ClosedForm as ClosedForm
from ._edge_flow import TRACKS as TRACKS
from ._edge_flow import CentralFlow as CentralFlow
from ._edge_flow import RodFlow as RodFlow
from ._edge_flow import rod_threshold as rod_threshold
from ._gradient_flow import GradientFlow as GradientFlow
from ._modified_flow import CONSTANTS as CONSTANTS
from ._modified_flow import ModifiedFlow as ModifiedFlow
from ._second_order import VELOCITIES as VELOCITIES
from ._second_order import Hamiltonian as Hamiltonian
from ._second_order import HessianDamped as HessianDamped

MODELS: dict[str, type[AbstractModel]] = {
    "gradient_flow": GradientFlow,
    "hamiltonian": Hamiltonian,
    "modified_flow": ModifiedFlow,
    "hessian_damped": HessianDamped,
    "rod_flow": RodFlow,
    "central_flow": CentralFlow,
}
"""Alias -> model class."""


def as_model(model) -> AbstractModel:
    """The model object for `model`: an `AbstractModel` is returned as it is, an alias of
    `MODELS` is its class's default object (options are set on the object itself:
    `Hamiltonian(velocity="paper")`)."""
    if isinstance(model, AbstractModel):
        return model
    if not isinstance(model, str) or model not in MODELS:
        allowed = ", ".join(repr(m) for m in MODELS)
        raise ValueError(f"model={model!r} is not one of {allowed} or a model object")
    return MODELS[model]()


_OPTIONS = {
    "velocity": "a model object, e.g. model=mj.Hamiltonian(velocity='paper')",
    "hamiltonian_velocity": "model objects, e.g. models=(mj.Hamiltonian(velocity='paper'),)",
    "constant": "a model object, e.g. mj.ModifiedFlow(constant='printed')",
    "order": "a model object, e.g. mj.ModifiedFlow(order=2)",
}
"""The model options that are fields of the model objects, not arguments of the engines."""


def check_model_options(function: str, given: dict, *, extra: str = "") -> None:
    """Refuse the keyword arguments `given` that `function` does not take (collected by its
    `**removed`), saying where a model option goes instead (`extra`: a further hint for the
    option `order`)."""
    for name in given:
        if name in _OPTIONS:
            hint = _OPTIONS[name] + (extra if name == "order" else "")
            raise TypeError(
                f"{function}() takes no {name}=: model options are fields of the model "
                f"objects; pass {hint}"
            )
    if given:
        raise TypeError(f"{function}() got an unexpected keyword argument {next(iter(given))!r}")
