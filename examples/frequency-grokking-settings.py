"""The sparse-parity and MNIST-like settings of arXiv 2405.17479 (Zhou, Zhang, Xu, "A rationale
from frequency perspective for grokking"), rebuilt from its text and measured with the
``frequency-error`` analyzer on the training and the test inputs.

The paper's claim: with few training samples, the network first learns the *less salient*
frequency components of the test data (those the small training set over-represents), so it
fits the training set while the test error stays high, and generalises when it learns the
test data's salient component. The text we could reach (abstract and introduction) fixes
neither network nor optimiser nor sizes; every choice below is ours:

* ``parity``: task ``multitask-sparse-parity`` (overtone-skills) with one task: 30 data bits
  (plus the task's constant control bit), the label is the parity of 3 fixed bits S; 600
  training examples drawn once, 2,000 test examples. Target y = +-1 (1 - 2 parity), one
  output, MSE. Frequencies along u = indicator(S) / sqrt(3): t = u . x, where the parity is
  cos(pi sqrt(3) t), a single angular frequency k* = pi sqrt(3) = 5.44 rad per unit of t.
* ``digits``: task ``digits`` (overtone-torch; scikit-learn's bundled 8x8 digits, 1,797 images,
  the stand-in for MNIST: nothing is downloaded) with ``train_fraction`` 0.12 (216 training
  images); one-hot targets, 10 outputs, MSE, as in Omnigrok's MNIST setting (Liu et al.); the
  weights start at ``--init-scale`` (default 4) times PyTorch's default. Frequencies along
  the first principal direction of the test inputs (the paper's choice for MNIST), one
  direction for both sets.

Both: a ReLU MLP (``--width`` 256, two hidden layers), AdamW (lr 1e-3, weight decay
``--weight-decay``), full batch, ``--steps`` steps; outputs on both sets every ``--every``
steps. ``frequency-error`` gives |F[f](k) - F[y](k)| / |F[y](k)| over 1,000 angular
frequencies in [0, 2 pi] (its default; the paper's count) on each set.

    python examples/frequency-grokking-settings.py parity --seeds 0 1 2
    python examples/frequency-grokking-settings.py digits --seeds 0 1 2

For each seed it prints the grokking markers (first step with train accuracy >= 0.99 and
test accuracy >= 0.9, test accuracy then and at the end), how far the training targets'
spectrum departs from the test targets' (largest amplitude difference over the test peak),
and the order of learning on the test set: a frequency k > 0.3 is *learned* at the first
step its test-set relative error falls below 0.5; *salient* frequencies have a test spectrum
of at least half its peak, *less salient* ones below that; it prints the median step learned
of each group, the share learned by the time the training set is fitted, and Spearman's rank
correlation between saliency and step learned (positive: less salient first). Then a
Markdown table. Needs torch, overtone-dynamics (and overtone-skills for parity). docs/dynamics.md
holds the results for seeds 0, 1, 2.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import xarray as xr
from overtone.registry import registry
from overtone_dynamics.frequency import FrequencyError, nudft, principal_direction

FREQUENCIES = np.linspace(0.0, 2 * np.pi, 1000)
K_MIN = 0.3  # below this the DFT mostly measures the mean
LEARNED = 0.5  # a frequency is learned when its test-set relative error falls below this


def data(setting: str, seed: int) -> dict[str, np.ndarray]:
    """Training and test inputs/targets (float64) and the projection direction of ``setting``."""
    tasks = registry()
    if setting == "parity":
        task = tasks.get("task", "multitask-sparse-parity").create(
            seed=seed, n_tasks=1, n_bits=30, k_bits=3, eval_per_task=2000)
        x_train, y_train = task.sample_batch("train", 600, torch.Generator().manual_seed(seed))
        x_test, y_test = task.eval_x, task.eval_y
        direction = np.zeros(x_train.shape[1])
        direction[1 + task.subsets[0].numpy()] = 1 / math.sqrt(3)  # column 0: the control bit
        sign = lambda y: (1 - 2 * y.double().numpy())[:, None]  # noqa: E731
        t = x_test.double().numpy() @ direction  # the parity is cos(pi sqrt(3) t) along u
        assert np.allclose(sign(y_test)[:, 0], np.cos(np.pi * math.sqrt(3) * t))
        return {"x_train": x_train.double().numpy(), "y_train": sign(y_train),
                "x_test": x_test.double().numpy(), "y_test": sign(y_test), "direction": direction,
                "labels_train": y_train.numpy(), "labels_test": y_test.numpy()}
    task = tasks.get("task", "digits").create(seed=seed, train_fraction=0.12)
    onehot = lambda y: np.eye(10)[y.numpy()]  # noqa: E731
    x_test = task.x["eval"].double().numpy()
    return {"x_train": task.x["train"].double().numpy(), "y_train": onehot(task.y["train"]),
            "x_test": x_test, "y_test": onehot(task.y["eval"]), "direction": principal_direction(x_test),
            "labels_train": task.y["train"].numpy(), "labels_test": task.y["eval"].numpy()}


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Share of correct predictions: sign for one output (+1 = label 0), argmax otherwise."""
    predicted = (outputs[:, 0] < 0).astype(int) if outputs.shape[1] == 1 else outputs.argmax(1)
    return float((predicted == labels).mean())


