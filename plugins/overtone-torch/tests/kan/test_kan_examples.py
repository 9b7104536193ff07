"""The example configs' [task] and [model] sections resolve and build what the script trains."""

from pathlib import Path

import pytest
import torch
from overtone.config import load_config, resolve_component

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"


@pytest.mark.parametrize("name", ["kan-fourier.toml", "mlp-fourier.toml"])
def test_fourier_examples_build_their_task_and_model(registry, name):
    config = load_config(EXAMPLES / name)
    _, task_params = resolve_component(registry, "task", config["task"], name)
    _, model_params = resolve_component(registry, "model", config["model"], name)
    task = registry.get("task", "fourier-regression").create(
        seed=0, **{k: v for k, v in task_params.items() if k != "name"})
    model = registry.get("model", model_params["name"]).create(
        input_spec=task.input_spec, d_out=config["train"]["features"],
        **{k: v for k, v in model_params.items() if k != "name"})
    assert task.train_size == config["train"]["batch_size"] == 200
    assert model(task.x["train"]).shape == (200, 1)
    frequencies = torch.arange(1, 11, dtype=torch.float64) * 2.5  # 5 ... 50 cycles over [-1, 1)
    expected = torch.sin(2 * torch.pi * torch.outer(task.axis, frequencies)).sum(1)  # float64 grid
    torch.testing.assert_close(task.y["eval"].double(), expected, rtol=0, atol=1e-5)
    if model_params["name"] == "kan":
        assert model.grid_size_at(3000) == 200 and sum(p.numel() for p in model.parameters()) == 440
