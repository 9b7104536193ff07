"""Table, fits and plot of docs/dynamics.md, "Scaling laws on char-level text": final validation
loss of 5 transformer widths x 4 token budgets on the bundled corpus, fitted with scaling-law.

    overtone sweep examples/scaling-chartext.toml --out runs \
        --grid train.steps=150,300,600,1200 --grid model.d_model=16,32,48,64,96
    overtone sweep examples/scaling-chartext.toml --out runs --seeds 3 --vectorize \
        --grid model.d_model=16,32,48,64,96 --set train.steps=300 --set run.name=scaling-chartext-seeds
    python examples/scaling-chartext.py runs --plot docs/img/scaling-chartext.png

Each run has its own warm-up + cosine schedule (Hoffmann et al.'s setting: the schedule's
length matches the run's) and is evaluated once, at its end, on 1,024 held-out windows (65,536
characters). N is the non-embedding parameter count (Kaplan et al. 2020: token and position
embeddings excluded; the head is tied to the token embedding), D the training characters
(steps x batch x context). The second sweep (3 seeds of the 300-step budget) gives the seed
spread; the script runs without it.

Wall time on the project's loaded 2-core machine (one thread, nice 10, load 10-16): the
first sweep 21.5 minutes (about 4-5 CPU-minutes), the second 11, this script about 2 (23 s of
CPU).
Needs overtone-torch and overtone-dynamics.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import overtone
import xarray as xr
from overtone.config import load_config
from overtone_dynamics.scaling import at_last

CONFIG = Path(__file__).with_name("scaling-chartext.toml")


def non_embedding_parameters(d_model: int, n_layer: int) -> int:
    """Parameters of the transformer's blocks and final LayerNorm (biases included): per block
    12 d^2 + 13 d (qkv 3d^2 + 3d, projection d^2 + d, MLP 8d^2 + 5d, two LayerNorms 4d), plus 2d.
    Checked against the built model when torch is importable."""
    count = n_layer * (12 * d_model**2 + 13 * d_model) + 2 * d_model
    try:
        from overtone_torch.models.transformer import Transformer
    except ImportError:
        return count
    spec = {"kind": "tokens", "vocab_size": 80, "seq_len": 8, "output": "sequence"}
    model = Transformer(input_spec=spec, n_layer=n_layer, n_head=1, d_model=d_model)
    built = sum(
        p.numel()
        for name, p in model.named_parameters()
        if not name.startswith(("token_embedding", "position_embedding"))
    )
    if built != count:
        raise AssertionError(f"non-embedding count {count} != the built model's {built}")
    return count


def final_points(path: Path, config: dict) -> xr.Dataset:
    """Each member's final eval_loss with N (non-embedding parameters) and D (characters)."""
    with xr.open_dataset(path) as sweep:
        final = at_last(sweep.load(), "eval_loss")
    widths = (
        final["model.d_model"].values
        if "model.d_model" in final.coords
        else np.full(final.sizes["variant"], config["model"]["d_model"])
    )
    n = [non_embedding_parameters(int(d), config["model"]["n_layer"]) for d in widths]
    tokens = config["train"]["batch_size"] * config["task"]["context"]
    return xr.Dataset(
        {
            "eval_loss": final["eval_loss"].assign_attrs(units="nats/char"),
            "N": ("variant", np.array(n, dtype=np.float64), {"units": "parameters"}),
            "D": (final["step"] * tokens).astype(np.float64).assign_attrs(units="characters"),
            "d_model": ("variant", widths),
            "steps": final["step"],
        }
    )


