"""The convergence engine (`convergence_study`) and its result (`Study`)."""

from ._convergence import NORMS as NORMS
from ._convergence import convergence_study as convergence_study
from ._result import STUDY_FORMAT as STUDY_FORMAT
from ._result import Study as Study
from ._result import load_study as load_study
