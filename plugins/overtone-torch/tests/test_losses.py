"""Losses through the registry, against float64 NumPy references and torch.nn.functional."""

from __future__ import annotations

import numpy as np
import overtone
import pytest
import torch
import torch.nn.functional as F
from overtone import ConfigError
from overtone_torch.losses.chunked import chunked_linear_cross_entropy
from torch.utils._python_dispatch import TorchDispatchMode


def make(name: str, **params):
    return overtone.registry().get("loss", name).create(**params)


def numpy_cross_entropy(x, w, b, t, eps=0.0):
    """float64 reference: mean over kept rows of lse(z) - (1-eps) z_t - eps mean(z); d/dx, d/dW, d/db."""
    z = x @ w.T + b
    m = z.max(1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(1, keepdims=True)))[:, 0]
    keep = t != -100
    n, v = keep.sum(), w.shape[0]
    rows = lse - (1 - eps) * z[np.arange(len(t)), np.where(keep, t, 0)] - eps * z.mean(1)
    loss = rows[keep].sum() / n
    q = np.full_like(z, eps / v)
    q[np.arange(len(t)), np.where(keep, t, 0)] += 1 - eps
    g = np.exp(z - lse[:, None]) - q
    g[~keep] = 0
    g /= n
    return loss, g @ w, g.T @ x, g.sum(0)


