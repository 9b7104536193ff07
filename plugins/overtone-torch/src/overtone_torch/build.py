"""Building the pieces of a run from a resolved config: task, model, loss (head), training module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from overtone import ConfigError, PluginError
from torch import nn

#: Modules whose parameters never decay: lookups (embeddings) and normalisation gains and shifts.
NO_DECAY_MODULES = (nn.Embedding, nn.EmbeddingBag, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
                    nn.LocalResponseNorm, nn.modules.batchnorm._NormBase)


def params_of(section: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved component section without its ``name``: the factory's keyword arguments."""
    return {k: v for k, v in section.items() if k != "name"}


def create_task(config: Mapping[str, Any], registry: Any, seed: int) -> Any:
    """The ``[task]`` component called as ``factory(seed=seed, **params)``, checked against
    :class:`~overtone_torch.task_api.Task` (PluginError naming the member it lacks)."""
    from overtone_torch.task_api import missing_members

    name = config["task"]["name"]
    task = registry.get("task", name).create(seed=seed, **params_of(config["task"]))
    missing = missing_members(task)
    if missing:
        raise product_error(registry, "task", name, task, f"an object with {', '.join(missing)} "
                            f"(the members of overtone_torch.task_api.Task)")
    spec = task.input_spec
    if not isinstance(spec, Mapping) or spec.get("kind") not in ("tokens", "vector"):
        raise product_error(registry, "task", name, task, "an input_spec dict with kind = 'tokens' or 'vector'",
                            got=f"input_spec = {spec!r}")
    width = head_width(task)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise product_error(registry, "task", name, task, "a positive int n_classes (or, for a task "
                            "with target = 'regression', a positive int n_outputs)",
                            got=f"n_classes = {task.n_classes!r}")
    return task


def is_regression(task: Any) -> bool:
    """Whether ``task`` has float targets (``target = "regression"``) instead of classes."""
    return getattr(task, "target", "classes") == "regression"


def head_width(task: Any) -> Any:
    """The width of the loss head: ``n_classes``, or ``n_outputs`` for a regression task."""
    return getattr(task, "n_outputs", None) if is_regression(task) else task.n_classes


def label(registry: Any, kind: str, name: str) -> str:
    """``model 'mlp' (plugin 'overtone-torch')``: a component and the plugin that registered it."""
    try:
        plugin = registry.entry(kind, name).plugin
    except (LookupError, AttributeError):
        return f"{kind} {name!r}"
    return f"{kind} {name!r} (plugin {plugin!r})"


def product_error(registry: Any, kind: str, name: str, product: Any, expected: str, *,
                  got: str | None = None) -> PluginError:
    """One line naming the component, its plugin, what its factory returned and what was expected."""
    hint = f" (return an instance: {product.__name__}(...))" if isinstance(product, type) and got is None else ""
    return PluginError(f"{label(registry, kind, name)} returned {got or describe(product)}; expected {expected}{hint}")


def describe(value: Any) -> str:
    """A short description of what a factory returned (``None``, ``a function <lambda>``, ...)."""
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, type):
        return f"the class {value.__qualname__}"
    if callable(value) and hasattr(value, "__qualname__") and not isinstance(value, nn.Module):
        return f"a function {value.__qualname__}"
    return f"a {type(value).__name__}"


def create_model_and_loss(config: Mapping[str, Any], registry: Any, task: Any) -> tuple[nn.Module, nn.Module]:
    """Model trunk ``(input_spec, d_out)`` and loss ``(d_in, n_classes)``; ties the head when asked.

    The model declares the width of its features as ``d_features`` (an int attribute). The
    host asks for a width only when ``[train] features`` is set (``d_out = features``; else
    ``d_out = None``: the model's own width); the loss is built with ``d_in = d_features``.
    A model with ``tie_weights = True`` shares its ``token_embedding.weight`` with the loss
    head ``loss.weight`` (both ``(n_classes, d)``), as GPT-2 does.
    """
    requested = config["train"]["features"] or None
    model_name, loss_name = config["model"]["name"], config["loss"]["name"]
    try:
        model = registry.get("model", model_name).create(
            input_spec=task.input_spec, d_out=requested, **params_of(config["model"]))
    except TypeError as exc:
        if requested is not None:
            raise
        raise PluginError(f"{label(registry, 'model', model_name)} raised TypeError: {exc} when given "
                          f"d_out = None; a model picks its own feature width when d_out is None and declares "
                          f"it as an int attribute d_features (or set [train] features = N)") from exc
    if not isinstance(model, nn.Module):
        raise product_error(registry, "model", model_name, model, "a torch.nn.Module mapping inputs to features")
    width = getattr(model, "d_features", requested)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise product_error(registry, "model", model_name, model,
                            "a module with an int attribute d_features (the width of its features), "
                            "or set [train] features", got=f"a {type(model).__name__} with d_features = {width!r}")
    if requested and width != requested:
        raise product_error(registry, "model", model_name, model, f"d_features = {requested} "
                            f"([train] features)", got=f"a module with d_features = {width}")
    loss_component = registry.get("loss", loss_name)
    if is_regression(task) and not getattr(loss_component.load(), "regression", False):
        raise ConfigError(f"[loss] name = {loss_name!r} cannot train task {config['task']['name']!r}, "
                          f"whose targets are real numbers (target = 'regression'); use name = 'mse' "
                          f"(a loss for real targets says so with a class attribute regression = True)")
    loss = loss_component.create(d_in=width, n_classes=head_width(task), **params_of(config["loss"]))
    if not isinstance(loss, nn.Module) or not callable(getattr(loss, "scores", None)):
        raise product_error(registry, "loss", loss_name, loss, "a torch.nn.Module with forward(features, "
                            "targets) -> scalar and scores(features) -> (..., n_classes)")
    if getattr(model, "tie_weights", False):
        embedding = getattr(model, "token_embedding", None)
        head = getattr(loss, "weight", None)
        if embedding is None or not isinstance(head, nn.Parameter):
            raise ConfigError(f"[model] tie_weights needs a model with a token_embedding and a loss with a "
                              f"head weight; loss {loss_name!r} has none")
        if head.shape != embedding.weight.shape:
            raise ConfigError(
                f"[model] tie_weights: the loss head {tuple(head.shape)} and the token embedding "
                f"{tuple(embedding.weight.shape)} differ in shape")
        loss.weight = embedding.weight
    return model, loss


