"""Fig 3: trajectories of HB and NAG against the damped-Hamiltonian modified equation (Thm 3)."""

from momentum_jax.paper import script_main

from . import fig1_gradient_flow as _fig1

NAME = "fig3_hamiltonian"
DESCRIPTION = (
    "HB and NAG against h alpha u'' + (1-lam) u' = -grad Phi with the paper's start "
    "(eq. 12): HB's oscillations are captured, with a slight shift at large h and kappa; "
    "NAG's oscillations at large h are not (paper Section 3.3)."
)
CONFIG = _fig1.CONFIG | {"h_exponents": [5, 6, 7], "model": "hamiltonian", "velocity": "paper"}
QUICK: dict = {}


def compute(config, ctx):
    return _fig1.compute(
        config,
        ctx,
        claim="paper: HB's oscillations captured, a slight shift at large h and kappa; "
        "NAG's oscillations at large h not captured",
    )


def plot(data, config, path):
    _fig1.plot(
        data,
        config,
        path,
        label="damped Hamiltonian",
        title=r"Fig 3: HB/NAG (dashed) vs damped Hamiltonian (solid), eq. (12) start",
    )


if __name__ == "__main__":
    script_main(__name__)
