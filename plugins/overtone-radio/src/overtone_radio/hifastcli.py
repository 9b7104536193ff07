"""HiFAST's own command-line standing-wave pipeline, run as an outside process.

HiFAST (PyPI ``hifast``, GPLv2, Python 3.9 only) is never imported here: spectra are written
in HiFAST's HDF5 format (:func:`write_hifast`), HiFAST's two steps run in the Python named by
the ``HIFAST_PYTHON`` environment variable (a virtual environment of its own), and the
output is read back with the project's own HiFAST reader
(:func:`overtone_radio.readers.open_hifast`). This is the opt-in peer of the blind suite and
``benchmarks/bench_radio.py``.

``hifast.sw`` works on baseline-subtracted spectra (its help: "input baselined spectra"):
given spectra with their ~20 K bandpass it finds the ripple's delays but removes almost
nothing (blind control scenario, seed 0: residual ripple RMS 0.080 K of 0.080 K). So the
pipeline run is HiFAST's own: ``python -m hifast.bld FILE`` (its defaults: arPLS, lam 1e8),
then ``python -m hifast.sw FILE-bld.hdf5 --method fft --nobld True``, which fits the standing
wave on the baselined spectra and subtracts it from the spectra before the baseline
(``*-bld-sw_nobld.hdf5``), so the level and the lines stay as the metrics need them.

HiFAST's format, as its readers expect it: group ``/S`` with the spectra in ``Ta`` (float32,
(polarization, time, channel)), ``freq`` (MHz), ``mjd``, ``ra``, ``dec`` (degrees, one per
spectrum) and ``is_on`` (noise diode on, bool per spectrum), optionally ``is_rfi`` (bool
(time, channel)); attributes under ``/Header``; a file name carrying the beam (``-M01``) and
a date (``-YYYYMMDD-``), from which HiFAST names its output.

:data:`SW_ARGS` are the arguments given: ``--method fft`` and HiFAST's CLI defaults for
everything else (the 1.08 MHz and 0.039 MHz windows, both passes, smoothing and the
substitution of strong signals), except ``--nobld True`` (above) and ``--sw_base False``
(its default ``True`` also subtracts each spectrum's constant level, which the
radiometer-equation metrics need); ``--nproc 1`` and no progress bar.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from overtone_radio.readers import open_hifast

HIFAST_ENV = "HIFAST_PYTHON"
COMMON_ARGS = ("--nproc", "1", "--show_prog", "False", "-f")
BLD_ARGS = COMMON_ARGS
SW_ARGS = ("--method", "fft", "--nobld", "True", "--sw_base", "False", *COMMON_ARGS)
FILE_NAME = "overtone-M01_W-20261130-specs_T.hdf5"  # beam 01, a date: as HiFAST names files
MJD0 = 61000.0


def write_hifast(
    path: str | Path,
    spectra: np.ndarray,
    freq_mhz: np.ndarray,
    *,
    dt_s: float = 1.0,
    mjd0: float = MJD0,
    is_rfi: np.ndarray | None = None,
    header: dict | None = None,
) -> Path:
    """Write ``spectra`` ((time, channel) for one polarization or (time, polarization,
    channel)) in HiFAST's HDF5 format (module docstring): ``S/Ta`` as (polarization, time,
    channel) float32, ``S/mjd`` from ``mjd0`` every ``dt_s``, ``S/ra`` and ``S/dec`` zero,
    ``S/is_on`` all False (no noise diode), ``S/is_rfi`` if given, ``header`` under
    ``/Header``. Returns the path."""
    import h5py

    x = np.asarray(spectra, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or x.shape[2] != len(freq_mhz):
        raise ValueError(
            f"spectra of shape {x.shape} do not match {len(freq_mhz)} channels; "
            "give (time, channel) or (time, polarization, channel)"
        )
    ntime = x.shape[0]
    path = Path(path)
    with h5py.File(path, "w") as h5:
        s = h5.create_group("S")
        s.create_dataset("Ta", data=np.ascontiguousarray(np.moveaxis(x, 1, 0)))
        s.create_dataset("freq", data=np.asarray(freq_mhz, dtype=np.float64))
        s.create_dataset("mjd", data=mjd0 + np.arange(ntime) * dt_s / 86400.0)
        s.create_dataset("ra", data=np.zeros(ntime))
        s.create_dataset("dec", data=np.zeros(ntime))
        s.create_dataset("is_on", data=np.zeros(ntime, dtype=bool))
        if is_rfi is not None:
            s.create_dataset("is_rfi", data=np.asarray(is_rfi, dtype=bool))
        head = h5.create_group("Header")
        for key, value in (header or {}).items():
            head.attrs[key] = value
    return path


def hifast_python() -> str | None:
    """The Python of ``HIFAST_PYTHON`` if it is set, else None."""
    return os.environ.get(HIFAST_ENV) or None


def run_sw(ds: xr.Dataset, *, python: str | None = None, timeout_s: float = 1800.0) -> np.ndarray:
    """``ds["spectrum"]`` ((time, frequency), or (time, polarization, frequency)) cleaned by
    HiFAST's pipeline in ``python`` (default ``HIFAST_PYTHON``): ``python -m hifast.bld FILE
    BLD_ARGS --outdir DIR``, then ``python -m hifast.sw FILE-bld.hdf5 SW_ARGS --outdir DIR``
    (module docstring); returns ``S/Ta`` of ``*-sw_nobld.hdf5`` in the input's shape
    (float32). The wall time of the last call (both steps) is in :data:`LAST_SECONDS`."""
    global LAST_SECONDS
    python = python or hifast_python()
    if not python:
        raise RuntimeError(
            f"set {HIFAST_ENV} to the Python of an environment with hifast "
            "installed (docs/radio.md, 'HiFAST next to overtone')"
        )
    x = ds["spectrum"].values
    dt = float(np.median(ds["exposure"].values)) if "exposure" in ds else 1.0
    env = {**os.environ, "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory(prefix="hifast-") as tmp:
        src = write_hifast(Path(tmp) / FILE_NAME, x, ds["frequency"].values, dt_s=dt)
        outdir = Path(tmp) / "out"
        outdir.mkdir()
        start = time.perf_counter()
        for module, args, pattern in (
            ("hifast.bld", BLD_ARGS, "*-bld.hdf5"),
            ("hifast.sw", SW_ARGS, "*-sw_nobld.hdf5"),
        ):
            cmd = [python, "-m", module, str(src), *args, "--outdir", str(outdir)]
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, cwd=tmp, env=env
            )
            found = sorted(outdir.glob(pattern))
            if done.returncode != 0 or not found:
                tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
                raise RuntimeError(f"{module} failed (exit {done.returncode}): " + " | ".join(tail))
            src = found[0]
        LAST_SECONDS = time.perf_counter() - start
        out = open_hifast(src, field="Ta")["spectrum"].values
    return out[:, 0, :] if x.ndim == 2 else out


LAST_SECONDS = float("nan")
