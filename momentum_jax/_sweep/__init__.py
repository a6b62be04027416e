"""Sweeps: any loss trained over a grid of learning rates, momenta and seeds (`sweep`), and the
result (`Sweep`)."""

from ._result import SWEEP_FORMAT as SWEEP_FORMAT
from ._result import Sweep as Sweep
from ._result import load_sweep as load_sweep
from ._sweep import SWEEP_METHODS as SWEEP_METHODS
from ._sweep import sweep as sweep
