"""KAN vs MLP spectral bias on fourier-regression (arXiv 2410.01803, in the setting of Rahaman et al. 2019).

Target ``y(x) = sum_k sin(2 pi k x' + phi_k)`` with ``k = 5, 10, ..., 50`` cycles over the input
range, phases ``U(0, 2 pi)`` drawn per seed. The task's domain is ``[-1, 1)`` (the KAN grid's
range), so its frequencies are ``k / 2`` cycles per unit; ``n_train`` training points on a
regular grid. Every model trains full batch with Adam (same learning rate and steps); every
``--every`` steps the outputs on the training grid are Fourier transformed and the F-principle
measure ``Delta_k = |F[f](k) - F[y](k)| / |F[y](k)|`` is recorded for each target frequency.

Models (parameters): ``mlp`` ReLU [1, 40, 40, 1] (1,761); ``kan-g200`` [1, 4, 1] with G = 200
(1,640); ``kan-ext`` the same KAN grown G = 50 -> 100 -> 200 at 1/4 and 1/2 of training (1,640
at the end); ``kan-g50`` [1, 4, 1] with G = 50 (440); ``mlp-256x4``, ReLU [1, 256, 256, 256, 256, 1] (198,145; not run by default:
``--models mlp-256x4``), the shape of Rahaman et al. at less depth, to see the MLP's order of
learning where its size does not bind. Writes ``<out>/spectral.nc`` (dims model,
seed, step, frequency), ``<out>/summary.md`` and a heat-map figure, and prints the summary:

    python examples/kan-spectral-bias.py [--steps 2000] [--seeds 0 1 2] [--out runs/kan-spectral-bias]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from overtone_torch.kan.fourier import FourierRegression
from overtone_torch.kan.model import KAN
from overtone_torch.models.mlp import MLP

CYCLES = list(range(5, 55, 5))
VECTOR = {"kind": "vector", "dim": 1, "output": "pooled"}
THRESHOLD = 0.1  # Delta_k below this counts as learned


def models(steps: int) -> dict[str, Callable[[], torch.nn.Module]]:
    """Factories of the compared models (called after seeding)."""
    return {
        "mlp": lambda: MLP(input_spec=VECTOR, d_out=1, width=40, depth=2, activation="relu"),
        "kan-g200": lambda: KAN(input_spec=VECTOR, d_out=1, width=4, grid_size=200),
        "kan-ext": lambda: KAN(input_spec=VECTOR, d_out=1, width=4, grid_size=50,
                               grid_schedule=[[steps // 4, 100], [steps // 2, 200]]),
        "kan-g50": lambda: KAN(input_spec=VECTOR, d_out=1, width=4, grid_size=50),
        "mlp-256x4": lambda: MLP(input_spec=VECTOR, d_out=1, width=256, depth=4, activation="relu"),
    }


def relative_errors(outputs: np.ndarray, target_spectrum: np.ndarray) -> np.ndarray:
    """``|F[f](k) - F[y](k)| / |F[y](k)|`` at the target bins (outputs on the regular grid)."""
    spectrum = np.fft.rfft(outputs)[CYCLES]
    return np.abs(spectrum - target_spectrum) / np.abs(target_spectrum)


def train(name: str, factory, seed: int, steps: int, every: int, lr: float, n_train: int) -> dict:
    """One run: Delta_k every ``every`` steps, final train and evaluation MSE, parameter count."""
    phases = np.random.default_rng(seed).uniform(0, 2 * math.pi, len(CYCLES)).tolist()
    task = FourierRegression(seed=seed, frequencies=[k / 2 for k in CYCLES], phases=phases,
                             sampling="grid", n_train=n_train, eval_points=n_train)
    x, y = task.x["train"], task.y["train"]
    target_spectrum = np.fft.rfft(y.double().numpy())[CYCLES]
    torch.manual_seed(seed)
    model = factory()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    record_steps, errors = [], []
    for step in range(steps + 1):
        if step % every == 0:
            with torch.no_grad():
                record_steps.append(step)
                errors.append(relative_errors(model(x).squeeze(-1).double().numpy(), target_spectrum))
        if step == steps:
            break
        loss = ((model(x).squeeze(-1) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        for p in (model.on_step(step + 1) if isinstance(model, KAN) else []):
            optimizer.state.pop(p, None)
    with torch.no_grad():
        train_mse = ((model(x).squeeze(-1) - y) ** 2).mean().item()
        eval_mse = ((model(task.x["eval"]).squeeze(-1) - task.y["eval"]) ** 2).mean().item()
    return {"steps": record_steps, "errors": np.array(errors), "train_mse": train_mse, "eval_mse": eval_mse,
            "parameters": sum(p.numel() for p in model.parameters())}


def first_below(errors: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Per frequency, the first recorded step with Delta_k < THRESHOLD (NaN if never)."""
    below = errors < THRESHOLD
    return np.where(below.any(0), steps[below.argmax(0)], np.nan)


