"""The ``overtone`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overtone.errors import OvertoneError

EXIT_USAGE = 2


def _registry():
    from overtone.registry import registry

    return registry()


# -- plugins -------------------------------------------------------------------------------


def cmd_plugins(args: argparse.Namespace) -> int:
    """List installed components (table, or JSON with --json)."""
    from overtone.params import describe_params, format_param

    reg = _registry()
    rows = []
    for entry in sorted(reg, key=lambda e: (e.component.kind, e.component.name, e.plugin)):
        c = entry.component
        row: dict[str, Any] = {
            "kind": c.kind,
            "name": c.name,
            "id": entry.qualified_id,
            "plugin": entry.plugin,
            "version": entry.version,
            "summary": c.summary,
        }
        if c.suffixes:
            row["suffixes"] = list(c.suffixes)
        if args.verbose or args.json:
            row["params"] = describe_params(c.params)
        rows.append(row)
    if args.kind:
        rows = [r for r in rows if r["kind"] == args.kind]
    plugins = [
        {"name": p.name, "source": p.source, "version": p.version, "ok": p.ok, "error": p.error}
        for p in reg.loaded.plugins
    ]
    problems = reg.failures + reg.problems + _duplicate_lines(reg)
    if args.json:
        json.dump({"components": rows, "plugins": plugins, "problems": problems, "warnings": reg.warnings},
                  sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    if not rows:
        print("no components installed (pip install a plugin, e.g. ./plugins/overtone-radio)")
    else:
        widths = [max(len(str(r[k] or "")) for r in rows + [_HEADER]) for k in ("kind", "name", "plugin")]
        print(_format_row(_HEADER, widths))
        for row in rows:
            print(_format_row(row, widths))
            if args.verbose:
                for key, info in row["params"].items():
                    print(f"{'':{widths[0] + 2}}{format_param(key, info)}")
    for line in problems:
        print(f"problem: {line}", file=sys.stderr)
    for line in reg.warnings:
        print(f"warning: {line}", file=sys.stderr)
    return 0


_HEADER = {"kind": "KIND", "name": "NAME", "plugin": "PLUGIN", "summary": "SUMMARY"}


def _format_row(row: dict[str, Any], widths: list[int]) -> str:
    return (f"{row['kind']:<{widths[0]}}  {row['name']:<{widths[1]}}  "
            f"{row['plugin']:<{widths[2]}}  {row['summary']}").rstrip()


def _duplicate_lines(reg: Any) -> list[str]:
    return [
        f"{kind} {name!r} is registered by "
        + " and ".join(repr(e.qualified_id) for e in entries)
        + "; configs must name a qualified id"
        for (kind, name), entries in reg.duplicates().items()
    ]


# -- run / demo ----------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Validate a config and run it with its engine."""
    from overtone.runs import run_experiment

    run_dir = run_experiment(args.config, overrides=args.set, out=args.out, resume=args.resume)
    print(f"run finished: {run_dir}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo experiment that the engine ships."""
    from overtone.config import apply_overrides
    from overtone.runs import run_config

    reg = _registry()
    engine = reg.get("engine", args.engine).create()
    if not hasattr(engine, "demo_config"):
        raise OvertoneError(f"engine {args.engine!r} ships no demo; try 'overtone run CONFIG'")
    config = apply_overrides(engine.demo_config(), args.set)
    run_dir = run_config(config, source=f"the {args.engine} engine's demo", default_name="demo",
                         out=args.out, resume=args.resume, registry=reg)
    report = run_dir / "report.html"
    print(f"demo finished: {run_dir}")
    if report.exists():
        print(f"open the report: {report.resolve()}")
    return 0


# -- analyze / process ---------------------------------------------------------------------


def _split_names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def cmd_analyze(args: argparse.Namespace) -> int:
    """Run analyzers on a run directory's probes (or metrics) or on a dataset file."""
    from overtone.errors import DatasetError
    from overtone.io import open_dataset, write_dataset, write_groups
    from overtone.pipeline import build_steps, run_steps

    reg = _registry()
    names = _split_names(args.with_)
    steps = build_steps(reg, "analyzer", names, args.param)
    source = Path(args.source)
    if source.is_dir():
        data_file = source / f"{args.input}.nc"
        if not data_file.exists():
            raise DatasetError(f"{str(source)!r} has no {args.input}.nc; is it a run directory?")
    else:
        data_file = source
    ds = open_dataset(data_file, registry=reg)
    for step in steps:
        result = run_steps(ds, [step])
        result.attrs.setdefault("analyzer", step.name)
        if args.output:
            out = Path(args.output)
            if len(steps) > 1:
                out = out.with_name(f"{out.stem}.{step.name}{out.suffix}")
            write_dataset(result, out)
        elif source.is_dir():
            out = write_groups(source / "analysis.nc", {step.name: result})
        else:
            out = write_dataset(result, source.with_name(f"{source.stem}.{step.name}.nc"))
        print(f"{step.name}: wrote {out}" + (f" (group {step.name!r})" if out.name == "analysis.nc" else ""))
        if args.plot:
            _plot(step, result, Path(args.plot), len(steps) > 1)
        if not args.quiet:
            print(_summary(result))
    return 0


def _plot(step: Any, result: Any, path: Path, several: bool) -> None:
    function = step.component.create(**step.params)
    plot = getattr(function, "plot", None)
    if plot is None:
        print(f"{step.name}: no plot available", file=sys.stderr)
        return
    import matplotlib

    matplotlib.use("Agg")
    if several:
        path = path.with_name(f"{path.stem}.{step.name}{path.suffix}")
    figure = plot(result)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    print(f"{step.name}: plot {path}")


def _summary(ds: Any) -> str:
    lines = []
    for name, var in ds.data_vars.items():
        dims = ", ".join(f"{d}: {n}" for d, n in var.sizes.items())
        units = var.attrs.get("units", "")
        if var.size == 1:
            lines.append(f"  {name} = {var.values.item():.6g} {units}".rstrip())
        else:
            lines.append(f"  {name} ({dims}) {units}".rstrip())
    return "\n".join(lines)


def cmd_process(args: argparse.Namespace) -> int:
    """Run signal processors over a dataset, chunk by chunk, and write the result."""
    from overtone.io import open_concatenated, storage_format, write_dataset
    from overtone.pipeline import build_steps, describe, run_steps

    reg = _registry()
    if storage_format(args.output) is None:
        raise OvertoneError(f"-o {args.output!r}: write a .nc (netCDF) or .zarr path")
    if any(Path(args.output).resolve() == Path(i).resolve() for i in args.input):
        raise OvertoneError("-o must differ from INPUT: overtone never overwrites its input")
    steps = build_steps(reg, "signal_processor", _split_names(args.with_), args.param)
    from overtone.config import parse_assignment

    reader_params = dict(parse_assignment(text, "--read") for text in args.read)
    ds = open_concatenated(args.input, args.chunk_dim,
                           chunks={args.chunk_dim: args.chunks} if args.chunks else "auto",
                           registry=reg, reader_params=reader_params)
    if args.chunks and args.chunk_dim not in ds.dims:
        raise OvertoneError(f"--chunk-dim {args.chunk_dim!r} is not a dimension of the input; "
                            f"dims: {', '.join(map(str, ds.dims))}")
    result = run_steps(ds, steps)
    history = result.attrs.get("history", "")
    names = " ".join(Path(i).name for i in args.input[:3]) + (
        f" (+{len(args.input) - 3} more)" if len(args.input) > 3 else "")
    record = f"overtone process {names} --with {describe(steps)}"
    result.attrs["history"] = f"{history}\n{record}".strip()
    if args.scheduler:
        from dask.distributed import Client

        with Client(args.scheduler):
            write_dataset(result, args.output, progress=False)
    else:
        write_dataset(result, args.output, progress=not args.quiet)
    print(f"wrote {args.output}")
    if args.plot:
        _process_plots(steps, ds, result, Path(args.plot))
    return 0


def _process_plots(steps: Any, before: Any, after: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    for step in steps:
        plot = getattr(step.component.create(**step.params), "plot", None)
        if plot is not None:
            figure = plot(before, after)
            out = path if len(steps) == 1 else path.with_name(f"{path.stem}.{step.name}{path.suffix}")
            figure.savefig(out, dpi=110, bbox_inches="tight")
            print(f"{step.name}: plot {out}")


# -- sweep ---------------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a grid of configs x seeds and combine their metrics."""
    from overtone.sweep import run_sweep

    out = run_sweep(args.config, grid=args.grid, seeds=args.seeds, overrides=args.set,
                    out=args.out, workers=args.workers, scheduler=args.scheduler)
    print(f"sweep finished: {out}")
    return 0


# -- new-plugin / doctor -------------------------------------------------------------------


def cmd_new_plugin(args: argparse.Namespace) -> int:
    """Scaffold a third-party plugin package."""
    from overtone.scaffold import KIND_CHOICES, scaffold_plugin

    kinds = args.kind or ["analyzer"]
    for kind in kinds:
        if kind not in KIND_CHOICES:
            raise OvertoneError(f"--kind {kind!r}: choose from {', '.join(KIND_CHOICES)}")
    path = scaffold_plugin(args.name, Path(args.directory), kinds)
    print(f"created {path}")
    print(f"next: pip install -e '{path}[test]' && pytest {path} && overtone plugins")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Load every plugin and every component factory; report problems."""
    from overtone.errors import ComponentUnavailableError

    reg = _registry()
    problems = reg.failures + reg.problems + _duplicate_lines(reg)
    for record in reg.loaded.plugins:
        status = "ok" if record.ok else "FAILED"
        print(f"plugin {record.name} {record.version or ''} ({record.source}): {status}")
    for entry in sorted(reg, key=lambda e: (e.component.kind, e.component.name)):
        try:
            entry.component.load()
        except ComponentUnavailableError as exc:
            problems.append(str(exc))
    print(f"{len(reg)} components from {sum(p.ok for p in reg.loaded.plugins)} plugins")
    for line in problems:
        print(f"problem: {line}")
    for line in reg.warnings:
        print(f"warning: {line}")
    if problems:
        print(f"{len(problems)} problem(s) found")
        return 1
    print("no problems found")
    return 0


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from overtone import __version__
    from overtone.component import KINDS

    parser = argparse.ArgumentParser(
        prog="overtone",
        description="Plugin framework for the physics of learning and radio-spectrum processing.",
        epilog="Run 'overtone COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"overtone {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list installed components",
                       description="List the components every loaded plugin registers. "
                       "Never imports torch.")
    p.add_argument("--json", action="store_true", help="print JSON (components, plugins, problems)")
    p.add_argument("--verbose", "-v", action="store_true", help="show parameters and defaults")
    p.add_argument("--kind", choices=list(KINDS), help="only components of this kind")
    p.set_defaults(handler=cmd_plugins)

    p = sub.add_parser("run", help="run an experiment config",
                       description="Validate CONFIG (TOML) completely, then run it with the engine "
                       "named in [run] engine, writing OUT/<name>/.")
    p.add_argument("config", help="experiment config, e.g. examples/grokking-mlp.toml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=500 (repeatable)")
    p.add_argument("--out", default="runs", help="parent directory of run directories (default: runs)")
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("demo", help="run the bundled demo (grokking modular addition)",
                       description="Run the engine's demo experiment and print where its report is.")
    p.add_argument("--engine", default="torch", help="engine whose demo to run (default: torch)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value")
    p.add_argument("--out", default="runs", help="parent directory of run directories (default: runs)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted demo")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("sweep", help="run a grid of configs x seeds",
                       description="Run every combination of --grid values for each seed, then "
                       "combine the metrics into one dataset with dims (variant, seed, step).")
    p.add_argument("config")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a config key and the values to try (repeatable)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per variant (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value")
    p.add_argument("--out", default="runs", help="parent directory (default: runs)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--scheduler", help="address of a dask.distributed scheduler to run on")
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("analyze", help="run analyzers on a run or a dataset",
                       description="Run analyzers on RUN_DIR/probes.nc (or --input metrics) or on a "
                       "dataset file. Results go to RUN_DIR/analysis.nc (one group per analyzer), "
                       "or next to the file, or to -o.")
    p.add_argument("source", metavar="RUN_DIR_OR_FILE")
    p.add_argument("--with", dest="with_", required=True, metavar="NAME[,NAME...]",
                   help="analyzer(s) to run")
    p.add_argument("--param", action="append", default=[], metavar="[NAME.]KEY=VALUE",
                   help="analyzer parameter (repeatable)")
    p.add_argument("--input", choices=["probes", "metrics"], default="probes",
                   help="which file of a run directory to analyze (default: probes)")
    p.add_argument("-o", "--output", help="write the result here (.nc or .zarr)")
    p.add_argument("--plot", metavar="PNG", help="also save the analyzer's plot")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print a summary")
    p.set_defaults(handler=cmd_analyze)

    p = sub.add_parser("process", help="run signal processors over a dataset",
                       description="Open INPUT lazily (netCDF, Zarr, or any format a reader plugin "
                       "handles, e.g. FITS), apply the processors in order chunk by chunk, and write "
                       "OUTPUT atomically. Several INPUT files (e.g. obs_*.fits, the pieces of one "
                       "observation) are joined along --chunk-dim in the order given.")
    p.add_argument("input", metavar="INPUT", nargs="+")
    p.add_argument("--with", dest="with_", required=True, metavar="NAME[,NAME...]",
                   help="signal processor(s), applied in order")
    p.add_argument("--param", action="append", default=[], metavar="[NAME.]KEY=VALUE",
                   help="processor parameter (repeatable)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help=".nc or .zarr path")
    p.add_argument("--read", action="append", default=[], metavar="KEY=VALUE",
                   help="reader parameter, e.g. --read polarization=mean (repeatable)")
    p.add_argument("--chunks", type=int, default=256, help="spectra per dask chunk (default 256)")
    p.add_argument("--chunk-dim", default="time", help="dimension to chunk along (default: time)")
    p.add_argument("--scheduler", help="address of a dask.distributed scheduler to run on")
    p.add_argument("--plot", metavar="PNG", help="also save before/after plots")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_process)

    p = sub.add_parser("new-plugin", help="scaffold a third-party plugin package",
                       description="Create a plugin distribution with a pyproject, an 'overtone' "
                       "entry point, one example component per --kind, and a passing test.")
    p.add_argument("name", help="distribution name, e.g. overtone-myloss")
    p.add_argument("--kind", action="append", metavar="KIND",
                   help="component kind to include (repeatable; default: analyzer)")
    p.add_argument("--directory", default=".", help="where to create it (default: here)")
    p.set_defaults(handler=cmd_new_plugin)

    p = sub.add_parser("doctor", help="load every plugin and report problems",
                       description="Load every plugin and import every component factory "
                       "(this may import torch); exit 1 if anything is wrong.")
    p.set_defaults(handler=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except OvertoneError as exc:
        if args.debug or os.environ.get("OVERTONE_DEBUG"):
            raise
        print(f"overtone: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("overtone: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
