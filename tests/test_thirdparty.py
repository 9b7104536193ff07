"""An out-of-tree plugin, pip-installed, is found through its entry point and works from a config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points


def installed_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OVERTONE_")}


def test_example_plugin_is_installed_as_a_distribution():
    points = [ep for ep in entry_points(group="overtone") if ep.dist and ep.dist.name == "overtone-example"]
    assert points, "install it: pip install tests/thirdparty/overtone-example"
    assert points[0].value == "overtone_example.plugin"


def test_listed_by_entry_point_and_runs_from_config(tmp_path):
    listing = json.loads(subprocess.run([sys.executable, "-m", "overtone", "plugins", "--json"],
                                        capture_output=True, text=True, env=installed_env()).stdout)
    mine = [c for c in listing["components"] if c["plugin"] == "overtone-example"]
    assert {c["name"] for c in mine} == {"linreg", "moments", "demean"}
    assert mine[0]["version"] == "1.0.0"
    config = tmp_path / "exp.toml"
    config.write_text("[run]\nengine = 'linreg'\n[train]\nsteps = 8\ncheckpoint_every = 4\n")
    result = subprocess.run([sys.executable, "-m", "overtone", "run", str(config), "--out", str(tmp_path)],
                            capture_output=True, text=True, env=installed_env())
    assert result.returncode == 0, result.stderr
    assert "overtone-example = " in (tmp_path / "exp" / "config.toml").read_text()
    restricted = subprocess.run([sys.executable, "-m", "overtone", "plugins", "--json"], capture_output=True,
                                text=True, env={**installed_env(), "OVERTONE_LOAD_PLUGINS": "overtone-example"})
    assert {c["plugin"] for c in json.loads(restricted.stdout)["components"]} == {"overtone-example"}
