"""List parameters with the wrong shape are one-line ConfigErrors, not tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import overtone
import pytest
from overtone import ConfigError

DEMO = Path(__file__).resolve().parents[3] / "data" / "radio" / "demo.nc"

CASES = [
    ("fft-standing-wave", {"windows_us": [0.6, 0.7]}, "each window must be a pair"),
    ("fft-standing-wave", {"protect_ranges_mhz": [1397, 1402]}, "each range must be a pair"),
    ("fft-standing-wave", {"reference_us": [[5, 50]]}, "reference_us\\[0\\] = \\[5, 50\\] has type list"),
    ("fft-standing-wave", {"telescope": "arecibo"}, "allowed: 'auto'"),
    ("fft-standing-wave", {"refuse_ratio": 0.5}, "above 1"),
    ("sine-fit", {"protect_ranges_mhz": [1397, 1402]}, "each range must be a pair"),
    ("sine-fit", {"tau_range_us": [[0.9, 0.95]]}, "tau_range_us"),
    ("harmonic-rfi", {"period_range_mhz": ["a", 2]}, "period_range_mhz"),
    ("polynomial-baseline", {"exclude_mhz": [1397, 1402]}, "each range must be a pair"),
]


@pytest.mark.parametrize("name,params,message", CASES)
def test_malformed_list_parameters_are_config_errors(name, params, message):
    with pytest.raises(ConfigError, match=message):
        overtone.get("signal_processor", name).create(**params)


def test_the_cli_says_it_in_one_line(tmp_path):
    for param in ("fft-standing-wave.windows_us=[0.6,0.7]",
                  "fft-standing-wave.protect_ranges_mhz=[1397,1402]"):
        run = subprocess.run([sys.executable, "-m", "overtone", "process", str(DEMO), "--with",
                              "fft-standing-wave", "--param", param, "-o",
                              str(tmp_path / "out.nc")], capture_output=True, text=True)
        assert run.returncode != 0
        assert "Traceback" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert not (tmp_path / "out.nc").exists()
