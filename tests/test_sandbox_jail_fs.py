"""The jail's filesystem checked from inside (see test_sandbox_isolation.py for the method):
writes outside the private dir fail, home and repo-root files are invisible, the project dirs
are read-only, and the private dir is writable at its own path."""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
from pathlib import Path

from sandbox.jail import REPO_ROOT
from tests.jail_helpers import (REPO_UNDER_TMP, isolation, jailed_results,  # noqa: F401 - fixtures
                                plain_results, private_dir)


def test_writes_outside_the_private_dir_fail(isolation, private_dir):
    tag = f"wb-jail-test-{secrets.token_hex(6)}"
    host_tmp_marker = Path("/tmp") / f"{tag}-host"
    host_tmp_marker.write_text("host")
    site = next(p for p in sys.path if p.endswith("site-packages"))
    targets = {"project_dir": REPO_ROOT / "sandbox" / tag, "repo_root": REPO_ROOT / tag,
               "usr": Path("/usr") / tag, "site_packages": Path(site) / tag,
               "root": Path("/") / tag, "etc": Path("/etc") / tag, "dev": Path("/dev") / tag}
    body = f"targets = {json.dumps({k: str(v) for k, v in targets.items()})}\n" + r"""
for name, path in targets.items():
    attempt(name, lambda: write(path, "escaped"))
attempt("proc_sysctl", lambda: write("/proc/sys/kernel/hostname"))
attempt("jail_tmp", lambda: write("/tmp/TAG-inner", "inner"))
results["sees_host_tmp"] = os.path.exists("/tmp/TAG-host")
results["tmp_listing"] = sorted(os.listdir("/tmp"))
""".replace("TAG", tag)
    try:
        inside = jailed_results(body, private_dir)
        for name in targets:
            if not (name == "repo_root" and REPO_UNDER_TMP):
                assert inside[name] in ("EROFS", "ENOENT", "EACCES", "EPERM"), (name, inside[name])
        assert inside["project_dir"] == "EROFS"
        # a checkout under /tmp (a CI clone) sits in the jail's private /tmp tmpfs, where a write
        # beside the project's mounts is a write to that tmpfs: allowed, and never the host's
        assert inside["repo_root"] == ("ok" if REPO_UNDER_TMP else "EROFS")
        assert inside["proc_sysctl"] == "EROFS"
        assert inside["jail_tmp"] == "ok"                  # a private tmpfs...
        assert not (Path("/tmp") / f"{tag}-inner").exists()  # ...that is not the host's /tmp
        assert not inside["sees_host_tmp"]
        scaffold = [REPO_ROOT.relative_to("/tmp").parts[0]] if REPO_UNDER_TMP else []
        assert inside["tmp_listing"] == sorted([private_dir.name, f"{tag}-inner", *scaffold])
        assert not any(p.exists() for p in targets.values())
    finally:
        for path in (*targets.values(), host_tmp_marker, Path("/tmp") / f"{tag}-inner"):
            path.unlink(missing_ok=True)


def test_a_secret_in_the_home_dir_is_invisible(isolation, private_dir):
    secret = Path.home() / f".wb-test-secret-{secrets.token_hex(6)}"
    secret.write_text("hunter2")
    body = f"path = {str(secret)!r}\n" + r"""
attempt("read", lambda: open(path).read())
attempt("list_home", lambda: os.path.basename(path) in os.listdir(os.path.dirname(path)))
"""
    try:
        assert plain_results(body, private_dir)["read"] == ["ok", "hunter2"]  # control
        inside = jailed_results(body, private_dir)
        assert inside["read"] in ("ENOENT", "EACCES")
        assert inside["list_home"] in ("ENOENT", "EACCES", ["ok", False])
    finally:
        secret.unlink(missing_ok=True)


def test_files_at_the_repo_root_are_invisible(isolation, private_dir):
    marker = REPO_ROOT / f".wb-test-env-{secrets.token_hex(6)}"
    marker.write_text("OPENAI_API_KEY=sk-test")
    body = f"marker = {str(marker)!r}; repo = {str(REPO_ROOT)!r}\n" + r"""
attempt("read_marker", lambda: open(marker).read())
attempt("read_dotenv", lambda: open(os.path.join(repo, ".env")).read())
attempt("list_repo", lambda: sorted(os.listdir(repo)))
"""
    try:
        assert plain_results(body, private_dir)["read_marker"][0] == "ok"  # control
        inside = jailed_results(body, private_dir)
        assert inside["read_marker"] == "ENOENT" and inside["read_dotenv"] == "ENOENT"
        assert inside["list_repo"] == ["ok", ["evaluators", "sandbox"]]
    finally:
        marker.unlink(missing_ok=True)


def test_project_dirs_are_readable_but_read_only(isolation, private_dir):
    source = REPO_ROOT / "sandbox" / "jail.py"
    body = f"path = {str(source)!r}\n" + r"""
import hashlib
attempt("read", lambda: hashlib.sha256(open(path, "rb").read()).hexdigest())
attempt("append", lambda: write(path, "# escaped\n", "a"))
attempt("create", lambda: write(os.path.join(os.path.dirname(path), "new.py")))
attempt("import", lambda: __import__("sandbox.checks").__name__)
"""
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    inside = jailed_results(body, private_dir)
    assert inside["read"] == ["ok", before]
    assert inside["append"] == "EROFS" and inside["create"] == "EROFS"
    assert inside["import"] == ["ok", "sandbox"]
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


def test_the_private_dir_is_writable_at_the_same_path(isolation, private_dir):
    inside = jailed_results(r"""
import tempfile
attempt("cwd", lambda: os.getcwd())
attempt("write", lambda: write("made-inside.txt", "hello"))
attempt("mkstemp", lambda: os.path.dirname(tempfile.mkstemp()[1]))
""", private_dir)
    assert inside["cwd"] == ["ok", str(private_dir)]
    assert inside["mkstemp"] == ["ok", str(private_dir)]
    assert (private_dir / "made-inside.txt").read_text() == "hello"
