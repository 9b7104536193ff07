"""Bounds live on the ``Param``s: components' and the engine's sections give one message each.

For every bounded parameter of every overtone-torch component (and of the engine's own
sections): a value just outside the bound, from a config or from ``create()``, gives the
one-line ConfigError naming the key and the bound; an inclusive bound is accepted, a strict
one (``exclusive_min`` / ``exclusive_max``) refused, and a value just inside it accepted.
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
    ("modular-arithmetic", "p"), ("modular-arithmetic", "train_fraction"), ("digits", "train_fraction"),
    ("gaussian-mixture", "train_fraction"), ("char-text", "eval_fraction"), ("mlp", "init_scale"), ("gaussian-mixture", "n_classes"), ("gaussian-mixture", "dim"),
    ("gaussian-mixture", "separation"), ("char-text", "context"), ("char-text", "eval_windows"),
    ("char-text", "validation_fraction"),
    ("kan", "width"), ("kan", "grid_size"), ("kan", "order"), ("kan", "grid_schedule"),
    ("fourier-regression", "n_train"), ("fourier-regression", "eval_points"), ("fourier-regression", "noise"),
}
#: The strict bounds among them (component, key, side), formerly checked in the factories only.
STRICT = {
    ("modular-arithmetic", "train_fraction", "min"), ("modular-arithmetic", "train_fraction", "max"),
    ("digits", "train_fraction", "min"), ("digits", "train_fraction", "max"),
    ("gaussian-mixture", "train_fraction", "min"), ("gaussian-mixture", "train_fraction", "max"),
    ("char-text", "eval_fraction", "min"), ("char-text", "eval_fraction", "max"),
    ("char-text", "validation_fraction", "max"),
    ("mlp", "init_scale", "min"), ("mlp", "embed_std", "min"), ("bottleneck-autoencoder", "init_scale", "min"),
    ("transformer", "dropout", "max"), ("cross-entropy", "label_smoothing", "max"),
    ("adamw", "betas", "max"), ("adam", "betas", "max"),
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
COMPANIONS = {("transformer", "d_model"): {"n_head": 1}, ("bottleneck-autoencoder", "width"): {"bottleneck": 1},
              ("char-text", "validation_fraction"): {"eval_fraction": 0.005}}
EDGES = {("kan", "grid_schedule"): [[1, 6]]}


def _around(bound, side, strict):
    """(value, problem or None when accepted): just outside the bound, at it, and (strict) just inside.

    "Just inside" a strict float bound is 0.01 away: a task split with a training fraction of
    1e-6 would be empty, which the task itself refuses."""
    outward = -1 if side == "min" else 1
    step, inside = (1, 1) if isinstance(bound, int) else (0.5, 0.01)
    if strict:
        problem = f"must be above {bound!r}" if side == "min" else f"must be below {bound!r}"
        return [(bound + outward * step, problem), (bound, problem), (bound - outward * inside, None)]
    problem = f"is below the minimum {bound!r}" if side == "min" else f"is above the maximum {bound!r}"
    return [(bound + outward * step, problem), (bound, None)]


def _cases(name, spec):
    """(name, key, value, message without prefix or None when accepted) around each bound."""
    cases = []
    for key, raw in spec.items():
        param, path, lengths = as_param(raw), key, []
        while param.is_list:  # bound the innermost element: [[x, x]] for a list of pairs
            lengths.append(param.length or 1)
            param, path = param.element(), f"{path}[0]"
        for side in ("min", "max"):
            bound = getattr(param, side)
            if bound is None:
                continue
            strict = param.exclusive_min if side == "min" else param.exclusive_max
            for value, problem in _around(bound, side, strict):
                message = problem and f"{path} = {value!r} {problem}; allowed: {param.describe_range(path)}"
                cases.append((name, key, _nest(value, lengths), message))
    return cases


def _nest(value, lengths):
    """``value`` wrapped in lists of the given lengths, outermost first."""
    for length in reversed(lengths):
        value = [value] * length
    return value


COMPONENTS = {c.name: c for c in check_plugin(plugin)}
ALL = [case for c in COMPONENTS.values() for case in _cases(c.name, c.params)]
CASES = [case for case in ALL if case[3] is not None]
ENGINE_SPECS = {"train": {**schema.TRAIN, **engine.TRAIN_KEYS}, "schedule": schema.SCHEDULE,
                "probes": schema.PROBE, "analyzers": schema.ANALYZER_KEYS}
ENGINE_ALL = [case for section, spec in ENGINE_SPECS.items() for case in _cases(section, spec)]
ENGINE_CASES = [case for case in ENGINE_ALL if case[3] is not None]
ENGINE_EDGES = {(section, key): value for section, key, value, message in ENGINE_ALL if message is None}


def ids(cases):
    return [f"{name}.{key}={value}" for name, key, value, *_ in cases]


def _strict(components):
    """(name, key, side) of every strict bound declared by ``components``."""
    found = set()
    for c in components:
        for key, raw in c.params.items():
            param = as_param(raw)
            while param.is_list:
                param = param.element()
            found |= {(c.name, key, side) for side in ("min", "max") if getattr(param, f"exclusive_{side}")}
    return found


def test_every_moved_check_is_declared():
    assert {(name, key) for name, key, *_ in ALL} >= BOUNDED
    assert {(name, key) for name, key, *_ in ENGINE_ALL} >= ENGINE_BOUNDED
    assert not hasattr(schema, "MINIMUM") and not hasattr(engine, "MINIMUM")
    assert _strict(COMPONENTS.values()) == STRICT


def _config_with(component, key, value):
    """The small test config with ``component``'s section naming it and setting ``key``."""
    section = {"name": component.name, key: value, **COMPANIONS.get((component.name, key), {})}
    config = small(**{component.kind: section})
    if component.kind == "task":  # the small run's probes and batch need a modular task
        config["probes"], config["train"]["batch_size"] = [], 1
    if component.kind == "model" and component.name == "transformer":
        config["probes"] = []  # its weight probe names an MLP parameter
    return config


