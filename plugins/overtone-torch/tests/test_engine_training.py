"""Weight-decay parameter groups and gradient accumulation, against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from overtone import ConfigError
from overtone.io import open_dataset
from overtone.runs import run_experiment
from overtone_torch.build import TrainNet, create_optimizer, exempt_from_decay, parameter_groups
from torch_engine_testing import registry_with_test_plugin, small, write


@pytest.fixture(scope="module")
def test_registry():
    return registry_with_test_plugin()


def names_by_group(net, groups):
    names = {id(p): n for n, p in net.named_parameters()}
    return [sorted(names[id(p)] for p in group["params"]) for group in groups]


def transformer_net(registry, loss="cross-entropy", tie=False):
    spec = {"kind": "tokens", "vocab_size": 11, "seq_len": 6, "output": "sequence"}
    model = registry.get("model", "transformer").create(input_spec=spec, d_out=16, n_layer=1, n_head=2,
                                                        d_model=16, tie_weights=tie)
    head = registry.get("loss", loss).create(d_in=16, n_classes=11)
    if tie:
        head.weight = model.token_embedding.weight
    return TrainNet(model, head)


def test_matrices_decay_and_the_rest_is_exempt(registry):
    net = transformer_net(registry)
    decayed, exempt = names_by_group(net, parameter_groups(net, "matrices"))
    # the reference: written out by hand from the GPT-2 block's structure
    assert decayed == sorted(["loss.weight", "model.blocks.0.attn.qkv.weight", "model.blocks.0.attn.proj.weight",
                              "model.blocks.0.mlp.0.weight", "model.blocks.0.mlp.2.weight"])
    assert exempt == sorted(["loss.bias", "model.token_embedding.weight", "model.position_embedding.weight",
                             "model.blocks.0.ln_1.weight", "model.blocks.0.ln_1.bias",
                             "model.blocks.0.ln_2.weight", "model.blocks.0.ln_2.bias",
                             "model.blocks.0.attn.qkv.bias", "model.blocks.0.attn.proj.bias",
                             "model.blocks.0.mlp.0.bias", "model.blocks.0.mlp.2.bias",
                             "model.ln_f.weight", "model.ln_f.bias"])
    assert parameter_groups(net, "all") == list(net.parameters())


def test_a_head_tied_to_the_embedding_is_exempt(registry):
    net = transformer_net(registry, tie=True)
    assert id(net.loss.weight) in exempt_from_decay(net)


def test_harmonic_centres_are_exempt(registry):
    if "harmonic" not in registry.names("loss"):
        pytest.skip("overtone-harmonic is not installed")
    net = transformer_net(registry, loss="harmonic")
    assert id(net.loss.weight) in exempt_from_decay(net)


def test_the_optimizer_gets_zero_decay_on_the_exempt_group(registry):
    net = transformer_net(registry)
    config = {"optimizer": {"name": "adamw", "lr": 0.1, "weight_decay": 0.5, "decay": "matrices"}}
    optimizer = create_optimizer(config, registry, net)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.5, 0.0]
    # one AdamW step with zero gradients is pure decay: p <- p (1 - lr wd) on matrices only
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, p in net.named_parameters():
        factor = 1.0 if id(p) in exempt_from_decay(net) else 1 - 0.1 * 0.5
        torch.testing.assert_close(p.detach(), before[name] * factor, rtol=0, atol=1e-7, msg=name)
    all_decay = create_optimizer({"optimizer": {**config["optimizer"], "decay": "all"}}, registry, net)
    assert len(all_decay.param_groups) == 1 and all_decay.param_groups[0]["weight_decay"] == 0.5


def test_decay_is_validated(tmp_path, test_registry):
    config = small(optimizer={"name": "adamw", "decay": "some"})
    with pytest.raises(ConfigError, match=r"\[optimizer\]: decay = 'some' is not allowed; allowed values: "
                                          r"'matrices', 'all'"):
        run_experiment(write(tmp_path, config), out=tmp_path / "runs", registry=test_registry)
    assert not (tmp_path / "runs").exists()


def test_accumulation_matches_the_larger_batch(tmp_path, test_registry):
    """accumulate = 4 with batch 16 takes the steps of batch 64: same data, mean loss, summed gradient."""
    common = {"steps": 8, "eval_every": 4, "checkpoint_every": 8, "log_every": 1, "grad_clip": 0.5}
    runs = {}
    for name, train in {"big": {"batch_size": 64}, "accumulated": {"batch_size": 16, "accumulate": 4}}.items():
        config = small(train={**common, **train}, probes=[], run={"name": name, "seed": 5})
        runs[name] = run_experiment(write(tmp_path, config, f"{name}.toml"), out=tmp_path, registry=test_registry)
    with open_dataset(runs["big"] / "metrics.nc") as a, open_dataset(runs["accumulated"] / "metrics.nc") as b:
        # float32 reordering only: four partial sums instead of one over 64 rows
        for name in ("train_batch_loss", "train_loss", "eval_loss"):
            np.testing.assert_allclose(b[name].dropna("step").values, a[name].dropna("step").values,
                                       rtol=1e-5, err_msg=name)
        assert not np.array_equal(a["train_batch_loss"].values[:1], a["train_batch_loss"].values[-1:])
    big = torch.load(runs["big"] / "checkpoint.pt", weights_only=False)["net"]
    accumulated = torch.load(runs["accumulated"] / "checkpoint.pt", weights_only=False)["net"]
    for key, value in big.items():
        torch.testing.assert_close(accumulated[key], value, rtol=1e-4, atol=1e-6, msg=key)


def test_accumulated_batch_larger_than_the_training_set(tmp_path, test_registry):
    config = small(train={"batch_size": 100, "accumulate": 3})
    with pytest.raises(ConfigError, match=r"batch_size \* accumulate = 100 \* 3 is larger than the training set"):
        run_experiment(write(tmp_path, config), out=tmp_path / "runs", registry=test_registry)
