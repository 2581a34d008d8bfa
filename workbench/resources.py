"""The data the workbench ships beside its code: prompts/ (the LLM proposer's and the tool-mode
agent's prompt templates) and configs/ (the bundled run and study configs).

Both live at the top of the source tree and are installed as package data inside `workbench`
(`workbench/prompts/`, `workbench/configs/`; see pyproject.toml).  They are always read from
beside the `workbench` package actually imported, through importlib.resources: inside it in an
installed package (`pip install .`, a wheel), or its sibling directory in a source checkout (an
editable install or PYTHONPATH=.).  Nothing is read relative to the current directory.

A bundled config is named by its path under configs/ without `.yaml`: `quickstart`,
`cpu/lpo_es`, `paper/study`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PROMPTS = "prompts"
CONFIGS = "configs"
CONFIG_SUFFIXES = (".yaml", ".yml")


class ResourceMissing(FileNotFoundError):
    """A data file that should ship with the package is not there (a broken install)."""


def data_dir(kind: str) -> Path:
    """The directory holding `prompts` or `configs` for the imported `workbench` package."""
    package = files("workbench")
    if not isinstance(package, Path):  # a zipped install: the sandbox needs real files anyway
        raise ResourceMissing(f"workbench is imported from {package}, not from a directory; "
                              "install it unzipped (pip install .)")
    for candidate in (package / kind, package.parent / kind):  # installed, then source checkout
        if candidate.is_dir():
            return candidate
    raise ResourceMissing(f"the workbench's {kind}/ directory is missing (looked in {package} and "
                          f"{package.parent}); reinstall the package (pip install .)")


def prompt(name: str) -> str:
    """The text of prompts/<name>, e.g. prompt("system.md") or prompt("lpo/task.md")."""
    path = data_dir(PROMPTS) / name
    try:
        return path.read_text()
    except OSError as exc:
        raise ResourceMissing(f"prompt {name} is missing ({path}: {exc.strerror}); reinstall the "
                              "package (pip install .)") from None


def bundled_configs() -> list[str]:
    """The names of the bundled configs, sorted: quickstart, cpu/lpo_es, ..., paper/study."""
    root = data_dir(CONFIGS)
    return sorted(p.relative_to(root).with_suffix("").as_posix()
                  for p in root.rglob("*") if p.suffix in CONFIG_SUFFIXES and p.is_file())


def bundled_names_text() -> str:
    """The bundled configs' names on one line, grouped by folder (for messages and --help)."""
    groups: dict[str, list[str]] = {}
    for name in bundled_configs():
        folder, _, stem = name.rpartition("/")
        groups.setdefault(folder, []).append(stem)
    return "; ".join(", ".join(stems) if not folder else f"{folder}/{{{', '.join(stems)}}}"
                     for folder, stems in sorted(groups.items()))


def bundled_config(name: str) -> Path | None:
    """The file of the bundled config `name` (`quickstart`, `cpu/study`), None if there is none."""
    root = data_dir(CONFIGS)
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts:
        return None
    for suffix in CONFIG_SUFFIXES:
        path = root / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def is_config_name(text: str) -> bool:
    """True when `text` reads as a bundled config's name rather than a file: no .yaml suffix."""
    return bool(text) and Path(text).suffix not in CONFIG_SUFFIXES
