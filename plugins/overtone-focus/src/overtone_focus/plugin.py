"""Registrations of FOCUS and Signum. Imports only overtone."""

from overtone import Component, Param, hookimpl


@hookimpl
def overtone_optimizers():
    return [
        Component("optimizer", "focus", "overtone_focus.focus:FOCUS",
                  "FOCUS (arXiv 2501.12243): Signum + attraction to the parameters' moving average",
                  params={"lr": Param(0.01, min=0.0, help="learning rate (step size of each sign step)"),
                          "betas": Param([0.9, 0.999], items=float, length=2, min=0.0, max=1.0, exclusive_max=True,
                                         help="[beta1, beta2]: decay rates of the gradients' and the "
                                              "parameters' moving averages"),
                          "gamma": Param(0.1, min=0.0, help="strength of the attraction sign(theta - theta_hat)"),
                          "weight_decay": Param(0.0, min=0.0,
                                                help="decay toward 0 applied with the averaged parameters"),
                          "decay_order": Param("paper", choices=("paper", "reference"),
                                               help="weight decay before (paper) or after (reference code) the sign step"),
                          "foreach": Param(None, type=bool, help="multi-tensor path (default: on for CPU/CUDA tensors)"),
                          "fused": Param(None, type=bool, help="one compiled kernel pass per parameter (CPU/CUDA)"),
                          "capturable": Param(False, help="CUDA with fused: step count on the device (CUDA graphs)")}),
        Component("optimizer", "signum", "overtone_focus.signum:Signum",
                  "Signum (Bernstein et al. 2018): sign of the gradient's momentum",
                  params={"lr": Param(1e-3, min=0.0, help="learning rate (step size of each sign step)"),
                          "momentum": Param(0.9, min=0.0, max=1.0, exclusive_max=True,
                                            help="decay rate of the gradients' moving average"),
                          "weight_decay": Param(0.0, min=0.0, help="decoupled: theta <- theta (1 - lr wd)"),
                          "foreach": Param(None, type=bool, help="multi-tensor path"),
                          "fused": Param(None, type=bool, help="one compiled kernel pass per parameter (CPU/CUDA)"),
                          "capturable": Param(False, help="CUDA with fused: step count on the device (CUDA graphs)")}),
    ]
