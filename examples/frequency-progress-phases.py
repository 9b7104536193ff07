"""Phase boundaries of grokking runs from their metrics and the progress-measures analysis.

Run examples/grokking-progress.toml for a few seeds, then:
    python examples/frequency-progress-phases.py runs/grokking-progress runs/grokking-progress-s1 ...

For each run directory it prints the step where train accuracy first reaches 0.99 (end of
memorisation), where the restricted loss first falls below half of log p (the key-frequency
circuit alone predicts better than chance), where the excluded loss peaks after that, where eval accuracy
first reaches 0.99 (grokked), the key frequencies and the final Gini coefficients. With
``--plot PNG`` it also saves the train, test, restricted and excluded losses of every run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr


def first_step(da: xr.DataArray, condition) -> int | None:
    """The first step where ``condition(da)`` holds (None if never)."""
    da = da.dropna("step")
    hits = da["step"].values[np.asarray(condition(da.values))]
    return int(hits[0]) if hits.size else None


def phases(run: Path) -> dict[str, object]:
    """The phase markers of one run directory."""
    with xr.open_dataset(run / "metrics.nc") as metrics, \
            xr.open_dataset(run / "analysis.nc", group="progress-measures") as pm:
        p = int(pm.attrs["p"])
        memorised = first_step(metrics["train_acc"], lambda v: v >= 0.99)
        excluded = pm["excluded_loss"].dropna("step")
        excluded = excluded.where(excluded["step"] >= (memorised or 0), drop=True)
        return {
            "run": run.name,
            "memorised (train acc >= 0.99)": memorised,
            "restricted < log(p)/2": first_step(pm["restricted_loss"], lambda v: v < np.log(p) / 2),
            "excluded loss peak (after memorised)": int(excluded["step"].values[int(np.argmax(excluded.values))]),
            "grokked (eval acc >= 0.99)": first_step(metrics["eval_acc"], lambda v: v >= 0.99),
            "key frequencies": sorted(pm["key_frequency"].values.tolist()),
            "final logit Gini": round(float(pm["logit_gini"].dropna("step")[-1]), 3),
            "final embedding Gini": round(float(pm["embedding_gini"].dropna("step")[-1]), 3),
        }


def plot(runs: list[Path], path: Path) -> None:
    """One panel per run: train, test, restricted and excluded loss over training (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), squeeze=False, sharey=True)
    for ax, run in zip(axes[0], runs):
        with xr.open_dataset(run / "analysis.nc", group="progress-measures") as pm:
            for name in ("train_loss", "test_loss", "restricted_loss", "excluded_loss"):
                da = pm[name].dropna("step")
                ax.plot(da["step"].values, da.values, label=name.replace("_", " "))
            ax.set_title(f"{run.name}: keys {', '.join(map(str, sorted(pm['key_frequency'].values.tolist())))}",
                         fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("cross-entropy [nat]")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    args = sys.argv[1:]
    figure = None
    if "--plot" in args:
        at = args.index("--plot")
        figure, args = Path(args[at + 1]), args[:at] + args[at + 2:]
    rows = [phases(Path(arg)) for arg in args]
    if not rows:
        sys.exit("usage: python examples/frequency-progress-phases.py RUN_DIR [RUN_DIR ...] [--plot PNG]")
    if figure is not None:
        plot([Path(arg) for arg in args], figure)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
