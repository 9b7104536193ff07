"""Bounds live on the ``Param``s: components' and the engine's sections give one message each.

For every bounded parameter of every overtone-torch component (and of the engine's own
sections): a value just outside the bound, from a config or from ``create()``, gives the
one-line ConfigError naming the key and the bound; the bound itself is accepted.
"""

from __future__ import annotations

import json

import overtone_torch.plugin as plugin
import pytest
import torch
from overtone import ConfigError
from overtone.cli import main
from overtone.params import as_param
from overtone.testing import check_plugin
from overtone_torch import engine, schema
from overtone_torch.engine import TorchEngine
from torch_engine_testing import small

#: The hand-written range checks that the declared params now carry (component, key).
BOUNDED = {
    ("cross-entropy", "chunk_size"), ("cross-entropy", "label_smoothing"),
    ("mlp", "width"), ("mlp", "depth"), ("mlp", "embed_dim"),
    ("transformer", "n_layer"), ("transformer", "n_head"), ("transformer", "d_model"),
    ("transformer", "context"), ("transformer", "dropout"),
    ("adamw", "betas"), ("adam", "betas"), ("adamw", "lr"), ("sgd", "momentum"),
    ("modular-arithmetic", "p"), ("gaussian-mixture", "n_classes"), ("gaussian-mixture", "dim"),
    ("gaussian-mixture", "separation"), ("char-text", "context"), ("char-text", "eval_windows"),
    ("kan", "width"), ("kan", "grid_size"), ("kan", "order"), ("kan", "grid_schedule"),
    ("fourier-regression", "n_train"), ("fourier-regression", "eval_points"), ("fourier-regression", "noise"),
}
#: The engine's former ``MINIMUM`` tables and hand-written checks (section, key).
ENGINE_BOUNDED = {
    ("train", k) for k in ("steps", "batch_size", "eval_every", "checkpoint_every", "eval_batch_size",
                           "log_every", "grad_clip", "threads", "features", "accumulate")
} | {("schedule", "warmup_steps"), ("schedule", "min_lr_ratio"), ("probes", "every"),
     ("probes", "samples"), ("analyzers", "every")}

TOKENS = {"kind": "tokens", "vocab_size": 5, "seq_len": 2, "output": "pooled"}
VECTOR = {"kind": "vector", "dim": 6, "output": "pooled"}
VECTOR_ONLY = {"bottleneck-autoencoder"}  # models that refuse token inputs
#: Other parameters a value at the bound needs (d_model = 1 needs n_head = 1), or a value at
#: the bound that the factory's cross-parameter checks allow (a grid size above grid_size).
COMPANIONS = {("transformer", "d_model"): {"n_head": 1}, ("bottleneck-autoencoder", "width"): {"bottleneck": 1}}
EDGES = {("kan", "grid_schedule"): [[1, 6]]}


def _cases(name, spec):
    """(name, key, violating value, message without prefix, value at the bound) per bound."""
    cases = []
    for key, raw in spec.items():
        param, path, lengths = as_param(raw), key, []
        while param.is_list:  # bound the innermost element: [[x, x]] for a list of pairs
            lengths.append(param.length or 1)
            param, path = param.element(), f"{path}[0]"
        for side, bound in (("min", param.min), ("max", param.max)):
            if bound is None:
                continue
            step = 1 if isinstance(bound, int) else 0.5
            bad = bound - step if side == "min" else bound + step
            text = "below the minimum" if side == "min" else "above the maximum"
            message = f"{path} = {bad!r} is {text} {bound!r}; allowed: {param.describe_range(path)}"
            cases.append((name, key, _nest(bad, lengths), message, _nest(bound, lengths)))
    return cases


def _nest(value, lengths):
    """``value`` wrapped in lists of the given lengths, outermost first."""
    for length in reversed(lengths):
        value = [value] * length
    return value


COMPONENTS = {c.name: c for c in check_plugin(plugin)}
CASES = [case for c in COMPONENTS.values() for case in _cases(c.name, c.params)]
ENGINE_SPECS = {"train": {**schema.TRAIN, **engine.TRAIN_KEYS}, "schedule": schema.SCHEDULE,
                "probes": schema.PROBE, "analyzers": schema.ANALYZER_KEYS}
ENGINE_CASES = [case for section, spec in ENGINE_SPECS.items() for case in _cases(section, spec)]


def ids(cases):
    return [f"{name}.{key}={bad}" for name, key, bad, _, _ in cases]


def test_every_moved_check_is_declared():
    assert {(name, key) for name, key, *_ in CASES} >= BOUNDED
    assert {(name, key) for name, key, *_ in ENGINE_CASES} >= ENGINE_BOUNDED
    assert not hasattr(schema, "MINIMUM") and not hasattr(engine, "MINIMUM")


def _config_with(component, key, value):
    """The small test config with ``component``'s section naming it and setting ``key``."""
    section = {"name": component.name, key: value, **COMPANIONS.get((component.name, key), {})}
    config = small(**{component.kind: section})
    if component.kind == "task":  # the small run's probes and batch need a modular task
        config["probes"], config["train"]["batch_size"] = [], 1
    if component.kind == "model" and component.name == "transformer":
        config["probes"] = []  # its weight probe names an MLP parameter
    return config


