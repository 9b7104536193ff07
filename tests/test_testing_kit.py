"""overtone.testing: registry_for and the object checkers, on good and broken components."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from overtone import Component, DatasetError, PluginError
from overtone.testing import check_analyzer, check_signal_processor, registry_for
from overtone_core_testing import make_plugin


def test_testing_kit_is_torch_free():
    code = "import sys, overtone.testing; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_registry_for_holds_just_the_given_modules():
    mine = make_plugin("kit_mine", overtone_analyzers=[Component("analyzer", "a", "math:sqrt")])
    reg = registry_for(mine, "overtone_example.plugin")
    assert sorted((e.component.name, e.plugin) for e in reg) == [
        ("a", "kit_mine"), ("demean", "overtone_example.plugin"), ("linreg", "overtone_example.plugin"),
        ("moments", "overtone_example.plugin")]
    with pytest.raises(PluginError, match=r"^kit_bad: invalid hook implementation: .*overtone_losses\(x\)"):
        bad = make_plugin("kit_bad")
        bad.overtone_losses = __import__("overtone").hookimpl(lambda x: [])
        bad.overtone_losses.__name__ = "overtone_losses"
        registry_for(bad)


# -- analyzers -------------------------------------------------------------------------------


def metrics() -> xr.Dataset:
    steps = np.arange(5)
    return xr.Dataset({"train_loss": ("step", np.linspace(2.0, 1.0, 5)),
                       "eval_loss": ("step", [2.0, np.nan, 1.5, np.nan, 1.2])}, coords={"step": steps})


def test_check_analyzer_accepts_the_example(example_registry):
    result = check_analyzer(example_registry.get("analyzer", "moments"), metrics())
    assert float(result["mean"]) == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (lambda ds: {"mean": 1.0}, "analyzer on data returned a dict; expected an xarray.Dataset "
                                   "(build one with xr.Dataset(result))"),
        (lambda ds: ds["train_loss"], "analyzer on data returned an xarray.DataArray; expected an "
                                      "xarray.Dataset (wrap it: result.to_dataset(name='...'))"),
        (lambda ds: 3, "analyzer on data returned an int (3); expected an xarray.Dataset"),
        (lambda ds: ds.rename(step="s") if np.isnan(ds["train_loss"]).any() else 1 / 0,
         "analyzer raised ZeroDivisionError on data: division by zero; raise overtone.DatasetError "
         "with a one-line reason instead"),
    ],
)
def test_check_analyzer_rejects_wrong_products(function, message):
    with pytest.raises(PluginError) as info:
        check_analyzer(function, metrics())
    assert str(info.value) == message


def test_check_analyzer_with_nan_steps():
    def fragile(ds):
        if np.isnan(ds["train_loss"]).any():
            raise RuntimeError("NaN in input")
        return ds.mean("step") if "step" in ds.dims else ds

    with pytest.raises(PluginError) as info:
        check_analyzer(fragile, metrics())
    assert str(info.value) == ("analyzer raised RuntimeError on data with an all-NaN step: NaN in input; "
                               "raise overtone.DatasetError with a one-line reason instead")

    def careful(ds):
        if np.isnan(ds["train_loss"]).any():
            raise DatasetError("train_loss has NaN steps; drop them first")
        return ds.mean("step") if "step" in ds.dims else ds

    assert set(check_analyzer(careful, metrics()).data_vars) == {"train_loss", "eval_loss"}


def test_check_analyzer_refuses_in_place_changes():
    def mutating(ds):
        ds["train_loss"][0] = 0.0
        return ds

    with pytest.raises(PluginError, match="^analyzer changed its input dataset in place; work on a copy$"):
        check_analyzer(mutating, metrics())


# -- signal processors -----------------------------------------------------------------------


def spectra() -> xr.Dataset:
    data = np.arange(12.0).reshape(3, 4)
    return xr.Dataset({"spectra": (("time", "frequency"), data, {"units": "K"})},
                      coords={"frequency": ("frequency", [1.0, 2.0, 3.0, 4.0], {"units": "MHz"})},
                      attrs={"telescope": "FAST"})


def test_check_signal_processor_accepts_the_example(example_registry):
    out = check_signal_processor(example_registry.get("signal_processor", "demean"), spectra())
    np.testing.assert_allclose(out["spectra"].mean("frequency"), 0.0)


def test_check_signal_processor_accepts_what_the_host_accepts():
    """A decimating smoother shortens ``frequency``: ``overtone process`` takes it, so must the kit."""
    out = check_signal_processor(lambda ds: ds.isel(frequency=slice(None, None, 2)), spectra())
    np.testing.assert_array_equal(out["frequency"].values, [1.0, 3.0])


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (lambda ds: ds.assign_attrs(done="x").drop_vars("frequency"),
         "signal processor dropped the input's coordinate 'frequency'; expected its dims, coords and "
         "attrs kept (assign into ds.copy(), or xr.apply_ufunc(..., keep_attrs=True))"),
        (lambda ds: ds.assign_coords(frequency=ds["frequency"] + 0.5),
         "signal processor changed the values of coordinate 'frequency' without resizing it; keep "
         "coords as they are"),
        (lambda ds: ds.assign(spectra=ds["spectra"].T).assign_attrs(done="x"),
         "signal processor changed the dims of 'spectra' from ('time', 'frequency') to "
         "('frequency', 'time'); keep dims as they are"),
        (lambda ds: xr.Dataset(ds.data_vars, ds.coords, attrs={"done": "x"}),
         "signal processor dropped the input's attribute 'telescope'; expected its dims, coords and "
         "attrs kept (assign into ds.copy(), or xr.apply_ufunc(..., keep_attrs=True))"),
        (lambda ds: ds.to_array(), "signal processor on data returned an xarray.DataArray; expected an "
                                   "xarray.Dataset (wrap it: result.to_dataset(name='...'))"),
    ],
)
def test_check_signal_processor_rejects(function, message):
    with pytest.raises(PluginError) as info:
        check_signal_processor(function, spectra())
    assert str(info.value) == message


# -- torch: losses and models ----------------------------------------------------------------


def linear_ce(*, d_in, n_classes, reduction="mean", with_scores=True, ignore=True):
    import torch

    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(n_classes, d_in) / d_in**0.5)

        def forward(self, features, targets):
            scores = features @ self.weight.T
            targets = targets if ignore else targets.clamp(min=0)
            return torch.nn.functional.cross_entropy(scores.reshape(-1, n_classes), targets.reshape(-1),
                                                     ignore_index=-100, reduction=reduction)

    module = Loss()
    if with_scores:
        module.scores = lambda f: f @ module.weight.T
    return module


def test_check_loss_good_and_bad():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    assert check_loss_ok(linear_ce)
    cases = [
        (dict(reduction="none"), "loss: forward(features (6, 8), targets) returned shape (6,); expected a scalar "
                                 "tensor (reduce with .mean())"),
        (dict(with_scores=False), "loss has no scores(features) method; expected one returning "
                                  "(..., n_classes) scores"),
    ]
    from overtone.testing import check_loss

    for kwargs, message in cases:
        with pytest.raises(PluginError) as info:
            check_loss(lambda kwargs=kwargs, **kw: linear_ce(**kw, **kwargs))
        assert str(info.value) == message
    with pytest.raises(PluginError, match=r"^loss: with targets -100 the loss is .* but over the other rows "
                                          r"alone .*; targets -100 must be ignored$"):
        check_loss(lambda **kw: linear_ce(**kw, ignore=False))
    no_scores = Component("loss", "lin", lambda *, d_in, n_classes: linear_ce(d_in=d_in, n_classes=n_classes,
                                                                               with_scores=False))
    with pytest.raises(PluginError, match=r"^loss 'lin' has no scores"):
        check_loss(no_scores)


def check_loss_ok(factory) -> bool:
    from overtone.testing import check_loss

    return check_loss(Component("loss", "lin", factory)) is not None


def vector_model(*, input_spec, d_out=None, width=16, declare=None):
    import torch
    from overtone import ConfigError

    if input_spec["kind"] != "vector":
        raise ConfigError("this model takes vector inputs only")
    module = torch.nn.Sequential(torch.nn.Linear(input_spec["dim"], width), torch.nn.ReLU(),
                                 torch.nn.Linear(width, d_out or width))
    if declare != "nothing":
        module.d_features = declare or d_out or width
    return module


def test_check_model_good_and_bad():
    torch = pytest.importorskip("torch")
    from overtone.testing import check_model

    accepted = check_model(Component("model", "vec", vector_model, params={"width": 16}))
    assert accepted == [{"kind": "vector", "dim": 5, "output": "pooled"}]
    cases = [
        (lambda **kw: (lambda x: x), "model factory returned a lambda; expected a torch.nn.Module"),
        (lambda **kw: None, "model factory returned None; expected a torch.nn.Module"),
        (lambda *, input_spec, d_out: vector_model(input_spec=input_spec, d_out=d_out + 1),
         "model built a module with d_features = 9 when asked for d_out = 8; expected d_features = d_out"),
        (lambda *, input_spec, d_out: vector_model(input_spec=input_spec, d_out=d_out, declare="nothing"),
         "model built a Sequential with d_features = None; expected an int attribute d_features, "
         "the width of its features"),
        (lambda *, input_spec, d_out: vector_model(input_spec=input_spec, d_out=d_out + 1, declare=8),
         "model on vector input (3, 5) (output 'pooled') returned shape (3, 9); expected (3, 8)"),
    ]
    for factory, message in cases:
        with pytest.raises(PluginError) as info:
            check_model(Component("model", "m", factory), input_spec={"kind": "vector", "dim": 5})
        assert str(info.value) == message.replace("model factory", "model 'm' factory").replace(
            "model on", "model 'm' on").replace("model built", "model 'm' built")
    assert check_model(Component("model", "vec", vector_model), d_out=None)  # picks its own width
    with pytest.raises(PluginError) as info:
        check_model(Component("model", "m", vector_model), input_spec={"kind": "tokens", "vocab_size": 4,
                                                                        "seq_len": 3})
    assert str(info.value) == ("model 'm' accepted none of the input specs tried: model 'm': this model "
                               "takes vector inputs only")
    built = vector_model(input_spec={"kind": "vector", "dim": 5}, d_out=8)
    assert check_model(built, input_spec={"kind": "vector", "dim": 5}, d_out=8)
    assert torch.is_grad_enabled()
