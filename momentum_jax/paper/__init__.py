"""The application layer: the paper's figures (and ours), their runner with caching and atomic
outputs, the problems they share, and progress reporting. Built on the public API of
`momentum_jax` only; `momentum-jax reproduce` is its command line.

    from momentum_jax import paper
    paper.run("fig2", quick=True, out="figures")
"""

from ._checkpoints import CHECKPOINT_KEYS as CHECKPOINT_KEYS
from ._checkpoints import START_KEYS as START_KEYS
from ._checkpoints import checkpoints as checkpoints
from ._checkpoints import final_errors as final_errors
from ._checkpoints import off_plateau as off_plateau
from ._checkpoints import seeds_to_run as seeds_to_run
from ._problems import DATASETS as DATASETS
from ._problems import U0 as U0
from ._problems import Section5Problem as Section5Problem
from ._problems import config_model as config_model
from ._problems import h_label as h_label
from ._problems import manifold_run as manifold_run
from ._problems import mean_image_error as mean_image_error
from ._problems import pack as pack
from ._problems import paper_rates as paper_rates
from ._problems import paper_values as paper_values
from ._problems import rate_grid as rate_grid
from ._problems import section5_dataset as section5_dataset
from ._problems import section5_from_config as section5_from_config
from ._problems import section5_problem as section5_problem
from ._problems import trajectories as trajectories
from ._problems import unpack as unpack
from ._progress import Progress as Progress
from ._progress import log as log
from ._regularisation import double_well_picture as double_well_picture
from ._regularisation import measured_training as measured_training
from ._regularisation import modified_loss_constant as modified_loss_constant
from ._regularisation import off_plateau_checkpoint as off_plateau_checkpoint
from ._regularisation import seeded_start as seeded_start
from ._regularisation import sharpness as sharpness
from ._runner import Context as Context
from ._runner import available as available
from ._runner import load_module as load_module
from ._runner import resolve as resolve
from ._runner import run as run
from ._runner import run_experiment as run_experiment
from ._runner import script_main as script_main
from ._seeds import spread as spread
from ._seeds import verdict as verdict
from .figures import FIGURES as FIGURES
