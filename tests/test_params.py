"""Param: bounds, list element types, and one validation for configs, --param and create()."""

from __future__ import annotations

import pytest
from overtone import KINDS, Component, ConfigError, Param, PluginError
from overtone.params import check_value, describe_params, format_param, resolve_params
from overtone_core_testing import make_plugin

SPEC = {
    "width": Param(64, min=1, help="hidden width"),
    "rate": Param(0.1, min=0.0, max=1.0),
    "window": Param([0.5, 2.0], items=float, min=0.0, length=2),
    "ranges": Param([[1.0, 2.0]], items=Param(type=list, items=float, length=2)),
    "names": Param(["a"], items=str),
    "cap": Param(None, type=int, min=0),
    "sigma": Param(1.0, min=0.0, exclusive_min=True),
    "dropout": Param(0.0, min=0.0, max=1.0, exclusive_max=True),
    "betas": Param([0.9, 0.999], items=float, min=0.0, max=1.0, exclusive_max=True, length=2),
    "bands": Param([[1.0, 2.0]], items=Param(type=list, items=float, length=2, min=0.0, exclusive_min=True)),
    "steps": Param(10, min=0, max=100, exclusive_min=True, exclusive_max=True),
}


def check(given):
    return resolve_params(given, SPEC, "exp.toml [model] (model 'm')")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"width": 0}, "width = 0 is below the minimum 1; allowed: 1 <= width"),
        ({"rate": 1.5}, "rate = 1.5 is above the maximum 1.0; allowed: 0.0 <= rate <= 1.0"),
        ({"rate": -1}, "rate = -1.0 is below the minimum 0.0; allowed: 0.0 <= rate <= 1.0"),
        ({"window": 3.0}, "window = 3.0 is a single float; expected a list of 2 float, written in "
                          "brackets like the default [0.5, 2.0]"),
        ({"window": [1.0]}, "window = [1.0] has 1 element(s); expected 2"),
        ({"window": [1.0, "x"]}, "window[1] = 'x' has type str; expected float"),
        ({"window": [1.0, -2.0]}, "window[1] = -2.0 is below the minimum 0.0; allowed: 0.0 <= window[1]"),
        ({"ranges": [1.0, 2.0]}, "ranges[0] = 1.0 is a single float; expected a list of 2 float, "
                                 "written in brackets"),
        ({"ranges": [[1.0, 2.0], [3.0]]}, "ranges[1] = [3.0] has 1 element(s); expected 2"),
        ({"ranges": "1-2"}, "ranges = '1-2' is a single str; expected a list of list of 2 float, "
                            "written in brackets like the default [[1.0, 2.0]]"),
        ({"names": ["a", 3]}, "names[1] = 3 has type int; expected str"),
        ({"cap": -1}, "cap = -1 is below the minimum 0; allowed: 0 <= cap"),
        ({"sigma": 0}, "sigma = 0.0 must be above 0.0; allowed: 0.0 < sigma"),
        ({"sigma": -2.5}, "sigma = -2.5 must be above 0.0; allowed: 0.0 < sigma"),
        ({"sigma": "x"}, "sigma = 'x' has type str; expected float"),
        ({"dropout": 1}, "dropout = 1.0 must be below 1.0; allowed: 0.0 <= dropout < 1.0"),
        ({"dropout": -0.5}, "dropout = -0.5 is below the minimum 0.0; allowed: 0.0 <= dropout < 1.0"),
        ({"betas": [0.9, 1.0]}, "betas[1] = 1.0 must be below 1.0; allowed: 0.0 <= betas[1] < 1.0"),
        ({"betas": [-0.1, 0.5]}, "betas[0] = -0.1 is below the minimum 0.0; allowed: 0.0 <= betas[0] < 1.0"),
        ({"bands": [[1.0, 2.0], [0.0, 1.0]]}, "bands[1][0] = 0.0 must be above 0.0; allowed: 0.0 < bands[1][0]"),
        ({"steps": 0}, "steps = 0 must be above 0; allowed: 0 < steps < 100"),
        ({"steps": 100}, "steps = 100 must be below 100; allowed: 0 < steps < 100"),
        ({"steps": float("nan")}, "steps = nan has type float; expected int"),
    ],
)
def test_bounds_and_list_elements(given, message):
    with pytest.raises(ConfigError) as info:
        check(given)
    assert str(info.value) == f"exp.toml [model] (model 'm'): {message}"


def test_good_values_pass_and_are_widened():
    resolved = check({"width": 1, "rate": 1, "window": [0, 3], "ranges": [[0, 1], (2, 3.5)], "cap": 0})
    defaults = {key: SPEC[key].default for key in ("sigma", "dropout", "betas", "bands", "steps")}
    assert resolved == {"width": 1, "rate": 1.0, "window": [0.0, 3.0], "ranges": [[0.0, 1.0], (2.0, 3.5)],
                        "names": ["a"], "cap": 0, **defaults}
    assert all(isinstance(v, float) for v in resolved["window"])
    # None stays "not set" for a None default, whatever the type
    assert check_value("cap", None, SPEC["cap"], "x") is None