@pytest.mark.parametrize("chunk", [None, 1, 3, 64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_matches_numpy_float64(chunk, smoothing):
    torch.manual_seed(0)
    loss_fn = make("cross-entropy", d_in=5, n_classes=7, chunk_size=chunk, label_smoothing=smoothing).double()
    with torch.no_grad():
        loss_fn.bias.normal_()
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 7, (4, 3))
    t[0, 1] = t[2, 2] = -100
    loss = loss_fn(x, t)
    loss.backward()
    ref, gx, gw, gb = numpy_cross_entropy(x.detach().reshape(-1, 5).numpy(), loss_fn.weight.detach().numpy(),
                                          loss_fn.bias.detach().numpy(), t.reshape(-1).numpy(), smoothing)
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-13)
    np.testing.assert_allclose(x.grad.reshape(-1, 5).numpy(), gx, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(loss_fn.weight.grad.numpy(), gw, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(loss_fn.bias.grad.numpy(), gb, rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_chunked_equals_unchunked_and_torch(smoothing):
    torch.manual_seed(1)
    full = make("cross-entropy", d_in=6, n_classes=11, label_smoothing=smoothing).double()
    chunked = make("cross-entropy", d_in=6, n_classes=11, chunk_size=5, label_smoothing=smoothing).double()
    chunked.load_state_dict(full.state_dict())
    x = torch.randn(2, 9, 6, dtype=torch.float64)
    t = torch.randint(0, 11, (2, 9))
    t[1, :4] = -100
    grads = []
    for loss_fn in (full, chunked):
        xi = x.clone().requires_grad_()
        loss = loss_fn(xi, t)
        loss.backward()
        grads.append((loss.detach(), xi.grad, loss_fn.weight.grad, loss_fn.bias.grad))
    w, b = full.weight.detach().clone().requires_grad_(), full.bias.detach().clone().requires_grad_()
    xt = x.clone().requires_grad_()
    peer = F.cross_entropy((xt @ w.T + b).reshape(-1, 11), t.reshape(-1), ignore_index=-100, label_smoothing=smoothing)
    peer.backward()
    grads.append((peer.detach(), xt.grad, w.grad, b.grad))
    for other in grads[1:]:
        for a, c in zip(grads[0], other):
            torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_chunked_gradcheck(bias, smoothing):
    torch.manual_seed(2)
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, dtype=torch.float64, requires_grad=True) if bias else None
    t = torch.tensor([0, 8, -100, 3, 3, 1, -100])
    inputs = (x, w, b) if bias else (x, w)

    def f(x, w, b=None):
        return chunked_linear_cross_entropy(x, w, b, t, 3, smoothing)

    assert torch.autograd.gradcheck(f, inputs)


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an operator produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("chunk", [None, 16])
def test_chunked_never_materialises_the_logits(chunk):
    n, d, v = 256, 8, 500
    loss_fn = make("cross-entropy", d_in=d, n_classes=v, chunk_size=chunk)
    x = torch.randn(n, d, requires_grad=True)
    t = torch.randint(0, v, (n,))
    with _LargestTensor() as probe:
        loss_fn(x, t).backward()
    if chunk is None:  # the check can fail: the plain path does build (n, v) logits
        assert probe.largest >= n * v
    else:  # forward and backward: at most one (chunk, v) block of logits at a time
        assert probe.largest <= chunk * v


class _OpCounter(TorchDispatchMode):
    """Counts the matrix products (mm/addmm, any variant) run while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.products = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.addmm_):
            self.products += 1
        return func(*args, **(kwargs or {}))


def test_chunked_three_products_per_chunk_and_none_in_backward():
    n, d, v, chunk = 10, 4, 9, 3  # 4 chunks, the last one short
    loss_fn = make("cross-entropy", d_in=d, n_classes=v, bias=False, chunk_size=chunk)
    x = torch.randn(n, d, requires_grad=True)
    t = torch.randint(0, v, (n,))
    with _OpCounter() as forward:
        loss = loss_fn(x, t)
    with _OpCounter() as backward:
        loss.backward()
    assert (forward.products, backward.products) == (3 * 4, 0)
    with torch.no_grad(), _OpCounter() as evaluation:  # no gradient work at all
        torch.testing.assert_close(loss_fn(x, t), loss.detach(), rtol=0, atol=0)
    assert evaluation.products == 4


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_chunked_scales_by_incoming_gradient_and_frozen_head(smoothing):
    torch.manual_seed(4)
    x = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 7, -100, 3, 3, 1, 2, 5, -100, 6, 4])
    (-2.5 * chunked_linear_cross_entropy(x, w, b, t, 4, smoothing)).backward()
    peer = [v.detach().clone().requires_grad_() for v in (x, w, b)]
    z = peer[0] @ peer[1].T + peer[2]
    (-2.5 * F.cross_entropy(z, t, reduction="sum", label_smoothing=smoothing)).backward()
    for mine, ref in zip((x, w, b), peer):
        torch.testing.assert_close(mine.grad, ref.grad, rtol=1e-12, atol=1e-13)
    x.grad = None
    frozen = w.detach()  # a head that does not require a gradient: only dL/dx is computed
    chunked_linear_cross_entropy(x, frozen, None, t, 4, smoothing).backward()
    ref_x = peer[0].detach().clone().requires_grad_()
    F.cross_entropy(ref_x @ frozen.T, t, reduction="sum", label_smoothing=smoothing).backward()
    torch.testing.assert_close(x.grad, ref_x.grad, rtol=1e-12, atol=1e-13)
    x.grad = None
    ignored = torch.full_like(t, -100)  # the mean over no rows is 0 with zero gradients
    loss = chunked_linear_cross_entropy(x, w, b, ignored, 4, smoothing, mean=True)
    loss.backward()
    assert loss.item() == 0.0 and not x.grad.any()


def test_chunked_under_bfloat16_autocast_matches_plain():
    torch.manual_seed(3)
    plain = make("cross-entropy", d_in=32, n_classes=50)
    chunked = make("cross-entropy", d_in=32, n_classes=50, chunk_size=7)
    chunked.load_state_dict(plain.state_dict())
    x = torch.randn(40, 32)
    t = torch.randint(0, 50, (40,))
    results = []
    for loss_fn in (plain, chunked):
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_fn(xi, t)
        loss.backward()
        assert loss.dtype == torch.float32 and loss_fn.weight.grad.dtype == torch.float32
        results.append((loss.detach(), xi.grad, loss_fn.weight.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-3)


def test_scores_and_tied_head():
    loss_fn = make("cross-entropy", d_in=4, n_classes=6, bias=False, chunk_size=2)
    assert loss_fn.bias is None and loss_fn.weight.shape == (6, 4)
    embedding = torch.nn.Embedding(6, 4)
    loss_fn.weight = embedding.weight  # what the engine does with tie_weights
    x, t = torch.randn(3, 4), torch.tensor([1, 5, 0])
    torch.testing.assert_close(loss_fn.scores(x), x @ embedding.weight.T)
    loss_fn(x, t).backward()
    assert embedding.weight.grad is not None and embedding.weight.grad.abs().sum() > 0


def test_mse_matches_numpy():
    loss_fn = make("mse", d_in=3, n_classes=4).double()
    with torch.no_grad():
        loss_fn.bias.normal_()
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 1, -100, 3, 0, 2])
    loss = loss_fn(x, t)
    loss.backward()
    xn, w, b, tn = x.detach().numpy(), loss_fn.weight.detach().numpy(), loss_fn.bias.detach().numpy(), t.numpy()
    keep = tn != -100
    residual = xn[keep] @ w.T + b - np.eye(4)[tn[keep]]
    np.testing.assert_allclose(loss.item(), (residual**2).mean(), rtol=1e-13)
    gx = np.zeros_like(xn)
    gx[keep] = 2 * residual @ w / residual.size
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(loss_fn.scores(x), x @ loss_fn.weight.T + loss_fn.bias)
    assert make("mse", d_in=3, n_classes=4, bias=False).bias is None


@pytest.mark.parametrize(("params", "message"), [
    ({"chunk_size": 0}, "chunk_size = 0 is below the minimum 1; allowed: 1 <= chunk_size"),
    ({"label_smoothing": 1.0}, "label_smoothing = 1.0 must be below 1.0; allowed: 0.0 <= label_smoothing < 1.0"),
    ({"n_classes": 1}, "n_classes >= 2"),
])
def test_bad_loss_params(params, message):
    with pytest.raises(ConfigError) as info:
        make("cross-entropy", **{"d_in": 4, "n_classes": 5, **params})
    assert message in str(info.value)
