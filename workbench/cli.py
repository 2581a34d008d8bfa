"""`workbench` command line: one subcommand per job, each defined in its own function (`eval` and
`compare`, which score candidates again, in `cli_eval`).

Defaults are not repeated here: flags default to None and config.py's models (or the request
dataclasses) fill them in.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from rich.console import Console

from .cli_common import EXIT_CANDIDATE_FAILED, EXIT_OK, EXIT_USAGE, print_error, run_default
from .cli_eval import add_compare, add_eval
from .errors import is_user_error

__all__ = ["EXIT_CANDIDATE_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main", "print_error"]


def _config_help(kind: str) -> str:
    """--config's help: a file, or a config bundled with the package by its name."""
    from .resources import ResourceMissing, bundled_names_text

    try:
        names = bundled_names_text()
    except ResourceMissing as exc:
        names = f"(none found: {exc})"
    example = "cpu/study" if kind == "study" else "quickstart"
    return (f"{kind} config: a YAML file, or the name (no .yaml) of one bundled with the package, "
            f"e.g. {example}; bundled: {names}")


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="start a run headless from a YAML config",
                       description="Start a run (ES, distillation, symbolic or LLM/mutation "
                                   "discovery) from a YAML config, with progress bars and a summary.",
                       epilog="example: workbench run --config quickstart "
                              "--set llm.generations=4 --set envs=[cartpole]")
    p.add_argument("--config", required=True, metavar="FILE.yaml|NAME", help=_config_help("run"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config field, e.g. es.generations=10 (repeatable)")
    p.add_argument("--run-dir", metavar="DIR", help="where to put the run (default: under workspace)")
    p.set_defaults(handler=_run_run)

    r = sub.add_parser("resume", help="continue a stopped or killed run where it stopped",
                       description="Continue a run from its directory; nothing already recorded is "
                                   "evaluated twice.")
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="extend the run, e.g. es.generations=200 or llm.generations=50 (the family, "
                        "method, envs, seed and inner-loop settings cannot change)")
    r.set_defaults(handler=_run_resume)

    ls = sub.add_parser("runs", help="list the runs under a workspace")
    ls.add_argument("workspace", nargs="?",
                    help=f"directory holding the runs (default {run_default('workspace')})")
    ls.set_defaults(handler=_run_list)


def _execute(config, store, console: Console) -> int:
    from .runs import execute
    from .summary import print_summary

    console.print(f"run directory: [bold]{store.run_dir}[/]")
    try:
        status = execute(config, store)
    except KeyboardInterrupt:
        console.print(f"[yellow]stopped[/]; continue with: workbench resume {store.run_dir}")
        return 130
    print_summary(store, console)
    console.print(f"run directory: [bold]{store.run_dir}[/] ({status})")
    return EXIT_OK


def _run_run(args: argparse.Namespace, console: Console) -> int:
    from .config import ConfigError, load_config
    from .runs import create_run

    try:
        config = load_config(args.config, args.overrides)
        store = create_run(config, args.run_dir)
    except (ConfigError, FileExistsError) as exc:
        return print_error(console, exc)
    return _execute(config, store, console)


def _run_resume(args: argparse.Namespace, console: Console) -> int:
    from .config import ConfigError
    from .runs import open_run

    try:
        config, store = open_run(args.run_dir, args.overrides)
    except (FileNotFoundError, ConfigError) as exc:
        return print_error(console, exc)
    return _execute(config, store, console)


def _run_list(args: argparse.Namespace, console: Console) -> int:
    from .runs import list_runs
    from .summary import runs_table

    console.print(runs_table(list_runs(args.workspace or run_default("workspace"))))
    return EXIT_OK


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a Markdown + PNG report of a run or a study",
                       description="Write RUN_DIR/report/report.md (with figures) for a run, or a "
                                   "side-by-side comparison for a directory of runs (a study).")
    p.add_argument("path", metavar="RUN_OR_STUDY_DIR")
    p.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace, console: Console) -> int:
    from .report import write_report

    try:
        path = write_report(args.path)
    except FileNotFoundError as exc:
        return print_error(console, exc)
    console.print(f"report: [bold]{path}[/]")
    return EXIT_OK


def _add_study(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run a set of configs into one directory and report them",
                       description="Run every run listed in a study file into STUDY_DIR (finished "
                                   "runs are skipped, unfinished ones resumed), then write the "
                                   "comparison report.",
                       epilog="example: workbench study --config cpu/study --dir runs/study-cpu")
    p.add_argument("--config", required=True, metavar="STUDY.yaml|NAME", help=_config_help("study"))
    p.add_argument("--dir", required=True, metavar="STUDY_DIR")
    p.set_defaults(handler=_run_study)


def _run_study(args: argparse.Namespace, console: Console) -> int:
    from .config import ConfigError, resolve_config
    from .report import study_report
    from .study import run_study

    try:
        results = run_study(resolve_config(args.config), args.dir,
                            on_run=lambda name, d, what: console.print(
                                f"[bold]== {name}[/] -> {d}" if what == "start"
                                else f"[red]== {name}: {what}[/]"))
    except ConfigError as exc:
        return print_error(console, exc)
    for name, status in results:
        console.print(f"{name}: {status}")
    console.print(f"report: [bold]{study_report(args.dir)}[/]")
    return EXIT_OK


def _add_tui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tui", help="open the terminal UI to start, watch, steer and resume runs",
                       description="Open the Textual UI over a workspace of runs (also what "
                                   "`workbench` with no arguments does in a terminal).")
    p.add_argument("workspace", nargs="?",
                   help=f"directory holding the runs (default {run_default('workspace')})")
    p.set_defaults(handler=_run_tui)


def _run_tui(args: argparse.Namespace, console: Console) -> int:
    from .tui import run_tui

    return run_tui(args.workspace or run_default("workspace"))


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_eval, _add_run, _add_report,
                                                                   _add_study, add_compare, _add_tui]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="RL Discovery Workbench: meta-learn reinforcement-learning algorithms "
                    "(families: lpo, open, open_ff, no_features).")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(soft_wrap=True)
    if args.version:
        from . import __version__
        print(__version__)
        return EXIT_OK
    if not getattr(args, "handler", None):
        if args.command is None and sys.stdin.isatty() and sys.stdout.isatty():
            from .tui import run_tui
            return run_tui(run_default("workspace"))
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args, console)
    except Exception as exc:  # noqa: BLE001 - a user error is two lines, a bug keeps its traceback
        if not is_user_error(exc):
            raise
        return print_error(console, exc)


if __name__ == "__main__":
    sys.exit(main())
