"""Kolmogorov-Arnold networks and a sum-of-sinusoids regression task (torch).

The model ``kan`` stacks KAN layers (Liu et al. 2024, arXiv 2404.19756) with B-spline or
Chebyshev bases and extends its grid during training; the task ``fourier-regression`` fits
sums of sinusoids, the setting of the spectral-bias studies (F-principle, arXiv 1901.06523;
KAN vs MLP, arXiv 2410.01803).
"""

