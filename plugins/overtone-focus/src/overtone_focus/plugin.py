"""Registrations of FOCUS and Signum. Imports only overtone."""

from overtone import Component, Param, hookimpl


@hookimpl
def overtone_optimizers():
    return [
        Component("optimizer", "focus", "overtone_focus.focus:FOCUS",
                  "FOCUS (arXiv 2501.12243): Signum + attraction to the parameters' moving average",
                  params={"lr": 0.01, "betas": [0.9, 0.999],
                          "gamma": Param(0.1, help="strength of the attraction sign(theta - theta_hat)"),
                          "weight_decay": Param(0.0, help="decay toward 0 applied with the averaged parameters"),
                          "decay_order": Param("paper", choices=("paper", "reference"),
                                               help="weight decay before (paper) or after (reference code) the sign step"),
                          "foreach": Param(None, type=bool, help="multi-tensor path (default: on for CPU/CUDA tensors)"),
                          "fused": Param(None, type=bool, help="one compiled kernel pass per parameter (CPU/CUDA)"),
                          "capturable": Param(False, help="CUDA with fused: step count on the device (CUDA graphs)")}),
        Component("optimizer", "signum", "overtone_focus.signum:Signum",
                  "Signum (Bernstein et al. 2018): sign of the gradient's momentum",
                  params={"lr": 1e-3, "momentum": 0.9,
                          "weight_decay": Param(0.0, help="decoupled: theta <- theta (1 - lr wd)"),
                          "foreach": Param(None, type=bool, help="multi-tensor path"),
                          "fused": Param(None, type=bool, help="one compiled kernel pass per parameter (CPU/CUDA)"),
                          "capturable": Param(False, help="CUDA with fused: step count on the device (CUDA graphs)")}),
    ]
