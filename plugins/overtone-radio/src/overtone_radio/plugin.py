"""Registrations of overtone-radio. Imports only overtone: listing stays fast."""

from overtone import Component, Param, hookimpl

_VARIABLE = Param(None, type=str, help="spectra variable (default: spectrum, T, Ta, flux, ... or "
                  "the only float variable with a frequency dim)")
_PROTECT = Param(True, help="substitute source_mask, flag, NaN and protect_ranges_mhz channels "
                 "before fitting (HiFAST-style protection; the sources keep their flux)")
#: A list of [low, high] pairs (each pair checked for its shape here; low < high by the class).
_PAIR = Param(type=(list, tuple), items=float, length=2)
_POSITIVE_PAIR = Param(type=(list, tuple), items=float, length=2, min=0.0)
_RANGES = Param([[1419.4, 1421.4]], type=(list, tuple), items=_PAIR,
                help="frequency ranges [low, high] MHz always protected (default: Milky Way HI)")


@hookimpl
def overtone_signal_processors():
    return [
        Component(
            "signal_processor", "fft-standing-wave", "overtone_radio.fftfilter:FFTStandingWave",
            "FFT standing-wave filter of FAST spectra (arXiv 2411.13016, HiFAST)",
            params={
                "variable": _VARIABLE,
                "windows_us": Param(None, type=(list, tuple), items=_POSITIVE_PAIR,
                                    help="delay windows [[low, high], ...] in us (tau = 1 / period "
                                    "in MHz); default: the telescope preset plus the ripples found "
                                    "in the data"),
                "telescope": Param("auto", type=str,
                                   help="preset windows: 'fast' (0.88-0.97, 1.78-1.92, 25-26 us), "
                                   "'gbt' (0.40-0.46, 0.58-0.66 us), 'none', or 'auto' (from the "
                                   "dataset's telescope/TELESCOP attribute)"),
                "search": Param(True, help="also find ripple delays from the data (peaks of the "
                                "guide spectrum's delay spectrum)"),
                "search_p": Param(0.001, help="expected number of noise peaks per search "
                                  "(significance of a found ripple)"),
                "search_range_us": Param([0.2, 30.0], type=(list, tuple), items=float, length=2,
                                         min=0.0, help="delays searched, us"),
                "threshold": Param("significance", choices=("significance", "hifast"),
                                   help="significance test per window, or HiFAST's factor x median rule"),
                "nsigma": Param(5.0, help="significance mode: window peak above nsigma noise sigma"),
                "factor": Param(1.4, help="hifast mode: factor x median of the mean |rfft|"),
                "reference_us": Param([5.0, 50.0], type=(list, tuple), items=float, length=2,
                                      min=0.0, help="delay range (us) measuring the noise"),
                "keep_us": Param(0.02, min=0.0, help="significance mode: delay kept either side of the "
                                 "peak, us (the ripple's leakage; 10 bins over 500 MHz)"),
                "adaptive_width": Param(True, help="significance mode: also keep the run of delay "
                                        "bins around each peak whose batch-average power is "
                                        "width_nsigma above the noise (a drifting period); "
                                        "false: +-keep_us alone"),
                "width_nsigma": Param(3.0, min=0.5, max=50.0, help="adaptive_width: sigma of the "
                                      "batch-average noise power a bin must exceed"),
                "width_fraction": Param(0.01, min=0.0, max=0.99, help="adaptive_width: and the "
                                        "fraction of the peak's power (keeps a fixed period's "
                                        "own leakage out)"),
                "hifast_us": Param(0.01, min=0.0, help="hifast mode: delay either side of the peak, us"),
                "edges": Param(True, help="flag junk band-edge channels found in the data"),
                "edge_fit_mhz": Param(0.12, help="width at each band end of the robust edge "
                                      "line, MHz"),
                "refuse_ratio": Param(3.0, type=(float, int),
                                      help="refuse a model this many times larger at the band "
                                      "edges than inside and than the noise (null: never)"),
                "lines": Param(True, help="protect lines found in the guide spectrum (the mean "
                               "of the first 16 spectra) in every spectrum"),
                "protect": _PROTECT,
                "protect_ranges_mhz": _RANGES,
                "period_mhz": Param(None, type=(float, int),
                                    help="substitution shift period (default 1 / centre of the first window)"),
                "workers": Param(None, type=int, help="threads (default: all cores; 1 per dask chunk when "
                                 "there are at least as many chunks as cores)"),
                "batch": Param(32, min=1, help="spectra per batch (one batch per thread at a time)"),
                "detect": Param(None, type=(float, int),
                                help="also protect strong signals found automatically: runs of 20+ "
                                     "channels above this many sigma in a smoothed guide image "
                                     "(HiFAST: 3); off by default"),
            },
        ),
        Component(
            "signal_processor", "sine-fit", "overtone_radio.baselines:SineFit",
            "sinusoid + line least squares per segment (the paper's sine-fit baseline)",
            params={
                "variable": _VARIABLE,
                "segment_mhz": Param(10.0, help="fit segment width (MHz)"),
                "tau_range_us": Param([0.88, 0.97], type=(list, tuple), items=float, length=2,
                                      min=0.0, help="delay (1 / period) search range, us"),
                "n_tau": Param(46, min=2, help="grid points over tau_range_us"),
                "protect": _PROTECT,
                "protect_ranges_mhz": _RANGES,
            },
        ),
        Component(
            "signal_processor", "running-median", "overtone_radio.baselines:RunningMedian",
            "subtract the running median over time (the paper's running-median baseline)",
            params={"variable": _VARIABLE,
                    "window": Param(200, min=3, help="spectra in the running median (HiFAST: 200)")},
        ),
        Component(
            "signal_processor", "harmonic-rfi", "overtone_radio.rfi:HarmonicRFI",
            "find comb-like (harmonic) RFI: periods, amplitudes and a channel mask",
            params={
                "variable": _VARIABLE,
                "nsigma": Param(5.0, help="peak threshold in robust sigma of the mean spectrum"),
                "min_height": Param(0.0, help="peak threshold in data units"),
                "baseline_mhz": Param(0.12, help="running-median width removing the baseline (MHz)"),
                "period_range_mhz": Param([0.1, 20.0], type=(list, tuple), items=float, length=2,
                                          min=0.0, help="periods searched (MHz)"),
                "z_min": Param(20.0, help="Rayleigh power needed to accept a period"),
                "min_teeth": Param(4, min=2, help="fewest teeth of a comb"),
                "tolerance_mhz": Param(0.016, help="tooth position tolerance (MHz)"),
                "mask_halfwidth_mhz": Param(0.023, help="masked half-width around each tooth (MHz)"),
                "max_combs": Param(10, help="most combs reported"),
                "update_flag": Param(True, help="OR the mask into the 'flag' variable"),
            },
        ),
        Component(
            "signal_processor", "flag-narrow-rfi", "overtone_radio.channels:NarrowRFIFlagger",
            "flag narrow RFI: sigma clip against a running median along frequency",
            params={
                "variable": _VARIABLE,
                "window_mhz": Param(0.1, help="running-median width, MHz"),
                "nsigma": Param(6.0, help="flag beyond this many robust sigma (1.4826 MAD)"),
                "grow_mhz": Param(0.0, min=0.0, help="widen each flagged run by this much each side, MHz"),
            },
        ),
        Component(
            "signal_processor", "polynomial-baseline", "overtone_radio.channels:PolynomialBaseline",
            "subtract a Chebyshev baseline fitted on line-free channels",
            params={
                "variable": _VARIABLE,
                "order": Param(3, min=0, max=30, help="polynomial degree"),
                "exclude_mhz": Param([], type=(list, tuple), items=_PAIR,
                                     help="ranges [[low, high], ...] MHz left out of the fit "
                                     "(lines); source_mask and flag channels are always left out"),
            },
        ),
        Component(
            "signal_processor", "smooth", "overtone_radio.channels:Smooth",
            "smooth along frequency (boxcar or Hanning), optionally decimated",
            params={
                "variable": _VARIABLE,
                "kernel": Param("hanning", choices=("boxcar", "hanning"),
                                help="boxcar (channels wide) or Hanning (1/4, 1/2, 1/4)"),
                "channels": Param(3, min=1, help="boxcar width in channels"),
                "decimate": Param(False, help="keep every channels-th (boxcar) or 2nd (hanning) "
                                  "channel"),
            },
        ),
        Component(
            "signal_processor", "rms-ratio", "overtone_radio.rms:RMSRatio",
            "measured RMS over the radiometer equation T_sys / sqrt(dnu tau), per spectrum",
            params={
                "variable": _VARIABLE,
                "average": Param(10, min=1, help="spectra averaged along time before measuring"),
                "bin_channels": Param(16, min=1, help="channels binned before measuring"),
                "window_mhz": Param(10.0, help="window for the line fit and RMS (MHz)"),
                "edge_mhz": Param(10.0, min=0.0, help="band edge left out at each end (MHz)"),
                "tsys": Param(None, type=(float, int), help="system temperature (default: the dataset's tsys variable, else the data's level)"),
                "exposure": Param(None, type=(float, int), help="seconds per spectrum (default: the data's)"),
            },
        ),
    ]


