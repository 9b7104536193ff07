"""The sweep report: per variant, the median over seeds and the min-max band, checked against numpy."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr


def _sweep(seed=0):
    rng = np.random.default_rng(seed)
    loss = rng.lognormal(size=(2, 5, 7))
    loss[1, 3, 4:] = np.nan  # a member that stopped at step 4
    acc = rng.uniform(size=(2, 5, 7))
    acc[:, :, ::2] = np.nan  # evaluated every other step
    acc[0, :, 6] = np.nan  # ... and at no member's last logged step for variant 0
    return xr.Dataset(
        {"train_batch_loss": (("variant", "seed", "step"), loss), "eval_acc": (("variant", "seed", "step"), acc)},
        coords={"variant": [0, 1], "seed": range(5), "step": np.arange(1, 8), "optimizer.lr": ("variant", [1e-3, 3e-3])},
        attrs={"runs": "a\nb"})


def test_seed_spread_is_numpys_nanmedian_nanmin_nanmax():
    from overtone.sweep_report import seed_spread

    sweep = _sweep()
    values = sweep["train_batch_loss"]
    got = seed_spread(values)
    raw = values.values
    np.testing.assert_allclose(got["median"].values, np.nanmedian(raw, axis=1), rtol=1e-15)
    np.testing.assert_allclose(got["low"].values, np.nanmin(raw, axis=1), rtol=1e-15)
    np.testing.assert_allclose(got["high"].values, np.nanmax(raw, axis=1), rtol=1e-15)
    assert got["count"].values[1, 5] == 4 and got["count"].values[0, 5] == 5


def test_the_plotted_lines_and_bands_are_the_median_and_range():
    """The figure's data: each variant's line is the numpy median over seeds, its band spans
    numpy's min and max at every step (only the steps where some member has a value)."""
    from matplotlib.collections import PolyCollection
    from overtone.sweep_report import spread_figure

    sweep = _sweep(1)
    fig = spread_figure(sweep)
    by_gid = {a.get_gid(): a for ax in fig.axes for a in [*ax.lines, *ax.collections]}
    for name in ("train_batch_loss", "eval_acc"):
        raw = sweep[name].values
        keep = ~np.isnan(raw).all(axis=(0, 1))
        steps = sweep.step.values[keep]
        for v in range(2):
            line = by_gid[f"{name}:median:{v}"]
            np.testing.assert_array_equal(line.get_xdata(), steps)
            with warnings.catch_warnings():  # a step where no member of this variant has a value
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(raw[v][:, keep], axis=0)
                low, high = np.nanmin(raw[v][:, keep], axis=0), np.nanmax(raw[v][:, keep], axis=0)
            np.testing.assert_allclose(line.get_ydata(), median, rtol=1e-15)
            band = by_gid[f"{name}:range:{v}"]
            assert isinstance(band, PolyCollection)
            vertices = np.concatenate([path.vertices for path in band.get_paths()])
            finite = ~np.isnan(low)
            for step, lo, hi in zip(steps[finite], low[finite], high[finite]):
                at = vertices[np.isclose(vertices[:, 0], step)][:, 1]
                assert np.isclose(at.min(), lo, rtol=1e-12) and np.isclose(at.max(), hi, rtol=1e-12)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_table_gives_each_members_last_value_spread():
    from overtone.sweep_report import final_table, last_values

    sweep = _sweep(2)
    last = last_values(sweep["train_batch_loss"])
    raw = sweep["train_batch_loss"].values
    expected = raw[..., -1].copy()
    expected[1, 3] = raw[1, 3, 3]  # the stopped member's last value
    np.testing.assert_array_equal(last.values, expected)
    acc = last_values(sweep["eval_acc"]).values
    np.testing.assert_array_equal(acc[0], sweep["eval_acc"].values[0, :, 5])
    table = final_table(sweep)
    v1 = expected[1]
    assert f"{np.median(v1):.4g} [{v1.min():.4g}, {v1.max():.4g}]" in table
    assert "optimizer.lr=0.003" in table


def test_a_sweep_writes_its_report(tmp_path, example_registry):
    from overtone.sweep import run_sweep

    config = tmp_path / "fit.toml"
    config.write_text("[run]\nengine = 'linreg'\n[train]\nsteps = 6\ncheckpoint_every = 3\n")
    run_sweep(config, grid=["train.lr=0.05,0.2"], seeds=3, out=tmp_path, registry=example_registry)
    page = (tmp_path / "fit-sweep" / "report.html").read_text()
    assert "2 variants x 3 seeds" in page and "data:image/png;base64," in page
    assert "train.lr=0.2" in page


def test_one_seed_has_no_band_width():
    from overtone.sweep_report import seed_spread

    values = _sweep()["train_batch_loss"].isel(seed=[0])
    got = seed_spread(values)
    np.testing.assert_array_equal(got["low"].values, got["high"].values)