def test_exclusive_bounds_accept_what_is_strictly_inside_and_inclusive_sides_their_bound():
    resolved = check({"sigma": 1e-300, "dropout": 0, "betas": [0, 0.999999], "bands": [[5e-324, 1.0]],
                      "steps": 1})
    assert resolved["sigma"] == 1e-300 and resolved["dropout"] == 0.0 and resolved["betas"] == [0.0, 0.999999]
    assert resolved["bands"] == [[5e-324, 1.0]] and resolved["steps"] == 1
    assert check({"steps": 99})["steps"] == 99
    with pytest.raises(ConfigError, match=r"sigma = nan must be above 0.0"):
        check({"sigma": float("nan")})


def test_bad_declarations_are_refused():
    with pytest.raises(ValueError, match="min 2 is greater than max 1"):
        Param(1, min=2, max=1)
    with pytest.raises(ValueError, match="put min/max on the element Param"):
        Param([[1, 2]], items=Param(type=list), min=0)
    with pytest.raises(ValueError, match="exclusive_min=True needs min="):
        Param(1.0, exclusive_min=True)
    with pytest.raises(ValueError, match="exclusive_max=True needs max="):
        Param(1.0, min=0.0, exclusive_max=True)
    with pytest.raises(ValueError, match="an exclusive bound at min = max = 1 allows no value"):
        Param(1, min=1, max=1, exclusive_max=True)
    assert Param(1, min=1, max=1).max == 1  # inclusive on both sides: one value, allowed


def test_describe_params_shows_bounds():
    described = describe_params(SPEC)
    assert described["width"] == {"default": 64, "min": 1, "range": "1 <= width", "help": "hidden width"}
    assert described["window"] == {"default": [0.5, 2.0], "type": "list of 2 float", "min": 0.0,
                                   "length": 2, "range": "0.0 <= each element of window"}
    assert described["ranges"]["type"] == "list of list of 2 float"
    assert format_param("width", described["width"]) == "width = 64  range: 1 <= width  hidden width"
    assert described["sigma"] == {"default": 1.0, "min": 0.0, "exclusive_min": True, "range": "0.0 < sigma"}
    assert described["dropout"] == {"default": 0.0, "min": 0.0, "max": 1.0, "exclusive_max": True,
                                    "range": "0.0 <= dropout < 1.0"}
    assert described["betas"]["range"] == "0.0 <= each element of betas < 1.0"
    assert described["betas"]["exclusive_max"] is True and "exclusive_min" not in described["betas"]
    assert described["steps"]["range"] == "0 < steps < 100"
    assert format_param("dropout", described["dropout"]) == "dropout = 0.0  range: 0.0 <= dropout < 1.0"


def make_width(*, input_spec=None, d_out=1, width=64, act="relu", dropout=0.0):
    if act == "tanh" and width > 100:
        raise ConfigError("act = 'tanh' needs width <= 100")
    return {"input_spec": input_spec, "d_out": d_out, "width": width, "act": act, "dropout": dropout}


MODEL = Component("model", "mlp", make_width, params={
    "width": Param(64, min=1), "act": Param("relu", choices=("relu", "tanh")),
    "dropout": Param(0.0, min=0.0, max=1.0, exclusive_max=True)})


def test_create_validates_like_a_config():
    assert MODEL.create(input_spec={"kind": "vector"}, d_out=3) == {
        "input_spec": {"kind": "vector"}, "d_out": 3, "width": 64, "act": "relu", "dropout": 0.0}
    with pytest.raises(ConfigError) as info:
        MODEL.create(input_spec={}, d_out=3, width=0)
    assert str(info.value) == "model 'mlp': width = 0 is below the minimum 1; allowed: 1 <= width"
    with pytest.raises(ConfigError) as info:
        MODEL.create(d_out=3, widht=3)
    assert str(info.value) == "model 'mlp': unknown key 'widht'; allowed keys: act, dropout, width (did you mean 'width'?)"
    with pytest.raises(ConfigError) as info:
        MODEL.create(dropout=1)
    assert str(info.value) == "model 'mlp': dropout = 1.0 must be below 1.0; allowed: 0.0 <= dropout < 1.0"
    assert MODEL.create(dropout=0)["dropout"] == 0.0  # the inclusive side takes its bound