@pytest.mark.parametrize(("name", "key", "bad", "message"), CASES, ids=ids(CASES))
def test_bound_violated_from_a_config_is_one_line(registry, name, key, bad, message):
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


@pytest.mark.parametrize(("name", "key", "value", "message"), ALL, ids=ids(ALL))
def test_bound_from_create_is_one_line_and_the_bound_is_accepted_or_refused(name, key, value, message):
    component = COMPONENTS[name]
    args, host = _host_arguments(component)
    if message is not None:
        with pytest.raises(ConfigError) as info:
            component.create(*args, **host, **{key: value})
        assert str(info.value) == f"{component.kind} {name!r}: {message}"
        return
    # an inclusive bound, or a value just inside a strict one: the factory (whose own guards
    # stay, for direct use) agrees
    value = EDGES.get((name, key), value)
    assert component.create(*args, **host, **{key: value}, **COMPANIONS.get((name, key), {})) is not None


@pytest.mark.parametrize(("section", "key", "bad", "message"), ENGINE_CASES, ids=ids(ENGINE_CASES))
def test_engine_sections_bounds_from_a_config(registry, section, key, bad, message):
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
    edge = ENGINE_EDGES[(section, key)]  # the engine's bounds are all inclusive
    resolved = TorchEngine().resolve(config_with(edge), source="exp.toml", registry=registry)
    got = resolved[section][0][key] if section in ("probes", "analyzers") else resolved[section][key]
    assert got == edge


