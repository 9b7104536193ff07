"""overtone-radio: standing-wave removal, baselines, harmonic-RFI detection and readers for
single-dish radio spectra held in xarray Datasets (dims ``time`` and ``frequency``)."""

__version__ = "0.1.0"
