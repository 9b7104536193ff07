"""Plugin loading and the registry: isolation, restriction, duplicates, lookups."""

from __future__ import annotations

import overtone_core_testing
import pytest
from overtone import Component, DuplicateComponentError, UnknownComponentError
from overtone.errors import OvertoneWarning
from overtone.plugins import load_plugins
from overtone.registry import Registry
from overtone_core_testing import FakeDist, FakeEntryPoint, make_plugin

#: where FakeEntryPoint.load raises a plugin's import error (the line a load failure names)
RAISE_LINE = next(number for number, text in enumerate(open(overtone_core_testing.__file__), 1)
                  if "raise self.error" in text)


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
        "plugin 'overtone-bad': import of 'overtone_bad.plugin' failed: ImportError: No module named 'nonexistent' "
        f"(at {overtone_core_testing.__file__}:{RAISE_LINE})"
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
        "plugin 'overtone-j': overtone_losses() returned 'not a component' (str) in its list; expected "
        "overtone.Component('loss', name, 'module:attr', ...)",
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
        "plugin 'no_such_module_x': OVERTONE_PLUGINS names 'no_such_module_x', which is not importable "
        "(No module named 'no_such_module_x'); the module must be on PYTHONPATH or installed"
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
    from overtone import Param, PluginError
    from overtone.testing import check_plugin
    from overtone_core_testing import make_plugin

    assert {c.name for c in check_plugin(example)} == {"linreg", "moments", "demean"}
    bad_default = make_plugin("bd", overtone_losses=[Component("loss", "x", "math:sqrt", params={"n": Param("2", type=int)})])
    with pytest.raises(PluginError, match="the default of 'n' fails its own Param"):
        check_plugin(bad_default)
    with pytest.raises(PluginError, match="registers no component"):
        check_plugin(make_plugin("empty"))


# -- name clashes: first-party names win, third-party clashes stay errors ----------------------


def clash_registry(fake_entry_points, *dists):
    for dist in dists:
        fake_entry_points.append(FakeEntryPoint(dist, make_plugin(dist, overtone_losses=[loss("cross-entropy")]),
                                                FakeDist(dist)))
    return registry_of()


def test_first_party_name_wins_with_a_warning(fake_entry_points):
    reg = clash_registry(fake_entry_points, "overtone-zloss", "overtone-torch")
    with pytest.warns(OvertoneWarning) as caught:
        entry = reg.entry("loss", "cross-entropy")
    assert entry.qualified_id == "overtone-torch.cross-entropy"
    assert [str(w.message) for w in caught] == [
        "loss 'cross-entropy' is registered by 'overtone-torch.cross-entropy' and "
        "'overtone-zloss.cross-entropy'; using 'overtone-torch.cross-entropy' (shipped with overtone); "
        "name 'overtone-zloss.cross-entropy' to use the other"
    ]
    assert reg.entry("loss", "overtone-zloss.cross-entropy").plugin == "overtone-zloss"
    assert reg.duplicates() == {}
    assert reg.warnings == [str(caught[0].message)]
    assert list(reg.shadowed()) == [("loss", "cross-entropy")]


def test_two_third_party_plugins_claiming_one_name_stay_an_error(fake_entry_points):
    reg = clash_registry(fake_entry_points, "overtone-zloss", "overtone-other")
    with pytest.raises(DuplicateComponentError) as info:
        reg.get("loss", "cross-entropy")
    assert str(info.value) == (
        "loss 'cross-entropy' is registered by more than one plugin: 'overtone-other.cross-entropy' and "
        "'overtone-zloss.cross-entropy'; name one of these qualified ids, or uninstall one plugin"
    )
    assert list(reg.duplicates()) == [("loss", "cross-entropy")] and reg.warnings == []


def test_config_keeps_working_when_a_plugin_shadows_a_builtin(fake_entry_points):
    from overtone.config import resolve_component

    reg = clash_registry(fake_entry_points, "overtone-torch", "overtone-zloss")
    with pytest.warns(OvertoneWarning, match="using 'overtone-torch.cross-entropy'"):
        component, params = resolve_component(reg, "loss", {"name": "cross-entropy"}, "exp.toml [loss]")
    assert reg.entry("loss", "overtone-torch.cross-entropy").component is component


