"""Fig 4: observed rate Delta(h) of HB and NAG against the damped-Hamiltonian model (Thm 3), in
the paper's norm, beside the values read off the paper's figure."""

from momentum_jax.paper import script_main

from . import fig2_rates as _fig2

NAME = "fig4_hamiltonian_rates"
DESCRIPTION = (
    "Delta(h) for HB/NAG against h alpha u'' + (1-lam) u' = -grad Phi with the paper's start "
    "(eq. 12), component-wise max norm as the paper, beside its plotted values; tends to 1."
)
CONFIG = _fig2.CONFIG | {"model": "hamiltonian", "velocity": "paper", "paper_figure": "fig4"}
QUICK = _fig2.QUICK
compute = _fig2.compute


def plot(data, config, path):
    _fig2.plot(data, config, path, title="damped Hamiltonian")


if __name__ == "__main__":
    script_main(__name__)
