"""Building the pieces of a run from a resolved config: task, model, loss (head), training module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from overtone import ConfigError
from torch import nn

#: Modules whose parameters never decay: lookups (embeddings) and normalisation gains and shifts.
NO_DECAY_MODULES = (nn.Embedding, nn.EmbeddingBag, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
                    nn.LocalResponseNorm, nn.modules.batchnorm._NormBase)


def params_of(section: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved component section without its ``name``: the factory's keyword arguments."""
    return {k: v for k, v in section.items() if k != "name"}


def create_task(config: Mapping[str, Any], registry: Any, seed: int) -> Any:
    """The ``[task]`` component called as ``factory(seed=seed, **params)`` (see ``task_api``)."""
    return registry.get("task", config["task"]["name"]).create(seed=seed, **params_of(config["task"]))


def feature_width(config: Mapping[str, Any]) -> int:
    """Width of the features between model and loss head.

    ``[train] features`` when set; otherwise the model's ``d_model`` (768 for the
    ``gpt2-small`` preset) or ``width``; otherwise 128.
    """
    model = config["model"]
    if config["train"]["features"]:
        return config["train"]["features"]
    if model.get("preset") == "gpt2-small":
        return 768
    return model.get("d_model") or model.get("width") or 128


def create_model_and_loss(config: Mapping[str, Any], registry: Any, task: Any) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Model trunk ``(input_spec, d_out)`` and loss ``(d_in, n_classes)``; ties the head when asked.

    A model with ``tie_weights = True`` shares its ``token_embedding.weight`` with the loss
    head ``loss.weight`` (both ``(n_classes, d)``), as GPT-2 does.
    """
    width = feature_width(config)
    model = registry.get("model", config["model"]["name"]).create(
        input_spec=task.input_spec, d_out=width, **params_of(config["model"]))
    loss = registry.get("loss", config["loss"]["name"]).create(
        d_in=width, n_classes=task.n_classes, **params_of(config["loss"]))
    if getattr(model, "tie_weights", False):
        embedding = getattr(model, "token_embedding", None)
        head = getattr(loss, "weight", None)
        if embedding is None or not isinstance(head, torch.nn.Parameter):
            raise ConfigError(f"[model] tie_weights needs a model with a token_embedding and a loss with a "
                              f"head weight; loss {config['loss']['name']!r} has none")
        if head.shape != embedding.weight.shape:
            raise ConfigError(
                f"[model] tie_weights: the loss head {tuple(head.shape)} and the token embedding "
                f"{tuple(embedding.weight.shape)} differ in shape")
        loss.weight = embedding.weight
    return model, loss


def exempt_from_decay(net: nn.Module) -> set[int]:
    """The ``id`` of every parameter that weight decay leaves alone.

    Exempt: parameters with fewer than two dims (biases, norm gains), every parameter of an
    embedding or normalisation module (:data:`NO_DECAY_MODULES`), and the parameters a module
    names in its ``no_weight_decay`` attribute (its own parameter names, e.g. a distance
    head's class centres: ``no_weight_decay = ("weight",)``). A parameter shared by two
    modules (a head tied to the token embedding) is exempt when either owner exempts it.
    """
    exempt: set[int] = set()
    for module in net.modules():
        named = set(getattr(module, "no_weight_decay", ()))
        for name, param in module.named_parameters(recurse=False):
            if param.ndim < 2 or isinstance(module, NO_DECAY_MODULES) or name in named:
                exempt.add(id(param))
    return exempt


def parameter_groups(net: nn.Module, decay: str) -> list[Any]:
    """What the optimizer factory receives: ``[optimizer] decay = "matrices"`` (the default) or ``"all"``.

    ``"matrices"``: two param groups, the weight matrices (optimizer's ``weight_decay``) and the
    exempt rest (:func:`exempt_from_decay`, ``weight_decay = 0``), as GPT-2 training does
    (Radford et al. 2019; Loshchilov & Hutter 2019). ``"all"``: one flat list, every
    parameter decays. Parameters keep ``net.parameters()`` order within each group.
    """
    params = list(net.parameters())
    if decay == "all":
        return params
    exempt = exempt_from_decay(net)
    groups = [{"params": [p for p in params if id(p) not in exempt]},
              {"params": [p for p in params if id(p) in exempt], "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def create_optimizer(config: Mapping[str, Any], registry: Any, net: nn.Module) -> torch.optim.Optimizer:
    """The ``[optimizer]`` component called as ``factory(params, **hparams)``.

    ``params`` are :func:`parameter_groups` when the optimizer has a non-zero
    ``weight_decay``, otherwise the flat parameter list (groups would change nothing).
    """
    section = config["optimizer"]
    hparams = {k: v for k, v in params_of(section).items() if k != "decay"}
    decay = section.get("decay", "matrices") if hparams.get("weight_decay") else "all"
    return registry.get("optimizer", section["name"]).create(parameter_groups(net, decay), **hparams)


class TrainNet(torch.nn.Module):
    """Model trunk plus loss head in one module (what DDP wraps): ``forward(x, y)`` is the loss.

    Parameter names are ``model.<...>`` and ``loss.<...>`` (used by weight probes).
    """

    def __init__(self, model: torch.nn.Module, loss: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean training loss of the batch."""
        return self.loss(self.model(x), y)
