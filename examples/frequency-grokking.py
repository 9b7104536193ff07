"""The 1-D synthetic experiment of arXiv 2405.17479 (Zhou, Zhang, Xu), rebuilt from its text and
measured with the ``frequency-error`` analyzer.

Protocol (as the project's notes record it): 10,000 points on [-pi, pi]; the non-uniform
training set takes the 20 points minimising |sin x - sin 6x|, the 10 minimising
|sin 3x - sin 6x| and n - 30 evenly spaced points (n = 65); the uniform sets are n evenly
spaced points (n = 65 and n = 1,000); the test set is 1,000 evenly spaced points. The text
available to us gives no target formula: we take y = sin x + sin 3x + sin 6x, whose
components the sampling makes look alike. The network and optimiser are ours (the paper's are
not in our notes): a 1-200-200-1 tanh MLP, Adam lr 1e-3, full batch, MSE.

    python examples/frequency-grokking.py --seeds 0 1 2 --steps 6000

prints, per setting, the training set's spectrum |F[y](k)| at k = 0..10 (the test set's is
0.5 at k = 1, 3, 6 and 0 elsewhere), and per seed the steps at which the train and the test MSE first fall below
``--tol``, and the step at which the relative error (frequency-error) at k = 1, 3, 6 first
falls below 0.1, then a Markdown table of means and spreads. Needs torch and
overtone-dynamics; plain torch trains (the engine has no regression task of its own here).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import xarray as xr
from overtone_dynamics.frequency import FrequencyError, nudft

KEYS = (1.0, 3.0, 6.0)


def target(x: np.ndarray) -> np.ndarray:
    """y = sin x + sin 3x + sin 6x (our choice; see the module docstring)."""
    return np.sin(x) + np.sin(3 * x) + np.sin(6 * x)


def training_inputs(setting: str, n: int = 65) -> np.ndarray:
    """The training inputs of ``setting``: 'nonuniform-65', 'uniform-65' or 'uniform-1000'."""
    if setting.startswith("uniform"):
        return np.linspace(-np.pi, np.pi, int(setting.split("-")[1]))
    pool = np.linspace(-np.pi, np.pi, 10_000)
    first = np.argsort(np.abs(np.sin(pool) - np.sin(6 * pool)), kind="stable")[:20]
    rest = np.setdiff1d(np.arange(pool.size), first)
    second = rest[np.argsort(np.abs(np.sin(3 * pool[rest]) - np.sin(6 * pool[rest])), kind="stable")[:10]]
    uniform = np.linspace(-np.pi, np.pi, n - 30)
    return np.sort(np.concatenate([pool[first], pool[second], uniform]))


def first_below(values: np.ndarray, steps: np.ndarray, tol: float) -> float:
    """The first step where ``values`` < ``tol`` (NaN if never)."""
    hits = np.flatnonzero(values < tol)
    return float(steps[hits[0]]) if hits.size else float("nan")


class SeedBatchedMLP(torch.nn.Module):
    """One 1-W-W-1 tanh MLP per seed, trained side by side (batched matrix products).

    Each seed's weights start as torch.nn.Linear's do (uniform in +-1/sqrt(fan_in)) from its
    own generator; the loss is the sum of the per-seed MSEs, so with Adam (elementwise) every
    seed trains exactly as it would alone.
    """

    def __init__(self, seeds: list[int], width: int = 200) -> None:
        super().__init__()
        shapes = [(1, width), (width, width), (width, 1)]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in shapes:
            w, b = [], []
            for seed in seeds:
                g = torch.Generator().manual_seed(seed * 1000 + fan_in * 7 + fan_out)
                bound = 1 / fan_in**0.5
                w.append((torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound)
                b.append((torch.rand(1, fan_out, generator=g) * 2 - 1) * bound)
            self.weights.append(torch.nn.Parameter(torch.stack(w)))
            self.biases.append(torch.nn.Parameter(torch.stack(b)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (seed, n, 1) -> (seed, n, 1)."""
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.weights) - 1:
                x = torch.tanh(x)
        return x


def run(setting: str, seeds: list[int], steps: int, every: int, tol: float, lr: float) -> list[dict[str, float]]:
    """Train one network per seed; the marker steps of train/test loss and per-frequency errors."""
    x_train = training_inputs(setting)
    x_test = np.linspace(-np.pi, np.pi, 1000)
    n_seeds = len(seeds)
    xt = torch.tensor(x_train, dtype=torch.float32)[None, :, None].expand(n_seeds, -1, -1)
    yt = torch.tensor(target(x_train), dtype=torch.float32)[None, :, None].expand(n_seeds, -1, -1)
    xe = torch.tensor(x_test, dtype=torch.float32)[None, :, None].expand(n_seeds, -1, -1)
    net = SeedBatchedMLP(seeds)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    recorded, outputs, train_loss = [], [], []
    for step in range(1, steps + 1):
        opt.zero_grad()
        per_seed = torch.mean((net(xt) - yt) ** 2, dim=(1, 2))
        per_seed.sum().backward()
        opt.step()
        if step % every == 0:
            with torch.no_grad():
                outputs.append(net(xe)[..., 0].double().numpy())
                train_loss.append(torch.mean((net(xt) - yt) ** 2, dim=(1, 2)).numpy())
            recorded.append(step)
    outputs = np.stack(outputs, axis=1)  # (seed, step, sample)
    train_loss = np.stack(train_loss, axis=1)
    y_test = target(x_test)
    steps_arr = np.asarray(recorded)
    rows = []
    for i in range(n_seeds):
        ds = xr.Dataset({"outputs": (("step", "sample"), outputs[i]), "targets": ("sample", y_test),
                         "inputs": ("sample", x_test)}, coords={"step": recorded})
        errors = FrequencyError(frequencies=list(KEYS))(ds)["relative_error"]
        test_loss = np.mean((outputs[i] - y_test) ** 2, axis=1)
        row = {"train_fit": first_below(train_loss[i], steps_arr, tol),
               "test_fit": first_below(test_loss, steps_arr, tol),
               "final_train_mse": float(train_loss[i, -1]), "final_test_mse": float(test_loss[-1])}
        for k in KEYS:
            row[f"k{int(k)}_learned"] = first_below(errors.sel(frequency=k).values, steps_arr, 0.1)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--tol", type=float, default=1e-3, help="MSE counted as fitted")
    parser.add_argument("--settings", nargs="+", default=["nonuniform-65", "uniform-65", "uniform-1000"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = {}
    for setting in args.settings:
        x = training_inputs(setting)
        spectrum = np.abs(nudft(x, target(x), np.arange(11)))
        print(setting, "training-set |F[y](k)|, k = 0..10:", np.round(spectrum, 3).tolist(), flush=True)
        rows = run(setting, args.seeds, args.steps, args.every, args.tol, args.lr)
        for seed, row in zip(args.seeds, rows):
            print(setting, f"seed {seed}", {k: round(v, 5) for k, v in row.items()}, flush=True)
        table[setting] = rows
    keys = list(table[args.settings[0]][0])
    print(f"\n| setting | {' | '.join(keys)} |\n|---|" + "---|" * len(keys))
    for setting, rows in table.items():
        cells = []
        for k in keys:
            values = np.array([r[k] for r in rows])
            done = values[~np.isnan(values)]
            text = f"{done.mean():.4g} +- {done.std():.2g}" if done.size else "never"
            cells.append(text + (f" ({done.size}/{values.size})" if done.size < values.size else ""))
        print(f"| {setting} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
