"""The example configs and the demo config validate (no training: resolve only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from overtone.config import load_config
from overtone.runs import resolve_experiment

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
#: The torch engine's own examples (other plugins' examples need those plugins installed).
TORCH_EXAMPLES = [EXAMPLES / name for name in ("grokking-mlp.toml", "digits-mlp.toml", "char-transformer.toml",
                                                  "fokker-planck-autoencoder.toml", "progress-transformer.toml",
                                                  "progress-transformer-p113.toml",
                                                  "mlp-fourier.toml", "kan-fourier.toml", "scaling-chartext.toml")]


def installed_analyzers_only(config: dict, registry) -> dict:
    """Drop [[analyzers]] from plugins that are not installed here (overtone-dynamics is optional)."""
    names = set(registry.names("analyzer"))
    return {**config, "analyzers": [a for a in config.get("analyzers", []) if a["name"] in names]}


@pytest.mark.parametrize("path", TORCH_EXAMPLES, ids=lambda p: p.name)
def test_example_config_resolves(path, registry):
    config = installed_analyzers_only(load_config(path), registry)
    _, resolved = resolve_experiment(config, source=str(path), default_name=path.stem, registry=registry)
    assert resolved["train"]["steps"] >= 1 and resolved["run"]["name"] == path.stem


def test_demo_config_resolves(registry):
    from overtone_torch.engine import TorchEngine

    config = installed_analyzers_only(TorchEngine().demo_config(), registry)
    _, resolved = resolve_experiment(config, source="demo", default_name="demo", registry=registry)
    assert resolved["task"]["p"] == 97 and resolved["optimizer"]["weight_decay"] >= 0.5
