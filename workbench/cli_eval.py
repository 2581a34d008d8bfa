"""`workbench eval` and `workbench compare`: the subcommands that score candidates again.

Defaults are not repeated here: flags default to None and `EvalRequest` / `compare_fields` (from
config.py's defaults) fill them in.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .cli_common import EXIT_CANDIDATE_FAILED, EXIT_OK, EXIT_USAGE, print_error, run_default


def _request_default(name: str):
    from .evaluate import EvalRequest

    return next(f.default for f in dataclasses.fields(EvalRequest) if f.name == name)


def add_eval(sub: argparse._SubParsersAction) -> None:
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
                   help="re-evaluate a candidate stored in a run (pick it with --candidate "
                        "ID|best|warm-start; default best) on any environments and fresh seeds")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--candidate", metavar="WHICH",
                      help="warm-start (default) or zero-network; with --from: a candidate id, "
                           "best or warm-start")
    what.add_argument("--code", metavar="FILE.py", help="a program with the family's signature")
    what.add_argument("--expr", metavar="EXPR", help="a symbolic expression over the family's inputs")
    what.add_argument("--params", metavar="FILE.npz", help="network parameters saved by the workbench")
    p.add_argument("--env", action="append", metavar="ENV",
                   help=f"meta-train environment (repeatable; default "
                        f"{','.join(_request_default('envs'))})")
    p.add_argument("--test-env", action="append", metavar="ENV",
                   help="held-out meta-test environment, scored separately (repeatable)")
    p.add_argument("--seeds", type=int,
                   help=f"training seeds per environment (default {_request_default('seeds')})")
    p.add_argument("--seed", type=int, help=f"master random seed (default {_request_default('seed')})")
    p.add_argument("--timesteps", type=int, help="environment steps per run (default: the env's own)")
    p.add_argument("--num-envs", type=int, help="parallel environments per run (default: the env's own)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="wall-clock limit for a sandboxed --code/--expr candidate (default: sandbox.time_limit_s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--plot", metavar="FILE.png", help="write a learning-curve figure")
    p.set_defaults(handler=run_eval)


def _from_run(args: argparse.Namespace) -> dict:
    """--from RUN_DIR [--candidate ID|best|warm-start]: the EvalRequest fields of that candidate."""
    from .candidate_ref import resolve_candidate

    ref = resolve_candidate(args.from_run, args.candidate or "best", pick="--candidate ID")
    if args.family and args.family != ref.family:
        raise ValueError(f"{args.from_run} is a {ref.family} run, not {args.family}")
    args.from_label = ref.label
    return {"family": ref.family, **ref.fields}


def run_eval(args: argparse.Namespace, console: Console) -> int:
    from evaluators.envs import UnknownEnvError

    fields = {"family": args.family, "candidate": args.candidate, "params_file": args.params,
              "expr": args.expr}
    args.from_label = None
    if args.from_run:
        try:
            fields = _from_run(args)
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

    fields.update({"envs": args.env, "test_envs": args.test_env, "seeds": args.seeds,
                   "seed": args.seed, "timesteps": args.timesteps, "num_envs": args.num_envs,
                   "time_limit_s": args.time_limit})
    if args.code is not None:
        try:
            fields["code"] = Path(args.code).read_text()
        except OSError as exc:
            console.print(f"[red]error:[/] cannot read --code file: {exc}")
            return EXIT_USAGE
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
        what = req.candidate if not (req.code or req.expr or req.params_file) else "candidate"
        plot_learning_curves(result.curves, result.steps_per_update, args.plot,
                             title=f"{result.family}: {args.from_label or what}")
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        if args.from_label:
            console.print(f"candidate: {args.from_label} of {args.from_run}")
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


def add_compare(sub: argparse._SubParsersAction) -> None:
    from .config import COMPARE_SEEDS

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
    p.add_argument("--seeds", type=int, help=f"held-out seeds (default {COMPARE_SEEDS})")
    p.add_argument("--seed", type=int, help="master seed of the held-out seeds (default: "
                                            f"eval_seed's default, {run_default('eval_seed')})")
    p.add_argument("--timesteps", type=int, help="environment steps per run (default: the run's)")
    p.add_argument("--num-envs", type=int, help="parallel environments (default: the run's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace, console: Console) -> int:
    import numpy as np

    from .compare import compare, compare_fields

    try:
        fields = compare_fields(args.run_dir, args.env, args.seeds, args.seed, args.timesteps,
                                args.num_envs)
        rows = compare(args.run_dir, args.candidates, **fields)
    except (ValueError, FileNotFoundError) as exc:
        return print_error(console, exc)
    if args.json:
        print(json.dumps([{"candidate": r.candidate, "outcome": r.result.outcome,
                           "fitness": r.result.fitness, "diff_mean": r.diff_mean,
                           "diff_stderr": r.diff_stderr, "wins_losses_ties": r.wins} for r in rows]))
        return EXIT_OK
    table = Table(title=f"{fields['seeds']} held-out seeds (master seed {fields['seed']}) on "
                        f"{', '.join(fields['envs'])}")
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
