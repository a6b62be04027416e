"""Continuous-time models of the momentum family as `equinox.Module`s (docs/theory.md §2).

- `GradientFlow()`: `u' = -lbar grad Phi(u)` (eq. 8, Thm 2);
- `Hamiltonian(velocity=...)`: `h alpha u'' + (1 - lam) u' = -grad Phi(u)` (Thm 3);
- `ModifiedFlow(order=..., constant=...)`: `u' = -lbar grad Phi_h(u)` with
  `Phi_h = Phi + h c |grad Phi|^2` (Thms 5-6);
- `HessianDamped(velocity=...)`: `h alpha_0 u'' + (1 - lam) u' + a h Hess Phi(u) u' = -grad Phi(u)`.

The names `"gradient_flow"`, `"hamiltonian"`, `"modified_flow"`, `"hessian_damped"` are aliases
for these objects (`as_model`).
"""

from ._base import AbstractModel as AbstractModel
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
}
"""Alias -> model class."""


def as_model(model, *, velocity=None, order=None, constant=None) -> AbstractModel:
    """The model object for `model`: an `AbstractModel` is returned as it is; an alias of
    `MODELS` is built with the given options (`velocity` for the second-order models, `order`
    and `constant` for `"modified_flow"`; None keeps the model's default)."""
    if isinstance(model, AbstractModel):
        given = [
            k
            for k, v in (("velocity", velocity), ("order", order), ("constant", constant))
            if v is not None
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} given beside the model object {model.key!r}: set the "
                "options on the object itself"
            )
        return model
    if not isinstance(model, str) or model not in MODELS:
        allowed = ", ".join(repr(m) for m in MODELS)
        raise ValueError(f"model={model!r} is not one of {allowed} or a model object")
    cls = MODELS[model]
    if model == "modified_flow":
        options = {
            "order": 1 if order is None else order,
            "constant": "corrected" if constant is None else constant,
        }
        return cls(**options)
    if order not in (None, 1):
        raise ValueError(f"order={order} applies to model='modified_flow' only")
    if cls.second_order:
        return cls(velocity=velocity)
    return cls()  # `velocity` is the option of the second-order models only
