"""Mini-batch momentum and its stochastic modified equation (docs/stochastic.md)."""

from ._brownian import GridBrownianPath as GridBrownianPath
from ._minibatch import minibatch_final as minibatch_final
from ._minibatch import minibatch_iterate as minibatch_iterate
from ._minibatch import minibatch_step as minibatch_step
from ._minibatch import noise_factor as noise_factor
from ._minibatch import sample_indices as sample_indices
from ._moments import Moments as Moments
from ._moments import minibatch_moments as minibatch_moments
from ._moments import quadratic_expectation as quadratic_expectation
from ._moments import sde_moments as sde_moments
from ._noise import example_gradients as example_gradients
from ._noise import noise_covariance as noise_covariance
from ._noise import psd_sqrt as psd_sqrt
from ._sde import DEFAULT_SDE as DEFAULT_SDE
from ._sde import DRIFTS as DRIFTS
from ._sde import STARTS as STARTS
from ._sde import SDEConfig as SDEConfig
from ._sde import modified_flow as modified_flow
from ._sde import sde_diffusion as sde_diffusion
from ._sde import sde_drift as sde_drift
from ._sde import sde_start as sde_start
from ._sde import solve_sde as solve_sde
from ._weak_error import MODELS as MODELS
from ._weak_error import WeakErrorStudy as WeakErrorStudy
from ._weak_error import default_tests as default_tests
from ._weak_error import weak_error_study as weak_error_study
