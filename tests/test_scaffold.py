"""overtone new-plugin: generated code uses only public API, pins the host, ships a tox.ini."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys

import pytest
from overtone.scaffold import KIND_CHOICES, OVERTONE_PIN, scaffold_plugin

PRIVATE = re.compile(r"overtone\.plugins|_register|LoadResult|PluginRecord|overtone\.registry import")


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory):
    return scaffold_plugin("overtone-every", tmp_path_factory.mktemp("scaffold"), list(KIND_CHOICES))


def test_generated_code_uses_only_public_api(every_kind):
    for path in every_kind.rglob("*.py"):
        text = path.read_text()
        assert not PRIVATE.search(text), f"{path.name}: {PRIVATE.search(text).group(0)}"
    tests = (every_kind / "tests" / "test_plugin.py").read_text()
    assert "registry = registry_for(plugin)" in tests
    for checker in ("check_analyzer", "check_signal_processor", "check_loss", "check_model"):
        assert f"{checker}(registry.get(" in tests


def test_pyproject_pins_the_host_and_has_a_test_extra(every_kind):
    import tomllib

    project = tomllib.loads((every_kind / "pyproject.toml").read_text())["project"]
    assert OVERTONE_PIN == "overtone>=0.1,<1" and OVERTONE_PIN in project["dependencies"]
    assert project["optional-dependencies"]["test"][0].startswith("pytest")
    assert 'pip install -e ".[test]"' in (every_kind / "README.md").read_text()


def test_tox_ini_installs_overtone_from_a_chosen_source(every_kind):
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(every_kind / "tox.ini")
    env = tox["testenv"]
    assert env["deps"] == "{env:OVERTONE_SOURCE:overtone>=0.1,<1}"
    assert env["extras"] == "test" and "OVERTONE_SOURCE" in env["pass_env"]
    assert env["commands"] == "pytest {tty:--color=yes} {posargs:tests}"
    assert tox["tox"]["skip_missing_interpreters"] == "true"


def test_model_example_takes_tokens_and_vectors(every_kind):
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(every_kind / "src"))
    try:
        from overtone.testing import check_model, registry_for
        from overtone_every import plugin

        model = registry_for(plugin).get("model", "every-model")
        kinds = {(s["kind"], s["output"]) for s in check_model(model, d_out=4)}
        assert kinds == {("tokens", "pooled"), ("tokens", "sequence"), ("vector", "pooled")}
        built = model.create(input_spec={"kind": "tokens", "vocab_size": 7, "seq_len": 3}, d_out=4)
        assert built(torch.zeros(2, 3, dtype=torch.long)).shape == (2, 4)
    finally:
        sys.path.remove(str(every_kind / "src"))


def test_generated_plugin_passes_its_own_tests(every_kind):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(every_kind / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(every_kind / "tests")],
                            capture_output=True, text=True, env=env, cwd=every_kind, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    import importlib.util

    torch_tests = 4 if importlib.util.find_spec("torch") is None else 0  # loss, optimizer, model, task
    passed = len(KIND_CHOICES) + 1 - torch_tests
    summary = f"{passed} passed" + (f", {torch_tests} skipped" if torch_tests else "")
    assert summary in result.stdout.splitlines()[-1], result.stdout
