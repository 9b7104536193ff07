"""Registrations of overtone-torch. Imports only overtone: listing never imports torch."""

from overtone import Component, hookimpl


@hookimpl
def overtone_engines():
    return [
        Component(
            "engine",
            "torch",
            "overtone_torch.engine:TorchEngine",
            "training loop: eval, checkpoints, resume, probes, analyzers, report (torch)",
        )
    ]
