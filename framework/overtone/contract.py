"""Checks the host applies where a plugin's product enters it (torch-free).

Each check returns the value when it honours the contract and otherwise raises
:class:`overtone.PluginError` with one line naming the component, its plugin, what it returned
and what was expected::

    analyzer 'moments' (plugin 'overtone-example') returned a dict; expected an xarray.Dataset
    (build one with xr.Dataset(result))

``source`` is anything that names the component: an ``overtone.registry.Entry`` (kind, name
and plugin), an ``overtone.Component`` (kind and name), or a label string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overtone.errors import PluginError

#: What each kind's factory hands back (for messages).
PRODUCTS: dict[str, str] = {
    "analyzer": "a callable (xr.Dataset) -> xr.Dataset",
    "signal_processor": "a callable (xr.Dataset) -> xr.Dataset",
    "reader": "an xarray.Dataset",
    "engine": "an object with resolve(config, *, source, registry) and run(config, run_dir)",
}


def label(source: Any) -> str:
    """``<kind> '<name>' (plugin '<plugin>')`` for an Entry, ``<kind> '<name>'`` for a Component."""
    if isinstance(source, str):
        return source
    component = getattr(source, "component", source)
    kind = getattr(component, "kind", "component").replace("_", " ")
    text = f"{kind} {getattr(component, 'name', '?')!r}"
    plugin = getattr(source, "plugin", None)
    return f"{text} (plugin {plugin!r})" if plugin else text


def describe(value: Any) -> str:
    """A short description of a returned value: ``None``, ``a dict``, ``an int (3)``, ..."""
    if value is None:
        return "None"
    if isinstance(value, type):
        return f"the class {value.__name__}"
    kind = type(value)
    name = kind.__name__
    if kind.__module__.startswith("xarray"):
        name = f"xarray.{name}"
    if isinstance(value, (int, float, str, bool)):
        text = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return f"{_article(name)} {name} ({text})"
    if callable(value) and getattr(value, "__name__", None) == "<lambda>":
        return "a lambda"
    return f"{_article(name)} {name}"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" or word.startswith("xarray") else "a"


def _hint(value: Any) -> str:
    if value is None:
        return " (does the function end without a return statement?)"
    if isinstance(value, type):
        return f" (not an instance: return {value.__name__}(...))"
    name = type(value).__name__
    if name == "DataArray":
        return " (wrap it: result.to_dataset(name='...'))"
    if isinstance(value, dict):
        return " (build one with xr.Dataset(result))"
    return ""


def fail(source: Any, value: Any, expected: str, *, action: str = "returned") -> PluginError:
    """The one-line error for a product that breaks the contract (returned, not raised)."""
    return PluginError(f"{label(source)} {action} {describe(value)}; expected {expected}{_hint(value)}")


def expect_dataset(value: Any, source: Any, *, action: str = "returned") -> Any:
    """Return ``value`` if it is an ``xr.Dataset``; raise a one-line PluginError otherwise.

    Use where an analyzer's or signal processor's result, or a reader's product, enters the host.
    """
    import xarray as xr

    if not isinstance(value, xr.Dataset):
        raise fail(source, value, "an xarray.Dataset", action=action)
    return value


def expect_callable(value: Any, source: Any, *, expected: str | None = None) -> Callable[..., Any]:
    """Return ``value`` if it is callable (an analyzer's or processor's factory product).

    A class is refused too: calling it on a Dataset would build an instance, not a result.
    """
    if not callable(value) or isinstance(value, type):
        kind = getattr(getattr(source, "component", source), "kind", "")
        raise fail(source, value, expected or PRODUCTS.get(kind, "a callable"),
                   action="factory returned")
    return value


def expect_attributes(value: Any, source: Any, names: tuple[str, ...], expected: str) -> Any:
    """Return ``value`` if it has every attribute in ``names`` (e.g. an engine's resolve/run)."""
    missing = [n for n in names if not callable(getattr(value, n, None))]
    if missing:
        raise PluginError(f"{label(source)} factory returned {describe(value)} without "
                          f"{', '.join(m + '()' for m in missing)}; expected {expected}")
    return value


def call_dataset_function(function: Callable[[Any], Any], data: Any, source: Any) -> Any:
    """``function(data)`` checked to be an ``xr.Dataset`` (an analyzer's or processor's result)."""
    return expect_dataset(function(data), source)


def expect_structure_kept(before: Any, after: Any, source: Any) -> Any:
    """Return ``after`` if it keeps every dim, coordinate and attribute of ``before``.

    A signal processor's result must keep its input's dims, coords and attrs (values may
    change: a decimating smoother shortens ``frequency``); a missing one is a one-line
    PluginError naming what was dropped, since later steps and readers of the output rely on
    them (``frequency`` for every spectral step, ``telescope`` for presets). Metadata only: a
    lazy (dask) result is not computed.
    """
    for what, old, new in (("dim", before.dims, after.dims), ("coordinate", before.coords, after.coords),
                           ("attribute", before.attrs, after.attrs)):
        lost = [str(k) for k in old if k not in new]
        if lost:
            names = ", ".join(repr(k) for k in lost)
            plural = "s" if len(lost) > 1 else ""
            raise PluginError(
                f"{label(source)} dropped the input's {what}{plural} {names}; expected its dims, coords "
                f"and attrs kept (assign into ds.copy(), or xr.apply_ufunc(..., keep_attrs=True))")
    return after