def test_classes_used_directly_keep_their_guards():
    from overtone_torch.losses.cross_entropy import CrossEntropyLoss
    from overtone_torch.models.mlp import MLP
    from overtone_torch.models.transformer import Transformer
    from overtone_torch.tasks.modular import ModularArithmetic
    from overtone_torch.tasks.text import CharText

    with pytest.raises(ConfigError, match="chunk_size = 0 must be at least 1"):
        CrossEntropyLoss(d_in=2, n_classes=3, chunk_size=0)
    with pytest.raises(ConfigError, match="depth >= 0"):
        MLP(input_spec=TOKENS, depth=-1)
    with pytest.raises(ConfigError, match="p = 1 must be a prime"):
        ModularArithmetic(seed=0, p=1)
    # the strict bounds, now declared on the Params, are still the classes' own too
    with pytest.raises(ConfigError, match=r"label_smoothing = 1.0 must be in \[0, 1\)"):
        CrossEntropyLoss(d_in=2, n_classes=3, label_smoothing=1.0)
    with pytest.raises(ConfigError, match="init_scale = 0.0 must be positive"):
        MLP(input_spec=TOKENS, init_scale=0.0)
    with pytest.raises(ConfigError, match=r"dropout = 1.0 must be in \[0, 1\)"):
        Transformer(input_spec=TOKENS, dropout=1.0)
    with pytest.raises(ConfigError, match="train_fraction = 1.0 must be strictly between 0 and 1"):
        ModularArithmetic(seed=0, p=5, train_fraction=1.0)
    with pytest.raises(ConfigError, match="eval_fraction = 0.0 must be strictly between 0 and 1"):
        CharText(seed=0, eval_fraction=0.0)


def test_optimizer_factories_used_directly_turn_torchs_checks_into_config_errors():
    from overtone_torch.optimizers import adam, adamw, sgd

    with pytest.raises(ConfigError, match=r"^\[optimizer\] AdamW: Invalid learning rate: -1.0$"):
        adamw([torch.nn.Parameter(torch.ones(2))], lr=-1.0)
    with pytest.raises(ConfigError, match=r"^\[optimizer\] SGD: Invalid momentum value: -0.5$"):
        sgd([torch.nn.Parameter(torch.ones(2))], momentum=-0.5)
    # betas < 1 is the Param's; called directly, torch's own check refuses it
    with pytest.raises(ConfigError, match=r"^\[optimizer\] Adam: Invalid beta parameter at index 1: 1.0$"):
        adam([torch.nn.Parameter(torch.ones(2))], betas=[0.9, 1.0])


def test_strict_bounds_are_the_params_and_name_the_component():
    loss = COMPONENTS["cross-entropy"]
    with pytest.raises(ConfigError) as info:
        loss.create(d_in=4, n_classes=3, label_smoothing=1.0)
    assert str(info.value) == ("loss 'cross-entropy': label_smoothing = 1.0 must be below 1.0; "
                               "allowed: 0.0 <= label_smoothing < 1.0")
    with pytest.raises(ConfigError) as info:
        COMPONENTS["adamw"].create([torch.nn.Parameter(torch.ones(2))], betas=[0.9, 1.0])
    assert str(info.value) == ("optimizer 'adamw': betas[1] = 1.0 must be below 1.0; "
                               "allowed: 0.0 <= betas[1] < 1.0")


def test_listing_shows_the_bounds(capsys):
    assert main(["plugins", "--verbose", "--kind", "optimizer"]) == 0
    assert "betas = [0.9, 0.999]  range: 0.0 <= each element of betas < 1.0" in capsys.readouterr().out
    assert main(["plugins", "--json", "--kind", "model"]) == 0
    listed = {c["name"]: c["params"] for c in json.loads(capsys.readouterr().out)["components"]}
    assert listed["transformer"]["n_head"] == {"default": 4, "min": 1, "range": "1 <= n_head",
                                               "help": "attention heads (must divide d_model)"}
    assert listed["transformer"]["dropout"] == {"default": 0.0, "min": 0.0, "max": 1.0, "exclusive_max": True,
                                                "range": "0.0 <= dropout < 1.0",
                                                "help": "dropout on embeddings, attention and residuals"}
    assert main(["plugins", "--verbose", "--kind", "task"]) == 0
    assert "train_fraction = 0.3  range: 0.0 < train_fraction < 1.0" in capsys.readouterr().out
