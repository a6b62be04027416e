"""Fig 4: observed rate Delta(h) of HB and NAG against the damped-Hamiltonian model (Thm 3)."""

import sys

from momentum_jax._reproduce import load_module, run_experiment, script_main

_fig2 = load_module("fig2_rates")

NAME = "fig4_hamiltonian_rates"
DESCRIPTION = (
    "Delta(h) for HB/NAG against h alpha u'' + (1-lam) u' = -grad Phi with the "
    "paper's start (eq. 12); tends to 1."
)
CONFIG = _fig2.CONFIG | {"model": "hamiltonian", "velocity": "paper"}
QUICK = _fig2.QUICK
compute = _fig2.compute


def plot(data, config, path):
    _fig2.plot(data, config, path, title="damped Hamiltonian")


def main(**kw):
    return run_experiment(sys.modules[__name__], **kw)


if __name__ == "__main__":
    script_main(sys.modules[__name__])
