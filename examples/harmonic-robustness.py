"""Robustness grid for the harmonic loss (arXiv 2502.01628) on a + b mod p, beside cross-entropy.

Grid: model (the reference's MLP shape; a small transformer, d_model 16, 2 layers, 2 heads) x
weight decay {0.01, 0.1, 1.0} x loss {cross-entropy; harmonic with n = 1, sqrt(D), D on d^2,
D = 16 the feature width}, each for ``--seeds`` seeds and ``--steps`` steps (AdamW lr 3e-3,
batch 128, every pair once, train fraction 0.6, every parameter decays, the base protocol of
examples/harmonic-modadd.toml). Extra rows follow the reference code's own protocol
(``reference_overrides``): lr 2e-3, batch 32, n = 1 on d^2, weight decay 0.01, ``eps = 1e-4``
added to d^2, 1,000 pairs drawn with replacement and split 800 / 200, class centres tied to the
input embeddings, the reference's initial scales; and the same with every pair once (no overlap
between the splits), to separate the effect of the overlap.

Per run: first evaluated step with eval accuracy >= 0.9, final eval accuracy, *collapse* (the
run reached 0.9 and its final eval accuracy is < 0.5), *dip* (after first reaching 0.9 the eval
accuracy fell below 0.5 at some evaluation), and the structure of the class centres (the head's
rows; cross-entropy: its weight rows) at the end: the top-2 PCA variance share and two circle
scores against the Fourier key (:func:`circle_scores`); ``wall_s`` is the run's wall time, or
its pack's divided by the pack's members. Results go to ``results.csv`` (one row per run,
written after each run) and ``tables.md`` (median and range over seeds per cell).

    python examples/harmonic-robustness.py [--seeds 10] [--first-seed 0] [--steps 5000] [--p 31]
        [--models mlp,transformer] [--reference-steps 10000] [--out runs/harmonic-robustness]
        [--pack-seeds N] [--solo] [--tables-only]

By default the runs are trained in vectorized packs (``overtone sweep --vectorize``, through
:func:`overtone.sweep.run_sweep`): per model x protocol x loss family x block of ``--pack-seeds``
seeds, one program trains every weight decay (and, harmonic, every exponent) of those seeds;
member ``<name>-v<i>-s<j>`` of ``<out>/packs/<name>-sweep/`` is the run, its final weights in
its ``pack-checkpoint.pt``. ``--solo`` trains one run at a time instead (``<out>/<run name>/``).
A packed member starts exactly as its solo run (same split, initialisation, batches); its float
sums may run in another order. MLP packs gave the solo runs' weights and evaluations exactly
(200-step check; the 10-seed table's seeds 0-2 equal the earlier solo 3-seed table). Transformer
packs agree with the solo runs to float rounding at first (train loss within 3e-7 relative over
the first 50 steps) and drift apart where training amplifies differences (up to 8% in the batch
loss by step 200 for n = 1 on d^2): a packed transformer seed is another draw from the same
distribution, not a copy of the solo seed.

Expected wall time, one thread. Packed (the default), measured 2026-11-30 on the shared 2-core
machine at load average 3-6 (``nice -n 10``): the transformer grid, 10 seeds x 5,000 steps (120
runs, ``--pack-seeds 2``), 38 minutes (1,351 s CPU); the MLP grid, 10 seeds x 5,000 steps, with
the reference rows, 10 seeds x 10,000 steps (160 runs, ``--pack-seeds 5``), 9.5 minutes (429 s
CPU); at ``--p 97`` (load average 1-3), the MLP grid 142 s for 3 seeds and 285 s for 7 more,
the transformer grid 527 s for 3 seeds and 1,136 s for 7 more (one pack of 63 harmonic members). Solo (``--solo``): on a quiet CPU
about 16 s per MLP run and 77 s per transformer run of 5,000 steps; at load average 10-17,
38-133 s per MLP run (5,000 steps), 69-110 s per reference run (10,000 steps), 344 s per
transformer run of 5,000 steps. In a 200-step check at load average 4-6, 24 transformer runs
took 63 s packed against 240 s solo, 32 MLP runs 48 s against 224 s. Runs are deterministic;
a finished run (or pack) is read, not rerun.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from pathlib import Path

import numpy as np
from overtone.config import apply_overrides, load_config
from overtone.io import open_dataset
from overtone.runs import run_config

HERE = Path(__file__).parent
BASE = HERE / "harmonic-modadd.toml"
DECAYS = (0.01, 0.1, 1.0)
D = 16  # feature width of both models
EXPONENTS = {"1": 1.0, "sqrt(D)": math.sqrt(D), "D": float(D)}  # on d^2 (the reference's convention)
FIELDS = ["model", "protocol", "loss", "n_sq", "wd", "seed", "steps", "step90", "max_eval_acc", "final_eval_acc",
          "final_train_acc", "collapse", "dip", "pca2", "circle", "order", "key", "emb_pca2", "emb_circle",
          "emb_order", "wall_s", "p"]

MODEL_OVERRIDES = {
    "mlp": [],
    "transformer": ["model={name = \"transformer\", n_layer = 2, n_head = 2, d_model = 16}", "train.features=0"],
}


def reference_overrides(overlap: bool) -> list[str]:
    """The reference code's protocol for its MLP on the circle task (``src/utils/driver.py``,
    ``model.py``, ``dataset.py`` of KindXiaoming/grow-crystals), as far as the options reach.

    lr 2e-3, batch 32, AdamW weight decay 0.01 on every parameter, 1,000 pairs drawn with
    replacement split 800 / 200 (``overlap``; else every pair once, 80% train), the class
    centres tied to the input embeddings (``MLP_HS(weight_tied=True)``). Initial scales: the
    tied embedding is the ``DistLayer``'s ``nn.Linear`` default ``U(-1/4, 1/4)`` (std 0.144;
    its ``N(0, 1/16)`` line is overwritten by the tying), here ``N(0, 0.144^2)``; the linear
    layers' ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` has std ``1/sqrt(3 fan_in)``, here
    ``init_scale = 1/sqrt(3)`` on ``N(0, 1/fan_in)``.
    """
    task = ["task.n_samples=1000", "task.train_fraction=0.8"] if overlap else ["task.train_fraction=0.8"]
    return task + ["optimizer.lr=0.002", "optimizer.weight_decay=0.01", "train.batch_size=32",
                   "model.tie_weights=true", f"model.embed_std={0.25 / math.sqrt(3):.6f}",
                   f"model.init_scale={1 / math.sqrt(3):.6f}"]


def first_step(steps: np.ndarray, acc: np.ndarray, threshold: float = 0.9) -> float:
    """First evaluated step with ``acc >= threshold`` (NaN if never)."""
    hit = np.flatnonzero(acc >= threshold)
    return float(steps[hit[0]]) if hit.size else float("nan")


def pca2_share(w: np.ndarray) -> float:
    """Share of the variance of the rows of ``w`` (centred) in its top two principal components."""
    s = np.linalg.svd(w - w.mean(0), compute_uv=False) ** 2
    return float(s[:2].sum() / s.sum())


def circle_scores(w: np.ndarray) -> tuple[float, float, int]:
    """How closely the rows ``w_c`` (class ``c = 0..p-1``) lie on a circle in key order.

    Key frequency ``k``: the ``k in 1..(p-1)/2`` with the largest ``|| sum_c w_c e^(-2 pi i k c / p) ||``
    (rows centred). Angles ``theta_c`` of the rows' projection on their top-2 principal plane.
    ``circle = max_(s = +-1) | mean_c exp(i (theta_c - s 2 pi k c / p)) |``: 1 when the angles
    are exactly ``+- 2 pi k c / p`` plus a constant (evenly spaced in key order), about
    ``1 / sqrt(p)`` for unrelated angles. ``order``: the share of the ``p`` neighbouring pairs
    in angular order whose classes differ by ``+-k^-1 (mod p)`` (angles ``2 pi k c / p`` put
    class ``c + k^-1`` next to ``c``; p prime). 1: the key ordering, whatever the spacing; about
    ``2 / (p - 1)`` by chance. Returns ``(circle, order, k)``.
    """
    p = w.shape[0]
    x = w - w.mean(0)
    c = np.arange(p)
    ks = np.arange(1, (p - 1) // 2 + 1)
    power = [np.linalg.norm((np.exp(-2j * np.pi * k * c / p)[:, None] * x).sum(0)) for k in ks]
    k = int(ks[int(np.argmax(power))])
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    theta = np.arctan2(u[:, 1] * s[1], u[:, 0] * s[0])
    circle = max(abs(np.exp(1j * (theta - sign * 2 * np.pi * k * c / p)).mean()) for sign in (1, -1))
    ring = np.argsort(theta)
    step = (ring[np.r_[1:p, 0]] - ring) % p
    inverse = pow(k, -1, p)
    order = float(np.mean((step == inverse) | (step == p - inverse)))
    return float(circle), order, k


def self_check() -> None:
    """The circle scores on a circle in key order (1, 1), and on the same points shuffled (low)."""
    p, k = 31, 7
    angle = 2 * np.pi * k * np.arange(p) / p
    w = np.stack([np.cos(angle), np.sin(angle), 0.01 * np.random.default_rng(0).normal(size=p)], 1)
    circle, order, key = circle_scores(w)
    assert key == k and circle > 0.999 and order == 1.0, (circle, order, key)
    circle, order, _ = circle_scores(w[np.random.default_rng(1).permutation(p)])
    assert circle < 0.6 and order < 0.3, (circle, order)


def plan(models: list[str], seeds: int, steps: int, reference_steps: int, first_seed: int = 0,
         p: int = 31) -> list[dict]:
    """Every run (``a + b mod p``): seed-major, so a plan cut short still covers the whole grid with
    fewer seeds."""
    runs = []
    for seed in range(first_seed, first_seed + seeds):
        for model in models:
            for wd in DECAYS:
                runs.append({"model": model, "protocol": "grid", "loss": "cross-entropy", "n_sq": "", "wd": wd,
                             "seed": seed, "steps": steps})
                for label in EXPONENTS:
                    runs.append({"model": model, "protocol": "grid", "loss": "harmonic", "n_sq": label, "wd": wd,
                                 "seed": seed, "steps": steps})
            if model == "mlp" and reference_steps:
                for protocol in ("reference", "reference-no-overlap"):
                    for loss in ("cross-entropy", "harmonic"):
                        runs.append({"model": model, "protocol": protocol, "loss": loss,
                                     "n_sq": "1" if loss == "harmonic" else "", "wd": 0.01, "seed": seed,
                                     "steps": reference_steps})
    return [dict(r, p=p) for r in runs]


def run_name(r: dict) -> str:
    p = int(r.get("p", 31))
    return (f"{r['model']}-{r['protocol']}-{r['loss']}" + (f"-n{r['n_sq']}" if r["n_sq"] else "")
            + f"-wd{r['wd']:g}-s{r['seed']}-{r['steps']}" + (f"-p{p}" if p != 31 else ""))


def overrides_of(r: dict) -> list[str]:
    """The run's overrides of examples/harmonic-modadd.toml (the grid's and the protocol's)."""
    eval_every = max(r["steps"] // 50, 1)  # each evaluation also rewrites metrics.nc (a fixed cost)
    overrides = [f"run.seed={r['seed']}", f"train.steps={r['steps']}", f"train.eval_every={eval_every}",
                 f"train.checkpoint_every={r['steps']}", f"optimizer.weight_decay={r['wd']}"]
    overrides += [f"task.p={r['p']}"] if int(r.get("p", 31)) != 31 else []
    overrides += MODEL_OVERRIDES[r["model"]]
    if r["loss"] == "cross-entropy":
        overrides.append("loss={name = \"cross-entropy\"}")
    else:
        eps = ", eps_mode = \"add\", eps = 1e-4" if r["protocol"].startswith("reference") else ""
        overrides.append(f"loss={{name = \"harmonic\", n = {EXPONENTS[r['n_sq']]!r}, convention = \"squared\"{eps}}}")
    if r["protocol"].startswith("reference"):
        overrides += reference_overrides(overlap=r["protocol"] == "reference")
    return overrides


def config_of(r: dict) -> dict:
    """The run's config: examples/harmonic-modadd.toml with the grid's overrides, no probes."""
    config = apply_overrides(load_config(BASE), overrides_of(r))
    config.pop("probes", None)
    config.pop("analyzers", None)
    config["run"]["name"] = run_name(r)
    return config


def packs(runs: list[dict], seeds_per_pack: int) -> list[list[dict]]:
    """The runs grouped into vectorized packs, in plan order: one pack per model x protocol x
    loss family x steps x block of ``seeds_per_pack`` consecutive seeds (a harmonic pack holds
    every n x weight decay of its seeds, a cross-entropy pack every weight decay). The plan is
    seed-major, so the packs of the first seed block come first."""
    first = min((r["seed"] for r in runs), default=0)
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        key = ((r["seed"] - first) // seeds_per_pack, r["model"], r["protocol"], r["loss"], r["steps"])
        groups.setdefault(key, []).append(r)
    return list(groups.values())


def run_pack(pack: list[dict], out: Path) -> dict[str, tuple[Path, float]]:
    """Train ``pack`` with ``overtone sweep --vectorize`` (:func:`overtone.sweep.run_sweep`): its
    rows' n x weight decay x seeds as one program, every member built as its solo run.

    The sweep is ``<out>/packs/<name>-sweep/`` and member (variant ``v``, seed index ``s``) is
    its ``<name>-v<v>-s<s>/`` (metrics.nc, pack-checkpoint.pt). A pack whose members all hold a
    final checkpoint is read, not rerun. Returns ``run_name -> (run directory, pack wall time
    per member)``.
    """
    from overtone.sweep import run_sweep

    seeds = sorted({r["seed"] for r in pack})
    exponents = [k for k in EXPONENTS if any(r["n_sq"] == k for r in pack)]
    decays = sorted({r["wd"] for r in pack})
    assert seeds == list(range(seeds[0], seeds[-1] + 1)), seeds
    r0 = pack[0]
    name = (f"{r0['model']}-{r0['protocol']}-{r0['loss']}-s{seeds[0]}-{seeds[-1]}-{r0['steps']}"
            + (f"-p{r0['p']}" if int(r0.get("p", 31)) != 31 else ""))
    grid = [f"loss.n={','.join(repr(EXPONENTS[k]) for k in exponents)}"] if len(exponents) > 1 else []
    grid += [f"optimizer.weight_decay={','.join(repr(wd) for wd in decays)}"] if len(decays) > 1 else []
    # a checkpoint every fifth of the run: progress shows in the members' metrics.nc, and an
    # interrupted pack resumes from it (the runs' numbers do not depend on it)
    overrides = overrides_of(dict(r0, seed=seeds[0])) + [f"train.checkpoint_every={max(r0['steps'] // 5, 1)}",
                                                         "probes=[]", "analyzers=[]", f"run.name=\"{name}\""]
    sweep_dir = out / "packs" / f"{name}-sweep"
    dirs = {}
    for r in pack:
        v = (exponents.index(r["n_sq"]) if len(exponents) > 1 else 0) * (len(decays) if len(decays) > 1 else 1)
        v += decays.index(r["wd"]) if len(decays) > 1 else 0
        dirs[run_name(r)] = sweep_dir / f"{name}-v{v}-s{r['seed'] - seeds[0]}"
    members = len(exponents or [""]) * len(decays) * len(seeds)
    t0 = time.perf_counter()
    if not all(_final(d, r0["steps"]) for d in dirs.values()):
        run_sweep(BASE, grid=grid, seeds=len(seeds), overrides=overrides, out=out / "packs", vectorize=True,
                  resume=True)
    wall = (time.perf_counter() - t0) / members
    return {k: (d, wall) for k, d in dirs.items()}


def _final(run_dir: Path, steps: int) -> bool:
    """Whether ``run_dir`` holds a checkpoint (solo or pack) at step ``steps``."""
    import torch

    for name in ("checkpoint.pt", "pack-checkpoint.pt"):
        if (run_dir / name).exists():
            return torch.load(run_dir / name, map_location="cpu", weights_only=False)["step"] == steps
    return False


def measure(r: dict, run_dir: Path, wall: float) -> dict:
    """The run's summary row (see the module docstring)."""
    import torch

    with open_dataset(run_dir / "metrics.nc") as m:
        acc = m["eval_acc"].dropna("step").load()
        train = m["train_acc"].dropna("step").load()
    steps, values = acc.step.values, acc.values
    step90 = first_step(steps, values)
    after = values[steps >= step90] if math.isfinite(step90) else values[:0]
    # a solo run's checkpoint.pt, or a pack member's pack-checkpoint.pt (its slice of the pack
    # at the final step: the same state dict)
    path = run_dir / "checkpoint.pt"
    path = path if path.exists() else run_dir / "pack-checkpoint.pt"
    net = torch.load(path, map_location="cpu", weights_only=False)["net"]
    centres = net["loss.weight"].double().numpy()
    emb = net["model.token_embedding.weight"].double().numpy()
    circle, order, key = circle_scores(centres)
    emb_circle, emb_order, _ = circle_scores(emb)
    return {**r, "step90": step90, "max_eval_acc": float(values.max()), "final_eval_acc": float(values[-1]),
            "final_train_acc": float(train.values[-1]), "collapse": int(math.isfinite(step90) and values[-1] < 0.5),
            "dip": int(bool((after < 0.5).any())), "pca2": pca2_share(centres), "circle": circle, "order": order,
            "key": key, "emb_pca2": pca2_share(emb), "emb_circle": emb_circle, "emb_order": emb_order, "wall_s": wall}


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in FIELDS[5:-1]:
            row[key] = float(row[key])
        row["p"] = int(row.get("p") or 31)  # files written before the p column: 31
        row["wd"], row["seed"], row["steps"] = float(row["wd"]), int(row["seed"]), int(row["steps"])
    return rows


def spread(values: list[float], digits: int = 2) -> str:
    """``median (min-max)`` of the finite values; ``-`` when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    fmt = f"{{:.{digits}f}}"
    text = fmt.format(statistics.median(finite))
    return text if len(finite) == 1 else text + f" ({fmt.format(min(finite))}-{fmt.format(max(finite))})"


def tables(rows: list[dict]) -> str:
    """Markdown: one line per cell (model, protocol, loss, n, weight decay), spreads over seeds."""
    cells: dict[tuple, list[dict]] = {}
    for row in rows:
        key = (row["model"], row["protocol"], row["loss"], row["n_sq"], row["wd"], int(row["steps"]), row["p"])
        cells.setdefault(key, []).append(row)
    head = ("| model | protocol | loss (n on d^2) | wd | seeds | reached 90% | step at 90%, median (range) "
            "| final eval acc, median (range) | collapse | dip | centres: top-2 PCA share | circle | key order |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    order = {"grid": 0, "reference": 1, "reference-no-overlap": 2}
    for key in sorted(cells, key=lambda k: (k[6], k[0], k[5], order[k[1]], k[4], k[2], EXPONENTS.get(k[3], 0))):
        rs = sorted(cells[key], key=lambda r: r["seed"])
        model, protocol, loss, n_sq, wd, steps, p = key
        protocol += f", p = {p}" if p != 31 else ""
        reached = sum(math.isfinite(r["step90"]) for r in rs)
        collapse, dip = sum(int(r["collapse"]) for r in rs), sum(int(r["dip"]) for r in rs)
        lines.append(
            f"| {model} | {protocol} ({steps} steps) | {loss}{f' ({n_sq})' if n_sq else ''} | {wd:g} "
            f"| {len(rs)} | {reached}/{len(rs)} | {spread([r['step90'] for r in rs], 0)} "
            f"| {spread([r['final_eval_acc'] for r in rs])} | {collapse}/{reached} | {dip}/{reached} "
            f"| {spread([r['pca2'] for r in rs])} | {spread([r['circle'] for r in rs])} "
            f"| {spread([r['order'] for r in rs])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--steps", type=int, default=5000, help="steps of the grid's runs")
    parser.add_argument("--reference-steps", type=int, default=10000,
                        help="steps of the reference-protocol rows (batch 32: 400 epochs of 800 pairs); 0: none")
    parser.add_argument("--models", default="mlp,transformer")
    parser.add_argument("--p", type=int, default=31, help="the modulus (a prime; the models' width stays 16)")
    parser.add_argument("--out", default="runs/harmonic-robustness")
    parser.add_argument("--solo", action="store_true", help="one process-local run at a time (overtone run) "
                        "instead of vectorized packs (overtone sweep --vectorize)")
    parser.add_argument("--pack-seeds", type=int, default=0, help="seeds per pack (default: all of --seeds in "
                        "one pack); smaller packs finish sooner, seed block by seed block")
    parser.add_argument("--reverse", action="store_true", help="--solo: run the plan last run first (a second "
                        "process on another --out meets the first in the middle)")
    parser.add_argument("--merge", default="", help="comma-separated other --out folders whose results.csv "
                        "rows join this one's tables (a run name counted once)")
    parser.add_argument("--tables-only", action="store_true", help="rebuild tables.md from results.csv")
    args = parser.parse_args()
    self_check()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    rows = read_rows(csv_path)

    def record(r: dict, run_dir: Path, wall: float) -> None:
        rows.append(measure(r, run_dir, wall))
        with csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        x = rows[-1]
        print(f"{run_name(r)}: 90% at {x['step90']}, final {x['final_eval_acc']:.3f}, circle {x['circle']:.2f}, "
              f"{x['wall_s']:.1f} s (total {time.perf_counter() - start:.0f} s)", flush=True)

    start = time.perf_counter()
    if not args.tables_only:
        done = {run_name(r) for r in rows}
        runs = plan(args.models.split(","), args.seeds, args.steps, args.reference_steps, args.first_seed, args.p)
        todo = [r for r in runs if run_name(r) not in done]
        if args.solo:
            for r in todo[::-1] if args.reverse else todo:
                config = config_of(r)
                t0 = time.perf_counter()
                run_dir = out / config["run"]["name"]
                if not (run_dir / "checkpoint.pt").exists():
                    run_dir = run_config(config, source=str(BASE), default_name=config["run"]["name"], out=out)
                record(r, run_dir, time.perf_counter() - t0)
        else:
            # packs of the whole plan (so a pack's members keep their directories when a rerun
            # finds some of them measured already); packs with nothing left to measure are skipped
            for i, pack in enumerate(packs(runs, args.pack_seeds or args.seeds)):
                left = [r for r in pack if run_name(r) not in done]
                if not left:
                    continue
                print(f"pack {i + 1}: {len(pack)} runs, {run_name(pack[0])} ...", flush=True)
                dirs = run_pack(pack, out)
                for r in left:
                    record(r, *dirs[run_name(r)])
    names = {run_name(r) for r in rows}
    for other in filter(None, args.merge.split(",")):
        for row in read_rows(Path(other) / "results.csv"):
            if run_name(row) not in names:
                rows.append(row)
                names.add(run_name(row))
    text = tables(rows)
    (out / "tables.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
