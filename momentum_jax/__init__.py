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
