"""Plugin loading and the registry: isolation, restriction, duplicates, lookups."""

from __future__ import annotations

import pytest
from conftest import FakeDist, FakeEntryPoint, make_plugin
from overtone import Component, DuplicateComponentError, UnknownComponentError
from overtone.plugins import load_plugins
from overtone.registry import Registry


def loss(name: str) -> Component:
    return Component("loss", name, "math:sqrt", f"the {name} loss")


def registry_of(**kwargs) -> Registry:
    return Registry(load_plugins(environ={}, **kwargs))


def test_components_from_entry_points(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("a", make_plugin("a", overtone_losses=[loss("harmonic"), loss("mse")]), FakeDist("overtone-a", "2.0")))
    reg = registry_of()
    assert reg.names("loss") == ["harmonic", "mse"]
    entry = reg.entry("loss", "mse")
    assert (entry.plugin, entry.version, entry.qualified_id) == ("overtone-a", "2.0", "overtone-a.mse")


def test_unknown_component_lists_installed_and_suggests(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("a", make_plugin("a", overtone_losses=[loss("cross-entropy"), loss("harmonic"), loss("mse")])))
    with pytest.raises(UnknownComponentError) as info:
        registry_of().get("loss", "harmnic")
    assert str(info.value) == (
        "no loss named 'harmnic'; installed: cross-entropy, harmonic, mse (did you mean 'harmonic'?)"
    )


def test_unknown_when_none_installed(fake_entry_points):
    with pytest.raises(UnknownComponentError) as info:
        registry_of().get("signal_processor", "fft")
    assert str(info.value).startswith("no signal processor named 'fft'; no signal processor is installed")


def test_broken_plugin_is_isolated_and_named(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("bad", None, FakeDist("overtone-bad"), ImportError("No module named 'nonexistent'")))
    fake_entry_points.append(FakeEntryPoint("good", make_plugin("good", overtone_losses=[loss("mse")]), FakeDist("overtone-good")))
    reg = registry_of()
    assert reg.names("loss") == ["mse"]
    assert reg.failures == [
        "plugin 'overtone-bad': import of 'overtone_bad.plugin' failed: ImportError: No module named 'nonexistent'"
    ]
    with pytest.raises(UnknownComponentError, match="plugins that failed to load: 'overtone-bad'"):
        reg.get("loss", "harmonic")


def test_hook_that_raises_or_returns_junk_is_blamed_on_its_plugin(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("r", make_plugin("r", overtone_losses=RuntimeError("boom")), FakeDist("overtone-r")))
    fake_entry_points.append(FakeEntryPoint("j", make_plugin("j", overtone_losses=["not a component", Component("model", "m", "math:sqrt")]), FakeDist("overtone-j")))
    fake_entry_points.append(FakeEntryPoint("g", make_plugin("g", overtone_losses=[loss("mse")]), FakeDist("overtone-g")))
    reg = registry_of()
    assert reg.names("loss") == ["mse"]
    assert reg.problems == [
        "plugin 'overtone-j': overtone_losses() returned 'not a component' (str); expected overtone.Component",
        "plugin 'overtone-j': overtone_losses() returned a 'model' component 'm'; it belongs in overtone_models()",
        "plugin 'overtone-r': overtone_losses() raised RuntimeError: boom",
    ]


def test_invalid_hook_implementation_is_unregistered(fake_entry_points):
    import types

    from overtone import hookimpl

    module = types.ModuleType("wrongargs")

    @hookimpl
    def overtone_losses(unexpected):  # the spec takes no arguments
        return [loss("x")]

    module.overtone_losses = overtone_losses
    unknown = types.ModuleType("unknownhook")

    @hookimpl
    def overtone_lossez():
        return []

    unknown.overtone_lossez = overtone_lossez
    fake_entry_points.append(FakeEntryPoint("w", module, FakeDist("overtone-w")))
    fake_entry_points.append(FakeEntryPoint("u", unknown, FakeDist("overtone-u")))
    fake_entry_points.append(FakeEntryPoint("g", make_plugin("g", overtone_losses=[loss("mse")]), FakeDist("overtone-g")))
    reg = registry_of()
    assert reg.names("loss") == ["mse"]
    failures = "\n".join(reg.failures)
    assert "plugin 'overtone-u': invalid hook implementation" in failures and "overtone_lossez" in failures
    assert "plugin 'overtone-w': invalid hook implementation" in failures and "unexpected" in failures


