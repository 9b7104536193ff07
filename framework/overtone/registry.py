"""The registry: every loaded plugin's components, keyed by ``(kind, name)``."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from overtone.component import KINDS, Component
from overtone.errors import DuplicateComponentError, OvertoneWarning, UnknownComponentError
from overtone.plugins import LoadResult, load_plugins

#: The distributions shipped in the overtone repository. A short name that one of these and a
#: third-party plugin both register resolves to the first-party one (with a warning), so that
#: installing a plugin never breaks a config that worked before.
FIRST_PARTY: frozenset[str] = frozenset({
    "overtone", "overtone-torch", "overtone-harmonic", "overtone-focus",
    "overtone-dynamics", "overtone-radio",
})


def is_first_party(plugin: str) -> bool:
    """Whether a plugin is shipped with overtone.

    ``plugin`` is a distribution name (``overtone-torch``, or ``dist:entry-point``) or, for a
    module loaded through ``OVERTONE_PLUGINS``, a module name (``overtone_torch.plugin``).
    """
    dist = plugin.partition(":")[0]
    return dist in FIRST_PARTY or dist.partition(".")[0].replace("_", "-") in FIRST_PARTY


@dataclass(frozen=True)
class Entry:
    """A component together with the plugin (distribution) that registered it."""

    component: Component
    plugin: str
    version: str | None

    @property
    def qualified_id(self) -> str:
        """``<plugin>.<name>``: unique even when two plugins use the same short name."""
        return f"{self.plugin}.{self.component.name}"


def _describe_item(item: object) -> str:
    """What a hook handed back instead of a Component, for a problem line."""
    if isinstance(item, type):
        return f"the class {item.__module__}.{item.__qualname__}"
    text = repr(item)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(item).__name__})"


def _bad_default(component: Component) -> str | None:
    """The first declared ``Param`` default that fails its own type, bounds or choices, as one
    line naming the component and the parameter; ``None`` when every default is valid."""
    from overtone.errors import OvertoneError
    from overtone.params import as_param, check_value

    for key, spec in component.params.items():
        param = as_param(spec)
        if param.default is None or param.required:
            continue
        try:
            check_value(key, param.default, param, "")
        except OvertoneError as exc:
            detail = str(exc).lstrip(": ").strip()
            return (f"{component.kind.replace('_', ' ')} {component.name!r}: the default of {key!r} "
                    f"fails its own Param: {detail}; fix the default or the Param's type/bounds")
    return None


class Registry:
    """Components of the loaded plugins, with lookup errors written for people.

    Each plugin's hook implementations are called one at a time, so a hook that raises or
    returns something other than :class:`Component` is blamed on its own plugin and the
    rest of the registry is still built.
    """

    def __init__(self, loaded: LoadResult) -> None:
        self.loaded = loaded
        self.entries: list[Entry] = []
        self.problems: list[str] = list(loaded.problems)
        self._warned: set[tuple[str, str]] = set()
        for kind, hook_name in KINDS.items():
            for impl in getattr(loaded.manager.hook, hook_name).get_hookimpls():
                plugin = loaded.plugin_name(impl.plugin)
                self._collect(kind, hook_name, plugin, impl.function)

    def _collect(self, kind: str, hook_name: str, plugin: str, function) -> None:
        try:
            returned = function()
        except Exception as exc:
            self.problems.append(
                f"plugin {plugin!r}: {hook_name}() raised {type(exc).__name__}: {exc}"
            )
            return
        where = f"plugin {plugin!r}: {hook_name}()"
        if returned is None:
            self.problems.append(f"{where} returned None; expected a list of overtone.Component "
                                 f"(does the function end without a return statement?)")
            return
        if isinstance(returned, Component):
            self.problems.append(f"{where} returned a single Component {returned.name!r}; "
                                 f"return a list of them: [Component(...)]")
            return
        try:
            returned = list(returned)
        except TypeError:
            self.problems.append(f"{where} returned {_describe_item(returned)}; expected a list "
                                 f"of overtone.Component")
            return
        version = self.loaded.version_of(plugin)
        for item in returned:
            if not isinstance(item, Component):
                self.problems.append(
                    f"{where} returned {_describe_item(item)} in its list; expected "
                    f"overtone.Component({kind!r}, name, 'module:attr', ...)"
                )
            elif item.kind != kind:
                self.problems.append(
                    f"plugin {plugin!r}: {hook_name}() returned a {item.kind!r} component "
                    f"{item.name!r}; it belongs in {KINDS[item.kind]}()"
                )
            else:
                bad = _bad_default(item)
                if bad:
                    self.problems.append(f"{where}: {bad}")
                self.entries.append(Entry(item, plugin, version))

    # -- queries ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def of_kind(self, kind: str) -> list[Entry]:
        """Entries of one kind, sorted by name."""
        return sorted(
            (e for e in self.entries if e.component.kind == kind),
            key=lambda e: (e.component.name, e.plugin),
        )

    def names(self, kind: str) -> list[str]:
        """Sorted short names of the installed components of ``kind``."""
        return sorted({e.component.name for e in self.entries if e.component.kind == kind})

    @property
    def failures(self) -> list[str]:
        """One line per plugin that failed to load."""
        return [f"plugin {p.name!r}: {p.error}" for p in self.loaded.plugins if not p.ok]

    def _shared(self) -> dict[tuple[str, str], list[Entry]]:
        seen: dict[tuple[str, str], list[Entry]] = {}
        for entry in self.entries:
            seen.setdefault((entry.component.kind, entry.component.name), []).append(entry)
        return {key: found for key, found in seen.items() if len(found) > 1}

    def duplicates(self) -> dict[tuple[str, str], list[Entry]]:
        """Short names that more than one plugin registers and that cannot be resolved.

        A name shared by exactly one first-party plugin and any others is not listed here: it
        resolves to the first-party one (see :meth:`shadowed`).
        """
        return {key: found for key, found in self._shared().items() if _preferred(found) is None}

    def shadowed(self) -> dict[tuple[str, str], tuple[Entry, list[Entry]]]:
        """Short names resolved to the first-party plugin: ``{(kind, name): (used, others)}``."""
        result = {}
        for key, found in self._shared().items():
            preferred = _preferred(found)
            if preferred is not None:
                result[key] = (preferred, [e for e in found if e is not preferred])
        return result

    @property
    def warnings(self) -> list[str]:
        """One line per short name that a third-party plugin shares with a first-party one."""
        return [_shadow_message(used, others) for used, others in self.shadowed().values()]

    def entry(self, kind: str, name: str) -> Entry:
        """Find one entry by short name or qualified id ``<plugin>.<name>``.

        A distribution with several entry points registers as ``<dist>:<entry point>``; its
        components are found as ``<dist>:<entry point>.<name>`` and as ``<dist>.<name>``.
        """
        if kind not in KINDS:
            raise UnknownComponentError(
                f"no component kind {kind!r}; kinds are: {', '.join(KINDS)}"
            )
        of_kind = [e for e in self.entries if e.component.kind == kind]
        found = [e for e in of_kind if e.qualified_id == name] or [
            e for e in of_kind if e.component.name == name
        ] or [  # <distribution>.<name> for a plugin loaded as 'dist:entry-point' (several entry points)
            e for e in of_kind if ":" in e.plugin
            and f"{e.plugin.partition(':')[0]}.{e.component.name}" == name
        ]
        label = kind.replace("_", " ")
        if len(found) > 1:
            preferred = _preferred(found)
            if preferred is not None:
                if (kind, name) not in self._warned:
                    self._warned.add((kind, name))
                    others = [e for e in found if e is not preferred]
                    warnings.warn(_shadow_message(preferred, others), OvertoneWarning, stacklevel=3)
                return preferred
            ids = " and ".join(repr(e.qualified_id) for e in found)
            raise DuplicateComponentError(
                f"{label} {name!r} is registered by more than one plugin: {ids}; "
                f"name one of these qualified ids, or uninstall one plugin"
            )
        if not found:
            raise UnknownComponentError(self._unknown_message(kind, name))
        return found[0]

    def get(self, kind: str, name: str) -> Component:
        """Return the component ``name`` of ``kind``, or raise an error naming the alternatives."""
        return self.entry(kind, name).component

    def _unknown_message(self, kind: str, name: str) -> str:
        label = kind.replace("_", " ")
        installed = self.names(kind)
        if installed:
            message = f"no {label} named {name!r}; installed: {', '.join(installed)}"
            close = difflib.get_close_matches(name, installed, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        else:
            message = (
                f"no {label} named {name!r}; no {label} is installed "
                f"(install a plugin that provides one, then check with 'overtone plugins')"
            )
        if self.failures:
            broken = ", ".join(repr(p.name) for p in self.loaded.plugins if not p.ok)
            message += f"; plugins that failed to load: {broken} (see 'overtone doctor')"
        return message


def _preferred(found: list[Entry]) -> Entry | None:
    """The one first-party entry among several sharing a short name, if there is exactly one."""
    first = [e for e in found if is_first_party(e.plugin)]
    return first[0] if len(first) == 1 else None


def _shadow_message(used: Entry, others: list[Entry]) -> str:
    label = used.component.kind.replace("_", " ")
    ids = " and ".join(repr(e.qualified_id) for e in [used, *others])
    other_ids = " or ".join(repr(e.qualified_id) for e in others)
    return (f"{label} {used.component.name!r} is registered by {ids}; using "
            f"{used.qualified_id!r} (shipped with overtone); name {other_ids} to use the other")


_REGISTRY: Registry | None = None


def registry(*, refresh: bool = False) -> Registry:
    """The registry of every plugin selected by the entry points and the environment (cached)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = Registry(load_plugins())
    return _REGISTRY


def get(kind: str, name: str) -> Component:
    """Shorthand for ``registry().get(kind, name)``."""
    return registry().get(kind, name)