_ROWS = (int, list, tuple)
_FITS_READ = {
    "polarization": Param(None, type=str, help="FAST: 'XX,YY' (default), 'XX', 'YY' or 'mean'; "
                          "SDFITS: default every polarization (CRVAL4) present, or 'XX', 'LL', "
                          "'XX,YY', 'mean'"),
    "hdu": Param(None, type=_ROWS, help="SDFITS table(s) or cube image by FITS HDU index "
                 "(1 = first extension); default all SDFITS tables / the first cube"),
    "scan": Param(None, type=_ROWS, help="SDFITS: SCAN number(s) to keep"),
    "ifnum": Param(None, type=_ROWS, help="SDFITS: spectral window(s) IFNUM to keep"),
    "plnum": Param(None, type=_ROWS, help="SDFITS: polarization number(s) PLNUM to keep"),
    "fdnum": Param(None, type=_ROWS, help="SDFITS: feed(s) FDNUM to keep"),
    "cal": Param(None, type=(bool, str, int), help="SDFITS: noise diode state (CAL T/F)"),
    "sig": Param(None, type=(bool, str, int), help="SDFITS: signal state (SIG T/F)"),
    "object": Param(None, type=(str, list, tuple, int), help="SDFITS: OBJECT name(s), e.g. a "
                    "source, VANE or SKY"),
    "align": Param("tolerate", choices=("tolerate", "regrid"),
                   help="SDFITS rows of one setup whose frequencies differ by up to "
                        "max_shift_channels: joined as they are, or interpolated onto the first "
                        "row's axis"),
    "max_shift_channels": Param(0.5, help="SDFITS: largest channel-0 frequency difference "
                                "(in channels) between rows of one setup"),
    "mix_states": Param(False, help="SDFITS: let rows of different CAL/SIG states (noise diode "
                        "on/off, signal/reference) form one time series"),
    "velocity": Param("auto", type=str, help="velocity coordinate: 'auto' (SDFITS: VELDEF "
                      "convention and frame; cube: its axis or radio), 'radio', 'optical', "
                      "'relativistic' or 'none'"),
}


@hookimpl
def overtone_readers():
    return [
        Component("reader", "fits", "overtone_radio.readers:open_fits",
                  "FAST raw FITS, SDFITS (GBT, GBTIDL, dysh) and FITS spectral cubes (lazy)",
                  params=_FITS_READ, suffixes=(".fits", ".fit", ".sdfits")),
        # No suffix: the core opens .hdf5/.h5 as netCDF before asking readers, so this one is
        # used by name: overtone.get("reader", "hifast-hdf5").create(path, chunks=...).
        Component("reader", "hifast-hdf5", "overtone_radio.readers:open_hifast",
                  "HiFAST HDF5 (group S: T/Ta/flux/Power, freq, mjd, is_rfi), by name",
                  params={"field": Param(None, type=str,
                                         help="dataset in group S (default: T, Ta, flux, Power)")}),
    ]
