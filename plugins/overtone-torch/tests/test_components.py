"""The registrations as a whole: contract, torch-free listing, declared params, components together."""

from __future__ import annotations

import os
import subprocess
import sys

import overtone
import pytest
import torch
from overtone import ConfigError
from overtone.params import resolve_params
from overtone.testing import check_plugin

NAMES = {("task", "modular-arithmetic"), ("task", "digits"), ("task", "char-text"), ("task", "gaussian-mixture"),
         ("model", "mlp"), ("model", "transformer"), ("loss", "cross-entropy"), ("loss", "mse"),
         ("optimizer", "adamw"), ("optimizer", "adam"), ("optimizer", "sgd"), ("engine", "torch")}


def test_contract():
    from overtone_torch import plugin

    assert NAMES <= {(c.kind, c.name) for c in check_plugin(plugin)}


def test_listing_does_not_import_torch():
    code = ("import sys, overtone; r = overtone.registry(); "
            "assert r.get('loss', 'cross-entropy').params['chunk_size'] is not None; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    env = {**os.environ, "OVERTONE_LOAD_PLUGINS": "overtone-torch"}  # this plugin only
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("kind", "name"), sorted(NAMES - {("engine", "torch")}))
def test_declared_params_match_the_factory_signature(kind, name):
    import inspect

    component = overtone.registry().get(kind, name)
    factory = component.load()
    target = factory.__init__ if inspect.isclass(factory) else factory
    accepted = {p.name for p in inspect.signature(target).parameters.values()
                if p.kind == p.KEYWORD_ONLY or p.default is not p.empty}
    contract = {"task": {"seed"}, "model": {"input_spec", "d_out"}, "loss": {"d_in", "n_classes"}}.get(kind, set())
    assert set(component.params) == accepted - contract


@pytest.mark.parametrize(("kind", "name", "given", "message"), [
    ("task", "modular-arithmetic", {"op": "%"}, "op = '%' is not allowed"),
    ("model", "mlp", {"activation": "elu"}, "activation = 'elu' is not allowed"),
    ("loss", "cross-entropy", {"chunk_size": "64"}, "chunk_size = '64' has type str; expected int"),
    ("optimizer", "adamw", {"fused": 1}, "fused = 1 has type int; expected bool"),
    ("optimizer", "sgd", {"betas": [0.9, 0.99]}, "unknown key 'betas'"),
])
def test_config_validation_uses_the_declared_params(kind, name, given, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_params(given, overtone.registry().get(kind, name).params, f"exp.toml [{kind}]")


def train(task_name, task_params, model_name, model_params, loss_params, steps, lr, batch):
    """A few full optimizer steps with components made through the registry; (first, last) loss."""
    registry = overtone.registry()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only contend on a shared 2-core machine
    try:
        task = registry.get("task", task_name).create(seed=0, **task_params)
        d = model_params.get("d_model", model_params.get("width"))
        model = registry.get("model", model_name).create(input_spec=task.input_spec, d_out=d, **model_params)
        loss_fn = registry.get("loss", "cross-entropy").create(d_in=d, n_classes=task.n_classes, **loss_params)
        if getattr(model, "tie_weights", False):
            loss_fn.weight = model.token_embedding.weight
        params = list({id(p): p for p in [*model.parameters(), *loss_fn.parameters()]}.values())
        opt = registry.get("optimizer", "adamw").create(params, lr=lr, weight_decay=0.0)
        generator = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(steps):
            x, y = task.sample_batch("train", batch, generator)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    return task, model, loss_fn, losses


def test_mlp_fits_modular_addition():
    task, model, loss_fn, losses = train("modular-arithmetic", {"p": 7, "train_fraction": 0.9}, "mlp",
                                         {"width": 64, "embed_dim": 16}, {}, steps=60, lr=0.03, batch=44)
    predictions = loss_fn.scores(model(task.x["train"])).argmax(-1)
    assert losses[-1] < 0.05 * losses[0] and torch.equal(predictions, task.y["train"])


def test_tied_transformer_with_chunked_loss_learns_text(tmp_path):
    file = tmp_path / "t.txt"
    file.write_text("abcdefgh" * 200)
    _, model, loss_fn, losses = train("char-text", {"path": str(file), "context": 16}, "transformer",
                                      {"n_layer": 1, "n_head": 2, "d_model": 32, "tie_weights": True},
                                      {"chunk_size": 50, "bias": False}, steps=40, lr=0.01, batch=8)
    assert loss_fn.weight is model.token_embedding.weight
    assert losses[-1] < 0.25 * losses[0]  # a periodic text is learnt in a few steps
