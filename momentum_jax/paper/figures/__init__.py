"""The figures of the paper and ours, one module each (see `momentum_jax.paper`)."""

FIGURES = (
    "fig1_gradient_flow",
    "fig2_rates",
    "fig3_hamiltonian",
    "fig4_hamiltonian_rates",
    "fig5_manifold",
    "fig6_training",
    "fig7_training_rates",
    "fig8_modified_constant",
    "fig9_hamiltonian_starts",
    "fig10_implicit_regularisation",
    "fig11_higher_order",
    "fig12_weak_error",
    "fig13_friction_regimes",
    "fig14_regime_map",
    "fig15_edge_of_stability",
)
"""Every figure's module name, in figure order."""
