"""Tasks through the registry: labels computed independently, splits, determinism, bad params."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import overtone
import pytest
import torch
from overtone import ConfigError

CORPUS = Path(__file__).resolve().parents[1] / "src" / "overtone_torch" / "data" / "corpus.txt"


def make(name: str, seed: int = 0, **params):
    return overtone.registry().get("task", name).create(seed=seed, **params)


def expected_label(a: int, b: int, op: str, p: int) -> int:
    """Python integers: a op b mod p, division through pow(b, -1, p) (the modular inverse)."""
    return {"+": a + b, "-": a - b, "*": a * b, "/": a * pow(b, -1, p) if b else None}[op] % p


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
@pytest.mark.parametrize("p", [7, 31])
def test_modular_labels_and_split(op, p):
    task = make("modular-arithmetic", seed=3, p=p, op=op, train_fraction=0.4)
    pairs = {split: [tuple(r) for r in task.x[split].tolist()] for split in ("train", "eval")}
    for split in ("train", "eval"):
        for (a, b), c in zip(pairs[split], task.y[split].tolist()):
            assert c == expected_label(a, b, op, p)
    everything = {(a, b) for a in range(p) for b in range(p) if op != "/" or b != 0}
    assert set(pairs["train"]).isdisjoint(pairs["eval"])
    assert set(pairs["train"]) | set(pairs["eval"]) == everything
    assert task.train_size == len(pairs["train"]) == round(0.4 * len(everything))
    assert task.input_spec == {"kind": "tokens", "vocab_size": p, "seq_len": 2, "output": "pooled"}
    assert task.n_classes == p and task.describe()["op"] == op


def test_modular_split_is_deterministic_under_seed():
    a, b = make("modular-arithmetic", seed=5, p=23), make("modular-arithmetic", seed=5, p=23)
    c = make("modular-arithmetic", seed=6, p=23)
    assert torch.equal(a.x["train"], b.x["train"]) and torch.equal(a.y["eval"], b.y["eval"])
    assert not torch.equal(a.x["train"], c.x["train"])


def test_modular_grid_and_batches():
    task = make("modular-arithmetic", p=11, op="/", train_fraction=0.5)
    x, coords = task.input_grid()
    assert coords == {"a": list(range(11)), "b": list(range(11))}
    assert x.tolist() == [[a, b] for a in range(11) for b in range(11)]
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    xb, yb = task.sample_batch("train", 16, g1)
    assert torch.equal(xb, task.sample_batch("train", 16, g2)[0])  # the generator fixes the batch
    train = {tuple(r) for r in task.x["train"].tolist()}
    assert len({tuple(r) for r in xb.tolist()}) == 16 and {tuple(r) for r in xb.tolist()} <= train
    batches = list(task.eval_batches(7))
    assert torch.equal(torch.cat([y for _, y in batches]), task.y["eval"]) and max(len(y) for _, y in batches) == 7
    assert task.token_labels() == [str(i) for i in range(11)]


def test_digits_are_sklearns():
    from sklearn.datasets import load_digits

    task = make("digits", seed=1, train_fraction=0.75)
    data = load_digits()
    x = torch.cat([task.x["train"], task.x["eval"]]).numpy()
    y = torch.cat([task.y["train"], task.y["eval"]]).numpy()
    assert task.train_size == round(0.75 * 1797) and len(y) == 1797
    assert task.input_spec == {"kind": "vector", "dim": 64, "output": "pooled"} and task.n_classes == 10
    order = np.lexsort(x.T)
    reference = data.data / 16.0
    ref_order = np.lexsort(reference.T)
    np.testing.assert_allclose(x[order], reference[ref_order], rtol=1e-7)  # the same images, scaled to [0, 1]
    np.testing.assert_array_equal(np.bincount(y), np.bincount(data.target))


def test_gaussian_mixture_statistics():
    task = make("gaussian-mixture", seed=2, n_classes=3, dim=5, n_samples=3000, separation=4.0)
    x = torch.cat([task.x["train"], task.x["eval"]])
    y = torch.cat([task.y["train"], task.y["eval"]])
    assert torch.bincount(y).tolist() == [1000, 1000, 1000]
    for k in range(3):  # class means estimated from 1000 samples of N(mu_k, I): error ~ 1/sqrt(1000)
        torch.testing.assert_close(x[y == k].mean(0), task.means[k], atol=0.15, rtol=0)
        torch.testing.assert_close(x[y == k].var(0), torch.ones(5), atol=0.15, rtol=0)
    again = make("gaussian-mixture", seed=2, n_classes=3, dim=5, n_samples=3000, separation=4.0)
    assert torch.equal(again.x["train"], task.x["train"])


def test_char_text_windows(tmp_path):
    text = "the quick brown fox jumps over the lazy dog\n" * 20
    file = tmp_path / "t.txt"
    file.write_text(text, encoding="utf-8")
    task = make("char-text", path=str(file), context=8, eval_fraction=0.25, eval_windows=5)
    assert task.chars == sorted(set(text)) and task.n_classes == len(set(text))
    assert task.input_spec == {"kind": "tokens", "vocab_size": len(set(text)), "seq_len": 8, "output": "sequence"}
    assert task.train_size is None
    decoded = "".join(task.chars[i] for i in torch.cat([task.data["train"], task.data["eval"]]).tolist())
    assert decoded == text and len(task.data["eval"]) == len(text) - int(len(text) * 0.75)
    x, y = task.sample_batch("train", 4, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and torch.equal(x[:, 1:], y[:, :-1])
    batches = list(task.eval_batches(2))
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    px, py = task.probe_batch(3)
    assert px.shape == (3, 8) and py.shape == (3,)
    assert task.token_labels()[0] == "\\n"


def test_bundled_corpus():
    assert CORPUS.stat().st_size >= 1_000_000
    task = make("char-text")
    assert task.path == CORPUS and task.describe()["characters"] > 1_000_000
    # package data: found through the installed package, wherever it lies (wheel or checkout)
    import overtone_torch

    assert task.path.is_relative_to(Path(overtone_torch.__file__).parent)
    assert 30 <= task.n_classes <= 100 and task.input_spec["seq_len"] == 128


@pytest.mark.parametrize(("name", "params", "message"), [
    ("modular-arithmetic", {"p": 12}, "p = 12 must be a prime"),
    ("modular-arithmetic", {"p": 1}, "p = 1 is below the minimum 2; allowed: 2 <= p"),
    ("modular-arithmetic", {"op": "%"}, "op = '%'"),
    ("modular-arithmetic", {"train_fraction": 1.0}, "train_fraction = 1.0 must be below 1.0; allowed: 0.0 < train_fraction < 1.0"),
    ("modular-arithmetic", {"p": 2, "op": "/", "train_fraction": 0.1}, "no training or no evaluation examples"),
    ("digits", {"train_fraction": 0.0}, "train_fraction = 0.0 must be above 0.0"),
    ("gaussian-mixture", {"n_classes": 1}, "n_classes = 1 is below the minimum 2; allowed: 2 <= n_classes"),
    ("gaussian-mixture", {"n_classes": 3, "n_samples": 5}, "n_samples = 5 must be an integer >= 6"),
    ("gaussian-mixture", {"separation": -1.0}, "separation = -1.0"),
    ("char-text", {"path": "/no/such.txt"}, "not found"),
    ("char-text", {"context": 0}, "context = 0"),
])
def test_bad_task_params(name, params, message):
    with pytest.raises(ConfigError) as info:
        make(name, **params)
    assert message in str(info.value)


def test_char_text_rejects_short_and_binary_files(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("abc")
    with pytest.raises(ConfigError, match="too short for context = 128"):
        make("char-text", path=str(short))
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\xff\xfe\x00" * 100)
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        make("char-text", path=str(binary))


def test_modular_sampling_with_replacement_as_the_harmonic_reference():
    """n_samples = 1,000 of p = 31 (961 pairs): drawn with replacement, split 800 / 200, so pairs
    repeat and the splits share pairs; labels stay right; the same seed gives the same draw."""
    task = make("modular-arithmetic", seed=4, p=31, train_fraction=0.8, n_samples=1000)
    assert task.train_size == 800 and len(task.y["eval"]) == 200
    pairs = {split: [tuple(r) for r in task.x[split].tolist()] for split in ("train", "eval")}
    for split in ("train", "eval"):
        assert all(c == (a + b) % 31 for (a, b), c in zip(pairs[split], task.y[split].tolist()))
    everything = pairs["train"] + pairs["eval"]
    distinct = len(set(everything))
    # expected distinct pairs among 1,000 draws from 961: 961 (1 - (960/961)^1000) = 621; sd about 10
    assert 570 < distinct < 670
    shared = sum(pair in set(pairs["train"]) for pair in pairs["eval"])
    assert shared > 100  # most held-out draws also occur in training (expected about 0.6 of 200)
    again = make("modular-arithmetic", seed=4, p=31, train_fraction=0.8, n_samples=1000)
    assert torch.equal(task.x["train"], again.x["train"]) and torch.equal(task.x["eval"], again.x["eval"])
    assert task.describe()["n_samples"] == 1000


def test_modular_default_split_is_unchanged_by_the_sampling_option():
    a = make("modular-arithmetic", seed=5, p=23)
    b = make("modular-arithmetic", seed=5, p=23, n_samples=0)
    order = torch.randperm(23 * 23, generator=torch.Generator().manual_seed(5))  # the split as before the option
    assert torch.equal(a.x["train"], b.x["train"])
    assert a.x["train"].tolist() == [[int(i) // 23, int(i) % 23] for i in order[:round(0.3 * 529)]]


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_modular_bad_n_samples(bad):
    with pytest.raises(ConfigError, match="n_samples"):
        make("modular-arithmetic", p=7, n_samples=bad)


def test_char_text_validation_block(tmp_path):
    """validation_fraction holds a block out of training just before the tail; evaluate_on picks
    the block the eval split holds, and the training text is the same either way."""
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    file = tmp_path / "t.txt"
    file.write_text(text, encoding="utf-8")
    plain = make("char-text", path=str(file), context=8, eval_fraction=0.1)
    tail = make("char-text", path=str(file), context=8, eval_fraction=0.1, validation_fraction=0.2)
    val = make("char-text", path=str(file), context=8, eval_fraction=0.1, validation_fraction=0.2,
               evaluate_on="validation")

    def decode(ids):
        return "".join(tail.chars[i] for i in ids.tolist())

    assert decode(plain.data["train"]) == text[:900] and decode(plain.data["eval"]) == text[900:]
    assert decode(tail.data["train"]) == decode(val.data["train"]) == text[:700]
    assert decode(tail.data["eval"]) == text[900:] and decode(val.data["eval"]) == text[700:900]
    assert tail.describe()["characters"] == 1000 and val.describe()["evaluate_on"] == "validation"
    # the same training batches under one generator seed; evaluation windows from the chosen block
    a = tail.sample_batch("train", 16, torch.Generator().manual_seed(3))
    b = val.sample_batch("train", 16, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and int(a[0].max()) < 26
    x, _ = next(val.eval_batches(64))
    assert decode(x[0]) == text[700:708] and decode(x[-1]) == text[900 - 9:900 - 1]


@pytest.mark.parametrize(("params", "message"), [
    ({"validation_fraction": 0.9}, "task 'char-text': [task] validation_fraction = 0.9 must be in [0, 1 - eval_fraction) = [0, 0.9); "
                                   "lower it or eval_fraction"),
    ({"evaluate_on": "validation"}, "task 'char-text': [task] evaluate_on = 'validation' needs a validation block; set "
                                    "validation_fraction > 0 (e.g. 0.05)"),
    ({"evaluate_on": "test"}, "task 'char-text': evaluate_on = 'test' is not allowed; allowed values: 'tail', "
                              "'validation'"),
])
def test_char_text_bad_validation_params(params, message):
    with pytest.raises(ConfigError) as info:
        make("char-text", **params)
    assert str(info.value) == message
