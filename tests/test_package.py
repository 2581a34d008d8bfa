"""The package as a user installs it: `pip install .` (not editable) into a fresh venv, used from
another directory, finds its code, bundled configs and prompts, and runs the quickstart by its
name (that run is `slow`: CI runs it after the rest); and the `--config NAME` resolution itself
(workbench.resources, workbench.config.resolve_config)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

import pytest

from workbench.config import ConfigError, load_config, resolve_config
from workbench.resources import bundled_config, bundled_configs, data_dir, prompt

REPO = Path(__file__).resolve().parent.parent
CODE_PACKAGES = ("workbench", "evaluators", "sandbox")
NOT_SHIPPED = (".git", "runs", "wandb", "__pycache__", ".pytest_cache", "*.egg-info", "build",
               "dist", ".benchmarks", ".env", "docs", "tests")


# --- resolution, in this checkout ------------------------------------------------------------

def test_bundled_names_resolve_to_the_configs_directory():
    names = bundled_configs()
    assert {"quickstart", "cpu/lpo_es", "cpu/study", "paper/study"} <= set(names)
    assert len(names) == len(list((REPO / "configs").rglob("*.yaml")))
    assert resolve_config("quickstart") == data_dir("configs") / "quickstart.yaml"
    assert resolve_config("cpu/study") == REPO / "configs" / "cpu" / "study.yaml"
    assert load_config("cpu/lpo_es").method == "es"
    assert bundled_config("../pyproject") is None and bundled_config("/etc/passwd") is None


def test_a_file_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("quickstart").write_text("name: mine\nfamily: open\n")
    assert load_config("quickstart").name == "mine"
    assert resolve_config("configs/quickstart.yaml") == Path("configs/quickstart.yaml")  # a path


def test_unknown_names_list_the_bundled_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config("quickstrat")
    text = str(err.value)
    assert "quickstrat" in text and "quickstart" in text and "lpo_es" in text and "\n" not in text
    with pytest.raises(ConfigError, match="cannot read config nosuch.yaml.*bundled config"):
        load_config("nosuch.yaml")


def test_prompts_are_read_beside_the_imported_package():
    assert prompt("lpo/task.md") == (REPO / "prompts" / "lpo" / "task.md").read_text()
    with pytest.raises(FileNotFoundError, match="prompt nosuch.md is missing"):
        prompt("nosuch.md")


# --- a non-editable install in a fresh venv --------------------------------------------------

def _venv_parent() -> Path:
    """Somewhere outside /tmp and the home dir's top: the jail never exposes /tmp (its own root
    is built there), so a venv under it could not run the sandbox's workers."""
    for parent in (os.environ.get("WB_TEST_VENV_PARENT"), "/var/tmp", Path.home() / ".cache"):
        if parent and os.path.isdir(parent) and os.access(parent, os.W_OK) \
                and not os.path.realpath(parent).startswith("/tmp"):
            return Path(parent)
    pytest.skip("no writable directory outside /tmp for the test venv (set WB_TEST_VENV_PARENT)")