def check_forward(net: TrainNet, task: Any, registry: Any, config: Mapping[str, Any]) -> None:
    """Run model, loss and ``scores`` once on two training examples moved to ``net``'s device
    (the meta device during validation: shapes only) and check what each returns.

    Features must be ``(B, d_features)`` (``(B, T, d_features)`` for sequence tasks), the loss a
    scalar, the scores ``(..., n_classes)``; anything else is a PluginError naming the component.
    """
    device = next(net.parameters()).device
    x, y = task.sample_batch("train", 2, torch.Generator().manual_seed(0))
    x, y = x.to(device), y.to(device)
    width = net.model.d_features if hasattr(net.model, "d_features") else config["train"]["features"]
    lead = tuple(y.shape) if task.input_spec.get("output") == "sequence" else tuple(y.shape[:1])
    model_name, loss_name = config["model"]["name"], config["loss"]["name"]
    with torch.no_grad():
        features = _call(registry, "model", model_name, net.model, x)
        if not isinstance(features, torch.Tensor) or tuple(features.shape) != (*lead, width):
            raise product_error(registry, "model", model_name, features,
                                f"features of shape {(*lead, width)} (batch, d_features = {width})",
                                got=f"{describe(features)} from forward")
        head = next((p for p in net.loss.parameters() if p.is_floating_point()), None)
        dtype = head.dtype if head is not None else torch.get_default_dtype()
        if features.dtype != dtype:
            raise product_error(registry, "model", model_name, features,
                                f"floating-point features of the loss head's dtype {_dtype(dtype)} "
                                f"(cast in forward: .to({_dtype(dtype)}))",
                                got=f"features of dtype {_dtype(features.dtype)} from forward")
        loss = _call(registry, "loss", loss_name, net.loss, features, y)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise product_error(registry, "loss", loss_name, loss, "a scalar (0-dim tensor) from forward",
                                got=f"{describe(loss)} from forward")
        if callable(getattr(net.loss, "extra_metrics", None)):
            extras = _call(registry, "loss", loss_name, lambda _: net.loss.extra_metrics(), features)
            if not isinstance(extras, Mapping):
                raise product_error(registry, "loss", loss_name, extras, "a dict of name -> float or 0-dim tensor",
                                    got=f"{describe(extras)} from extra_metrics()")
        scores = _call(registry, "loss", loss_name, net.loss.scores, features)
        expected = (*lead, head_width(task))
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != expected:
            raise product_error(registry, "loss", loss_name, scores, f"scores of shape {expected} (n_classes last)",
                                got=f"{describe(scores)} from scores")


def _dtype(dtype: torch.dtype) -> str:
    """``torch.float32`` for ``torch.float32``: a dtype as it is written in code."""
    return str(dtype)


def _call(registry: Any, kind: str, name: str, function: Any, *args: torch.Tensor) -> Any:
    """``function(*args)``; an exception becomes a PluginError naming the component.

    On the meta device any exception becomes NotImplementedError instead: many kernels
    have no meta implementation, so the caller repeats the check on the CPU, where an
    exception is the component's own.
    """
    try:
        return function(*args)
    except Exception as exc:
        if args[0].device.type == "meta":
            raise NotImplementedError(f"on the meta device: {exc}") from exc
        raise PluginError(f"{label(registry, kind, name)} raised {type(exc).__name__}: {exc} on inputs of "
                          f"shape {tuple(args[0].shape)} (a batch of the task's)") from exc


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
    import inspect

    name = section["name"]
    component = registry.get("optimizer", name)
    try:
        optimizer = component.create(parameter_groups(net, decay), **hparams)
    except TypeError as exc:
        try:
            inspect.signature(component.load()).bind([], **hparams)
        except ValueError:  # no signature to read (a builtin): the error is the factory's own
            raise exc from None
        except TypeError:
            pass
        else:
            raise
        raise PluginError(f"{label(registry, 'optimizer', name)} raised TypeError: {exc}; an optimizer factory "
                          f"is called as factory(params, **hparams): take the parameters (or param groups) "
                          f"as the first positional argument") from exc
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise product_error(registry, "optimizer", name, optimizer, "a torch.optim.Optimizer")
    step = getattr(type(optimizer), "step", None)
    if not callable(step) or inspect.unwrap(step) is inspect.unwrap(torch.optim.Optimizer.step):
        raise product_error(registry, "optimizer", name, optimizer,
                            "an optimizer that defines step(closure=None), the update rule",
                            got=f"a {type(optimizer).__name__} without its own step()")
    return optimizer


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
