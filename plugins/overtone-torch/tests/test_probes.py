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


class GridTask(Task):
    """A 3 x 3 (a, b) grid; the training pairs are (0, 1), (2, 2) and (1, 0)."""

    x = {"train": torch.tensor([[0, 1], [2, 2], [1, 0]])}

    def input_grid(self):
        a, b = torch.meshgrid(torch.arange(3), torch.arange(3), indexing="ij")
        return torch.stack([a.reshape(-1), b.reshape(-1)], 1), {"a": [0, 1, 2], "b": [0, 1, 2]}


class GridNet(torch.nn.Module):
    """Scores (a, b) -> [a + 2b, a * b, -b, 0.5] with an identity loss head."""

    def __init__(self):
        super().__init__()
        self.model = lambda x: torch.stack([(x[:, 0] + 2 * x[:, 1]).float(), x[:, 0] * x[:, 1], -x[:, 1],
                                            torch.full((len(x),), 0.5)], 1)
        self.loss = torch.nn.Module()
        self.loss.scores = lambda h: h
        self.dummy = torch.nn.Parameter(torch.zeros(1))


def test_outputs_probe_stores_scores_or_probabilities_and_the_training_pairs(tmp_path):
    from overtone_torch.probes import ProbeRecorder

    a, b = np.meshgrid(np.arange(3.0), np.arange(3.0), indexing="ij")
    expected = np.stack([a + 2 * b, a * b, -b, np.full_like(a, 0.5)], -1)
    softmax = np.exp(expected) / np.exp(expected).sum(-1, keepdims=True)
    for output, want in (("scores", expected), ("probabilities", softmax)):
        rec = ProbeRecorder([{"kind": "outputs", "every": 1, "output": output}], GridTask(),
                            tmp_path / output, total_steps=2)
        (tmp_path / output).mkdir()
        rec.record(1, GridNet())
        rec.record(2, GridNet())
        ds = rec.dataset()
        assert ds["outputs"].dims == ("step", "a", "b", "class")
        assert ds["outputs"].attrs["output"] == output
        np.testing.assert_allclose(ds["outputs"].sel(step=2).values, want, rtol=1e-6)
        assert ds["train_pair"].dims == ("a", "b")
        assert np.argwhere(ds["train_pair"].values).tolist() == [[0, 1], [1, 0], [2, 2]]
        rec.write()


class SplitTask(Task):
    """Training and evaluation tensors held in memory, as TensorTask holds them."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = {"train": torch.randn(7, 3, generator=g), "eval": torch.randn(4, 3, generator=g)}
        self.y = {"train": torch.arange(7) % 3, "eval": torch.tensor([2, 2, 1, 0])}

    def probe_batch(self, n):
        return self.x["eval"][:n], self.y["eval"][:n]


class FeatureNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torch.nn.Linear(3, 2)


def test_hidden_probe_reads_the_training_split_when_asked(tmp_path):
    from overtone import ConfigError
    from overtone_torch.probes import ProbeRecorder

    net, task = FeatureNet(), SplitTask()
    for split, n, want in (("train", 5, slice(0, 5)), ("eval", 3, slice(0, 3))):
        (tmp_path / split).mkdir()
        rec = ProbeRecorder([{"kind": "hidden", "every": 1, "samples": n, "split": split}], task,
                            tmp_path / split, total_steps=1)
        rec.record(1, net)
        ds = rec.dataset()
        x = task.x[split][want]
        expected = (x.double() @ net.model.weight.detach().double().T + net.model.bias.detach().double()).numpy()
        np.testing.assert_allclose(ds["hidden"].sel(step=1).values, expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(ds["labels"].values, task.y[split][want].numpy())
        rec.write()
    # a task without in-memory splits is refused when the recorder is built, naming the fix
    try:
        ProbeRecorder([{"kind": "hidden", "every": 1, "samples": 2, "split": "train"}], Task(),
                      tmp_path / "none", total_steps=1)
    except ConfigError as error:
        assert "split = 'train'" in str(error) and "use split = 'eval'" in str(error)
    else:
        raise AssertionError("split = 'train' on a task without training tensors was accepted")