def train(d: dict[str, np.ndarray], seed: int, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Full-batch AdamW on MSE; outputs on both sets every ``args.every`` steps."""
    torch.manual_seed(seed)
    n_in, n_out = d["x_train"].shape[1], d["y_train"].shape[1]
    net = torch.nn.Sequential(torch.nn.Linear(n_in, args.width), torch.nn.ReLU(),
                              torch.nn.Linear(args.width, args.width), torch.nn.ReLU(),
                              torch.nn.Linear(args.width, n_out))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(args.init_scale)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    xs = {s: torch.tensor(d[f"x_{s}"], dtype=torch.float32) for s in ("train", "test")}
    y = torch.tensor(d["y_train"], dtype=torch.float32)
    steps, outs = [], {"train": [], "test": []}
    for step in range(args.steps + 1):
        if step % args.every == 0:
            with torch.no_grad():
                for s in ("train", "test"):
                    outs[s].append(net(xs[s]).double().numpy())
            steps.append(step)
        if step == args.steps:
            break
        loss = torch.nn.functional.mse_loss(net(xs["train"]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"step": np.array(steps), **{s: np.stack(v) for s, v in outs.items()}}


def errors(d, run, split: str) -> xr.Dataset:
    """frequency-error on one split along the setting's direction."""
    ds = xr.Dataset({"predictions": (("step", "sample", "output"), run[split]),
                     "targets": (("sample", "output"), d[f"y_{split}"]),
                     "inputs": (("sample", "input_dim"), d[f"x_{split}"])},
                    coords={"step": run["step"]})
    return FrequencyError(direction=list(d["direction"]), frequencies=list(FREQUENCIES))(ds)


def first(values: np.ndarray, steps: np.ndarray) -> float:
    hits = np.flatnonzero(values)
    return float(steps[hits[0]]) if hits.size else float("nan")


def measure(d, run) -> dict[str, object]:
    """The per-seed markers printed in the table (see the module docstring)."""
    from scipy.stats import spearmanr

    steps = run["step"]
    acc = {s: np.array([accuracy(o, d[f"labels_{s}"]) for o in run[s]]) for s in ("train", "test")}
    test = errors(d, run, "test")
    amp_test = test["target_amplitude"].values
    t_train = d["x_train"] @ d["direction"]
    amp_train = np.sqrt((np.abs(nudft(t_train, d["y_train"].T, FREQUENCIES)) ** 2).sum(0))
    rel = test["relative_error"].values  # (step, frequency), NaN where the test spectrum is empty
    peak = amp_test[FREQUENCIES > K_MIN].max()
    scored = (FREQUENCIES > K_MIN) & np.isfinite(rel).all(0)
    learned = np.array([first(rel[:, j] < LEARNED, steps) for j in range(len(FREQUENCIES))])
    salient, less = scored & (amp_test >= 0.5 * peak), scored & (amp_test < 0.5 * peak)
    both = scored & np.isfinite(learned)
    rho = spearmanr(amp_test[both], learned[both])[0] if both.sum() > 2 else float("nan")
    fitted = first(acc["train"] >= 0.99, steps)

    def share(mask):  # of the frequencies in mask, the share learned by the time the train set is fitted
        return float(np.mean(learned[mask] <= fitted)) if mask.any() and not math.isnan(fitted) else float("nan")

    return {
        "train acc >= 0.99": fitted,
        "test acc >= 0.9": first(acc["test"] >= 0.9, steps),
        "test acc at train fit / final": (f"{acc['test'][np.flatnonzero(steps == fitted)[0]]:.3f} / "
                                          f"{acc['test'][-1]:.3f}" if not math.isnan(fitted) else "-"),
        "spurious train content": round(float(np.max(np.abs(amp_train - amp_test)[FREQUENCIES > K_MIN]) / peak), 3),
        "median step learned: less salient / salient":
            f"{np.nanmedian(learned[less]) if less.any() else math.nan:.0f} / "
            f"{np.nanmedian(learned[salient]) if salient.any() else math.nan:.0f}",
        "learned by train fit: less salient / salient": f"{share(less):.2f} / {share(salient):.2f}",
        "never learned: less salient / salient":
            f"{np.mean(np.isnan(learned[less])) if less.any() else math.nan:.2f} / "
            f"{np.mean(np.isnan(learned[salient])) if salient.any() else math.nan:.2f}",
        "Spearman(saliency, step learned)": round(float(rho), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("setting", choices=("parity", "digits"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=0, help="0: 6000 (parity), 4000 (digits)")
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0, help="0: 1.0 (parity), 0.1 (digits)")
    parser.add_argument("--init-scale", type=float, default=0.0, help="0: 1 (parity), 4 (digits)")
    args = parser.parse_args()
    defaults = {"parity": (6000, 1.0, 1.0), "digits": (4000, 0.1, 4.0)}[args.setting]
    args.steps = args.steps or defaults[0]
    args.weight_decay = args.weight_decay or defaults[1]
    args.init_scale = args.init_scale or defaults[2]
    torch.set_num_threads(1)
    rows = []
    for seed in args.seeds:
        d = data(args.setting, seed)
        row = {"seed": seed, **measure(d, train(d, seed, args))}
        rows.append(row)
        print(row, flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
