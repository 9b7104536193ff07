"""Registrations of overtone-dynamics. Imports only overtone: listing stays fast and torch-free."""

from overtone import Component, Param, hookimpl

_VARIABLE = Param(None, type=str, help="input variable (default: the usual probe name)")
_SEED = Param(0, help="random seed (subsampling, bootstrap, probes)")


def _grid_error_params() -> dict:
    return {
        "variable": _VARIABLE,
        "op": Param(None, type=str, choices=(None, "+", "-", "*", "/"),
                    help="modular operation giving the correct class (default: attrs['op'])"),
        "output": Param("auto", choices=("auto", "probabilities", "scores"),
                        help="what the outputs hold (auto: from attrs)"),
        "error": Param("probability", choices=("probability", "loss"),
                       help="q - onehot per class, or per-point cross-entropy"),
        "target_variable": Param("targets", help="variable (a, b) of correct classes, if present"),
    }


def _dse_params() -> dict:
    return {
        "variable": _VARIABLE,
        "sigma": Param(10.0, min=0.0, exclusive_min=True,
                       help="Gaussian kernel bandwidth (reference default 10)"),
        "t": Param(1.0, min=0.0, exclusive_min=True,
                   help="diffusion time: eigenvalues are raised to t (reference default 1)"),
        "max_samples": Param(10000, type=int, min=2,
                             help="use a seeded random subset beyond this many samples"),
        "seed": _SEED,
        "method": Param("exact", choices=("exact", "lanczos"),
                        help="all eigenvalues (exact) or stochastic Lanczos quadrature (fast, approximate)"),
        "base": Param(2.0, min=1.0, exclusive_min=True,
                      help="logarithm base of the entropy (2: bits, as the reference)"),
    }


