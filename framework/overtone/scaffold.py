"""``overtone new-plugin``: scaffold a third-party plugin distribution."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from overtone.errors import OvertoneError

#: The host range every generated plugin pins (the plugin guide's rule).
OVERTONE_PIN = "overtone>=0.1,<1"

#: The overtone.testing checker each kind's generated test uses.
CHECKERS = {"analyzer": "check_analyzer", "signal_processor": "check_signal_processor",
            "loss": "check_loss", "model": "check_model"}

TOX_INI = """\
# The plugin's tests against a chosen overtone:
#   tox                                     overtone from PyPI, in the range pyproject.toml pins
#   OVERTONE_SOURCE=/path/to/overtone tox   a checkout of overtone (a directory pip can install)
#   OVERTONE_SOURCE="overtone==0.1.0" tox   any other pip requirement
[tox]
requires = tox>=4.11
env_list = py{310,311,312,313}
skip_missing_interpreters = true

[testenv]
description = the plugin's tests against {env:OVERTONE_SOURCE:overtone from PyPI}
deps = {env:OVERTONE_SOURCE:overtone>=0.1,<1}
extras = test
pass_env = OVERTONE_SOURCE, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_CONSTRAINT
set_env =
    MPLBACKEND = Agg
    OVERTONE_PROGRESS = 0
