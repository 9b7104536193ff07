"""ProbeRecorder: each step on disk as it is taken, nothing kept in memory, resume cuts back."""

from __future__ import annotations

import numpy as np
import torch
from overtone.io import open_dataset
from overtone.runschema import history_entries


class Task:
    def token_labels(self):
        return None

    def describe(self):
        return {"task": "fake", "p": 5}


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torch.nn.Module()
        self.model.token_embedding = torch.nn.Embedding(5, 3)
        self.model.layer = torch.nn.Linear(3, 2)


def recorder(tmp_path, keep_upto=0):
    from overtone_torch.probes import ProbeRecorder

    probes = [{"kind": "embeddings", "every": 2},
              {"kind": "weights", "every": 3, "names": ["model.layer.weight", "model.layer.bias"]}]
    return ProbeRecorder(probes, Task(), tmp_path, total_steps=9, keep_upto=keep_upto)


def train_one(net):
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)


def test_each_step_is_on_disk_when_recorded(tmp_path):
    net, rec, seen = Net(), recorder(tmp_path), {}
    sizes = {k: len(v) for k, v in vars(rec).items() if hasattr(v, "__len__")}
    for step in range(1, 10):
        train_one(net)
        if rec.due(step):
            rec.record(step, net)
            seen[step] = net.model.token_embedding.weight.detach().numpy().copy()
            with open_dataset(tmp_path / "probes.nc") as ds:  # no write() yet: already there
                assert ds.step.values.tolist()[-1] == step
    assert sizes == {k: len(v) for k, v in vars(rec).items() if hasattr(v, "__len__")}  # nothing kept
    ds = rec.dataset()
    assert ds.step.values.tolist() == [2, 3, 4, 6, 8, 9]
    for step, weight in seen.items():
        values = ds["embeddings"].sel(step=step).values
        if step % 2 == 0 or step == 9:
            np.testing.assert_array_equal(values, weight)
        else:
            assert np.isnan(values).all()
    assert ds["weight_model_layer_weight"].dims == ("step", "model_layer_weight_out", "model_layer_weight_in")
    assert ds["weight_model_layer_bias"].dims == ("step", "model_layer_bias_dim0")
    assert ds["embeddings"].chunks is not None  # read lazily
    assert history_entries(ds)[-1]["component"] == "probes"
    rec.write()


def test_resume_cuts_probes_back_to_the_checkpoint(tmp_path):
    net, rec = Net(), recorder(tmp_path)
    for step in range(1, 8):
        if rec.due(step):
            rec.record(step, net)
    rec.write()
    resumed = recorder(tmp_path, keep_upto=4)
    assert resumed.dataset().step.values.tolist() == [2, 3, 4]
    resumed.record(6, net)
    assert resumed.dataset().step.values.tolist() == [2, 3, 4, 6]
    recorder(tmp_path)  # a new run (or a resume without checkpoint) starts with no probes
    assert not (tmp_path / "probes.nc").exists()
