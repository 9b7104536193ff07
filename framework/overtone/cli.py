"""The ``overtone`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overtone.errors import OvertoneError

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # as a shell reports a process ended by SIGPIPE (128 + 13)

EPILOG = """\
Run 'overtone COMMAND --help' for a command's options.

exit codes: 0 success; 1 problems found (doctor) or an analyzer broke its contract (analyze);
  2 an error (one line on stderr), nothing half-written; 130 interrupted; 141 the reader of
  stdout went away (e.g. 'overtone plugins | head').
environment: OVERTONE_PLUGINS=mod1,mod2 (also load these modules as plugins);
  OVERTONE_LOAD_PLUGINS=dist1,dist2 (only these distributions; empty: none);
  OVERTONE_DEBUG=1 (as --debug); OVERTONE_PROGRESS=0 (no progress bars)."""


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
        rows = [r for r in rows if r["kind"] in args.kind]
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


def cmd_analyze(args: argparse.Namespace) -> int:
    """Run analyzers on a run directory's probes (or metrics) or on a dataset file."""
    from overtone.analysis import analyze

    if args.plot:
        _headless_plots()
    done = analyze(args.source, args.with_, input=args.input, output=args.output,
                   overwrite=args.overwrite, plots=args.plot, params=args.param)
    for key, (path, group) in done.written.items():
        print(f"{key}: wrote {path}" + (f" (group {group!r})" if group else ""))
        if not args.quiet:
            print(_summary(done.results[key]))
    for key, path in done.plots.items():
        print(f"{key}: plot {path}")
    if args.plot:
        for key in done.results:
            if key not in done.plots and key not in done.failures:
                print(f"{key}: no plot available")
    for warning in done.warnings:
        print(f"overtone: warning: {warning}", file=sys.stderr)
    for failure in done.failures.values():
        print(f"overtone: error: {failure.message}", file=sys.stderr)
    return done.exit_code


def _headless_plots() -> None:
    import matplotlib

    matplotlib.use("Agg")


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
    from overtone.config import parse_assignment
    from overtone.processing import process

    if args.plot:
        _headless_plots()
    done = process(args.input, args.with_, args.output, overwrite=args.overwrite, plots=args.plot,
                   read_params=dict(parse_assignment(text, "--read") for text in args.read),
                   params=args.param, chunk_dim=args.chunk_dim, chunks=args.chunks,
                   scheduler=args.scheduler, progress=not args.quiet)
    print(f"wrote {done.output}")
    for name, path in done.plots.items():
        print(f"{name}: plot {path}")
    return 0


