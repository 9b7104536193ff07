"""Pipelines of analyzers or signal processors over an ``xr.Dataset``.

A step is given as a registered component's name, as ``(name, params)``, or as a callable
``(xr.Dataset) -> xr.Dataset`` built by the caller; :func:`resolve_steps` turns any mix of these
into :class:`Step` s, and :func:`apply_step` runs one and checks what it returned.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from overtone import contract
from overtone.config import parse_assignment
from overtone.errors import ConfigError, DatasetError, OvertoneError, PluginError
from overtone.params import resolve_params
from overtone.runschema import add_history

if TYPE_CHECKING:
    import xarray as xr

#: What a pipeline step may be given as: a name (``"running-median"``, or a qualified id), a name
#: with parameters (``("running-median", {"window": 33})``), a built callable, or a :class:`Step`.
StepSpec = Union[str, "tuple[str, Mapping[str, Any]]", Callable[..., Any], "Step"]


@dataclass
class Step:
    """One component in a pipeline with its validated parameters.

    ``component`` is ``None`` for a callable given directly; ``plugin`` names the distribution
    (or module) that registered the component, for error messages.
    """

    name: str
    component: Any
    params: dict[str, Any] = field(default_factory=dict)
    plugin: str | None = None
    function: Callable[..., Any] | None = None

    def build(self, kind: str = "step") -> Callable[..., Any]:
        """The step's callable: ``component.create(**params)``, made once and kept.

        A factory's own :class:`~overtone.errors.OvertoneError` (a bad parameter) passes on;
        any other exception becomes a :class:`PluginError` naming the step and its plugin.
        """
        if self.function is None:
            try:
                function = self.component.create(**self.params)
            except OvertoneError:
                raise
            except Exception as exc:
                detail = " ".join(str(exc).split())
                raise PluginError(f"{kind} {self.label}: its factory raised "
                                  f"{type(exc).__name__}: {detail}") from exc
            self.function = contract.expect_callable(
                function, f"{kind} {self.label}", expected="a callable taking a Dataset")
        return self.function

    @property
    def label(self) -> str:
        """``"'name' (plugin 'p')"``, or ``"'name' (a callable)"`` for a callable given directly."""
        origin = f"plugin {self.plugin!r}" if self.plugin else "a callable given directly"
        return f"{self.name!r} ({origin})"


def _callable_name(function: Callable[..., Any]) -> str:
    return str(getattr(function, "name", None) or getattr(function, "__name__", None)
               or type(function).__name__)


def _split(specs: StepSpec | Sequence[StepSpec]) -> list[Any]:
    if isinstance(specs, str):
        return [n.strip() for n in specs.split(",") if n.strip()]
    if isinstance(specs, tuple) and len(specs) == 2 and isinstance(specs[1], Mapping):
        return [specs]
    if isinstance(specs, Step) or callable(specs):
        return [specs]
    return list(specs)


def resolve_steps(
    registry: Any,
    kind: str,
    specs: StepSpec | Sequence[StepSpec],
    assignments: Sequence[str] = (),
) -> list[Step]:
    """Resolve step specs (names, ``(name, params)``, callables) into validated :class:`Step` s.

    ``assignments`` are ``--param`` texts: ``NAME.key=value`` sets a parameter of one step; a
    bare ``key=value`` sets it on every registered step that declares ``key`` (an error if none
    does). Parameters are validated against each component's declared ``Param`` s.
    """
    items = _split(specs)
    label = kind.replace("_", " ")
    if not items:
        raise ConfigError(f"--with: name at least one {label}")
    steps: list[Step] = []
    given: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, Step):
            steps.append(item)
            given.append(dict(item.params))
            continue
        params: Mapping[str, Any] = {}
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Mapping):
            item, params = item
        if isinstance(item, str):
            entry = registry.entry(kind, item)
            steps.append(Step(item, entry.component, plugin=entry.plugin))
            given.append(dict(params))
        elif isinstance(item, type):
            raise ConfigError(f"{label} {item.__name__}: pass an instance (a callable taking a "
                              f"Dataset), not the class")
        elif callable(item):
            if params:
                raise ConfigError(f"{label} {_callable_name(item)!r}: a callable takes no "
                                  f"params; build it with them instead")
            steps.append(Step(_callable_name(item), None, function=item))
            given.append({})
        else:
            raise ConfigError(f"{label} step {item!r}: give a name, (name, params) or a callable")
    names = [s.name for s in steps]
    registered = [i for i, s in enumerate(steps) if s.component is not None]
    for text in assignments:
        key, value = parse_assignment(text, "--param")
        target, dot, leaf = key.rpartition(".")
        if dot and target in names:
            if steps[names.index(target)].component is None:
                raise ConfigError(f"--param {text!r}: {target!r} is a callable given directly; "
                                  f"build it with its parameters instead")
            given[names.index(target)][leaf] = value
            continue
        takers = [i for i in registered if key in steps[i].component.params]
        if not takers:
            allowed = sorted({f"{steps[i].name}.{p}" for i in registered
                              for p in steps[i].component.params})
            keys = sorted({p for i in registered for p in steps[i].component.params} | set(allowed))
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"--param {text!r}: no step takes {key!r}; parameters: {', '.join(allowed) or '(none)'}{hint}"
            )
        for i in takers:
            given[i][key] = value
    for step, params in zip(steps, given):
        if step.component is not None and step.function is None:
            step.params = resolve_params(params, step.component.params, f"--param for {step.name!r}")
    return steps


def build_steps(
    registry: Any, kind: str, names: Sequence[str], assignments: Sequence[str]
) -> list[Step]:
    """Resolve component names and ``--param`` assignments into validated steps."""
    return resolve_steps(registry, kind, list(names), assignments)


def apply_step(step: Step, ds: xr.Dataset, kind: str = "step") -> xr.Dataset:
    """Run one step on ``ds`` and check that it returned an ``xr.Dataset``.

    The step's own :class:`~overtone.errors.OvertoneError` (it refused the input) passes on;
    ``KeyError``/``ValueError`` become a :class:`DatasetError` naming the step and its plugin; any other
    exception, or a product that is not a Dataset, becomes a :class:`PluginError` naming the
    step, its plugin, what it did and what was expected.
    """
    function = step.build(kind)
    try:
        result = function(ds)
    except OvertoneError:
        raise
    except (KeyError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise DatasetError(f"{kind} {step.label} refused its input: {type(exc).__name__}: "
                           f"{detail}") from exc
    except Exception as exc:
        detail = " ".join(str(exc).split())
        raise PluginError(f"{kind} {step.label} raised {type(exc).__name__}: {detail}; "
                          f"expected it to return an xarray.Dataset") from exc
    contract.expect_dataset(result, f"{kind} {step.label}")
    return record_step(result, step, kind)


def record_step(result: xr.Dataset, step: Step, kind: str) -> xr.Dataset:
    """Append ``step`` to ``result``'s ``history`` (:func:`overtone.runschema.add_history`)
    unless the component already recorded itself as the newest entry."""
    from overtone.runschema import history_entries

    entries = history_entries(result)
    if entries and entries[-1].get("component") == step.name:
        return result
    return add_history(result.copy(deep=False), {
        "component": step.name, "kind": kind.replace(" ", "_"), "plugin": step.plugin,
        "params": {k: v for k, v in step.params.items()}})


def draw_plot(step: Step, kind: str, *data: xr.Dataset) -> Any:
    """The figure of ``step.build().plot(*data)`` (``None`` when the step has no ``plot``); a
    plot that raises becomes a :class:`PluginError` naming the step and its plugin."""
    plot = getattr(step.build(kind), "plot", None)
    if plot is None:
        return None
    try:
        figure = plot(*data)
    except OvertoneError:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())
        raise PluginError(f"{kind} {step.label}: its plot raised {type(exc).__name__}: {detail}") from exc
    if not hasattr(figure, "savefig"):
        raise contract.fail(f"{kind} {step.label}: its plot", figure, "a matplotlib Figure")
    return figure


def run_steps(ds: xr.Dataset, steps: Sequence[Step], kind: str = "step") -> xr.Dataset:
    """Apply each step in order: ``ds = step(ds)``, checking each product (:func:`apply_step`)."""
    for step in steps:
        ds = apply_step(step, ds, kind)
    return ds


def describe(steps: Sequence[Step]) -> str:
    """A one-line record of a pipeline for the ``history`` attribute."""
    parts = []
    for step in steps:
        args = ", ".join(f"{k}={v!r}" for k, v in step.params.items())
        parts.append(f"{step.name}({args})" if step.component is not None or args
                     else f"{step.name}(<callable>)")
    return " | ".join(parts)
