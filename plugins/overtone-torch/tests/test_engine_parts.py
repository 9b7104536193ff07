"""Engine parts against independent references: the lr schedule, evaluation, the metrics log."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from overtone_torch.build import TrainNet
from overtone_torch.evaluation import evaluate
from overtone_torch.metrics import MetricsLog
from overtone_torch.schedule import lr_factor


@pytest.mark.parametrize(("warmup", "decay", "ratio"), [(0, "constant", 0.1), (5, "constant", 0.1),
                                                        (0, "cosine", 0.0), (7, "cosine", 0.25)])
def test_lr_factor_matches_the_formula(warmup, decay, ratio):
    total = 40
    steps = np.arange(total, dtype=np.float64)
    # reference: linear warm-up (s + 1) / w, then 1 or r + (1 - r) (1 + cos(pi (s - w) / (T - w))) / 2
    cosine = ratio + (1 - ratio) * 0.5 * (1 + np.cos(np.pi * (steps - warmup) / (total - warmup)))
    expected = np.where(steps < warmup, (steps + 1) / max(warmup, 1), 1.0 if decay == "constant" else cosine)
    got = [lr_factor(int(s), total=total, warmup_steps=warmup, decay=decay, min_lr_ratio=ratio) for s in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    if decay == "cosine":
        assert got[warmup] == pytest.approx(1.0) and got[-1] > ratio  # the last step is not yet at the floor


def test_evaluate_weights_batches_by_kept_targets():
    """Mean loss over every kept target (not a mean of batch means); -100 targets are ignored."""
    from overtone_torch.losses.cross_entropy import CrossEntropyLoss

    torch.manual_seed(0)
    head = CrossEntropyLoss(d_in=4, n_classes=3)
    net = TrainNet(torch.nn.Identity(), head)
    x = torch.randn(10, 4)
    y = torch.tensor([0, 1, 2, -100, 1, 1, -100, 0, 2, 2])
    batches = [(x[:3], y[:3]), (x[3:4], y[3:4]), (x[4:], y[4:])]  # sizes 3, 1 (all ignored), 6
    loss, acc = evaluate(net, batches, torch.device("cpu"))
    w = head.weight.detach().double().numpy()
    b = head.bias.detach().double().numpy()
    z = x.double().numpy() @ w.T + b
    keep = y.numpy() != -100
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    expected_loss = -log_p[keep, y.numpy()[keep]].mean()
    expected_acc = (z.argmax(1)[keep] == y.numpy()[keep]).mean()
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert acc == pytest.approx(expected_acc, abs=1e-12)


def test_metrics_log_round_trip_and_dataset():
    log = MetricsLog({"p": 7, "op": "+", "skip": [1, 2]})
    log.add(1, train_batch_loss=2.0, lr=0.1)
    log.add(2, train_batch_loss=1.5, lr=0.1)
    log.add(2, eval_acc=0.25)
    assert log.latest("train_batch_loss") == 1.5 and math.isnan(log.latest("eval_loss"))
    again = MetricsLog.from_state(log.state())
    assert again.latest("eval_acc") == 0.25
    ds = again.dataset()
    assert ds.step.values.tolist() == [1, 2]
    np.testing.assert_array_equal(ds["eval_acc"].values, [np.nan, 0.25])
    assert ds["eval_acc"].attrs["units"] == "1" and ds["train_batch_loss"].attrs["units"] == "nat"
    assert ds.attrs == {"p": 7, "op": "+"}  # only netCDF-able attrs are kept


@pytest.mark.parametrize("rows", [
    {1: {"train_batch_loss": 2.0}, 5: {"eval_acc": 0.5, "eval_loss_skill[0]": 1.0, "eval_loss_skill[2]": 0.5}},
    {},  # an empty log: dim step of size 0
])
def test_metrics_file_is_the_one_xarray_writes(tmp_path, rows):
    """metrics.nc is written through h5netcdf's API for speed: read back, it is identical to
    the file ``xr.Dataset.to_netcdf`` writes (values with their NaN gaps, dims, coords, attrs,
    dtypes, the float variables' _FillValue)."""
    import xarray as xr

    log = MetricsLog({"p": 7, "op": "+", "lr": 1e-3, "seed": 3})
    for step, values in rows.items():
        log.add(step, **values)
    log.write(tmp_path / "metrics.nc")
    log.dataset().to_netcdf(tmp_path / "xarray.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "metrics.nc", engine="h5netcdf") as ours, \
            xr.open_dataset(tmp_path / "xarray.nc", engine="h5netcdf") as theirs:
        assert ours.identical(theirs)
        assert {k: str(v.dtype) for k, v in ours.variables.items()} == \
            {k: str(v.dtype) for k, v in theirs.variables.items()}
        for name in ours.data_vars:
            assert np.isnan(ours[name].encoding["_FillValue"]) and np.isnan(theirs[name].encoding["_FillValue"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.nc", "xarray.nc"]  # no temporary left