commands = pytest {tty:--color=yes} {posargs:tests}
"""

KIND_CHOICES = ("analyzer", "signal_processor", "loss", "optimizer", "model", "task", "engine", "reader")
TORCH_KINDS = {"loss", "optimizer", "model", "task"}

# Per kind: (hook, factory attr, summary, params literal, implementation, test body)
TEMPLATES: dict[str, dict[str, str]] = {
    "analyzer": {
        "hook": "overtone_analyzers",
        "attr": "Spread",
        "summary": "variance of a variable over a dimension",
        "params": '{"variable": Param("embeddings", help="input variable"), "dim": Param("dim", help="dimension to reduce")}',
        "code": '''
            class Spread:
                """Variance of ``variable`` over ``dim``: mean((x - mean(x))^2)."""

                def __init__(self, variable: str = "embeddings", dim: str = "dim") -> None:
                    self.variable, self.dim = variable, dim

                def __call__(self, ds: xr.Dataset) -> xr.Dataset:
                    if self.variable not in ds:
                        raise DatasetError(f"no variable {self.variable!r}; pass variable=NAME")
                    spread = ds[self.variable].var(self.dim)
                    spread.attrs["long_name"] = f"variance of {self.variable} over {self.dim}"
                    return xr.Dataset({"spread": spread})

                def plot(self, result: xr.Dataset):
                    import matplotlib.pyplot as plt

                    fig, ax = plt.subplots()
                    result["spread"].plot(ax=ax)
                    return fig
        ''',
        "test": '''
            def test_analyzer():
                values = np.arange(24.0).reshape(4, 2, 3)
                ds = xr.Dataset({"embeddings": (("step", "token", "dim"), values)}, coords={"step": [0, 1, 2, 3]})
                result = check_analyzer(registry.get("analyzer", "{name}"), ds)
                np.testing.assert_allclose(result["spread"], np.var(values, axis=2))
        ''',
    },
    "signal_processor": {
        "hook": "overtone_signal_processors",
        "attr": "Demean",
        "summary": "subtract each spectrum's mean along frequency",
        "params": '{"variable": Param("spectra", help="data variable to process")}',
        "code": '''
            class Demean:
                """Subtract each spectrum's mean along ``frequency``; lazy on dask input."""

                def __init__(self, variable: str = "spectra") -> None:
                    self.variable = variable

                def __call__(self, ds: xr.Dataset) -> xr.Dataset:
                    if self.variable not in ds:
                        raise DatasetError(f"no variable {self.variable!r}; pass variable=NAME")
                    out = ds.copy()
                    data = ds[self.variable]
                    out[self.variable] = (data - data.mean("frequency")).assign_attrs(data.attrs)
                    return out  # overtone records the step (name, plugin, params) in history
        ''',
        "test": '''
            def test_signal_processor():
                ds = xr.Dataset({"spectra": (("time", "frequency"), np.arange(8.0).reshape(2, 4))},
                                coords={"frequency": [1.0, 2.0, 3.0, 4.0]})
                out = check_signal_processor(registry.get("signal_processor", "{name}"), ds)
                np.testing.assert_allclose(out["spectra"].mean("frequency"), 0.0, atol=1e-12)
        ''',
    },
    "loss": {
        "hook": "overtone_losses",
        "attr": "LinearCrossEntropy",
        "summary": "linear head + cross-entropy",
        "params": '{}',
        "code": '''
            def LinearCrossEntropy(*, d_in: int, n_classes: int):
                """A linear head ``scores = x W^T`` with cross-entropy ``-log softmax(scores)_y``."""
                import torch

                class _Loss(torch.nn.Module):
                    def __init__(self) -> None:
                        super().__init__()
                        self.weight = torch.nn.Parameter(torch.randn(n_classes, d_in) / d_in**0.5)

                    def scores(self, features):
                        return features @ self.weight.T

                    def forward(self, features, targets):
                        scores = self.scores(features)
                        return torch.nn.functional.cross_entropy(
                            scores.reshape(-1, n_classes), targets.reshape(-1), ignore_index=-100)

                return _Loss()
        ''',
        "test": '''
            def test_loss():
                torch = pytest.importorskip("torch")
                loss = check_loss(registry.get("loss", "{name}"), d_in=4, n_classes=3)
                x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
                expected = -torch.log_softmax(x @ loss.weight.T, -1)[torch.arange(5), y].mean()
                torch.testing.assert_close(loss(x, y), expected)
        ''',
    },
    "optimizer": {
        "hook": "overtone_optimizers",
        "attr": "plain_sgd",
        "summary": "plain SGD, theta <- theta - lr * grad",
        "params": '{"lr": Param(0.01, min=0.0, exclusive_min=True, help="learning rate (> 0)")}',
        "code": '''
            def plain_sgd(params, lr: float = 0.01):
                """Plain SGD: ``theta <- theta - lr * grad``."""
                import torch

                return torch.optim.SGD(params, lr=lr)
        ''',
        "test": '''
            def test_optimizer():
                torch = pytest.importorskip("torch")
                w = torch.nn.Parameter(torch.ones(3))
                opt = registry.get("optimizer", "{name}").create([w], lr=0.5)
                (w ** 2).sum().backward()
                opt.step()
                torch.testing.assert_close(w.detach(), torch.zeros(3))
        ''',
    },
    "model": {
        "hook": "overtone_models",
        "attr": "TwoLayer",
        "summary": "two-layer perceptron on token or vector inputs",
        "params": '{"width": Param(64, min=1, help="hidden width")}',
        "code": '''
            def TwoLayer(*, input_spec: dict, d_out: int | None = None, width: int = 64):
                """Features ``relu(h) W2 + b2`` of width ``d_out`` (``width`` when the host asks for
                none), with ``h = x W1 + b1`` for vectors and ``h = E[x]`` for tokens (averaged over
                positions when the task wants pooled output). The module declares its feature width
                as ``d_features``, which the host builds the loss with."""
                import torch

                kind, output = input_spec.get("kind"), input_spec.get("output", "pooled")
                if kind not in ("tokens", "vector"):
                    raise ConfigError(f"input kind {kind!r}: this model takes 'tokens' or 'vector' inputs")
                if kind == "vector" and output != "pooled":
                    raise ConfigError("vector inputs give pooled features only; use a task with output 'pooled'")

                class _TwoLayer(torch.nn.Module):
                    def __init__(self) -> None:
                        super().__init__()
                        if kind == "tokens":
                            self.token_embedding = torch.nn.Embedding(input_spec["vocab_size"], width)
                        else:
                            self.inputs = torch.nn.Linear(input_spec["dim"], width)
                        self.d_features = d_out or width
                        self.outputs = torch.nn.Linear(width, self.d_features)

                    def forward(self, x):
                        if kind == "vector":
                            return self.outputs(torch.relu(self.inputs(x)))
                        h = self.token_embedding(x)
                        return self.outputs(torch.relu(h.mean(1) if output == "pooled" else h))

                return _TwoLayer()
        ''',
        "test": '''
            def test_model():
                pytest.importorskip("torch")
                assert check_model(registry.get("model", "{name}"), d_out=None)
                accepted = check_model(registry.get("model", "{name}"), d_out=7)
                assert {(s["kind"], s["output"]) for s in accepted} == {
                    ("tokens", "pooled"), ("tokens", "sequence"), ("vector", "pooled")}
        ''',
    },
    "task": {
        "hook": "overtone_tasks",
        "attr": "Parity",
        "summary": "parity of random bit strings",
        "params": '{"bits": Param(8, min=1, help="length of each bit string"), '
                  '"n_samples": Param(256, min=4, help="bit strings, half for training")}',
        "code": '''
            class Parity:
                """Classify bit strings by parity (sum of bits mod 2); deterministic under seed."""

                def __init__(self, *, seed: int, bits: int = 8, n_samples: int = 256) -> None:
                    import torch

                    g = torch.Generator().manual_seed(seed)
                    self.x = torch.randint(0, 2, (n_samples, bits), generator=g).float()
                    self.y = self.x.sum(1).long() % 2
                    self.input_spec = {"kind": "vector", "dim": bits, "output": "pooled"}
                    self.n_classes, self.train_size = 2, n_samples // 2

                def sample_batch(self, split, batch_size, generator):
                    import torch

                    lo, hi = (0, self.train_size) if split == "train" else (self.train_size, len(self.y))
                    idx = torch.randint(lo, hi, (batch_size,), generator=generator)
                    return self.x[idx], self.y[idx]

                def eval_batches(self, batch_size):
                    for i in range(self.train_size, len(self.y), batch_size):
                        yield self.x[i:i + batch_size], self.y[i:i + batch_size]

                def probe_batch(self, n):
                    return self.x[:n], self.y[:n]

                def input_grid(self):
                    return None

                def token_labels(self):
                    return None

                def describe(self):
                    return {"bits": self.x.shape[1]}
        ''',
        "test": '''
            def test_task():
                pytest.importorskip("torch")
                task = registry.get("task", "{name}").create(seed=0, bits=6, n_samples=32)
                x, y = next(task.eval_batches(8))
                assert (y == x.sum(1).long() % 2).all()
        ''',
    },
    "engine": {
        "hook": "overtone_engines",
        "attr": "CountEngine",
        "summary": "an engine that counts to [train] steps and records it",
        "params": '{}',
        "code": '''
            class CountEngine:
                """Counts to ``[train] steps``, writing ``metrics.nc`` with a ``step`` dim."""

                def resolve(self, config, *, source, registry):
                    from overtone.params import resolve_params

                    return {"train": resolve_params(config.get("train", {}), {"steps": 10}, f"{source} [train]")}

                def run(self, config, run_dir, *, resume=False):
                    from overtone.io import write_dataset

                    steps = np.arange(config["train"]["steps"])
                    write_dataset(xr.Dataset({"count": ("step", steps)}, coords={"step": steps}),
                                  run_dir / "metrics.nc")
        ''',
        "test": '''
            def test_engine(tmp_path):
                from overtone.runs import run_config

                run_dir = run_config({"run": {"engine": "{name}"}, "train": {"steps": 4}}, source="test",
                                     default_name="t", out=tmp_path, registry=registry)
                assert xr.open_dataset(run_dir / "metrics.nc")["count"].values.tolist() == [0, 1, 2, 3]
        ''',
    },
    "reader": {
        "hook": "overtone_readers",
        "attr": "read_csv_spectra",
        "summary": "CSV spectra: first row frequencies (MHz), one spectrum per row",
        "params": '{}',
        "suffixes": '(".csv",)',
        "code": '''
            def read_csv_spectra(path, *, chunks=None):
                """Read a CSV whose first row holds frequencies (MHz) and each next row a spectrum (K)."""
                table = np.loadtxt(path, delimiter=",", ndmin=2)
                ds = xr.Dataset(
                    {"spectra": (("time", "frequency"), table[1:], {"units": "K"})},
                    coords={"frequency": ("frequency", table[0], {"units": "MHz"})},
                )
                return ds.chunk(chunks) if chunks else ds
        ''',
        "test": '''
            def test_reader(tmp_path):
                from overtone.io import open_dataset

                path = tmp_path / "obs.csv"
                path.write_text("1000,1001\\n1,2\\n3,4\\n")
                ds = open_dataset(path, registry=registry)
                assert ds["spectra"].shape == (2, 2)
        ''',
    },
}


def _imports(text: str, wanted: list[tuple[str, str | None]]) -> str:
    """Import lines for the names ``text`` uses; a ``None`` template joins the line before it.

    ``[("ConfigError", "from overtone import {}"), ("DatasetError", None)]`` gives
    ``from overtone import ConfigError, DatasetError`` when both are used.
    """
    lines: list[tuple[str, list[str]]] = []
    for marker, template in wanted:
        if template is not None:
            lines.append((template, []))
        if marker in text:
            lines[-1][1].append(marker)
    out = ""
    for template, names in lines:
        if not names:
            continue
        out += template.format(", ".join(names)) + "\n" if "{}" in template else template + "\n"
    return out + "\n" if out else ""


def _dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


def scaffold_plugin(name: str, directory: Path, kinds: list[str]) -> Path:
    """Write a plugin distribution ``directory/name`` with one example component per kind."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", name):
        raise OvertoneError(f"plugin name {name!r}: use letters, digits, '-', '_' (e.g. overtone-myloss)")
    root = Path(directory) / name
    if root.exists():
        raise OvertoneError(f"{str(root)!r} already exists; choose another name or --directory")
    package = re.sub(r"[-.]+", "_", name).lower()
    short = re.sub(r"^overtone[-_]", "", name.lower()).replace("_", "-")
    kinds = list(dict.fromkeys(kinds))
    needs_torch = bool(TORCH_KINDS & set(kinds))

    hooks, code, tests = [], [], []
    for kind in kinds:
        t = TEMPLATES[kind]
        component_name = f"{short}-{kind.replace('_', '-')}"
        suffixes = f", suffixes={t['suffixes']}" if "suffixes" in t else ""
        hooks.append(
            f"@hookimpl\ndef {t['hook']}():\n    return [Component(\n"
            f"        {kind!r}, {component_name!r}, \"{package}.components:{t['attr']}\",\n"
            f"        {t['summary']!r},\n        params={t['params']}{suffixes},\n    )]\n"
        )
        code.append(_dedent(t["code"]))
        tests.append(_dedent(t["test"]).replace("{name}", component_name))

    deps = [f'"{OVERTONE_PIN}"', '"numpy>=1.26"', '"xarray>=2024.10"']
    if needs_torch:
        deps.append('"torch>=2.3"')
    hook_text, code_text, test_text = "\n\n".join(hooks), "\n\n".join(code), "\n\n".join(tests)
    checkers = sorted({CHECKERS[k] for k in kinds if k in CHECKERS})
    test_imports = "".join(f"    {n},\n" for n in sorted(["check_plugin", *checkers, "registry_for"]))
    files = {
        "pyproject.toml": f'''
            [build-system]
            requires = ["hatchling>=1.18"]
            build-backend = "hatchling.build"

            [project]
            name = "{name}"
            version = "0.1.0"
            description = "An overtone plugin"
            requires-python = ">=3.10"
            dependencies = [{", ".join(deps)}]

            [project.optional-dependencies]
            test = ["pytest>=8", "matplotlib>=3.8"]

            [project.entry-points.overtone]
            {short.replace("-", "_")} = "{package}.plugin"

            [tool.hatch.build.targets.wheel]
            packages = ["src/{package}"]
        ''',
        "tox.ini": TOX_INI,
        "README.md": f'''
            # {name}

            An overtone plugin. Install it with its test extra, check that overtone sees it, and
            run its tests:

                pip install -e ".[test]"
                overtone plugins
                pytest

            Against another overtone (a checkout, or the released one from PyPI), with tox:

                tox                                          # overtone from PyPI ({OVERTONE_PIN})
                OVERTONE_SOURCE=/path/to/overtone tox        # a checkout of overtone

            Components: {", ".join(f"{short}-{k.replace('_', '-')} ({k})" for k in kinds)}.
        ''',
        f"src/{package}/__init__.py": f'"""{name}: an overtone plugin."""\n\n__version__ = "0.1.0"\n',
        f"src/{package}/plugin.py": (
            '"""Registrations. Import only overtone here: listing plugins must stay fast."""\n\n'
            + _imports(hook_text, [("Component", "from overtone import {}"),
                                   ("Param", None), ("hookimpl", None)])
            + "\n" + hook_text
        ),
        f"src/{package}/components.py": (
            '"""The components\' implementations (imported only when used)."""\n\n'
            "from __future__ import annotations\n\n"
            + _imports(code_text, [("np.", "import numpy as np"), ("xr.", "import xarray as xr"),
                                   ("ConfigError", "from overtone import {}"), ("DatasetError", None)])
            + _imports(code_text, [("__version__", f"from {package} import {{}}")])
            + "\n" + code_text
        ),
        "tests/test_plugin.py": (
            '"""The plugin\'s tests, with overtone\'s public testing kit (overtone.testing)."""\n\n'
            + _imports(test_text, [("np.", "import numpy as np"), ("pytest.", "import pytest"),
                                   ("xr.", "import xarray as xr")]).rstrip("\n")
            + f"\nfrom overtone.testing import (\n{test_imports})\n\n"
            f"from {package} import plugin\n\n"
            "registry = registry_for(plugin)  # holds just this plugin\'s components\n\n\n"
            "def test_contract():\n"
            "    # kinds, unique names, defaults within their own bounds, factories import and accept\n"
            "    # every declared parameter\n"
            "    assert check_plugin(plugin)\n\n\n"
            + test_text
        ),
    }
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _dedent(content) if relative.endswith((".toml", ".md")) else content
        path.write_text(text, encoding="utf-8")
    return root
