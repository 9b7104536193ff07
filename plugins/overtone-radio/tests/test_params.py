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
    ("fft-standing-wave", {"windows_us": [0.6, 0.7]}, "windows_us\\[0\\] = 0.6 is a single float; expected a list of 2"),
    ("fft-standing-wave", {"windows_us": [[0.7, 0.6]]}, "windows_us: \\[0.7, 0.6\\] needs 0 <= low < high"),
    ("fft-standing-wave", {"windows_us": []}, "windows_us: give at least one pair"),
    ("fft-standing-wave", {"protect_ranges_mhz": [1397, 1402]}, "protect_ranges_mhz\\[0\\] = 1397 is a single int"),
    ("fft-standing-wave", {"protect_ranges_mhz": [[1402, 1397]]}, "needs low < high"),
    ("fft-standing-wave", {"reference_us": [[5, 50]]}, "reference_us = \\[\\[5, 50\\]\\] has 1 element"),
    ("fft-standing-wave", {"telescope": "arecibo"}, "allowed: 'auto'"),
    ("fft-standing-wave", {"refuse_ratio": 0.5}, "above 1"),
    ("sine-fit", {"protect_ranges_mhz": [1397, 1402]}, "protect_ranges_mhz\\[0\\]"),
    ("sine-fit", {"tau_range_us": [[0.9, 0.95]]}, "tau_range_us"),
    ("harmonic-rfi", {"period_range_mhz": ["a", 2]}, "period_range_mhz"),
    ("polynomial-baseline", {"exclude_mhz": [1397, 1402]}, "exclude_mhz\\[0\\] = 1397 is a single int"),
]

#: One bound per processor, declared on its Param: (processor, key, value, the bound's text).
BOUNDS = [
    ("rms-ratio", "average", 0, "below the minimum 1; allowed: 1 <= average"),
    ("rms-ratio", "bin_channels", 0, "below the minimum 1; allowed: 1 <= bin_channels"),
    ("rms-ratio", "edge_mhz", -1.0, "below the minimum 0.0; allowed: 0.0 <= edge_mhz"),
    ("fft-standing-wave", "batch", 0, "below the minimum 1; allowed: 1 <= batch"),
    ("fft-standing-wave", "keep_us", -0.01, "below the minimum 0.0"),
    ("fft-standing-wave", "width_nsigma", 0.1, "below the minimum 0.5"),
    ("fft-standing-wave", "width_fraction", 1.0, "above the maximum 0.99"),
    ("fft-standing-wave", "reference_us", [-5.0, 50.0], "reference_us\\[0\\] = -5.0 is below the minimum 0.0"),
    ("fft-standing-wave", "windows_us", [[-0.1, 0.6]], "windows_us\\[0\\]\\[0\\] = -0.1 is below the minimum 0.0"),
    ("sine-fit", "n_tau", 1, "below the minimum 2; allowed: 2 <= n_tau"),
    ("running-median", "window", 2, "below the minimum 3; allowed: 3 <= window"),
    ("harmonic-rfi", "min_teeth", 1, "below the minimum 2; allowed: 2 <= min_teeth"),
    ("polynomial-baseline", "order", 31, "above the maximum 30; allowed: 0 <= order <= 30"),
    ("smooth", "channels", 0, "below the minimum 1; allowed: 1 <= channels"),
    ("flag-narrow-rfi", "grow_mhz", -1.0, "below the minimum 0.0"),
]


@pytest.mark.parametrize("name,key,value,bound", BOUNDS)
def test_a_bound_is_declared_and_named_by_create_and_a_pipeline(name, key, value, bound):
    """A value out of a declared Param bound is refused by create() and by a pipeline step
    (name, params) before any data is read, in one line naming the processor, the key and the
    bound."""
    import xarray as xr

    component = overtone.get("signal_processor", name)
    with pytest.raises(ConfigError, match=f"^signal_processor '{name}': .*{bound}") as err:
        component.create(**{key: value})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=bound):
        overtone.process(xr.Dataset(), [(name, {key: value})])


def test_a_bound_from_the_cli_is_one_line(tmp_path):
    """--param rms-ratio.average=0 stops `overtone process` with one line naming the key and its
    minimum, no traceback, nothing written."""
    run = subprocess.run([sys.executable, "-m", "overtone", "process", str(DEMO), "--with",
                          "rms-ratio", "--param", "rms-ratio.average=0", "-o",
                          str(tmp_path / "out.nc")], capture_output=True, text=True)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert "average = 0 is below the minimum 1" in lines[0] and "1 <= average" in lines[0]
    assert not (tmp_path / "out.nc").exists()


def test_the_classes_check_pairs_for_direct_use():
    """Used from Python (no create()), the classes refuse bad pairs with the one shared check."""
    from overtone_radio.baselines import SineFit
    from overtone_radio.channels import PolynomialBaseline
    from overtone_radio.fftfilter import FFTStandingWave
    from overtone_radio.spectra import check_pairs

    with pytest.raises(ConfigError, match="windows_us: \\[0.7, 0.6\\] needs 0 <= low < high"):
        FFTStandingWave(windows_us=[[0.7, 0.6]])
    with pytest.raises(ConfigError, match="windows_us: 0.6 is not a pair"):
        FFTStandingWave(windows_us=[0.6, 0.7])
    with pytest.raises(ConfigError, match="protect_ranges_mhz: 1397 is not a pair"):
        SineFit(protect_ranges_mhz=[1397, 1402])
    with pytest.raises(ConfigError, match="exclude_mhz: \\['a', 2\\] is not two numbers"):
        PolynomialBaseline(exclude_mhz=[["a", 2]])
    assert check_pairs([(1, 2), [3.5, 4]], "x", "MHz") == [(1.0, 2.0), (3.5, 4.0)]
    assert FFTStandingWave(protect_ranges_mhz=((1397, 1402),)).protect_ranges_mhz == [[1397.0, 1402.0]]


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