@hookimpl
def overtone_analyzers():
    return [
        Component(
            "analyzer", "embedding-fourier", "overtone_dynamics.fourier:EmbeddingFourier",
            "Fourier power of embeddings over the token index; key frequencies (Nanda et al. 2023)",
            params={
                "variable": _VARIABLE,
                "p": Param(None, type=int, min=3, help="modulus: the first p tokens are the numbers "
                           "(default: attrs['p'] or every token)"),
                "n_keys": Param(5, min=1, help="how many key frequencies to report"),
                "exclude_dc": Param(True, help="leave frequency 0 (the mean embedding) out"),
            },
        ),
        Component(
            "analyzer", "grid-error-spectrum", "overtone_dynamics.fourier:GridErrorSpectrum",
            "error of outputs over the (a, b) grid per 2-D DFT frequency of token ids (overtone's own)",
            params=_grid_error_params(),
        ),
        Component(
            "analyzer", "grokking-frequency", "overtone_dynamics.fourier:GrokkingFrequency",
            "deprecated name of grid-error-spectrum (warns; not arXiv 2405.17479's measure)",
            params=_grid_error_params(),
        ),
        Component(
            "analyzer", "progress-measures", "overtone_dynamics.progress:ProgressMeasures",
            "restricted/excluded loss over key frequencies and spectrum Gini, modular addition "
            "(Nanda et al. 2023)",
            params={
                "variable": _VARIABLE,
                "output": Param("auto", choices=("auto", "scores", "probabilities"),
                                help="what the outputs hold (auto: attrs['output']); scores are exact"),
                "n_keys": Param(5, min=1, help="how many key frequencies"),
                "key_source": Param("logits", choices=("logits", "embeddings"),
                                    help="rank frequencies by the logits' or the embeddings' spectrum"),
                "key_frequencies": Param(None, items=int, min=1,
                                         help="fixed key frequencies, distinct, at most (p - 1) / 2 "
                                              "(overrides key_source)"),
                "key_step": Param(None, type=int, help="step whose spectrum picks the keys (default: last)"),
                "embedding_variable": Param("embeddings", help="embedding probe, for embedding_gini"),
                "train_variable": Param("train_pair", help="(a, b) mask of training pairs"),
                "op": Param(None, type=str, choices=(None, "+"), help="modular operation (only '+')"),
            },
        ),
        Component(
            "analyzer", "frequency-error", "overtone_dynamics.frequency:FrequencyError",
            "per-frequency relative error |F[f](k) - F[y](k)| / |F[y](k)| over training "
            "(F-principle; non-uniform DFT along an input direction)",
            params={
                "variable": _VARIABLE,
                "target_variable": Param("targets", help="targets (sample[, output])"),
                "input_variable": Param("inputs", help="evaluation inputs (sample[, input_dim]), variable or coord"),
                "direction": Param("pca", type=(str, list),
                                   help="vector inputs: 'pca' (first principal direction) or a list of numbers"),
                "frequencies": Param(None, items=float,
                                     help="angular frequencies k (default: n_frequencies in [0, k_max])"),
                "n_frequencies": Param(1000, min=1, help="evenly spaced frequencies (arXiv 2405.17479: 1,000)"),
                "k_max": Param(6.283185307179586, min=0.0, exclusive_min=True,
                               help="largest angular frequency [rad per input unit] (2 pi)"),
                "floor": Param(1e-3, min=0.0, max=1.0, exclusive_max=True,
                               help="relative error is NaN where |F[y]| < floor * max |F[y]|"),
            },
        ),
        Component(
            "analyzer", "pca-structure", "overtone_dynamics.spectrum:PCAStructure",
            "explained variance of the top principal components of representations",
            params={
                "variable": _VARIABLE,
                "n_components": Param(10, min=1, help="components to report"),
                "top": Param(2, min=1, help="report the variance share of this many leading components"),
            },
        ),
        Component(
            "analyzer", "effective-rank", "overtone_dynamics.spectrum:EffectiveRank",
            "participation ratio and entropy effective rank of representations",
            params={"variable": _VARIABLE},
        ),
        Component(
            "analyzer", "dse", "overtone_dynamics.diffusion:DSE",
            "diffusion spectral entropy of representations (Liao, Liu et al. 2023)",
            params={**_dse_params(),
                    "precision": Param("float64", choices=("float64", "float32"),
                                       help="floating-point precision of the kernel and eigensolver")},
        ),
        Component(
            "analyzer", "dsmi", "overtone_dynamics.diffusion:DSMI",
            "diffusion spectral mutual information between representations and labels",
            params={
                **_dse_params(),
                "labels": Param("labels", help="variable with one label (or scalar) per sample"),
                "repetitions": Param(5, min=1, help="random subsets averaged per class (reference default 5)"),
                "n_bins": Param(10, min=2, help="bins for a continuous scalar reference (reference default 10)"),
                "reference": Param("auto", choices=("auto", "discrete", "continuous"),
                                   help="treat labels as classes or bin them (auto: integers are classes)"),
            },
        ),
        Component(
            "analyzer", "scaling-law", "overtone_dynamics.scaling:ScalingLaw",
            "fit L = L_inf + (x0/x)^alpha or L = E + A/N^alpha + B/D^beta with bootstrap intervals",
            params={
                "form": Param("auto", choices=("auto", "power", "chinchilla"),
                              help="which law (auto: chinchilla when n and d are given)"),
                "x": Param("x", help="variable or coordinate of the power law's x (e.g. step, N)"),
                "n": Param(None, type=str, help="variable of parameter counts (chinchilla)"),
                "d": Param(None, type=str, help="variable of data sizes (chinchilla)"),
                "loss": Param("loss", help="variable of losses"),
                "objective": Param("huber", choices=("huber", "mse"), help="residual loss on log L"),
                "delta": Param(1e-3, min=0.0, exclusive_min=True, help="Huber delta (Hoffmann et al.: 1e-3)"),
                "n_starts": Param(10, min=1, help="L-BFGS runs from the best grid points"),
                "n_bootstrap": Param(200, min=0, help="bootstrap resamples (0: no intervals)"),
                "confidence": Param(0.95, min=0.0, max=1.0, exclusive_min=True, exclusive_max=True,
                                    help="confidence level of the intervals"),
                "seed": _SEED,
                "dropna": Param(False, help="drop points with NaN instead of failing"),
                "last": Param("", help="a dim (e.g. step): fit each member's last finite loss along it "
                                       "(a sweep.nc's final evaluations); empty: every element is a point"),
            },
        ),
        Component(
            "analyzer", "weight-density", "overtone_dynamics.weight_density:WeightDensity",
            "density of a weight matrix's entries over training, Kramers-Moyal drift/diffusion and "
            "a Fokker-Planck prediction (W1, KL) (arXiv 2501.09659)",
            params={
                "variables": Param(None, type=list, items=str,
                                   help="weight probes to analyze (default: every weight_* variable)"),
                "bins": Param(80, min=4, help="equal bins of the density grid"),
                "range": Param(None, type=list, items=float, length=2,
                               help="[low, high] of the grid (default: the entries' range over all steps, padded)"),
                "pad": Param(0.1, min=0.0, help="default grid: widen the entries' range by pad * span per side"),
                "start_step": Param(None, type=int, help="recorded step the prediction starts from "
                                                         "(default: the first)"),
                "fit_until": Param(None, type=int, help="last step of the transitions that estimate D1, D2 "
                                                        "(default: the last)"),
                "min_count": Param(20, min=2, help="transitions a bin needs for its own D1, D2 "
                                                   "(else interpolated)"),
                "coefficients": Param("constant", choices=("constant", "per-interval"),
                                      help="one D1(w), D2(w) for all steps, or one per probe interval "
                                           "(pooled in its sparse bins)"),
            },
        ),
        Component(
            "analyzer", "condensation", "overtone_dynamics.geometry:Condensation",
            "cosine-similarity structure of neurons' input weights",
            params={
                "variable": Param(None, type=str, help="weight variable (out, in) (default: first weight_*)"),
                "threshold": Param(0.9, min=0.0, max=1.0, exclusive_min=True,
                                   help="|cos| at or above which two neurons count as aligned"),
            },
        ),
        Component(
            "analyzer", "neural-collapse", "overtone_dynamics.geometry:NeuralCollapse",
            "NC1-NC4 of last-layer features (Papyan, Han and Donoho 2020)",
            params={
                "variable": _VARIABLE,
                "labels": Param("labels", help="variable with the class of each sample"),
                "weight_variable": Param(None, type=str, help="classifier weights (class, dim), for NC3/NC4"),
                "bias_variable": Param(None, type=str, help="classifier bias (class,), for NC4"),
            },
        ),
    ]
