"""Phase boundaries of grokking runs from their metrics and the progress-measures analysis.

Run examples/grokking-progress.toml for a few seeds, then:
    python examples/frequency-progress-phases.py runs/grokking-progress runs/grokking-progress-s1 ...

For each run directory it prints the step where train accuracy first reaches 0.99 (end of
memorisation), where the restricted loss first falls below half of log p (the key-frequency
circuit alone predicts better than chance), where the excluded loss peaks after that, where eval accuracy
first reaches 0.99 (grokked), the key frequencies and the final Gini coefficients.
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


if __name__ == "__main__":
    rows = [phases(Path(arg)) for arg in sys.argv[1:]]
    if not rows:
        sys.exit("usage: python examples/frequency-progress-phases.py RUN_DIR [RUN_DIR ...]")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
