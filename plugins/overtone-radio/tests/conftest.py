"""Shared fixtures: simulated FAST-like observations with known truth (session-cached)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from overtone_radio.simulate import Observation, simulate  # noqa: E402


@pytest.fixture(scope="session")
def full_band():
    """60 one-second spectra over the full 65,536-channel band, in memory."""
    return simulate(Observation(n_time=60)).compute()


@pytest.fixture(scope="session")
def sub_band():
    """A 16,384-channel piece (1380-1505 MHz: the Milky Way line and two galaxies), 40 s."""
    return Observation(n_time=40, nchan=16384, f_start_mhz=1380.0)


@pytest.fixture
def small():
    """A small lazy observation: 24 spectra x 4,096 channels in chunks of 8."""
    return simulate(Observation(n_time=24, nchan=4096, f_start_mhz=1400.0), chunks=8)
