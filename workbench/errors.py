"""Errors a user can cause and fix: one base class, so every front end reports them the same way.

A `WorkbenchError` carries its message and, optionally, a `fix` (what to do about it).  The CLI
prints `error: <message>` and, when there is one, `fix: <fix>`, and exits with status 2; it never
shows a traceback for these.  Errors of the layers below (`evaluators`, `sandbox`), which may not
import `workbench`, are listed in `FOREIGN_USER_ERRORS` and reported the same way.

Subclasses keep the builtin base their callers catch (`ValueError`, `FileNotFoundError`, ...), so
`class ConfigError(WorkbenchError, ValueError)` is still caught by `except ValueError`.  A subclass
may set a class-level `fix` used when the raise site gives none.

This module imports nothing, so any module may import it.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """An error the user caused; `str(exc)` says what is wrong, `fix` what to do about it."""

    fix: str | None = None

    def __init__(self, message: str = "", *args: object, fix: str | None = None):
        super().__init__(message, *args)
        if fix is not None:
            self.fix = fix

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def lines(self) -> list[str]:
        """The one or two lines a front end shows: the message, then the fix if there is one."""
        out = [str(self)]
        if self.fix and self.fix not in out[0]:
            out.append(f"fix: {self.fix}")
        return out


class RunNotFound(WorkbenchError, FileNotFoundError):
    """A path that should be a run directory is not one."""

    fix = "give the directory of a run (it holds run.sqlite); `workbench runs WORKSPACE` lists them"


class RunExists(WorkbenchError, FileExistsError):
    """`workbench run --run-dir DIR` where DIR already holds a run."""


class CandidateNotFound(WorkbenchError, ValueError):
    """A candidate reference (`ID`, `best`, `warm-start`) that names nothing in the run."""


class LLMRequestRejected(WorkbenchError):
    """The model provider refused a request in a way retrying cannot fix (bad API key, unknown
    model, malformed request): the run stops with this instead of recording `no_code` forever."""


# Errors a user causes that live below `workbench` (module, class name); reported like ours.
FOREIGN_USER_ERRORS = (
    ("sandbox.pool", "SandboxUnavailable"),
    ("evaluators.envs", "UnknownEnvError"),
    ("evaluators.families", "UnknownFamilyError"),
)


def is_user_error(exc: BaseException) -> bool:
    """True for a `WorkbenchError` or one of `FOREIGN_USER_ERRORS` (checked without importing
    their modules: if a module is not loaded, its error cannot have been raised)."""
    import sys

    if isinstance(exc, WorkbenchError):
        return True
    for module, name in FOREIGN_USER_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return True
    return False


def error_lines(exc: BaseException) -> list[str]:
    """The lines to show for a user error: its message (one line per problem) and its fix."""
    if isinstance(exc, WorkbenchError):
        return exc.lines()
    return [str(exc)]
