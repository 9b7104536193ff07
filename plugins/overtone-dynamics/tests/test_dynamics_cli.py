"""End to end through the core: ``overtone analyze`` on a run directory, with plots."""

from __future__ import annotations

import numpy as np
import xarray as xr
from dynamics_testing import planted_embedding
from overtone.cli import main
from overtone.io import read_groups


def test_analyze_run_directory_writes_groups_and_plots(tmp_path, capsys):
    rng = np.random.default_rng(0)
    p = 23
    probes = xr.Dataset(
        {"embeddings": (("step", "token", "dim"),
                        np.stack([rng.normal(size=(p + 1, 8)),
                                  np.vstack([planted_embedding(p, 8, [4]), np.zeros((1, 8))])])),
         "hidden": (("step", "sample", "dim"), rng.normal(size=(2, 40, 8))),
         "labels": ("sample", np.arange(40) % 4)},
        coords={"step": [0, 500]}, attrs={"p": p})
    probes.to_netcdf(tmp_path / "probes.nc", engine="h5netcdf")
    code = main(["analyze", str(tmp_path), "--with", "embedding-fourier,dse,dsmi",
                 "--param", "dse.sigma=3.0", "--plot", str(tmp_path / "plot.png")])
    assert code == 0, capsys.readouterr().err
    groups = read_groups(tmp_path / "analysis.nc")
    assert set(groups) >= {"embedding-fourier", "dse", "dsmi"}
    fourier = groups["embedding-fourier"]
    assert int(fourier["key_frequency"].sel(step=500, rank=1)) == 4
    assert fourier.attrs["p"] == p
    assert groups["dse"]["dse"].dims == ("step",)
    for name in ("embedding-fourier", "dse", "dsmi"):
        assert (tmp_path / f"plot.{name}.png").stat().st_size > 1000


def test_analyze_reports_bad_input_as_one_line(tmp_path, capsys):
    xr.Dataset({"hidden": (("sample",), np.arange(5.0))}).to_netcdf(tmp_path / "probes.nc",
                                                                      engine="h5netcdf")
    assert main(["analyze", str(tmp_path), "--with", "dse"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("overtone: error: dse:") and "\n" not in err