def test_duplicate_names_both_distributions(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("a", make_plugin("a", overtone_losses=[loss("harmonic")]), FakeDist("overtone-a")))
    fake_entry_points.append(FakeEntryPoint("b", make_plugin("b", overtone_losses=[loss("harmonic"), loss("mse")]), FakeDist("overtone-b")))
    reg = registry_of()
    assert reg.get("loss", "mse").name == "mse"  # one stray duplicate does not break the rest
    with pytest.raises(DuplicateComponentError) as info:
        reg.get("loss", "harmonic")
    assert str(info.value) == (
        "loss 'harmonic' is registered by more than one plugin: 'overtone-a.harmonic' and "
        "'overtone-b.harmonic'; name one of these qualified ids, or uninstall one plugin"
    )
    assert reg.entry("loss", "overtone-b.harmonic").plugin == "overtone-b"


def test_load_plugins_restriction(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("a", make_plugin("a", overtone_losses=[loss("one")]), FakeDist("Overtone_A")))
    fake_entry_points.append(FakeEntryPoint("b", make_plugin("b", overtone_losses=[loss("two")]), FakeDist("overtone-b")))
    assert Registry(load_plugins(environ={"OVERTONE_LOAD_PLUGINS": "overtone-a"})).names("loss") == ["one"]
    assert Registry(load_plugins(environ={"OVERTONE_LOAD_PLUGINS": ""})).names("loss") == []
    assert Registry(load_plugins(environ={})).names("loss") == ["one", "two"]
    missing = Registry(load_plugins(environ={"OVERTONE_LOAD_PLUGINS": "overtone-a,overtone-zzz"}))
    assert missing.problems == [
        "OVERTONE_LOAD_PLUGINS names 'overtone-zzz', but no installed distribution provides an "
        "'overtone' entry point by that name"
    ]


def test_overtone_plugins_env_loads_modules(fake_entry_points):
    reg = Registry(load_plugins(environ={"OVERTONE_PLUGINS": "overtone_example.plugin, no_such_module_x"}))
    assert reg.names("engine") == ["linreg"]
    assert reg.failures == [
        "plugin 'no_such_module_x': import failed: ModuleNotFoundError: No module named 'no_such_module_x'"
    ]


def test_lazy_factory_errors():
    from overtone import ComponentUnavailableError

    with pytest.raises(ComponentUnavailableError, match="importing 'no_such_pkg.mod' failed \\(No module named 'no_such_pkg'\\)"):
        Component("loss", "x", "no_such_pkg.mod:Thing").load()
    with pytest.raises(ComponentUnavailableError, match="has no attribute 'nope'"):
        Component("loss", "x", "math:nope").load()
    assert Component("loss", "x", "math:sqrt").create(9.0) == 3.0


def test_component_validation():
    with pytest.raises(ValueError, match="kind 'lossy' is not one of"):
        Component("lossy", "x", "math:sqrt")
    with pytest.raises(ValueError, match="must be a callable or a 'module:attr' string"):
        Component("loss", "x", "math.sqrt")


def test_unknown_kind(example_registry):
    with pytest.raises(UnknownComponentError, match="no component kind 'losses'; kinds are: loss"):
        example_registry.get("losses", "x")


def test_contract_check_accepts_example_and_rejects_broken():
    import overtone_example.plugin as example
    from conftest import make_plugin
    from overtone import Param, PluginError
    from overtone.testing import check_plugin

    assert {c.name for c in check_plugin(example)} == {"linreg", "moments", "demean"}
    bad_default = make_plugin("bd", overtone_losses=[Component("loss", "x", "math:sqrt", params={"n": Param("2", type=int)})])
    with pytest.raises(PluginError, match="default of parameter 'n' fails its own check"):
        check_plugin(bad_default)
    with pytest.raises(PluginError, match="registers no component"):
        check_plugin(make_plugin("empty"))
