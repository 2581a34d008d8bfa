"""The jail's filesystem and credentials, built by its init (PID 1 of the new namespaces).

A tmpfs at STAGING_ROOT receives exactly the binds the caller's spec names, each at its own
host path, plus a fresh /proc, a minimal /dev and a private /tmp; the init pivots into it,
detaches the old root, and drops every capability.  Standard library only (see jail_kernel).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from dataclasses import dataclass
from typing import Any

from sandbox.jail_kernel import (
    JAIL_SECUREBITS, KEYCTL_JOIN_SESSION_KEYRING, LOCKED_STATVFS_FLAGS, MNT_DETACH, MS_BIND,
    MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT,
    PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS,
    PR_SET_SECUREBITS, JailError, capset_empty, check, is_within, libc, mount, pivot_root, prctl,
    syscall_nr, umount2, write_proc)

# --- the jail's layout -----------------------------------------------------------------------
STAGING_ROOT = "/tmp"  # where the new root's tmpfs is built; covered (in the jail's mount ns only)
ROOT_TMPFS = "mode=0755,size=1m"
DEV_TMPFS = "mode=0755,size=64k"
SCRATCH_TMPFS = "mode=1777,size={mb}m"  # /tmp and /dev/shm: private, size-capped
SCRATCH_TMPFS_MB = 256
HOSTNAME = b"sandbox"
SYSTEM_READ_ONLY = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin",
                    "/etc/ld.so.cache", "/etc/localtime", "/sys/devices/system/cpu")
BASIC_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
GPU_DEVICE_GLOBS = ("nvidia*", "dri")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))
NEVER_EXPOSED_UNDER = ("/proc", "/dev", "/sys")  # the jail builds these itself


@dataclass(frozen=True)
class _Bind:
    path: str      # real path on the host = the same path inside
    mode: str      # "ro", "rw" or "dev"
    is_dir: bool
    fd: int        # O_PATH fd of the source, opened before anything was covered


def build_root(spec: dict[str, Any]) -> str:
    """A tmpfs at STAGING_ROOT holding exactly what the spec names; returns its path."""
    binds, links = _plan(spec["mounts"])
    mount(None, "/", None, MS_REC | MS_PRIVATE)   # nothing we do propagates to the host
    root = STAGING_ROOT
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, ROOT_TMPFS)
    scratch = SCRATCH_TMPFS.format(mb=int(spec.get("scratch_mb", SCRATCH_TMPFS_MB)))
    _mount_proc(root)
    _mount_tmpfs(root + "/tmp", scratch, MS_NOSUID | MS_NODEV)
    _make_dev(root, [b for b in binds if b.mode == "dev"], scratch)
    bound: list[str] = []
    for bind in sorted((b for b in binds if b.mode != "dev"), key=_depth_order):
        if not _covered(bind, bound, binds):
            _bind(root, bind, bound)
    for bind in binds:
        os.close(bind.fd)
    for where, target in links:
        _make_link(root, where, target, bound)
    _remount(root + "/dev", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    return root


def _plan(mounts: list[list[str]]) -> tuple[list[_Bind], list[tuple[str, str]]]:
    """Resolve every path on the host while it is still visible: real paths to bind (rw beats
    ro for the same path), and the symlinks met on the way (/lib64 -> usr/lib64) to recreate."""
    modes: dict[str, str] = {}
    links: dict[str, str] = {}
    for path, mode in mounts:
        lexical = os.path.abspath(path)
        real = os.path.realpath(lexical)
        if not os.path.exists(real):
            raise JailError(f"{path} does not exist")
        if modes.get(real) != "rw":
            modes[real] = mode
        link = _first_symlink(lexical)
        if link:
            links[link] = os.readlink(link)
    binds = [_Bind(p, m, os.path.isdir(p), os.open(p, os.O_PATH | os.O_CLOEXEC))
             for p, m in modes.items()]
    return binds, sorted(links.items())


def _first_symlink(path: str) -> str | None:
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/" + "/".join(parts[:i])
        if os.path.islink(prefix):
            return prefix
    return None


def _depth_order(bind: _Bind) -> tuple[int, str]:
    return bind.path.count("/"), bind.path


def _covered(bind: _Bind, bound: list[str], binds: list[_Bind]) -> bool:
    """Already visible, in the same mode, through a bound ancestor directory."""
    ancestors = [b for b in binds if b.path in bound and b.is_dir and is_within(bind.path, b.path)
                 and b.path != bind.path]
    if not ancestors:
        return False
    nearest = max(ancestors, key=lambda b: len(b.path))
    return nearest.mode == bind.mode


def _bind(root: str, bind: _Bind, bound: list[str]) -> None:
    """Bind the source (recursively) at the same path inside; read-only binds have every mount
    of their subtree remounted read-only, rw ones are only made nosuid/nodev."""
    target = root + bind.path
    _ensure(root, bind.path, bind.is_dir, bound)
    mount(f"/proc/self/fd/{bind.fd}", target, None, MS_BIND | MS_REC)
    extra = MS_NOSUID | MS_NODEV | (MS_RDONLY if bind.mode == "ro" else 0)
    for mountpoint in _mounts_under(target):
        _remount(mountpoint, extra)
    bound.append(bind.path)


def _remount(target: str, flags: int) -> None:
    """Bind-remount with `flags` added to the locked flags the mount already has."""
    mount(None, target, None, MS_REMOUNT | MS_BIND | flags | _locked_flags(target))


def _locked_flags(target: str) -> int:
    have = os.statvfs(target).f_flag
    return sum(ms for st, ms in LOCKED_STATVFS_FLAGS if have & st)


def _mounts_under(target: str) -> list[str]:
    """Mount points at or below `target` (a recursive bind brings the source's submounts)."""
    points = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = _unescape(line.split(" ")[4])
            if is_within(point, target):
                points.append(point)
    return sorted(set(points), key=len)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _ensure(root: str, path: str, is_dir: bool, bound: list[str]) -> None:
    """Create the mount point on OUR tmpfs; refuse to create anything inside a host bind."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        inner = "/" + "/".join(parts[:i])
        here = root + inner
        if os.path.islink(here):
            raise JailError(f"{inner} is a symlink inside the jail; bind real paths only")
        if os.path.lexists(here):
            continue
        if any(is_within(inner, b) for b in bound):
            raise JailError(f"{inner} is missing inside bound {path}; not creating it on the host")
        last = i == len(parts)
        if last and not is_dir:
            os.close(os.open(here, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        else:
            os.mkdir(here, 0o755)


def _make_link(root: str, where: str, target: str, bound: list[str]) -> None:
    if os.path.lexists(root + where):
        return
    _ensure(root, os.path.dirname(where), True, bound)
    os.symlink(target, root + where)


def _mount_tmpfs(target: str, options: str, flags: int) -> None:
    os.makedirs(target, 0o755, exist_ok=True)
    mount("tmpfs", target, "tmpfs", flags, options)


def _mount_proc(root: str) -> None:
    """A fresh procfs: only our PID namespace's processes.  Nested user namespaces are blocked
    (max_user_namespaces=0 in ours) before the whole of /proc is made read-only, so no sysctl,
    /proc/sysrq-trigger or /proc/<pid>/mem can be written even where inner 0 is host root."""
    os.mkdir(root + "/proc", 0o555)
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    write_proc(root + "/proc/sys/user/max_user_namespaces", "0")
    _remount(root + "/proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _make_dev(root: str, devices: list[_Bind], scratch: str) -> None:
    """A tmpfs /dev with only the named device nodes bound in, the usual links and /dev/shm."""
    dev = root + "/dev"
    _mount_tmpfs(dev, DEV_TMPFS, MS_NOSUID | MS_NOEXEC)
    for device in devices:
        _ensure(root, device.path, device.is_dir, [])
        mount(f"/proc/self/fd/{device.fd}", root + device.path, None, MS_BIND | MS_REC)
        for mountpoint in _mounts_under(root + device.path):
            _remount(mountpoint, MS_NOSUID)
    for name, target in DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    _mount_tmpfs(dev + "/shm", scratch, MS_NOSUID | MS_NODEV)


def enter_root(root: str) -> None:
    """pivot_root into the new root, detach the old one entirely, make / read-only."""
    os.chdir(root)
    pivot_root(".", ".")          # the old root is now stacked on top of "."
    umount2(".", MNT_DETACH)      # ... and gone
    os.chdir("/")
    _remount("/", MS_RDONLY | MS_NOSUID | MS_NODEV)


def sethostname() -> None:
    check(libc().sethostname(HOSTNAME, len(HOSTNAME)), "sethostname")


def new_session_keyring() -> None:
    """A fresh anonymous session keyring: the caller's kernel keys stay out of reach."""
    try:
        nr = syscall_nr("keyctl")
    except JailError:
        return
    result = libc().syscall(ctypes.c_long(nr), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None)
    if result == -1 and ctypes.get_errno() not in (errno.ENOSYS, errno.EOPNOTSUPP):
        check(result, "keyctl(JOIN_SESSION_KEYRING)")


def drop_privileges() -> None:
    """Securebits first (they need CAP_SETPCAP), then every capability set, then no_new_privs."""
    prctl(PR_SET_SECUREBITS, JAIL_SECUREBITS)
    for cap in range(_last_cap() + 1):
        prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    capset_empty()
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def _last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())
