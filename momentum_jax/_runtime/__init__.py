"""The runtime under both grid engines (the convergence study and the sweep) and the other grid
entry points: what they share, each thing once.

- `_grid_axes.py`: the checks of a grid's axes (`hs`, `lams`, method names).
- `_divergence.py`: the one divergence rule of every discrete loop.
- `_devices.py`: the device list, the rule "vectorise on accelerators, loop on a CPU", the one
  mesh, and the placement of a grid on devices and processes.
- `_progress.py`: progress reports from compiled loops, by a token held in a `with` block.
"""

from ._devices import GRID_AXIS as GRID_AXIS
from ._devices import check_devices as check_devices
from ._devices import default_devices as default_devices
from ._devices import grid_mesh as grid_mesh
from ._devices import grid_sharding as grid_sharding
from ._devices import pad_to as pad_to
from ._devices import padded_size as padded_size
from ._devices import shard_grid as shard_grid
from ._devices import to_host as to_host
from ._devices import vectorize_on as vectorize_on
from ._divergence import DIVERGENCE_LIMIT as DIVERGENCE_LIMIT
from ._divergence import check_divergence_limit as check_divergence_limit
from ._divergence import divergence_bound as divergence_bound
from ._divergence import guard as guard
from ._divergence import is_bounded as is_bounded
from ._grid_axes import check_grid_axes as check_grid_axes
from ._grid_axes import check_hs as check_hs
from ._progress import NO_PROGRESS as NO_PROGRESS
from ._progress import check_progress as check_progress
from ._progress import progress_token as progress_token
from ._progress import report as report