def table(points: xr.Dataset, seeds: xr.Dataset | None) -> str:
    """Markdown: rows are widths, columns budgets; the seed-spread cell as mean [min, max]."""
    loss = points["eval_loss"].isel(seed=0).values
    widths = points["d_model"].values
    steps = points["steps"].isel(seed=0).values
    budgets = sorted(set(steps.tolist()))
    tokens = {
        s: float(points["D"].isel(seed=0).values[np.flatnonzero(steps == s)[0]]) for s in budgets
    }
    head = (
        "| d_model | N (non-embedding) | "
        + " | ".join(f"{s} steps, D = {tokens[s] / 1e6:.2f}M" for s in budgets)
        + " |"
    )
    lines = [head, "|---|---|" + "---|" * len(budgets)]
    for d in sorted(set(widths.tolist())):
        cells = []
        for s in budgets:
            v = np.flatnonzero((widths == d) & (steps == s))
            cell = f"{loss[v[0]]:.3f}" if len(v) else "-"
            if seeds is not None and s == int(seeds["steps"].values.flat[0]):
                w = np.flatnonzero(seeds["d_model"].values == d)
                if len(w):
                    vals = seeds["eval_loss"].values[w[0]]
                    cell += f" ({len(vals)} seeds: {vals.mean():.3f} [{vals.min():.3f}, {vals.max():.3f}])"
            cells.append(cell)
        n = int(points["N"].values[np.flatnonzero(widths == d)[0]])
        lines.append(f"| {d} | {n:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fits(points: xr.Dataset, n_bootstrap: int) -> dict[str, xr.Dataset]:
    """The chinchilla law on every point and on the two longest budgets alone (is the law
    stable?), and a power law in N at the longest budget (Kaplan et al.'s L(N), with Henighan
    et al.'s constant), each with percentile-bootstrap intervals. (A power law in D alone would
    have 4 points for 3 parameters: not fitted.)"""
    law = overtone.get("analyzer", "scaling-law")
    flat = points.isel(seed=0)
    steps = flat["steps"].values
    longest = steps == steps.max()
    return {
        "chinchilla": law.create(n="N", d="D", loss="eval_loss", n_bootstrap=n_bootstrap)(flat),
        "chinchilla_two_longest": law.create(
            n="N", d="D", loss="eval_loss", n_bootstrap=n_bootstrap
        )(flat.isel(variant=np.flatnonzero(steps >= np.sort(np.unique(steps))[-2]))),
        "power_N": law.create(form="power", x="N", loss="eval_loss", n_bootstrap=n_bootstrap)(
            flat.isel(variant=np.flatnonzero(longest))
        ),
    }


def describe(name: str, fit: xr.Dataset) -> str:
    """One line per fit: the parameters with intervals, the log RMS error and the worst residual."""
    resid = fit["observed"].values / fit["predicted"].values - 1
    params = "; ".join(f"{p} = {fit.attrs[f'fit_{p}']}" for p in fit["parameter"].values)
    return (
        f"{name} ({fit.attrs['formula']}, {fit.attrs['n_points']} points): {params}; "
        f"rms log error {fit.attrs['rmse_log']:.4f}, residuals observed/fitted - 1 in "
        f"[{resid.min():+.4f}, {resid.max():+.4f}]"
    )


def plot(points: xr.Dataset, fit: xr.Dataset, path: Path) -> None:
    """Loss against D per width (data and the fitted chinchilla law), and the residuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    est = dict(zip(fit["parameter"].values, fit["estimate"].values))
    flat = points.isel(seed=0)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    widths = sorted(set(flat["d_model"].values.tolist()))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(widths)))
    grid = np.geomspace(flat["D"].values.min(), flat["D"].values.max(), 100)
    for d, color in zip(widths, colors):
        pick = np.flatnonzero(flat["d_model"].values == d)
        n = float(flat["N"].values[pick[0]])
        order = pick[np.argsort(flat["D"].values[pick])]
        ax1.loglog(
            flat["D"].values[order],
            flat["eval_loss"].values[order],
            "o",
            color=color,
            label=f"d_model {d}, N = {int(n):,}",
        )
        law = est["E"] + est["A"] / n ** est["alpha"] + est["B"] / grid ** est["beta"]
        ax1.loglog(grid, law, "-", color=color, lw=1)
        resid = fit["observed"].values[order] / fit["predicted"].values[order] - 1
        ax2.semilogx(flat["D"].values[order], resid, "o-", color=color, lw=1)
    ax1.set_xlabel("D (training characters)")
    ax1.set_ylabel("final validation loss (nats/char)")
    ax1.set_title(f"alpha = {est['alpha']:.2f}, beta = {est['beta']:.2f}, E = {est['E']:.2f}")
    ax1.legend(fontsize=7)
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_xlabel("D (training characters)")
    ax2.set_ylabel("observed / fitted - 1")
    ax2.set_title("residuals of the L(N, D) fit")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    """Print the table and the fits; save the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="the sweeps' --out directory")
    parser.add_argument("--plot", type=Path, help="save the figure here (PNG)")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples (200)")
    args = parser.parse_args()
    config = load_config(CONFIG)
    main_sweep = args.runs / "scaling-chartext-sweep" / "sweep.nc"
    if not main_sweep.exists():
        sys.exit(f"{main_sweep} not found: run the sweeps in this script's docstring first")
    points = final_points(main_sweep, config)
    seeds_path = args.runs / "scaling-chartext-seeds-sweep" / "sweep.nc"
    seeds = final_points(seeds_path, config) if seeds_path.exists() else None
    print(table(points, seeds))
    if seeds is not None:
        spread = seeds["eval_loss"].max("seed") - seeds["eval_loss"].min("seed")
        print(
            f"\nseed spread (max - min over {seeds.sizes['seed']} seeds) at "
            f"{int(seeds['steps'].values.flat[0])} steps: "
            + ", ".join(f"d{d}: {s:.3f}" for d, s in zip(seeds["d_model"].values, spread.values))
        )
    print()
    results = fits(points, args.bootstrap)
    for name, fit in results.items():
        print(describe(name, fit))
    if args.plot:
        plot(points, results["chinchilla"], args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
