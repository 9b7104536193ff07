"""overtone-dynamics: analyzers of training dynamics on xarray probes and metrics (no torch).

Each analyzer is a class whose instances are pure functions ``xr.Dataset -> xr.Dataset`` with a
``plot(result) -> matplotlib.figure.Figure`` method; the plugin registers them with overtone.
"""

__version__ = "0.1.0"
