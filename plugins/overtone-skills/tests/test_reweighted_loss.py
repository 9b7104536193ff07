"""loss-weighted-cross-entropy against a float64 NumPy computation of value and gradient."""

from __future__ import annotations

import numpy as np
import pytest
from overtone import ConfigError

torch = pytest.importorskip("torch")
from overtone.testing import check_loss  # noqa: E402
from overtone_skills.reweighted_loss import LossWeightedCrossEntropy  # noqa: E402


def _numpy_reference(z: np.ndarray, y: np.ndarray, gamma: float):
    """Value mean_i w_i l_i and its gradient in the scores, w_i = l_i^g / mean l^g held fixed."""
    shifted = z - z.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_softmax[np.arange(len(y)), y]
    w = loss**gamma / np.mean(loss**gamma)
    grad = np.exp(log_softmax)
    grad[np.arange(len(y)), y] -= 1.0
    return float(np.mean(w * loss)), grad * (w / len(y))[:, None]


def test_passes_the_loss_contract():
    check_loss(LossWeightedCrossEntropy)
    check_loss(LossWeightedCrossEntropy, params={"gamma": 2.0, "bias": False})


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.5])
def test_value_and_gradient_match_numpy(gamma):
    torch.manual_seed(0)
    loss = LossWeightedCrossEntropy(d_in=4, n_classes=3, gamma=gamma).double()
    features = torch.randn(9, 4, dtype=torch.float64)
    targets = torch.randint(0, 3, (9,))
    z = loss.scores(features).detach().numpy()
    ref_value, ref_grad = _numpy_reference(z, targets.numpy(), gamma)
    value = loss(features, targets)
    np.testing.assert_allclose(value.item(), ref_value, rtol=1e-12)
    value.backward()
    # d value / d W = sum_i (d value / d z_i) x_i^T
    expected = ref_grad.T @ features.numpy()
    np.testing.assert_allclose(loss.weight.grad.numpy(), expected, rtol=1e-10, atol=1e-14)


def test_evaluation_mode_is_plain_cross_entropy():
    torch.manual_seed(1)
    loss = LossWeightedCrossEntropy(d_in=5, n_classes=4, gamma=1.0)
    features, targets = torch.randn(16, 5), torch.randint(0, 4, (16,))
    plain = torch.nn.functional.cross_entropy(loss.scores(features), targets)
    trained = loss(features, targets)
    assert not torch.isclose(trained, plain)  # the weighting changes the training objective
    loss.eval()
    torch.testing.assert_close(loss(features, targets), plain)


def test_bad_gamma_is_refused():
    with pytest.raises(ConfigError, match="gamma = -1.0 must be >= 0"):
        LossWeightedCrossEntropy(d_in=3, n_classes=2, gamma=-1.0)
