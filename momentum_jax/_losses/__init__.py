"""Named losses (a registry) and the losses of the paper's experiments. Importing this package
registers every loss below."""

from ._digits import DIGITS_COUNT as DIGITS_COUNT
from ._digits import softmax_cross_entropy as softmax_cross_entropy
from ._functions import double_well as double_well
from ._functions import rosenbrock as rosenbrock
from ._least_squares import least_squares_data as least_squares_data
from ._least_squares import least_squares_example as least_squares_example
from ._quadratic import DenseQuadratic as DenseQuadratic
from ._quadratic import DiagonalQuadratic as DiagonalQuadratic
from ._quadratic import dense_quadratic_matrix as dense_quadratic_matrix
from ._quadratic import paper_quadratic as paper_quadratic
from ._registry import LossSpec as LossSpec
from ._registry import get_loss as get_loss
from ._registry import list_losses as list_losses
from ._registry import register_loss as register_loss
from ._registry import registered as registered
