"""`workbench` command line: one subcommand per job, each defined in its own function.

Defaults are not repeated here: flags default to None and the request dataclasses fill them in.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import error_lines, is_user_error

EXIT_OK, EXIT_CANDIDATE_FAILED, EXIT_USAGE = 0, 1, 2


def print_error(console: Console, exc: BaseException) -> int:
    """`error: <message>` and, if the error has one, `fix: <fix>`; returns the usage exit code."""
    first, *rest = error_lines(exc)
    console.print(f"[red]error:[/] {escape(first)}")
    for line in rest:
        console.print(f"[yellow]{escape(line)}[/]" if line.startswith("fix: ") else escape(line))
    return EXIT_USAGE


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from evaluators.envs import env_names
    from evaluators.families import FAMILIES

    p = sub.add_parser(
        "eval", help="train PPO with one candidate algorithm and report its returns",
        description="Train PPO agents with one candidate of an algorithm family on gymnax "
                    "environments, several seeds at once, and report per environment the mean "
                    "final return ± standard error, the normalised score (1.0 = the tuned "
                    "baseline of SPEC §3), env steps/s (compilation excluded) and compile time.",
        epilog="examples:\n"
               "  workbench eval --family lpo --env cartpole\n"
               "  workbench eval --family lpo --expr 'relu((r - 1)*A - 0.2*Abs(A))' --env cartpole\n"
               "  workbench eval --family open --code my_opt.py --env breakout --timesteps 200000\n"
               f"environments: {', '.join(env_names())}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=sorted(FAMILIES),
                   help="algorithm family the candidate belongs to (required unless --from)")
    p.add_argument("--from", dest="from_run", metavar="RUN_DIR",
                   help="re-evaluate a candidate stored in a run (pick it with --candidate ID|best; "
                        "default best) on any environments and fresh seeds")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--candidate", metavar="WHICH",
                      help="warm-start (default) or zero-network; with --from: a candidate id or best")
    what.add_argument("--code", metavar="FILE.py", help="a program with the family's signature")
    what.add_argument("--expr", metavar="EXPR", help="a symbolic expression over the family's inputs")
    what.add_argument("--params", metavar="FILE.npz", help="network parameters saved by the workbench")
    p.add_argument("--env", action="append", metavar="ENV",
                   help="meta-train environment (repeatable; default cartpole)")
    p.add_argument("--test-env", action="append", metavar="ENV",
                   help="held-out meta-test environment, scored separately (repeatable)")
    p.add_argument("--seeds", type=int, help="training seeds per environment (default 8)")
    p.add_argument("--seed", type=int, help="master random seed (default 0)")
    p.add_argument("--timesteps", type=int, help="environment steps per run (default: the env's own)")
    p.add_argument("--num-envs", type=int, help="parallel environments per run (default: the env's own)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="wall-clock limit for a sandboxed --code/--expr candidate (default: sandbox.time_limit_s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--plot", metavar="FILE.png", help="write a learning-curve figure")
    p.set_defaults(handler=_run_eval)


def _from_run(args: argparse.Namespace) -> None:
    """Turn --from RUN_DIR [--candidate ID|best] into the equivalent --family/--code/... flags."""
    from .errors import CandidateNotFound
    from .runs import open_run

    config, store = open_run(args.from_run)
    with store:
        which = args.candidate or "best"
        if which == "best":
            best = store.best_candidates(1)
            if not best:
                raise CandidateNotFound(f"{args.from_run} has no candidate with outcome ok, so no "
                                        "'best'", fix="pick one with --candidate ID")
            row = best[0]
        else:
            if not which.isdigit():
                raise CandidateNotFound(f"--candidate {which!r} is not a candidate of {args.from_run}",
                                        fix="give a candidate id of the run, or 'best'")
            try:
                row = store.candidate(int(which))
            except KeyError as exc:
                raise CandidateNotFound(exc.args[0], fix="give a candidate id of the run, or "
                                        "'best'") from None
    if args.family and args.family != config.family:
        raise ValueError(f"{args.from_run} is a {config.family} run, not {args.family}")
    args.family, args.candidate = config.family, None
    if row.kind == "code":
        args.code_source = row.source
    elif row.kind == "symbolic":
        args.expr = row.source
    elif row.kind == "network":
        args.params = str(Path(args.from_run) / row.params_path)
    else:
        args.candidate = "warm-start"


def _run_eval(args: argparse.Namespace, console: Console) -> int:
    from evaluators.envs import UnknownEnvError

    args.code_source = None
    if args.from_run:
        try:
            _from_run(args)
        except (ValueError, FileNotFoundError) as exc:
            return print_error(console, exc)
    elif args.family is None:
        console.print("[red]error:[/] --family is required (or --from RUN_DIR)")
        return EXIT_USAGE
    elif args.candidate not in (None, "warm-start", "zero-network"):
        console.print(f"[red]error:[/] --candidate {args.candidate!r}: use warm-start or zero-network "
                      "(an id or 'best' needs --from RUN_DIR)")
        return EXIT_USAGE

    from .evaluate import EvalRequest, evaluate_request
    from .plots import plot_learning_curves

    fields = {"family": args.family, "envs": args.env, "test_envs": args.test_env,
              "candidate": args.candidate, "params_file": args.params, "seeds": args.seeds,
              "seed": args.seed, "timesteps": args.timesteps, "num_envs": args.num_envs,
              "time_limit_s": args.time_limit}
    if args.code is not None:
        try:
            fields["code"] = Path(args.code).read_text()
        except OSError as exc:
            console.print(f"[red]error:[/] cannot read --code file: {exc}")
            return EXIT_USAGE
    if args.code_source is not None:
        fields["code"] = args.code_source
    fields["expr"] = args.expr
    req = EvalRequest(**{k: v for k, v in fields.items() if v is not None})
    if req.seeds < 1:
        console.print("[red]error:[/] --seeds must be at least 1")
        return EXIT_USAGE
    from sandbox.pool import SandboxUnavailable

    try:
        result = evaluate_request(req)
    except (UnknownEnvError, ValueError, SandboxUnavailable) as exc:
        return print_error(console, exc)
    if args.plot and result.curves:
        plot_learning_curves(result.curves, result.steps_per_update, args.plot,
                             title=f"{result.family}: {req.candidate if not (req.code or req.expr or req.params_file) else 'candidate'}")
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        _print_eval(result, console, args.plot)
    return EXIT_OK if result.outcome == "ok" else EXIT_CANDIDATE_FAILED


def _print_eval(result, console: Console, plot: str | None) -> None:
    if result.outcome != "ok" and not result.envs:
        console.print(f"[red]{result.outcome}[/]: {result.reason}")
        return
    table = Table(title=f"{result.family} — outcome: {result.outcome}")
    for col in ("split", "env", "return (mean ± s.e.)", "normalised", "env steps/s", "compile s"):
        table.add_column(col, justify="right" if col not in ("split", "env") else "left")
    for split, envs in (("train", result.envs), ("test", result.test_envs)):
        for name, r in envs.items():
            table.add_row(split, name, f"{r['return_mean']:.1f} ± {r['return_stderr']:.1f}",
                          f"{r['normalized']:.3f}", f"{r['sps']:,.0f}", f"{r['compile_s']:.1f}")
    console.print(table)
    console.print(f"fitness (meta-train): [bold]{result.fitness:.4f}[/]"
                  + (f"   meta-test: [bold]{result.test_fitness:.4f}[/]" if result.test_fitness is not None else ""))
    if result.reason:
        console.print(f"[yellow]{result.reason}[/]")
    if plot:
        console.print(f"learning curves: {plot}")


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
    ls.add_argument("workspace", nargs="?", default="runs")
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

    console.print(runs_table(list_runs(args.workspace)))
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


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="paired comparison of stored candidates on the same fresh seeds",
                       description="Re-train stored candidates of a run on the same held-out seeds "
                                   "(common random numbers) and report each one's return and its "
                                   "per-seed difference to the first candidate, with a standard error "
                                   "and the count of seeds it wins/loses/ties.",
                       epilog="example: workbench compare runs/my-run warm-start best --seeds 32 "
                              "--seed 777 --timesteps 50000")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("candidates", nargs="+", metavar="ID|best|warm-start",
                   help="the first is the reference the others are compared with")
    p.add_argument("--env", action="append", metavar="ENV", help="environment (repeatable; default: the run's)")
    p.add_argument("--seeds", type=int, default=32, help="held-out seeds (default 32)")
    p.add_argument("--seed", type=int, default=1_000_003, help="master seed of the held-out seeds")
    p.add_argument("--timesteps", type=int, help="environment steps per run (default: the run's)")
    p.add_argument("--num-envs", type=int, help="parallel environments (default: the run's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_run_compare)


def _run_compare(args: argparse.Namespace, console: Console) -> int:
    import numpy as np

    from .compare import compare
    from .runs import open_run

    try:
        config, store = open_run(args.run_dir)
        store.close()
        fields = {"envs": args.env or config.envs, "seeds": args.seeds, "seed": args.seed,
                  "timesteps": args.timesteps or config.timesteps,
                  "num_envs": args.num_envs or config.num_envs}
        rows = compare(args.run_dir, args.candidates, **fields)
    except (ValueError, FileNotFoundError) as exc:
        return print_error(console, exc)
    if args.json:
        print(json.dumps([{"candidate": r.candidate, "outcome": r.result.outcome,
                           "fitness": r.result.fitness, "diff_mean": r.diff_mean,
                           "diff_stderr": r.diff_stderr, "wins_losses_ties": r.wins} for r in rows]))
        return EXIT_OK
    table = Table(title=f"{args.seeds} held-out seeds (master seed {args.seed}) on {', '.join(fields['envs'])}")
    for col in ("candidate", "outcome", "return (mean ± s.e.)", "fitness", "Δ vs first (± s.e.)", "wins/losses/ties"):
        table.add_column(col)
    for i, r in enumerate(rows):
        envs = list(r.result.envs.values())
        ret = (f"{np.mean([e['return_mean'] for e in envs]):.1f} ± "
               f"{np.sqrt(np.mean([e['return_stderr'] ** 2 for e in envs])):.1f}") if envs else "-"
        diff = "reference" if i == 0 else (f"{r.diff_mean:+.1f} ± {r.diff_stderr:.1f}"
                                           if r.diff_mean is not None else "-")
        fit = f"{r.result.fitness:.4f}" if r.result.fitness is not None else "-"
        table.add_row(r.candidate, r.result.outcome, ret, fit, diff, r.wins)
    console.print(table)
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
    p.add_argument("workspace", nargs="?", default="runs", help="directory holding the runs")
    p.set_defaults(handler=_run_tui)


def _run_tui(args: argparse.Namespace, console: Console) -> int:
    from .tui import run_tui

    return run_tui(args.workspace)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_eval, _add_run, _add_report,
                                                                   _add_study, _add_compare, _add_tui]


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
            return run_tui("runs")
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