# -- sweep ---------------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a grid of configs x seeds and combine their metrics."""
    from overtone.sweep import run_sweep

    out = run_sweep(args.config, grid=args.grid, seeds=args.seeds, overrides=args.set,
                    out=args.out, workers=args.workers, scheduler=args.scheduler,
                    vectorize=args.vectorize, resume=args.resume, pack_memory=args.pack_memory)
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
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"overtone {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks on errors and of plugins that fail to load "
                        "(sets OVERTONE_DEBUG=1 before plugins load)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)  # --debug after the command works too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks (as 'overtone --debug COMMAND')")

    p = sub.add_parser("plugins", parents=[common], help="list installed components",
                       description="List the components every loaded plugin registers. "
                       "Never imports torch.")
    p.add_argument("--json", action="store_true", help="print JSON (components, plugins, problems)")
    p.add_argument("--verbose", "-v", action="store_true", help="show parameters and defaults")
    p.add_argument("--kind", choices=list(KINDS), action="append",
                   help="only components of this kind (repeatable)")
    p.set_defaults(handler=cmd_plugins)

    p = sub.add_parser("run", parents=[common], help="run an experiment config",
                       description="Validate CONFIG (TOML) completely, then run it with the engine "
                       "named in [run] engine, writing OUT/<name>/.")
    p.add_argument("config", help="experiment config, e.g. examples/grokking-mlp.toml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=500 (repeatable)")
    p.add_argument("--out", default="runs", help="parent directory of run directories (default: runs)")
    p.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("demo", parents=[common], help="run the bundled demo (grokking modular addition)",
                       description="Run the engine's demo experiment and print where its report is.")
    p.add_argument("--engine", default="torch", help="engine whose demo to run (default: torch)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value")
    p.add_argument("--out", default="runs", help="parent directory of run directories (default: runs)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted demo")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("sweep", parents=[common], help="run a grid of configs x seeds",
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
    p.add_argument("--vectorize", action="store_true",
                   help="train the members whose shapes agree as one program (stacked parameters, "
                   "per-member seeds and optimizer values); same sweep.nc")
    p.add_argument("--pack-memory", metavar="SIZE",
                   help="with --vectorize: the memory one pack may use, e.g. 4GB; larger packs are cut "
                   "(default: 60%% of a dask worker's memory limit with --scheduler, else of the "
                   "available memory shared among --workers)")
    p.add_argument("--resume", action="store_true",
                   help="continue the runs (or packs) already started from their last checkpoints; "
                   "start the others")
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("analyze", parents=[common], help="run analyzers on a run or a dataset",
                       description="Run analyzers on RUN_DIR/probes.nc (or --input metrics) or on a "
                       "dataset file. Results go to RUN_DIR/analysis.nc (one group per analyzer), "
                       "or next to the file, or to -o; existing outputs are refused unless "
                       "--overwrite. A run's probes reach each analyzer at the steps where its "
                       "variable was recorded, as during training. An analyzer that fails is "
                       "reported in one line and the others' results are still written. Exit "
                       "codes: 0 all written; 1 an analyzer raised an unexpected exception or "
                       "returned something other than an xarray.Dataset; 2 bad input (an analyzer "
                       "refused its input, or bad arguments: then nothing is written).")
    p.add_argument("source", metavar="RUN_DIR_OR_FILE")
    p.add_argument("--with", dest="with_", required=True, metavar="NAME[,NAME...]",
                   help="analyzer(s) to run")
    p.add_argument("--param", action="append", default=[], metavar="[NAME.]KEY=VALUE",
                   help="analyzer parameter (repeatable)")
    p.add_argument("--input", choices=["probes", "metrics"], default="probes",
                   help="which file of a run directory to analyze (default: probes)")
    p.add_argument("-o", "--output", help="write the result here (.nc or .zarr; "
                   "<stem>.<name><suffix> for each of several analyzers)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (files, or groups of analysis.nc)")
    p.add_argument("--plot", metavar="PNG", help="also save the analyzer's plot")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print a summary")
    p.set_defaults(handler=cmd_analyze)

    p = sub.add_parser("process", parents=[common], help="run signal processors over a dataset",
                       description="Open INPUT lazily (netCDF, Zarr, or any format a reader plugin "
                       "handles, e.g. FITS), apply the processors in order chunk by chunk, and write "
                       "OUTPUT atomically. Several INPUT files (e.g. obs_*.fits, the pieces of one "
                       "observation) are joined along --chunk-dim in the order given. An "
                       "existing OUTPUT is refused unless --overwrite.")
    p.add_argument("input", metavar="INPUT", nargs="+")
    p.add_argument("--with", dest="with_", required=True, metavar="NAME[,NAME...]",
                   help="signal processor(s), applied in order")
    p.add_argument("--param", action="append", default=[], metavar="[NAME.]KEY=VALUE",
                   help="processor parameter (repeatable)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help=".nc or .zarr path")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--read", action="append", default=[], metavar="KEY=VALUE",
                   help="reader parameter, e.g. --read polarization=mean (repeatable)")
    p.add_argument("--chunks", type=int, default=256, help="spectra per dask chunk (default 256)")
    p.add_argument("--chunk-dim", default=None, metavar="DIM",
                   help="dimension to chunk and join along (default: time; data without a time "
                   "dim, e.g. one spectrum or a cube, is then processed as one chunk in memory; "
                   "a DIM named here must exist)")
    p.add_argument("--scheduler", help="address of a dask.distributed scheduler to run on")
    p.add_argument("--plot", metavar="PNG", help="also save before/after plots")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_process)

    p = sub.add_parser("new-plugin", parents=[common], help="scaffold a third-party plugin package",
                       description="Create a plugin distribution with a pyproject, an 'overtone' "
                       "entry point, one example component per --kind, and a passing test.")
    p.add_argument("name", help="distribution name, e.g. overtone-myloss")
    p.add_argument("--kind", action="append", metavar="KIND",
                   help="component kind to include (repeatable; default: analyzer)")
    p.add_argument("--directory", default=".", help="where to create it (default: here)")
    p.set_defaults(handler=cmd_new_plugin)

    p = sub.add_parser("doctor", parents=[common], help="load every plugin and report problems",
                       description="Load every plugin and import every component factory "
                       "(this may import torch); exit 1 if anything is wrong.")
    p.set_defaults(handler=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        os.environ["OVERTONE_DEBUG"] = "1"  # before any plugin loads: plugins.py reads it
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with warnings.catch_warnings():
            if not (args.debug or os.environ.get("OVERTONE_DEBUG")):
                warnings.showwarning = _one_line_warning(warnings.showwarning)
            code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OvertoneError as exc:
        if args.debug or os.environ.get("OVERTONE_DEBUG"):
            raise
        print(f"overtone: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("overtone: interrupted", file=sys.stderr)
        return 130


def _one_line_warning(show: Any) -> Any:
    """``warnings.showwarning`` that prints an OvertoneWarning as one line,
    ``overtone: warning: ...`` (no file, line or source), and other warnings as ``show`` does."""
    from overtone.errors import OvertoneWarning

    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, OvertoneWarning):
            print(f"overtone: warning: {message}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit raises no second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout replaced by an object without a fd
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
