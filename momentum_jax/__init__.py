"""momentum_jax: continuous-time analysis of momentum methods in JAX (Kovachki & Stuart, 2021)."""

from ._iterate import FinalState as FinalState
from ._iterate import MomentumState as MomentumState
from ._iterate import initial_state as initial_state
from ._iterate import iterate as iterate
from ._iterate import iterate_final as iterate_final
from ._iterate import step as step
from ._manifold import contraction_factor as contraction_factor
from ._manifold import distances_along as distances_along
from ._manifold import manifold_distance as manifold_distance
from ._manifold import manifold_velocity as manifold_velocity
from ._methods import Momentum as Momentum
from ._methods import gradient_descent as gradient_descent
from ._methods import heavy_ball as heavy_ball
from ._methods import nesterov as nesterov

__version__ = "0.1.0"
from ._losses import get_loss as get_loss
from ._losses import list_losses as list_losses
from ._solve import SolverConfig as SolverConfig
from ._solve import solve as solve
from ._study import Study as Study
from ._study import convergence_study as convergence_study
from ._study import load_study as load_study
from ._optax import as_optax as as_optax
from ._optax import iterate_from_optax as iterate_from_optax
