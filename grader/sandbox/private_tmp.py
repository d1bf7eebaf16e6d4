"""Each child's own /tmp and /dev/shm, and a read-only view of everything else.

Why: the visible and the hidden child of one submission used to share the worker's /tmp.
A student's function could write the inputs it saw on a hidden test to `/tmp/seen` and a
later visible call could print them into feedback the student reads before the deadline.
Folders the worker keeps (`/tmp/.keras`, `/tmp/.cache`) survived every sweep as well.

How: after the fork and before any student code, the child enters a mount namespace of
its own (through a user namespace where it holds no capability, as under bubblewrap),
mounts fresh, size-capped tmpfs on /tmp and /dev/shm, and makes every other mount
read-only. Nothing it writes is visible to any other process, and all of it is freed by
the kernel when the child's last process ends: nothing to sweep, however deep or odd the
tree it left. /proc stays writable where it was (its /proc/sys and masked entries keep
their own read-only mounts), so the runtime behaves as before.

Best effort, like the rest of `confine`: a kernel without user namespaces gets the old
behaviour (the worker's shared /tmp, swept), and the reason is reported with the
isolation level instead of stopping grading.
"""
from __future__ import annotations

import ctypes
import os
import sys

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000
_MNT_DETACH = 0x2
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_SYS_MOUNT_SETATTR = 442  # the same number on every architecture (new syscalls share a table)
# Files and folders one child may create in its /tmp: inode exhaustion ends there.
TMP_INODES = 65536


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    return libc


def _errno_text() -> str:
    return os.strerror(ctypes.get_errno())


def _environment_roots() -> list[str]:
    """Every folder the Python environment imports from, as real paths."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.dirname(__file__))}
    # sys.path holds the worker's working folder (/tmp itself under bubblewrap): nothing is
    # imported from there, so only folders below a place count.
    roots.update(p for p in sys.path if p and os.path.isabs(p) and os.path.realpath(p) not in ("/tmp", "/dev/shm"))
    return sorted({os.path.realpath(root) for root in roots})


def environment_under(places: tuple[str, ...] = ("/tmp", "/dev/shm")) -> str:
    """A part of the Python environment that lives under a place a fresh tmpfs would hide
    (a checkout under /tmp at the `process` level), or "" when there is none."""
    for real in _environment_roots():
        for place in places:
            if real == place or real.startswith(place + "/"):
                return real
    return ""


def kept_in_tmp() -> list[str]:
    """The folders of the Python environment below /tmp (a checkout cloned there), outermost
    only: each is bound back, read-only, into the child's own /tmp, so the child still
    imports what the worker imports and nothing it writes there outlives it."""
    below = [r for r in _environment_roots() if r.startswith("/tmp/")]
    return [r for r in below if not any(r.startswith(o + "/") for o in below if o != r)]


def _own_mount_namespace(libc) -> str:
    """A mount namespace of our own: directly where we may (root with capabilities), else
    inside a user namespace mapping only our own uid and gid to themselves."""
    if libc.unshare(_CLONE_NEWNS) == 0:
        return ""
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS) != 0:
        return f"no mount namespace ({_errno_text()})"
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    except OSError as exc:
        return f"no identity in the user namespace ({exc.strerror})"
    return ""


def _set_read_only(libc, path: bytes, on: bool, recursive: bool) -> bool:
    attr = _MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0) if on else _MountAttr(0, _MOUNT_ATTR_RDONLY, 0, 0)
    return libc.syscall(_SYS_MOUNT_SETATTR, _AT_FDCWD, path, _AT_RECURSIVE if recursive else 0,
                        ctypes.byref(attr), ctypes.sizeof(attr)) == 0


def _read_only_elsewhere(libc, writable: tuple[str, ...]) -> str:
    """Every mount read-only (recursively), then the `writable` mounts (this child's own
    /tmp and /dev/shm, and /proc as it was) writable again. Should /tmp stay read-only
    (a kernel that refuses to clear the flag), everything is put back as it was: a /tmp
    the child cannot write is worse than one the rest of the system can."""
    if not _set_read_only(libc, b"/", True, True):
        return f"the rest of the file system stays writable ({_errno_text()})"
    for path in writable:
        if os.path.ismount(path):
            _set_read_only(libc, path.encode(), False, False)
    if os.statvfs("/tmp").f_flag & os.ST_RDONLY:
        _set_read_only(libc, b"/", False, True)
        return "the rest of the file system stays writable (its own /tmp could not be kept writable)"
    return ""


def _bind_back(libc, keep: list[str], fds: list[int]) -> str:
    """The environment's folders below /tmp, bound back at their own paths inside the new
    tmpfs; `_read_only_elsewhere` then makes them read-only with every other mount."""
    for root, fd in zip(keep, fds):
        os.makedirs(root, exist_ok=True)
        if libc.mount(f"/proc/self/fd/{fd}".encode(), root.encode(), None, _MS_BIND | _MS_REC, None) != 0:
            return f"{root} could not be kept visible ({_errno_text()})"
    return ""


def enter(tmp_bytes: int, shm_bytes: int) -> str:
    """Give this (single-threaded, just forked) child its own /tmp and /dev/shm; returns
    "ok", or why it could not (the child then shares the worker's, as before)."""
    hidden = environment_under(("/dev/shm",)) or ("/tmp" if "/tmp" in _environment_roots() else "")
    if hidden:
        return f"shared: the Python environment lives under {hidden}, which a private /tmp would hide"
    keep = kept_in_tmp()
    fds: list[int] = []
    try:
        libc = _libc()
        problem = _own_mount_namespace(libc)
        if problem:
            return f"shared: {problem}"
        if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
            return f"shared: mounts would propagate ({_errno_text()})"
        # Opened in this namespace before /tmp is covered: the new tmpfs hides these paths,
        # the descriptors still reach them.
        fds = [os.open(root, os.O_PATH | os.O_DIRECTORY) for root in keep]
        flags = _MS_NOSUID | _MS_NODEV
        options = f"size={int(tmp_bytes)},nr_inodes={TMP_INODES},mode=1777".encode()
        if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", flags, options) != 0:
            return f"shared: no tmpfs on /tmp ({_errno_text()})"
        problem = _bind_back(libc, keep, fds)
        if problem:
            libc.umount2(b"/tmp", _MNT_DETACH)  # the environment visible again, as before
            return f"shared: {problem}"
        own = ["/proc", "/tmp"]
        shm_problem = ""
        if os.path.isdir("/dev/shm"):
            shm = f"size={int(shm_bytes)},nr_inodes=1024,mode=1777".encode()
            if libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", flags | _MS_NOEXEC, shm) == 0:
                own.append("/dev/shm")
            else:  # the shared one then turns read-only below, like every other mount
                shm_problem = f"/dev/shm not its own ({_errno_text()})"
        read_only = _read_only_elsewhere(libc, tuple(own))
    except (OSError, AttributeError) as exc:
        return f"shared: {type(exc).__name__}: {exc}"
    finally:
        for fd in fds:
            os.close(fd)
    problems = "; ".join(p for p in (shm_problem, read_only) if p)
    return "ok" if not problems else f"private, but {problems}"