def test_check_plugin_warns_about_shadowed_installed_names(fake_entry_points):
    from overtone.testing import check_plugin

    installed = clash_registry(fake_entry_points, "overtone-torch")
    mine = make_plugin("my_plugin", overtone_losses=[Component("loss", "cross-entropy", lambda *, d_in, n_classes: 0)])
    with pytest.warns(OvertoneWarning) as caught:
        check_plugin(mine, installed=installed)
    assert [str(w.message) for w in caught] == [
        "loss 'cross-entropy' shares its name with installed 'overtone-torch.cross-entropy'; where both are "
        "installed, configs naming 'cross-entropy' get the one shipped with overtone (or fail when neither "
        "is), so pick a distinct name"
    ]


def test_cli_lists_shadowed_names_as_warnings(tmp_path):
    import json
    import textwrap

    from overtone_core_testing import run_cli

    (tmp_path / "shadow_plugin.py").write_text(textwrap.dedent("""
        from overtone import Component, hookimpl

        @hookimpl
        def overtone_analyzers():
            return [Component("analyzer", "moments", "math:sqrt")]
    """))
    env = {"OVERTONE_PLUGINS": "overtone_example.plugin,shadow_plugin",
           "PYTHONPATH": f"{tmp_path}:{__import__('os').environ.get('PYTHONPATH', '')}"}
    listing = json.loads(run_cli("plugins", "--json", **env).stdout)
    # neither module ships with overtone: the clash stays a problem, not a warning
    assert listing["warnings"] == [] and listing["problems"] == [
        "analyzer 'moments' is registered by 'overtone_example.plugin.moments' and "
        "'shadow_plugin.moments'; configs must name a qualified id"]


def test_cli_warns_when_a_plugin_shadows_an_installed_first_party_name(tmp_path):
    import json
    import os
    from importlib.metadata import entry_points

    from overtone_core_testing import run_cli

    if not any(ep.dist and ep.dist.name == "overtone-torch" for ep in entry_points(group="overtone")):
        pytest.skip("needs overtone-torch installed (tox env py311-all)")
    (tmp_path / "zloss_plugin.py").write_text(
        "from overtone import Component, hookimpl\n\n\n@hookimpl\ndef overtone_losses():\n"
        "    return [Component('loss', 'cross-entropy', 'math:sqrt')]\n")
    env = {"OVERTONE_PLUGINS": "zloss_plugin", "OVERTONE_LOAD_PLUGINS": "overtone-torch",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    listing = json.loads(run_cli("plugins", "--json", **env).stdout)
    assert listing["problems"] == [] and listing["warnings"] == [
        "loss 'cross-entropy' is registered by 'overtone-torch.cross-entropy' and "
        "'zloss_plugin.cross-entropy'; using 'overtone-torch.cross-entropy' (shipped with overtone); "
        "name 'zloss_plugin.cross-entropy' to use the other"]
    assert "warning: loss 'cross-entropy' is registered by" in run_cli("doctor", **env).stdout


def test_first_party_names():
    from overtone.registry import is_first_party

    assert is_first_party("overtone-torch") and is_first_party("overtone-radio:readers")
    assert is_first_party("overtone_dynamics.plugin")
    assert not is_first_party("overtone-zloss") and not is_first_party("overtone_example.plugin")


def test_a_module_installed_and_named_in_overtone_plugins_loads_once(fake_entry_points):
    import overtone_example.plugin as example

    fake_entry_points.append(FakeEntryPoint("example", example, FakeDist("overtone-example", "1.0")))
    result = load_plugins(environ={"OVERTONE_PLUGINS": "overtone_example.plugin"})
    assert [(r.name, r.error) for r in result.plugins] == [("overtone-example", None)]
    reg = Registry(result)
    assert reg.names("engine") == ["linreg"] and not reg.failures
