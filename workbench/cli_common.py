"""What every `workbench` subcommand shares: exit codes, the error block, defaults' help text."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from .errors import error_lines

EXIT_OK, EXIT_CANDIDATE_FAILED, EXIT_USAGE = 0, 1, 2


def print_error(console: Console, exc: BaseException) -> int:
    """`error: <message>` and, if the error has one, `fix: <fix>`; returns the usage exit code."""
    first, *rest = error_lines(exc)
    console.print(f"[red]error:[/] {escape(first)}")
    for line in rest:
        console.print(f"[yellow]{escape(line)}[/]" if line.startswith("fix: ") else escape(line))
    return EXIT_USAGE


def run_default(name: str):
    """The default of a `RunConfig` field (config.py holds every default), e.g. 'workspace'."""
    from .config import RunConfig

    return RunConfig.model_fields[name].default
