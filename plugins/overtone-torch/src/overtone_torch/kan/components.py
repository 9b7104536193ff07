"""The KAN model and the fourier-regression task as components (overtone-torch registers them).

Imports only overtone: listing never imports torch."""

from overtone import Component, Param


def models() -> list[Component]:
    """The ``kan`` model."""
    return [
        Component("model", "kan", "overtone_torch.kan.model:KAN",
                  "Kolmogorov-Arnold network (pykan-style B-spline or Chebyshev edges, grid extension)",
                  params={"width": Param(16, min=1, help="units per hidden KAN layer (the feature width when d_out is unset)"),
                          "depth": Param(1, min=0, help="hidden KAN layers (0: one layer to the features)"),
                          "grid_size": Param(5, min=1, help="grid intervals G (B-spline) or polynomial degree (Chebyshev)"),
                          "order": Param(3, min=0, help="B-spline order k (G + k basis functions per edge)"),
                          "basis": Param("bspline", choices=("bspline", "chebyshev"),
                                         help="edge basis: B-splines on a uniform grid, or T_m(tanh x)"),
                          "grid_range": Param([-1.0, 1.0], items=float, length=2,
                                              help="[low, high] with low < high: the grid's range of inputs"),
                          "grid_schedule": Param([], items=Param(type=list, items=int, length=2, min=1), help="[[step, G], ...]: grid extension to G after step "
                                                          "optimizer steps (function kept by least squares)"),
                          "embed_dim": Param(16, min=1, help="embedding width per token (token inputs)"),
                          "noise_scale": Param(0.5, help="initial spline coefficients fit U(-1/2, 1/2) * "
                                                         "noise_scale / G"),
                          "scale_base_mu": Param(0.0, help="scale_base ~ (mu + sigma U(-1, 1)) / sqrt(d_in)"),
                          "scale_base_sigma": Param(1.0, help="scale_base ~ (mu + sigma U(-1, 1)) / sqrt(d_in)")}),
    ]


def tasks() -> list[Component]:
    """The ``fourier-regression`` task."""
    return [
        Component("task", "fourier-regression", "overtone_torch.kan.fourier:FourierRegression",
                  "regression onto sum_i A_i sin(2 pi k_i . x + phi_i) (spectral bias, 1-D or n-D)",
                  params={"dim": Param(1, min=1, help="input dimension"),
                          "frequencies": Param([5, 10, 15, 20, 25, 30, 35, 40, 45, 50],
                                               items=(float, list), help="k_i in cycles per unit x: numbers (dim 1) or "
                                                    "vectors of length dim"),
                          "amplitudes": Param([], items=float, help="A_i, one per frequency (default all 1)"),
                          "phases": Param([], items=float, help="phi_i in radians, one per frequency (default all 0)"),
                          "domain": Param([-1.0, 1.0], items=float, length=2, help="[low, high): the input range on every axis"),
                          "sampling": Param("random", choices=("random", "grid"),
                                            help="training inputs: seeded uniform draws or a regular grid"),
                          "n_train": Param(1000, min=1, help="training points (random) or points per axis (grid)"),
                          "eval_points": Param(512, min=2, help="evaluation grid points per axis (endpoint left out)"),
                          "noise": Param(0.0, min=0.0, help="std of Gaussian noise added to training targets")}),
    ]
