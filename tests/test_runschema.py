"""The run schema: probe layout, provenance, and the helpers engines and analyzers share."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import numpy as np
import pytest
import xarray as xr
from overtone import DatasetError, runschema
from overtone.io import open_dataset, write_dataset
from overtone.runschema import (
    add_history,
    complete_steps,
    drop_unrecorded_steps,
    history_entries,
    pick_variable,
    recorded_steps,
)

RNG = np.random.default_rng(0)


def probes() -> xr.Dataset:
    """Embeddings at steps 10, 20, 30; hidden at 15, 30 (NaN elsewhere), as probes.nc holds them."""
    steps = [10, 15, 20, 30]
    emb = RNG.normal(size=(4, 5, 3)).astype(np.float32)
    emb[1] = np.nan
    hid = RNG.normal(size=(4, 6, 2))
    hid[[0, 2]] = np.nan
    return xr.Dataset({"embeddings": (("step", "token", "embed_dim"), emb),
                       "hidden": (("step", "sample", "feature"), hid),
                       "labels": ("sample", np.arange(6) % 2)},
                      coords={"step": steps})


def test_import_does_not_load_xarray_or_numpy():
    code = ("import sys, overtone.runschema as r; r.weight_dims('a.b', 3); "
            "assert 'xarray' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_probe_kinds_name_declared_variables():
    for kind, names in runschema.PROBE_KINDS.items():
        for name in names:
            assert runschema.PROBE_VARIABLES[name].name == name, kind
    assert runschema.PROBE_VARIABLES["embeddings"].stored_dims == ("step", "token", "embed_dim")
    assert runschema.PROBE_VARIABLES["labels"].stored_dims == ("sample",)
    assert runschema.PROBE_VARIABLES["outputs"].attrs["output"] == "probabilities"
    assert set(runschema.PROBE_KINDS) == {"embeddings", "hidden", "outputs", "predictions", "weights"}
    assert runschema.PROBE_VARIABLES["predictions"].stored_dims == ("step", "eval_sample", "output")
    assert runschema.PROBE_VARIABLES["inputs"].stored_dims == ("eval_sample", "input_dim")
    assert all(units for _, units in runschema.METRICS.values())


def test_weight_names_and_dims():
    assert runschema.weight_variable("model.layers.0.weight") == "weight_model_layers_0_weight"
    assert runschema.weight_dims("loss.weight", 2) == ("loss_weight_out", "loss_weight_in")
    assert runschema.weight_dims("attn.qkv", 3) == ("attn_qkv_dim0", "attn_qkv_dim1", "attn_qkv_dim2")
    assert runschema.weight_dims("bias", 1) == ("bias_dim0",)
    assert runschema.weight_attrs("loss.weight")["parameter"] == "loss.weight"


@pytest.mark.parametrize("dtypes", [("float16",), ("float32", "float16"), ("float64",),
                                    ("float32", "float64"), ("float16", "float64")])
def test_accumulation_dtype_matches_numpy_promotion(dtypes):
    # reference: NumPy's promotion with float32 as the floor (float64 wins, half goes up to float32)
    expected = np.result_type(np.float32, *[np.dtype(d) for d in dtypes]).name
    assert runschema.accumulation_dtype_name(*dtypes) == expected
    assert runschema.accumulation_dtype_name(*[f"torch.{d}" for d in dtypes]) == expected


def test_accumulation_dtype_bfloat16():
    assert runschema.accumulation_dtype_name("torch.bfloat16") == "float32"
    assert runschema.accumulation_dtype_name("torch.bfloat16", "torch.float64") == "float64"


def test_history_round_trips_through_netcdf(tmp_path):
    ds = xr.Dataset({"x": ("step", [1.0, 2.0])}, attrs={"history": "made by hand"})
    add_history(ds, {"component": "dse", "kind": "analyzer", "plugin": "overtone-dynamics",
                     "version": "0.1.0", "params": {"sigma": 10.0, "t": 1}, "input": "hidden"})
    add_history(ds, {"component": "running-median", "params": {"window": [3, 5]}})
    path = write_dataset(ds, tmp_path / "h.nc")
    with open_dataset(path) as back:
        entries = history_entries(back)
    assert entries[0] == {"text": "made by hand"}
    assert entries[1]["component"] == "dse" and entries[1]["params"] == {"sigma": 10.0, "t": 1}
    assert (entries[1]["plugin"], entries[1]["version"], entries[1]["input"]) == ("overtone-dynamics", "0.1.0",
                                                                                  "hidden")
    assert entries[2]["params"] == {"window": [3, 5]}
    assert datetime.fromisoformat(entries[2]["time"]).utcoffset().total_seconds() == 0
    with pytest.raises(ValueError, match="needs a 'component'"):
        add_history(ds, {"plugin": "x"})


def test_recorded_steps_is_all_nan_per_step():
    ds = probes()
    # reference: a step is recorded unless every value is NaN
    expected = ~np.isnan(ds["hidden"].values).reshape(4, -1).all(axis=1)
    np.testing.assert_array_equal(recorded_steps(ds["hidden"]), expected)
    np.testing.assert_array_equal(recorded_steps(ds["hidden"]), [False, True, False, True])
    assert recorded_steps(ds["labels"].expand_dims(step=4)).all()  # integers: every step


def test_complete_steps_for_one_variable_and_for_all():
    ds = probes()
    emb = complete_steps(ds, "embeddings")
    assert emb.step.values.tolist() == [10, 20, 30]
    assert sorted(emb.data_vars) == ["embeddings", "labels"]  # hidden left out, step-free labels kept
    assert complete_steps(ds, "hidden").step.values.tolist() == [15, 30]
    assert complete_steps(ds).step.values.tolist() == [30]  # every probe recorded
    assert complete_steps(ds, "not-there").step.values.tolist() == [30]
    # dask-backed (as a probes.nc read lazily): the same steps
    lazy = complete_steps(ds.chunk({"step": 1}), "hidden")
    xr.testing.assert_identical(lazy.compute(), complete_steps(ds, "hidden"))


def test_a_nan_inside_a_recorded_step_is_kept():
    ds = probes()
    ds["hidden"][3, 0, 0] = np.nan  # a diverged value: data, not a missing probe
    assert complete_steps(ds, "hidden").step.values.tolist() == [15, 30]


def test_drop_unrecorded_steps():
    ds = probes()
    assert drop_unrecorded_steps(ds["hidden"], "dse").step.values.tolist() == [15, 30]
    labels = ds["labels"]
    assert drop_unrecorded_steps(labels, "dse") is labels
    with pytest.raises(DatasetError, match=r"^dse: 'hidden' is NaN at every step; nothing to analyze$"):
        drop_unrecorded_steps(ds["hidden"] * np.nan, "dse")


def test_pick_variable():
    ds = probes().assign(weight_b=("x", [1.0]), weight_a=("x", [2.0]))
    assert pick_variable(ds, None, runschema.REPRESENTATIONS, "pca").name == "hidden"
    assert pick_variable(ds, "embeddings", runschema.REPRESENTATIONS, "pca").name == "embeddings"
    assert pick_variable(ds, None, [], "condensation", prefix="weight_").name == "weight_a"
    assert pick_variable(ds["labels"], None, [], "x").name == "labels"
    with pytest.raises(DatasetError, match=r"^pca: no variable 'hiden' in the dataset; it has: .*set variable="):
        pick_variable(ds, "hiden", [], "pca")
    with pytest.raises(DatasetError, match=r"^f: found none of the variables outputs, output in the dataset"):
        pick_variable(ds, None, ["outputs", "output"], "f")
    with pytest.raises(DatasetError, match="expected an xarray.Dataset, got list"):
        pick_variable([1], None, [], "f")


def test_the_docs_page_declares_what_the_module_does():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "run-schema.md").read_text()
    for name in (*runschema.PROBE_VARIABLES, *runschema.PROBE_KINDS, *runschema.REPRESENTATIONS):
        assert f"`{name}`" in text, name
    for helper in ("complete_steps", "recorded_steps", "drop_unrecorded_steps", "pick_variable",
                   "accumulation_dtype_name", "add_history", "history_entries", "weight_dims"):
        assert f"{helper}(" in text, helper
    assert "run-schema.md" in (Path(__file__).parents[1] / "mkdocs.yml").read_text()
