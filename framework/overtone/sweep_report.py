"""The sweep's report.html: each variant's spread across seeds (median and min-max band) per metric.

A sweep of ``variant x seed`` members has one curve per member in ``sweep.nc``; the report
draws, for each variant, the median over seeds as a line and the range (minimum to maximum)
as a band, so the seed-to-seed spread (e.g. of a grokking step) is what the eye sees. Members
that stopped (NaN from their stopping step on) are left out of the statistics from there;
``count`` says how many members each point has.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

#: The metrics drawn, when ``sweep.nc`` has them (an engine's others are listed in the table only).
METRICS = ("train_loss", "eval_loss", "train_batch_loss", "train_acc", "eval_acc")


def seed_spread(values: Any) -> Any:
    """``median``, ``low`` (minimum), ``high`` (maximum) and ``count`` over the ``seed`` dim of a
    DataArray, NaN skipped (NaN where no member has a value)."""
    import xarray as xr

    count = values.notnull().sum("seed")
    return xr.Dataset({"median": values.median("seed", skipna=True), "low": values.min("seed", skipna=True),
                       "high": values.max("seed", skipna=True), "count": count})


def last_values(values: Any) -> Any:
    """Each member's last non-NaN value along ``step`` (NaN for a member without one)."""
    import xarray as xr

    data = np.moveaxis(np.asarray(values.values, dtype=float), values.dims.index("step"), -1)
    seen = ~np.isnan(data)
    last = data.shape[-1] - 1 - np.argmax(seen[..., ::-1], axis=-1)
    picked = np.take_along_axis(data, last[..., None], -1)[..., 0]
    dims = [d for d in values.dims if d != "step"]
    return xr.DataArray(np.where(seen.any(-1), picked, np.nan), dims=dims)


def variant_labels(sweep: Any) -> list[str]:
    """One label per variant: its grid values (``optimizer.lr=0.003``), or ``base``."""
    keys = [name for name, coord in sweep.coords.items() if coord.dims == ("variant",) and name != "variant"]
    labels = []
    for v in range(sweep.sizes.get("variant", 1)):
        parts = [f"{k}={np.asarray(sweep[k].values[v]).item()!r}" for k in keys]
        labels.append(", ".join(parts) or "base")
    return labels


def spread_figure(sweep: Any):
    """One panel per metric of :data:`METRICS` in ``sweep``: per variant the median over seeds
    (line) and the min-max band (shaded) against ``step``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in METRICS if m in sweep and bool(sweep[m].notnull().any())]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(4.2 * max(len(names), 1), 3.6), squeeze=False)
    labels = variant_labels(sweep)
    for ax, name in zip(axes[0], names):
        values = sweep[name].dropna("step", how="all")
        spread = seed_spread(values)
        for v, label in enumerate(labels):
            row = spread.isel(variant=v)
            line, = ax.plot(row.step.values, row["median"].values, label=label, gid=f"{name}:median:{v}")
            ax.fill_between(row.step.values, row["low"].values, row["high"].values, color=line.get_color(),
                            alpha=0.25, linewidth=0, gid=f"{name}:range:{v}")
        ax.set(xlabel="step", title=name)
        if name.endswith("loss"):
            ax.set_yscale("log")
        elif name.endswith("acc"):
            ax.set_ylim(-0.02, 1.02)
    if names and len(labels) <= 12:
        axes[0][0].legend(fontsize="small")
    fig.suptitle(f"median over {sweep.sizes.get('seed', 1)} seeds and min-max range per variant")
    fig.tight_layout()
    return fig


def final_table(sweep: Any) -> str:
    """HTML rows: per variant and metric, the last recorded value's median [min, max] over seeds."""
    labels = variant_labels(sweep)
    names = [m for m in sweep.data_vars if set(sweep[m].dims) == {"variant", "seed", "step"}]
    rows = ["<tr><th>variant</th>" + "".join(f"<th>final {html.escape(n)}</th>" for n in names) + "</tr>"]
    for v, label in enumerate(labels):
        cells = []
        for name in names:
            spread = seed_spread(last_values(sweep[name].isel(variant=v)))
            if int(spread["count"]) == 0:
                cells.append("<td>-</td>")
                continue
            cells.append(f"<td>{float(spread['median']):.4g} [{float(spread['low']):.4g}, "
                         f"{float(spread['high']):.4g}]</td>")
        rows.append(f"<tr><td>{html.escape(label)}</td>{''.join(cells)}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def write_sweep_report(sweep_dir: Path, sweep: Any) -> Path:
    """Write ``sweep_dir/report.html`` (the spread figure, the final values' table, the run
    directories) atomically and return its path."""
    import matplotlib.pyplot as plt

    from overtone.io import atomic_target

    buffer = io.BytesIO()
    fig = spread_figure(sweep)
    fig.savefig(buffer, format="png", dpi=80)  # tight_layout already; a tight bbox costs a second draw
    plt.close(fig)
    image = base64.b64encode(buffer.getvalue()).decode("ascii")
    runs = sweep.attrs.get("runs", "")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>overtone sweep</title>"
            "<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto}img{max-width:100%}"
            "td,th{padding:2px 10px;text-align:left}</style></head><body>"
            f"<h1>Sweep {html.escape(Path(sweep_dir).name)}</h1>"
            f"<p>{sweep.sizes.get('variant', 1)} variants x {sweep.sizes.get('seed', 1)} seeds. Lines: median "
            "over seeds; bands: minimum to maximum.</p>"
            f"<img alt='median and range over seeds' src='data:image/png;base64,{image}'>"
            "<h2>Last values: median [min, max] over seeds</h2>" + final_table(sweep) +
            f"<h2>Runs</h2><pre>{html.escape(runs)}</pre></body></html>")
    path = Path(sweep_dir) / "report.html"
    with atomic_target(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
