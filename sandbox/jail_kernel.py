"""What the jail asks of the Linux kernel: flag and syscall numbers, thin ctypes wrappers that
raise OSError with the errno's name, and the optional Landlock ruleset.

Standard library only: the bootstrap (`sandbox/jail_boot.py`) imports this before any isolation
exists, in an interpreter started with `-I -S`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from functools import lru_cache
from typing import Sequence


class JailError(RuntimeError):
    """The jail could not be built as asked; nothing was run."""


# --- clone(2) / unshare(2) flags -------------------------------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
JAIL_NAMESPACES = (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC
                   | CLONE_NEWUTS)

# --- mount(2) / umount2(2) flags -------------------------------------------------------------
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
# statvfs f_flag bits a user namespace may not clear on a bind remount ("locked" flags).  Atime
# flags are locked too; they are preserved by passing no atime flag at all on remount.
LOCKED_STATVFS_FLAGS = ((os.ST_RDONLY, MS_RDONLY), (os.ST_NOSUID, MS_NOSUID),
                        (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC))

# --- prctl(2) --------------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7
JAIL_SECUREBITS = (SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP
                   | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED
                   | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)
LINUX_CAPABILITY_VERSION_3 = 0x20080522
KEYCTL_JOIN_SESSION_KEYRING = 1

# --- syscall numbers (the new-style ones are the same on every architecture) -----------------
SYSCALLS = {"x86_64": {"pivot_root": 155, "keyctl": 250},
            "aarch64": {"pivot_root": 41, "keyctl": 219}}
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

# --- Landlock --------------------------------------------------------------------------------
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH = 1
LL_FS_EXECUTE = 1 << 0
LL_FS_WRITE_FILE = 1 << 1
LL_FS_READ_FILE = 1 << 2
LL_FS_READ_DIR = 1 << 3
LL_FS_REMOVE_DIR = 1 << 4
LL_FS_REMOVE_FILE = 1 << 5
LL_FS_MAKE_CHAR = 1 << 6
LL_FS_MAKE_DIR = 1 << 7
LL_FS_MAKE_REG = 1 << 8
LL_FS_MAKE_SOCK = 1 << 9
LL_FS_MAKE_FIFO = 1 << 10
LL_FS_MAKE_BLOCK = 1 << 11
LL_FS_MAKE_SYM = 1 << 12
LL_FS_REFER = 1 << 13        # ABI 2
LL_FS_TRUNCATE = 1 << 14     # ABI 3
LL_FS_IOCTL_DEV = 1 << 15    # ABI 5
LL_NET_BIND_TCP = 1 << 0     # ABI 4
LL_NET_CONNECT_TCP = 1 << 1  # ABI 4
LL_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
LL_SCOPE_SIGNAL = 1 << 1                # ABI 6
LANDLOCK_ABI_USED = 6  # the newest ABI whose rights this file knows (7 only added audit flags)
LL_FS_READ = LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR
LL_FS_DEVICES = LL_FS_READ | LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV


@lru_cache(maxsize=1)
def libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    libc.syscall.restype = ctypes.c_long
    return libc


def check(result: int, what: str) -> int:
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {errno.errorcode.get(code, code)} {os.strerror(code)}")
    return result


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def unshare(flags: int) -> None:
    check(libc().unshare(flags), f"unshare({flags:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    check(libc().mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {source or ''} on {target} ({fstype or 'flags'} {flags:#x})")


def umount2(target: str, flags: int) -> None:
    check(libc().umount2(_b(target), flags), f"umount2({target})")


def prctl(option: int, arg2: int = 0) -> None:
    check(libc().prctl(option, arg2, 0, 0, 0), f"prctl({option}, {arg2})")


def syscall_nr(name: str) -> int:
    table = SYSCALLS.get(platform.machine())
    if table is None:
        raise JailError(f"no syscall table for architecture {platform.machine()}")
    return table[name]


def pivot_root(new_root: str, put_old: str) -> None:
    nr = ctypes.c_long(syscall_nr("pivot_root"))
    check(libc().syscall(nr, _b(new_root), _b(put_old)), "pivot_root")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capset_empty() -> None:
    """Effective, permitted and inheritable capability sets all emptied."""
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    check(libc().capset(ctypes.byref(header), data), "capset")


def write_proc(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where it has none (or it is disabled at boot)."""
    try:
        version = libc().syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None,
                                  ctypes.c_size_t(0), ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


# --- Landlock (optional extra layer) ---------------------------------------------------------

class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _landlock_fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= LL_FS_REFER
    if abi >= 3:
        rights |= LL_FS_TRUNCATE
    if abi >= 5:
        rights |= LL_FS_IOCTL_DEV
    return rights


def apply_landlock(abi: int, writable: Sequence[str]) -> None:
    """Independent of the mount view: read/execute anywhere, write only in the writable dirs,
    /tmp and /dev/shm, devices only under /dev; no TCP bind/connect (ABI 4); no signals or
    abstract unix sockets beyond the payload's own processes (ABI 6)."""
    fs = _landlock_fs_rights(abi)
    attr = _RulesetAttr(fs, (LL_NET_BIND_TCP | LL_NET_CONNECT_TCP) if abi >= 4 else 0,
                        (LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    lib = libc()
    ruleset = check(lib.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                                  ctypes.c_size_t(size), ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        _landlock_allow(ruleset, "/", LL_FS_READ)
        _landlock_allow(ruleset, "/dev", LL_FS_DEVICES & fs)
        for path in (*writable, "/tmp", "/dev/shm"):
            _landlock_allow(ruleset, path, fs)
        check(lib.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset),
                            ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _landlock_allow(ruleset: int, path: str, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        rule = _PathBeneathAttr(access, fd)
        check(libc().syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                               ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                               ctypes.c_uint32(0)), f"landlock_add_rule({path})")
    finally:
        os.close(fd)