def _offline_build_flags() -> list[str]:
    """Build without fetching setuptools when this interpreter's can make wheels by itself
    (setuptools >= 70.1, or the `wheel` package); otherwise pip's build isolation, which takes
    setuptools from the configured index (a local one on the project's machines)."""
    import setuptools

    version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
    if version >= (70, 1) or find_spec("wheel") is not None:
        return ["--no-build-isolation", "--no-index"]
    return []


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """(venv dir, its site-packages, an empty working directory): the repo's files copied (so no
    build output lands in the checkout) and installed with `pip install .`, no dependencies (the
    venv sees the system's site-packages for those)."""
    src = tmp_path_factory.mktemp("src") / "repo"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    cwd = tmp_path_factory.mktemp("elsewhere")
    root = Path(tempfile.mkdtemp(prefix="wb-test-venv-", dir=_venv_parent()))
    try:
        env_dir = root / "venv"
        done = _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                     str(env_dir)], cwd, 60)
        assert done.returncode == 0, done.stderr
        done = _run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                     *_offline_build_flags(), str(src)], cwd, 300)
        assert done.returncode == 0, done.stdout + done.stderr
        site = _run([str(env_dir / "bin" / "python"), "-c",
                     "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd, 60)
        yield env_dir, Path(site.stdout.strip()), cwd
    finally:
        shutil.rmtree(root, ignore_errors=True)


# run in the venv: where everything was imported from, and the LLM proposer's and the tool
# agent's prompts built for every family, read through the same code a run uses
INSPECT = r"""
import json
import evaluators, sandbox, workbench
from evaluators.families import FAMILIES, get_family
from sandbox import pool
from workbench.agent.tool_loop import first_messages
from workbench.config import load_config, resolve_config
from workbench.proposers.llm import LLMSource, task_text
from workbench.resources import bundled_configs, data_dir
from workbench.study import load_study

for name in bundled_configs():  # every shipped config loads by its name, as shipped
    load_study(resolve_config(name)) if name.endswith("study") else load_config(name)
for family in FAMILIES:
    for mode in ("rewrite", "diff"):
        cfg = load_config("quickstart", [f"family={family}", "llm.proposer=llm",
                                         "llm.model=openai/offline", f"llm.mode={mode}"])
        src = LLMSource(cfg, get_family(family))
        assert src.system.strip() and src.feedback.strip() and "{warm_start}" not in src.task
        assert src.warm_start.strip() in src.task
    cfg = load_config("quickstart", [f"family={family}", "llm.proposer=llm",
                                     "llm.model=openai/offline", "llm.loop=tools"])
    system, start = first_messages(cfg)
    assert family in system["content"] and task_text(get_family(family)) in start["content"]
print(json.dumps({"modules": [m.__file__ for m in (workbench, evaluators, sandbox)],
                  "code_dirs": [str(d) for d in pool.CODE_DIRS], "code_path": pool.CODE_PATH,
                  "prompts": str(data_dir("prompts")), "configs": str(data_dir("configs")),
                  "bundled": bundled_configs(), "families": sorted(FAMILIES)}))
"""


def test_installed_package_finds_its_code_configs_and_prompts(venv):
    env_dir, site, cwd = venv
    done = _run([str(env_dir / "bin" / "python"), "-c", INSPECT], cwd, 300)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["families"] == ["lpo", "no_features", "open", "open_ff"]  # all prompted above
    # the system's editable install of the checkout must not win over the venv's own package
    for path in [*seen["modules"], *seen["code_dirs"], seen["prompts"], seen["configs"]]:
        assert Path(path).is_relative_to(site), path
    assert seen["code_path"] == str(site)  # what the sandbox's workers import from
    assert seen["bundled"] == bundled_configs()
    # every package of the tree and every data file was installed (pyproject lists packages)
    for pkg in CODE_PACKAGES:
        for init in (REPO / pkg).rglob("__init__.py"):
            assert (site / init.relative_to(REPO)).is_file(), f"{init.parent} is not installed"
    for kind in ("prompts", "configs"):
        for f in (REPO / kind).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                assert (site / "workbench" / kind / f.relative_to(REPO / kind)).is_file(), f


def test_installed_cli_names_the_bundled_configs(venv):
    env_dir, _, cwd = venv
    workbench = str(env_dir / "bin" / "workbench")
    helped = _run([workbench, "run", "--help"], cwd, 120)  # `study --help` says the same
    assert helped.returncode == 0, helped.stderr
    assert "quickstart" in helped.stdout and "cpu/" in helped.stdout and "study" in helped.stdout
    wrong = _run([workbench, "run", "--config", "quickstrat"], cwd, 120)
    assert wrong.returncode != 0 and "quickstart" in wrong.stdout + wrong.stderr
    assert "Traceback" not in wrong.stdout + wrong.stderr


@pytest.mark.slow  # ~1 min: one sandboxed candidate, jailed workers that import JAX and compile
@pytest.mark.timeout(600)
def test_installed_quickstart_runs_by_its_bundled_name(venv):
    env_dir, _, cwd = venv
    # one candidate (the warm start), small: the point is the bundled name and the installed
    # layout (the sandbox's jailed workers import evaluators/ and sandbox/ from site-packages)
    done = _run([str(env_dir / "bin" / "workbench"), "run", "--config", "quickstart",
                 "--run-dir", "run",
                 "--set", "llm.generations=1", "--set", "llm.final_top_k=0",
                 "--set", "timesteps=2000", "--set", "seeds=1", "--set", "num_envs=2"], cwd, 540)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(finished)" in done.stdout
    with sqlite3.connect(cwd / "run" / "run.sqlite") as db:
        rows = db.execute("SELECT method, outcome, info FROM candidates").fetchall()
    assert [r[:2] for r in rows] == [("warm_start", "ok")]
    from sandbox.jail import probe

    if probe().full:  # where the jail works, the installed workers ran inside it
        isolation = json.loads(rows[0][2])["isolation"]
        assert all(isolation[role]["method"] == "namespaces" for role in ("trace", "score"))
