"""Writes confined to the child's own places, by the kernel's Landlock.

Why, on top of a private /tmp and a read-only view of every mount (private_tmp): a
path through another process's /proc/PID/root enters that process's mount namespace,
where nothing is read-only. At the `process` and `namespace` levels any process of the
grader's user that the kernel lets the child inspect (the grading process itself, say)
opened such a path onto the host's /tmp: a hidden child could leave its inputs there and
a visible child read them. Landlock judges a write by where the file really is, however
the path reached it: here a child may create, change or remove files only below its own
/tmp and /dev/shm, and write to the harmless devices (/dev/null, ...) and its own /proc
entries. Reading is not restricted (the libraries need the file system).

Best effort: a kernel without Landlock keeps the other layers, and the reason is
reported with the isolation level.
"""
from __future__ import annotations

import ctypes
import os

_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446  # the same numbers on every architecture
_CREATE_VERSION = 1 << 0
_PATH_BENEATH = 1

WRITE_FILE, REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 1, 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE = 1 << 13, 1 << 14  # from ABI 2 and 3
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _writes(abi: int) -> int:
    rights = (WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO
              | MAKE_BLOCK | MAKE_SYM)
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    return rights


def confine_writes(places: tuple[str, ...]) -> str:
    """From now on, this process (and its threads) writes only below `places` (folders),
    to the devices in DEVICES and to its own /proc entries. Needs no_new_privs (set by
    confine.drop_privileges) or CAP_SYS_ADMIN. Returns "on", or why it is off."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        abi = libc.syscall(_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_VERSION))
        if abi < 1:
            return f"off (no Landlock: {os.strerror(ctypes.get_errno())})"
        handled = _writes(abi)
        attr = _RulesetAttr(handled)
        ruleset = libc.syscall(_CREATE, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
        if ruleset < 0:
            return f"off ({os.strerror(ctypes.get_errno())})"
        try:
            rules = [(p, handled) for p in places] + [(d, WRITE_FILE | (TRUNCATE & handled)) for d in DEVICES]
            rules.append((f"/proc/{os.getpid()}", WRITE_FILE | (TRUNCATE & handled)))
            for path, access in rules:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue  # a device this system lacks: nothing to allow
                try:
                    if os.path.isdir(path) is False:
                        access &= WRITE_FILE | TRUNCATE  # rights on a file are file rights only
                    rule = _PathBeneath(access, fd)
                    if libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_PATH_BENEATH),
                                    ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                        return f"off (rule for {path}: {os.strerror(ctypes.get_errno())})"
                finally:
                    os.close(fd)
            if libc.syscall(_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
                return f"off ({os.strerror(ctypes.get_errno())})"
        finally:
            os.close(ruleset)
    except (OSError, AttributeError) as exc:
        return f"off ({type(exc).__name__}: {exc})"
    return "on"
