"""A testing kit for plugin authors (public API; importing it never imports torch).

- :func:`registry_for` builds a registry holding only the given plugin modules.
- :func:`check_plugin` checks a plugin module's registrations against the contract.
- :func:`check_loss`, :func:`check_model`, :func:`check_analyzer`,
  :func:`check_signal_processor` exercise one component the way the host will.

Every check raises :class:`overtone.PluginError` with one line describing the first problem.
The torch checkers import torch inside the function only.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from overtone.component import HOST_ARGUMENTS, KINDS, Component
from overtone.contract import (
    describe,
    expect_callable,
    expect_dataset,
    expect_structure_kept,
    label,
)
from overtone.errors import OvertoneError, OvertoneWarning, PluginError
from overtone.params import as_param, check_value
from overtone.registry import Registry

#: Input specs :func:`check_model` tries when none is given: tokens and vectors.
MODEL_INPUT_SPECS: tuple[dict[str, Any], ...] = (
    {"kind": "tokens", "vocab_size": 11, "seq_len": 6, "output": "pooled"},
    {"kind": "tokens", "vocab_size": 11, "seq_len": 6, "output": "sequence"},
    {"kind": "vector", "dim": 5, "output": "pooled"},
)

#: Factory arguments the host passes positionally (optimizer parameters, reader path).
_POSITIONAL = {"optimizer": 1, "reader": 1}


def registry_for(*plugin_modules: ModuleType | str) -> Registry:
    """A registry holding just these plugin modules' components (no entry points, no env).

    Modules may be given as objects or importable names. A module that fails to register is
    reported by :class:`PluginError`, so a test never silently runs against an empty registry.
    """
    import importlib

    from overtone.plugins import new_manager, register_module

    loaded = new_manager()
    for module in plugin_modules:
        if isinstance(module, str):
            module = importlib.import_module(module)
        record = register_module(loaded, module, source="registry_for")
        if record.error:
            raise PluginError(f"{record.name}: {record.error}")
    return Registry(loaded)


# -- registrations ---------------------------------------------------------------------------


def check_plugin(module: ModuleType, *, load_factories: bool = True,
                 installed: Registry | None = None) -> list[Component]:
    """Check that a plugin module honours the overtone contract; return its components.

    Every hook implementation must return Components of its own kind with unique names,
    each ``Param`` default must satisfy its own type, choices and bounds, and (with
    ``load_factories``) every lazy factory must import to a callable whose signature accepts
    every declared parameter and the host's arguments, and needs nothing else.
    Names that an installed plugin (``installed``, default ``overtone.registry()``) also
    registers give an :class:`overtone.OvertoneWarning`.
    Raises :class:`overtone.PluginError` describing the first problem found.
    """
    registry = registry_for(module)
    if registry.problems:
        raise PluginError("; ".join(registry.problems))
    if not len(registry):
        raise PluginError(f"{module.__name__}: registers no component; implement one of "
                          f"{', '.join(KINDS.values())}")
    if registry.duplicates():
        twice = ", ".join(f"{k} {n!r}" for k, n in registry.duplicates())
        raise PluginError(f"{module.__name__}: registers a name twice: {twice}")
    components = [entry.component for entry in registry]
    for component in components:
        for key, spec in component.params.items():
            param = as_param(spec)
            if param.default is not None and not param.required:
                try:
                    check_value(key, param.default, param, label(component))
                except OvertoneError as exc:
                    raise PluginError(f"default of parameter {key!r} fails its own check: {exc}") from exc
        if load_factories:
            factory = component.load()
            if not callable(factory):
                raise PluginError(f"{label(component)}: factory is {describe(factory)}, not callable")
            _check_signature(component, factory)
    _warn_shadowing(module, components, installed)
    return components


def _check_signature(component: Component, factory: Callable[..., Any]) -> None:
    """Compare the declared params and the host's arguments with the factory's signature."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have none
        return
    parameters = list(signature.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        accepted = None
    else:
        accepted = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    name = getattr(factory, "__qualname__", repr(factory))
    where = f"{label(component)}: factory {name}{signature}"
    host = HOST_ARGUMENTS.get(component.kind, ())
    if accepted is not None:
        missing = [k for k in component.params if k not in accepted]
        if missing:
            raise PluginError(f"{where} does not accept declared parameter(s) {', '.join(missing)}; "
                              f"add them to the factory or remove them from params")
        missing = [k for k in host if k not in accepted]
        if missing:
            raise PluginError(f"{where} does not accept {', '.join(missing)}, which the host passes "
                              f"to every {component.kind} factory (see docs/hooks.md)")
    positional = _POSITIONAL.get(component.kind, 0)
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.kind is not parameter.KEYWORD_ONLY and positional:
            positional -= 1
            continue
        known = parameter.name in component.params or parameter.name in host
        if parameter.default is parameter.empty and not known:
            raise PluginError(f"{where} needs {parameter.name!r}, which is not declared in params; "
                              f"declare it (Param(..., required=True)) or give it a default")


def _warn_shadowing(module: ModuleType, components: list[Component],
                    installed: Registry | None) -> None:
    if installed is None:
        from overtone.registry import registry

        installed = registry()
    for component in components:
        others = [e for e in installed.of_kind(component.kind)
                  if e.component.name == component.name
                  and getattr(installed.loaded.manager.get_plugin(e.plugin), "__name__", None)
                  != module.__name__]
        if others:
            ids = " and ".join(repr(e.qualified_id) for e in others)
            warnings.warn(
                f"{label(component)} shares its name with installed {ids}; where both are "
                f"installed, configs naming {component.name!r} get the one shipped with overtone "
                f"(or fail when neither is), so pick a distinct name",
                OvertoneWarning, stacklevel=3)


# -- products --------------------------------------------------------------------------------


def _created(obj: Any, kind: str, host: Mapping[str, Any], params: Mapping[str, Any] | None) -> Any:
    """An object to check: ``obj`` itself, or what a Component or factory builds."""
    if isinstance(obj, Component):
        if obj.kind != kind:
            raise PluginError(f"{label(obj)} is not a {kind}")
        return obj.create(**host, **dict(params or {}))
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return obj(**host, **dict(params or {}))
    return obj


def check_loss(loss: Any, *, d_in: int = 8, n_classes: int = 5,
               params: Mapping[str, Any] | None = None, seed: int = 0) -> Any:
    """Exercise a loss as the torch engine does; return the loss module.

    ``loss`` is a built module or a loss Component (created with ``d_in``, ``n_classes`` and
    ``params``). Checked: it is a ``torch.nn.Module`` with ``scores``; ``scores`` has shape
    ``(..., n_classes)`` for ``(N, d_in)`` and ``(B, T, d_in)`` features; ``forward`` returns a
    finite scalar that back-propagates; targets ``-100`` are ignored (the loss over a batch with
    ignored rows equals the loss over the other rows, to 1e-5 relative).
    """
    import torch

    name = label(loss) if isinstance(loss, Component) else "loss"
    module = _created(loss, "loss", {"d_in": d_in, "n_classes": n_classes}, params)
    if not isinstance(module, torch.nn.Module):
        raise PluginError(f"{name} is {describe(module)}; expected a torch.nn.Module")
    if not callable(getattr(module, "scores", None)):
        raise PluginError(f"{name} has no scores(features) method; expected one returning "
                          f"(..., n_classes) scores")
    g = torch.Generator().manual_seed(seed)
    for shape in ((6,), (2, 3)):
        features = torch.randn(*shape, d_in, generator=g, requires_grad=True)
        targets = torch.randint(0, n_classes, shape, generator=g)
        scores = module.scores(features)
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (*shape, n_classes):
            got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else describe(scores)
            raise PluginError(f"{name}.scores(features {tuple(features.shape)}) gave {got}; "
                              f"expected shape {(*shape, n_classes)}")
        value = module(features, targets)
        _expect_scalar(name, value, features.shape)
        value.backward()
        if features.grad is None or not torch.isfinite(features.grad).all():
            raise PluginError(f"{name}: the loss does not back-propagate finite gradients to the features")
    features = torch.randn(6, d_in, generator=g)
    targets = torch.randint(0, n_classes, (6,), generator=g)
    ignored = targets.clone()
    ignored[::2] = -100
    with torch.no_grad():
        full = module(features, ignored)
        kept = module(features[1::2], targets[1::2])
    _expect_scalar(name, full, features.shape)
    if not torch.allclose(full.double(), kept.double(), rtol=1e-5, atol=1e-6):
        raise PluginError(f"{name}: with targets -100 the loss is {float(full):.6g} but over the other "
                          f"rows alone {float(kept):.6g}; targets -100 must be ignored")
    return module


def _expect_scalar(name: str, value: Any, shape: Any) -> None:
    import torch

    if not isinstance(value, torch.Tensor) or value.ndim != 0:
        got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else describe(value)
        raise PluginError(f"{name}: forward(features {tuple(shape)}, targets) returned {got}; "
                          f"expected a scalar tensor (reduce with .mean())")
    if not torch.isfinite(value):
        raise PluginError(f"{name}: forward(features {tuple(shape)}, targets) returned "
                          f"{float(value)}; expected a finite loss")


def check_model(model: Any, *, input_spec: Mapping[str, Any] | None = None, d_out: int | None = 8,
                params: Mapping[str, Any] | None = None, batch: int = 3, seed: int = 0) -> list[dict]:
    """Exercise a model as the torch engine does; return the input specs it accepted.

    ``model`` is a model Component or factory (tried with ``input_spec``, or with token and
    vector specs from :data:`MODEL_INPUT_SPECS`; a spec it refuses with ``ConfigError`` is
    skipped, but it must accept one), or a built module (then ``input_spec`` is required).
    Checked: a ``torch.nn.Module`` with an int attribute ``d_features`` (equal to ``d_out``
    when one is requested; ``d_out=None`` lets the model pick its width, as the torch engine
    does without ``[train] features``) mapping a batch (integer tokens ``(batch, seq_len)`` or
    floats ``(batch, dim)``) to finite float features ``(batch, d_features)`` (``output =
    "pooled"``) or ``(batch, seq_len, d_features)`` (``"sequence"``) that back-propagate to
    its parameters.
    """
    import torch

    from overtone.errors import ConfigError

    built = not (isinstance(model, Component) or inspect.isclass(model) or inspect.isfunction(model))
    if built and input_spec is None:
        raise PluginError("check_model of a built module needs input_spec=")
    name = label(model) if isinstance(model, Component) else "model"
    specs = [dict(input_spec)] if input_spec is not None else [dict(s) for s in MODEL_INPUT_SPECS]
    accepted, refusals = [], []
    for spec in specs:
        if built:
            module = model
        else:
            try:
                module = _created(model, "model", {"input_spec": spec, "d_out": d_out}, params or {})
            except ConfigError as exc:
                refusals.append(str(exc))
                continue
        _run_model(name, module, spec, d_out, batch, torch.Generator().manual_seed(seed))
        accepted.append(spec)
    if not accepted:
        raise PluginError(f"{name} accepted none of the input specs tried: {'; '.join(refusals)}")
    return accepted


def _run_model(name: str, module: Any, spec: Mapping[str, Any], d_out: int | None, batch: int,
               g: Any) -> None:
    import torch

    if not isinstance(module, torch.nn.Module):
        raise PluginError(f"{name} factory returned {describe(module)}; expected a torch.nn.Module")
    width = getattr(module, "d_features", None)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise PluginError(f"{name} built a {type(module).__name__} with d_features = {width!r}; "
                          f"expected an int attribute d_features, the width of its features")
    if d_out is not None and width != d_out:
        raise PluginError(f"{name} built a module with d_features = {width} when asked for "
                          f"d_out = {d_out}; expected d_features = d_out")
    d_out = width
    if spec["kind"] == "tokens":
        x = torch.randint(0, spec["vocab_size"], (batch, spec["seq_len"]), generator=g)
    else:
        x = torch.randn(batch, spec["dim"], generator=g)
    sequence = spec.get("output", "pooled") == "sequence"
    expected = (batch, spec["seq_len"], d_out) if sequence else (batch, d_out)
    out = module(x)
    what = f"{name} on {spec['kind']} input {tuple(x.shape)} (output {spec.get('output', 'pooled')!r})"
    if not isinstance(out, torch.Tensor):
        raise PluginError(f"{what} returned {describe(out)}; expected a tensor of shape {expected}")
    if tuple(out.shape) != expected:
        raise PluginError(f"{what} returned shape {tuple(out.shape)}; expected {expected}")
    if not out.is_floating_point() or not torch.isfinite(out).all():
        raise PluginError(f"{what} returned non-finite or non-float features ({out.dtype})")
    params = [p for p in module.parameters() if p.requires_grad]
    if params:
        module.zero_grad()
        out.square().mean().backward()
        if all(p.grad is None for p in params):
            raise PluginError(f"{what}: no parameter gets a gradient from the features")


def _component_product(obj: Any, kind: str, params: Mapping[str, Any] | None) -> tuple[str, Any]:
    if isinstance(obj, Component):
        return label(obj), expect_callable(_created(obj, kind, {}, params), obj)
    if inspect.isclass(obj):
        return kind.replace("_", " "), expect_callable(obj(**dict(params or {})), kind)
    return kind.replace("_", " "), expect_callable(obj, kind, expected="a callable")


def check_analyzer(analyzer: Any, data: Any, *, params: Mapping[str, Any] | None = None) -> Any:
    """Run an analyzer as the host does; return its result on ``data``.

    ``analyzer`` is an analyzer Component, class or the callable itself. Checked: it returns an
    ``xr.Dataset``; it leaves ``data`` unchanged; given ``data`` with a ``step`` dim in which one
    step is all NaN (as a run's metrics hold at steps without evaluation) it returns a Dataset
    or refuses with a one-line ``overtone`` error, never another exception; without the ``step``
    dim (one step) likewise.
    """
    name, function = _component_product(analyzer, "analyzer", params)
    before = data.copy(deep=True)
    result = _call(function, data, name, "data")
    if not data.identical(before):
        raise PluginError(f"{name} changed its input dataset in place; work on a copy")
    if "step" in data.dims and data.sizes["step"] >= 2:
        holed = data.copy(deep=True)
        middle = data.sizes["step"] // 2
        for var in holed.data_vars.values():
            if "step" in var.dims and var.dtype.kind == "f":
                var[{"step": middle}] = float("nan")
        _call(function, holed, name, "data with an all-NaN step", refusal_ok=True)
        _call(function, data.isel(step=-1), name, "data without a step dim", refusal_ok=True)
    return result


def _call(function: Callable[[Any], Any], data: Any, name: str, what: str,
          *, refusal_ok: bool = False) -> Any:
    try:
        result = function(data)
    except OvertoneError:
        if refusal_ok:
            return None
        raise
    except Exception as exc:
        raise PluginError(f"{name} raised {type(exc).__name__} on {what}: {exc}; raise "
                          f"overtone.DatasetError with a one-line reason instead") from exc
    return expect_dataset(result, name, action=f"on {what} returned")


def check_signal_processor(processor: Any, data: Any, *,
                           params: Mapping[str, Any] | None = None) -> Any:
    """Run a signal processor as ``overtone process`` does; return its result on ``data``.

    Checked, as ``overtone process`` checks each step: it returns an ``xr.Dataset``; ``data`` is
    unchanged; every input dim, coordinate and attribute is in the output; every input
    variable kept in the output has the same dims. Stricter than the host in one way: a
    coordinate keeps its values unless the processor changed the length of its dims (a
    decimating smoother may shorten ``frequency``; a filter must not move it). Provenance is
    the host's job: ``overtone process`` records each step (name, plugin, params) in ``history``.
    """
    name, function = _component_product(processor, "signal_processor", params)
    before = copy.deepcopy(data.attrs), data.copy(deep=True)
    result = _call(function, data, name, "data")
    if not data.identical(before[1]):
        raise PluginError(f"{name} changed its input dataset in place; work on a copy (ds.copy())")
    expect_structure_kept(data, result, name)
    for coord in data.coords:
        resized = any(result.sizes.get(dim) != size for dim, size in data[coord].sizes.items())
        if not resized and not result[coord].equals(data[coord]):
            raise PluginError(f"{name} changed the values of coordinate {coord!r} without resizing it; "
                              f"keep coords as they are")
    for var in data.data_vars:
        if var in result and result[var].dims != data[var].dims:
            raise PluginError(f"{name} changed the dims of {var!r} from {data[var].dims} to "
                              f"{result[var].dims}; keep dims as they are")
    return result