@pytest.mark.parametrize(("name", "key", "bad", "message", "edge"), CASES, ids=ids(CASES))
def test_bound_violated_from_a_config_is_one_line(registry, name, key, bad, message, edge):
    component = COMPONENTS[name]
    with pytest.raises(ConfigError) as info:
        TorchEngine().resolve(_config_with(component, key, bad), source="exp.toml", registry=registry)
    assert str(info.value) == f"exp.toml [{component.kind}] ({component.kind} {name!r}): {message}"


def _host_arguments(component):
    """The arguments the host itself passes to a factory of this kind."""
    if component.kind == "optimizer":
        return ([torch.nn.Parameter(torch.ones(3))],), {}
    spec = VECTOR if component.name in VECTOR_ONLY else TOKENS
    return (), {"task": {"seed": 0}, "model": {"input_spec": spec, "d_out": None},
                "loss": {"d_in": 4, "n_classes": 3}}[component.kind]


@pytest.mark.parametrize(("name", "key", "bad", "message", "edge"), CASES, ids=ids(CASES))
def test_bound_violated_from_create_is_one_line_and_the_bound_itself_is_accepted(
        name, key, bad, message, edge):
    component = COMPONENTS[name]
    args, host = _host_arguments(component)
    with pytest.raises(ConfigError) as info:
        component.create(*args, **host, **{key: bad})
    assert str(info.value) == f"{component.kind} {name!r}: {message}"
    # the bound is inclusive: the factory (whose own guards stay, for direct use) agrees
    edge = EDGES.get((name, key), edge)
    assert component.create(*args, **host, **{key: edge}, **COMPANIONS.get((name, key), {})) is not None


@pytest.mark.parametrize(("section", "key", "bad", "message", "edge"), ENGINE_CASES, ids=ids(ENGINE_CASES))
def test_engine_sections_bounds_from_a_config(registry, section, key, bad, message, edge):
    def config_with(value):
        config = small()
        if section in ("probes", "analyzers"):
            entry = {"kind": "hidden"} if section == "probes" else {"name": "effective-rank"}
            config[section] = [{**entry, key: value}]
            if section == "analyzers":
                config["probes"] = [{"kind": "hidden", "every": 10}]
        else:
            config.setdefault(section, {})[key] = value
        return config

    where = f"exp.toml [[{section}]] #1" if section in ("probes", "analyzers") else f"exp.toml [{section}]"
    with pytest.raises(ConfigError) as info:
        TorchEngine().resolve(config_with(bad), source="exp.toml", registry=registry)
    assert str(info.value) == f"{where}: {message}"
    if section == "analyzers" and "effective-rank" not in registry.names("analyzer"):
        return  # overtone-dynamics is not installed: the bound itself was checked above
    resolved = TorchEngine().resolve(config_with(edge), source="exp.toml", registry=registry)
    got = resolved[section][0][key] if section in ("probes", "analyzers") else resolved[section][key]
    assert got == edge


def test_classes_used_directly_keep_their_guards():
    from overtone_torch.losses.cross_entropy import CrossEntropyLoss
    from overtone_torch.models.mlp import MLP
    from overtone_torch.tasks.modular import ModularArithmetic

    with pytest.raises(ConfigError, match="chunk_size = 0 must be at least 1"):
        CrossEntropyLoss(d_in=2, n_classes=3, chunk_size=0)
    with pytest.raises(ConfigError, match="depth >= 0"):
        MLP(input_spec=TOKENS, depth=-1)
    with pytest.raises(ConfigError, match="p = 1 must be a prime"):
        ModularArithmetic(seed=0, p=1)


def test_optimizer_factories_used_directly_turn_torchs_checks_into_config_errors():
    from overtone_torch.optimizers import adamw, sgd

    with pytest.raises(ConfigError, match=r"^\[optimizer\] AdamW: Invalid learning rate: -1.0$"):
        adamw([torch.nn.Parameter(torch.ones(2))], lr=-1.0)
    with pytest.raises(ConfigError, match=r"^\[optimizer\] SGD: Invalid momentum value: -0.5$"):
        sgd([torch.nn.Parameter(torch.ones(2))], momentum=-0.5)


def test_strict_bounds_stay_with_the_factory_and_name_the_component():
    # Param bounds are inclusive: 1.0 passes the declaration, the factory refuses it
    loss = COMPONENTS["cross-entropy"]
    with pytest.raises(ConfigError) as info:
        loss.create(d_in=4, n_classes=3, label_smoothing=1.0)
    assert str(info.value) == "loss 'cross-entropy': [loss] label_smoothing = 1.0 must be in [0, 1)"
    with pytest.raises(ConfigError) as info:
        COMPONENTS["adamw"].create([torch.nn.Parameter(torch.ones(2))], betas=[0.9, 1.0])
    assert str(info.value) == ("optimizer 'adamw': [optimizer] betas = [0.9, 1.0]: each rate must be "
                               "below 1, e.g. [0.9, 0.999]")


def test_listing_shows_the_bounds(capsys):
    assert main(["plugins", "--verbose", "--kind", "optimizer"]) == 0
    assert "betas = [0.9, 0.999]  range: 0.0 <= each element of betas" in capsys.readouterr().out
    assert main(["plugins", "--json", "--kind", "model"]) == 0
    listed = {c["name"]: c["params"] for c in json.loads(capsys.readouterr().out)["components"]}
    assert listed["transformer"]["n_head"] == {"default": 4, "min": 1, "range": "1 <= n_head",
                                               "help": "attention heads (must divide d_model)"}
