"""Plotting helpers (matplotlib): panels for errors and observed rates against the learning rate,
used by `Study.plot`, the sweep plots and the paper's figures. Every function draws on axes it is
given or returns a matplotlib figure; nothing here selects a backend or shows a window
(matplotlib picks a non-interactive backend when there is no display), and nothing imports
matplotlib before it draws.

`_panels.py` holds the panels and axis formatting the figures share, `_study.py` `plot_study`,
`_sweep.py` `plot_sweep` and its heat maps, `_selection.py` the picking of rows by name or value.
"""

from ._panels import COLORS as COLORS
from ._panels import METHOD_LABELS as METHOD_LABELS
from ._panels import error_panel as error_panel
from ._panels import fit_line as fit_line
from ._panels import new_figure as new_figure
from ._panels import panel_title as panel_title
from ._panels import rate_panel as rate_panel
from ._panels import readable_log_ticks as readable_log_ticks
from ._panels import reference_slope as reference_slope
from ._panels import save_figure as save_figure
from ._panels import tick_text as tick_text
from ._study import EXCLUDED as EXCLUDED
from ._study import plot_study as plot_study
from ._sweep import LOG_DECADES as LOG_DECADES
from ._sweep import SWEEP_QUANTITIES as SWEEP_QUANTITIES
from ._sweep import colour_limits as colour_limits
from ._sweep import plot_sweep as plot_sweep
from ._sweep import sweep_map as sweep_map
from ._sweep import sweep_quantities as sweep_quantities