def test_factory_config_errors_get_the_host_prefix():
    with pytest.raises(ConfigError) as info:
        MODEL.create(width=200, act="tanh")
    assert str(info.value) == "model 'mlp': act = 'tanh' needs width <= 100"
    with pytest.raises(ConfigError) as info:
        MODEL.create_at("exp.toml [model]", width=200, act="tanh")
    assert str(info.value) == "exp.toml [model] (model 'mlp'): act = 'tanh' needs width <= 100"
    with pytest.raises(ConfigError) as info:
        MODEL.create_at("exp.toml [model]", width=-2)
    assert str(info.value) == "exp.toml [model] (model 'mlp'): width = -2 is below the minimum 1; allowed: 1 <= width"


def test_bound_violated_from_a_config_and_from_param():
    from overtone.config import resolve_component
    from overtone.pipeline import build_steps

    with pytest.raises(ConfigError) as info:
        resolve_component(_registry_with(MODEL), "model", {"name": "mlp", "width": 0}, "exp.toml [model]")
    assert str(info.value) == ("exp.toml [model] (model 'mlp'): width = 0 is below the minimum 1; "
                               "allowed: 1 <= width")
    smooth = Component("signal_processor", "smooth", lambda width=5: None,
                       params={"width": Param(5, min=3, help="window (channels)")})
    with pytest.raises(ConfigError) as info:
        build_steps(_registry_with(smooth), "signal_processor", ["smooth"], ["width=1"])
    assert str(info.value) == ("--param for 'smooth': width = 1 is below the minimum 3; "
                               "allowed: 3 <= width")


def test_exclusive_bound_violated_from_a_config_and_from_param():
    from overtone.config import resolve_component
    from overtone.pipeline import build_steps

    with pytest.raises(ConfigError) as info:
        resolve_component(_registry_with(MODEL), "model", {"name": "mlp", "dropout": 1.0}, "exp.toml [model]")
    assert str(info.value) == ("exp.toml [model] (model 'mlp'): dropout = 1.0 must be below 1.0; "
                               "allowed: 0.0 <= dropout < 1.0")
    smooth = Component("signal_processor", "smooth", lambda sigma=1.0: None,
                       params={"sigma": Param(1.0, min=0.0, exclusive_min=True, help="kernel width")})
    with pytest.raises(ConfigError) as info:
        build_steps(_registry_with(smooth), "signal_processor", ["smooth"], ["sigma=0"])
    assert str(info.value) == "--param for 'smooth': sigma = 0.0 must be above 0.0; allowed: 0.0 < sigma"


def _registry_with(*components):
    from overtone.testing import registry_for

    by_kind = {}
    for c in components:
        by_kind.setdefault(KINDS[c.kind], []).append(c)
    return registry_for(make_plugin("mine", **by_kind))


def _plugin(component):
    return make_plugin("p", **{KINDS[component.kind]: [component]})


def test_check_plugin_compares_params_with_the_factory_signature():
    from overtone.testing import check_plugin

    def analyzer(variable="x"):
        return lambda ds: ds

    def needs(*, d_in, n_classes, gamma):
        return None

    extra = Component("analyzer", "a", analyzer, params={"variable": "x", "dim": "step"})
    with pytest.raises(PluginError) as info:
        check_plugin(_plugin(extra))
    assert str(info.value).startswith("analyzer 'a': factory ")
    assert str(info.value).endswith("does not accept declared parameter(s) dim; add them to the factory "
                                    "or remove them from params")
    no_host = Component("loss", "l", analyzer, params={"variable": "x"})
    with pytest.raises(PluginError, match=r"does not accept d_in, n_classes, which the host passes to "
                                          r"every loss factory \(see docs/hooks.md\)$"):
        check_plugin(_plugin(no_host))
    undeclared = Component("loss", "l", needs)
    with pytest.raises(PluginError, match=r"needs 'gamma', which is not declared in params; declare it "
                                          r"\(Param\(\.\.\., required=True\)\) or give it a default$"):
        check_plugin(_plugin(undeclared))
    bad_bound = Component("analyzer", "b", analyzer, params={"variable": Param(-1, type=int, min=0)})
    with pytest.raises(PluginError, match="analyzer 'b': the default of 'variable' fails its own Param: "
                                          "variable = -1 is below the minimum 0"):
        check_plugin(_plugin(bad_bound))
    at_strict = Component("analyzer", "c", analyzer, params={"variable": Param(0.0, min=0.0, exclusive_min=True)})
    with pytest.raises(PluginError, match="analyzer 'c': the default of 'variable' fails its own Param: "
                                          "variable = 0.0 must be above 0.0"):
        check_plugin(_plugin(at_strict))


def test_ints_widened_only_where_int_is_not_declared():
    assert check_value("lr", 1, Param(0.5), "x") == 1.0 and isinstance(check_value("lr", 1, Param(0.5), "x"), float)
    assert isinstance(check_value("lr", 1, Param(None, type=float), "x"), float)
    kept = check_value("n", 3, Param(None, type=(float, int)), "x")
    assert kept == 3 and isinstance(kept, int)
