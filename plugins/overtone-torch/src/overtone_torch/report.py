"""report.html: metric curves and analyzer plots, PNGs embedded, readable without a server."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def metric_figure(metrics):
    """Loss (log scale) and accuracy, train vs eval, over steps: the grokking gap at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for name, style in (("train_loss", "-"), ("eval_loss", "-"), ("train_batch_loss", ":")):
        if name in metrics:
            series = metrics[name].dropna("step")
            if series.size:
                ax_loss.plot(series.step, series, style, label=name, alpha=0.5 if "batch" in name else 1)
    ax_loss.set(xlabel="step", ylabel="loss (nat)", yscale="log", title="loss")
    accuracy = False
    for name in ("train_acc", "eval_acc"):
        if name in metrics:
            series = metrics[name].dropna("step")
            if series.size:
                ax_acc.plot(series.step, series, label=name)
                accuracy = True
    ax_acc.set(xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.02), title="accuracy")
    if not accuracy:  # real-valued targets: a regression task has no accuracy
        ax_acc.text(0.5, 0.5, "no accuracy (real-valued targets)", ha="center",
                    transform=ax_acc.transAxes)
    if metrics.sizes.get("step", 0) and metrics.step.max() > 10 * max(1, int(metrics.step.min())):
        ax_loss.set_xscale("log")
        if accuracy:
            ax_acc.set_xscale("log")
    for ax in (ax_loss, ax_acc):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    return fig


def grokking_summary(metrics) -> dict[str, Any]:
    """Steps at which train and eval accuracy first pass 90%, and the gap between them."""
    out: dict[str, Any] = {}
    for name in ("train_acc", "eval_acc"):
        if name in metrics:
            series = metrics[name].dropna("step")
            above = series.step.values[series.values >= 0.9]
            out[name] = int(above[0]) if above.size else None
    if out.get("train_acc") is not None and out.get("eval_acc") is not None:
        out["gap"] = out["eval_acc"] - out["train_acc"]
    return out


def analyzer_section(name: str, result: Any, analyzer: Any) -> str:
    """An analyzer's block: its plot (when it has ``.plot(result)``) and scalar results.

    A plot or a value that fails to render is shown as one line in its place: a third-party
    analyzer never loses the report.
    """
    block = f"<h2>Analyzer: {html.escape(name)}</h2>"
    if hasattr(analyzer, "plot"):
        try:
            block += f"<img alt='{html.escape(name)}' src='data:image/png;base64,{_png(analyzer.plot(result))}'>"
        except Exception as exc:
            block += f"<p>plot failed: {html.escape(f'{type(exc).__name__}: {exc}')}</p>"
    try:
        scalars = {k: v for k, v in result.data_vars.items() if v.size == 1 and np.issubdtype(v.dtype, np.number)}
        if scalars:
            block += "<table>" + "".join(
                f"<tr><td>{html.escape(str(k))}</td><td>{np.asarray(v.values).item():.4g}</td></tr>"
                for k, v in scalars.items()) + "</table>"
    except Exception as exc:
        block += f"<p>results could not be shown: {html.escape(f'{type(exc).__name__}: {exc}')}</p>"
    return block


def write(run_dir: Path, config: dict[str, Any], metrics, analyses: Any) -> Path:
    """Write ``run_dir/report.html`` atomically and return its path.

    ``analyses`` holds the analyzers' latest results (``results``), their steps
    (``steps``, each with its built ``function``; one with ``.plot(result)`` gets a figure) and their failures (``failures``).
    """
    import matplotlib
    from overtone.config import dump_toml
    from overtone.io import atomic_target

    matplotlib.use("Agg")
    sections = []
    if metrics.sizes.get("step", 0):
        sections.append(f"<h2>Metrics</h2><img alt='loss and accuracy' "
                        f"src='data:image/png;base64,{_png(metric_figure(metrics))}'>")
    summary = grokking_summary(metrics)
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{'not reached' if v is None else v}</td></tr>"
        for k, v in {**{f"first step with {k} >= 0.9": v for k, v in summary.items() if k != "gap"},
                     **({"grokking gap (steps)": summary["gap"]} if "gap" in summary else {})}.items())
    final = {name: float(metrics[name].dropna("step")[-1]) for name in
             ("train_loss", "eval_loss", "train_acc", "eval_acc", "tokens_per_s", "examples_per_s")
             if name in metrics and metrics[name].notnull().any()}
    rows += "".join(f"<tr><td>final {k}</td><td>{v:.4g}</td></tr>" for k, v in final.items())
    if metrics.sizes.get("step", 0):
        rows += f"<tr><td>last step</td><td>{int(metrics.step.max())}</td></tr>"
    sections.append(f"<h2>Summary</h2><table>{rows}</table>")
    for name, message in analyses.failures.items():
        sections.append(f"<h2>Analyzer: {html.escape(name)}</h2><p>failed: {html.escape(message)}</p>")
    for name, result in analyses.results.items():
        sections.append(analyzer_section(name, result, getattr(analyses.steps.get(name), "function", None)))
    sections.append(f"<h2>Config</h2><pre>{html.escape(dump_toml(config))}</pre>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>overtone run {html.escape(config['run']['name'])}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "img{max-width:100%}td{padding:2px 12px}pre{background:#f5f5f5;padding:1em}</style></head><body>"
        f"<h1>Run {html.escape(config['run']['name'])}</h1>" + "".join(sections) + "</body></html>"
    )
    path = run_dir / "report.html"
    with atomic_target(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
