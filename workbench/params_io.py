"""Network candidates on disk: one .npz per parameter pytree, with the hidden size recorded; and
the one way the workbench writes a file atomically (`atomic_write`, `save_npz`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

_HSIZE_KEY = "__hsize__"
_FAMILY_KEY = "__family__"


def flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, path))
        else:
            out[path] = np.asarray(value)
    return out


def unflatten(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file so that a crash leaves the old file or the new one, never a torn one:
    `write(fh)` fills a temporary file beside it, which is fsynced, renamed over `path`, and the
    directory fsynced (so the rename itself survives a power cut)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def save_npz(path: str | Path, arrays: dict[str, Any]) -> Path:
    """`np.savez(path, **arrays)`, atomically (see `atomic_write`); `path` is used as given."""
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def save_params(path: str | Path, params: Any, family: str, hsize: int) -> Path:
    return save_npz(path, {**flatten(params), _HSIZE_KEY: np.asarray(hsize),
                           _FAMILY_KEY: np.asarray(family)})


def load_params(path: str | Path) -> tuple[dict[str, Any], str, int]:
    """Returns (params, family name, hsize); raises ValueError with the reason on a bad file."""
    try:
        with np.load(path) as data:
            flat = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read parameter file {path}: {exc}") from None
    if _HSIZE_KEY not in flat or _FAMILY_KEY not in flat:
        raise ValueError(f"{path} is not a workbench parameter file (no {_HSIZE_KEY}/{_FAMILY_KEY})")
    hsize = int(flat.pop(_HSIZE_KEY))
    family = str(flat.pop(_FAMILY_KEY))
    return unflatten(flat), family, hsize