def summary(ds: xr.Dataset) -> str:
    """Markdown tables: steps to Delta_k < 0.1 per frequency (mean +- std over seeds), final errors."""
    lines = [f"Steps until Delta_k < {THRESHOLD} (mean +- std over seeds {[int(s) for s in ds.seed.values]}; "
             f"'-' = not reached in {int(ds.step[-1])} steps by any seed, n/m = reached by n of m seeds):", "",
             "| model | params | " + " | ".join(f"k={k}" for k in CYCLES) + " |",
             "|---|---|" + "---|" * len(CYCLES)]
    steps = ds.step.values
    for model in ds.model.values:
        firsts = np.array([first_below(ds.delta.sel(model=model, seed=s).values, steps) for s in ds.seed.values])
        cells = []
        for column in firsts.T:
            reached = column[~np.isnan(column)]
            if len(reached) == 0:
                cells.append("-")
            elif len(reached) < len(column):
                cells.append(f"{reached.mean():.0f} ({len(reached)}/{len(column)})")
            else:
                cells.append(f"{reached.mean():.0f} +- {reached.std():.0f}")
        lines.append(f"| {model} | {int(ds.parameters.sel(model=model).values[0])} | " + " | ".join(cells) + " |")
    lines += ["", "Final Delta_k (mean +- std over seeds) and mean squared errors:", "",
              "| model | " + " | ".join(f"k={k}" for k in CYCLES) + " | train MSE | eval MSE |",
              "|---|" + "---|" * (len(CYCLES) + 2)]
    for model in ds.model.values:
        final = ds.delta.sel(model=model).isel(step=-1)
        cells = [f"{m:.2g} +- {s:.1g}" for m, s in zip(final.mean("seed").values, final.std("seed").values)]
        tr, ev = ds.train_mse.sel(model=model), ds.eval_mse.sel(model=model)
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {float(tr.mean()):.2g} +- {float(tr.std()):.1g} | "
                     f"{float(ev.mean()):.2g} +- {float(ev.std()):.1g} |")
    return "\n".join(lines)


def plot(ds: xr.Dataset, path: Path) -> None:
    """Heat maps of log10 Delta_k (mean over seeds) over step x frequency, one panel per model."""
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")

    fig, axes = plt.subplots(1, len(ds.model), figsize=(3.2 * len(ds.model), 3.0), sharey=True,
                             squeeze=False)
    axes = axes[0]
    for ax, model in zip(axes, ds.model.values):
        mean = ds.delta.sel(model=model).mean("seed").values.T
        image = ax.pcolormesh(ds.step.values, CYCLES, np.log10(np.clip(mean, 1e-4, 1)), vmin=-4, vmax=0,
                              cmap="viridis", shading="nearest")
        ax.set_title(str(model))
        ax.set_xlabel("step")
    axes[0].set_ylabel("frequency k (cycles over the range)")
    fig.colorbar(image, ax=axes, label="log10 Delta_k (clipped to [1e-4, 1])")
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("runs/kan-spectral-bias"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=None, help="models to run: mlp kan-g200 kan-ext kan-g50 (default) mlp-256x4")
    parser.add_argument("--replot", action="store_true", help="redraw the figure and summary from spectral.nc")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        ds = xr.load_dataset(args.out / "spectral.nc")
        plot(ds, args.out / "kan-spectral-bias.png")
        print(summary(ds))
        return
    chosen = args.models or ["mlp", "kan-g200", "kan-ext", "kan-g50"]
    factories = {name: f for name, f in models(args.steps).items() if name in chosen}
    runs = {}
    for name, factory in factories.items():
        for seed in args.seeds:
            start = time.perf_counter()
            runs[name, seed] = train(name, factory, seed, args.steps, args.every, args.lr, args.n_train)
            print(f"{name} seed {seed}: eval MSE {runs[name, seed]['eval_mse']:.3g} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    names, steps = list(factories), runs[next(iter(runs))]["steps"]
    delta = np.array([[runs[n, s]["errors"] for s in args.seeds] for n in names])
    ds = xr.Dataset(
        {"delta": (("model", "seed", "step", "frequency"), delta,
                   {"long_name": "|F[f](k) - F[y](k)| / |F[y](k)| on the training grid", "units": "1"}),
         **{key: (("model", "seed"), np.array([[runs[n, s][key] for s in args.seeds] for n in names]))
            for key in ("train_mse", "eval_mse", "parameters")}},
        coords={"model": names, "seed": args.seeds, "step": steps,
                "frequency": ("frequency", CYCLES, {"units": "cycles over the input range"})},
        attrs={"lr": args.lr, "n_train": args.n_train, "optimizer": "Adam, full batch",
               "threshold": THRESHOLD})
    ds.to_netcdf(args.out / "spectral.nc")
    text = summary(ds)
    (args.out / "summary.md").write_text(text + "\n")
    plot(ds, args.out / "kan-spectral-bias.png")
    print(text)


if __name__ == "__main__":
    main()
