"""Per-child confinement, applied after fork and before any student code runs.

Two layers that hold whatever isolation wraps the worker: kernel resource limits (memory,
CPU, file size, open files, core dumps) and a seccomp filter that refuses the calls a
grading child never needs: new sockets, exec, new processes, tracing, mounts, and
signals aimed at the worker. Threads stay allowed because TensorFlow needs them.
"""
from __future__ import annotations

import errno
import os
import resource

DEFAULT_LIMITS = {
    # Data segment, not address space: TensorFlow reserves gigabytes of virtual memory
    # for thread stacks, so RLIMIT_AS fails honest work while RLIMIT_DATA tracks real
    # allocations (the import needs about 260 MB, a small model about 420 MB).
    "data_bytes": 2 * 1024 ** 3,
    "cpu_seconds": 120,
    "file_bytes": 16 * 1024 ** 2,
    "open_files": 256,
}

CLONE_THREAD = 0x00010000


def apply_limits(limits: dict) -> None:
    merged = {**DEFAULT_LIMITS, **{k: v for k, v in limits.items() if v is not None}}
    pairs = [
        (resource.RLIMIT_DATA, merged["data_bytes"]),
        (resource.RLIMIT_CPU, merged["cpu_seconds"]),
        (resource.RLIMIT_FSIZE, merged["file_bytes"]),
        (resource.RLIMIT_NOFILE, merged["open_files"]),
        (resource.RLIMIT_CORE, 0),
    ]
    for which, value in pairs:
        soft, hard = resource.getrlimit(which)
        value = int(value)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
    # Root ignores RLIMIT_NPROC; the seccomp filter below is what stops fork bombs.
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))
    except (ValueError, OSError):
        pass


def apply_seccomp() -> str:
    """Install the filter; returns "on", or why it is off (shown as the isolation level)."""
    try:
        import pyseccomp as sc
    except Exception as exc:  # noqa: BLE001 - missing library: report it, do not crash
        return f"off ({type(exc).__name__})"
    try:
        f = sc.SyscallFilter(defaction=sc.ALLOW)
        deny = sc.ERRNO(errno.EPERM)
        for name in ("socket", "connect", "bind", "listen", "accept", "accept4",
                     "execve", "execveat", "fork", "vfork", "ptrace",
                     "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root",
                     "chroot", "unshare", "setns", "setsid", "setpgid", "reboot", "kexec_load",
                     "init_module", "finit_module", "delete_module", "bpf", "perf_event_open",
                     "keyctl", "add_key", "request_key", "userfaultfd"):
            _add(sc, f, deny, name)
        # clone without CLONE_THREAD makes a process; with it, a thread (which TF needs).
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        # clone3 hides its flags in memory a filter cannot read: make libc fall back to clone.
        _add(sc, f, sc.ERRNO(errno.ENOSYS), "clone3")
        # No signal to the worker, nor to "every process" (pid -1).
        for target in (os.getppid(), -1):
            f.add_rule(deny, "kill", sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, target & 0xFFFFFFFF))
        f.load()
    except Exception as exc:  # noqa: BLE001
        return f"off ({type(exc).__name__}: {exc})"
    return "on"


def _add(sc, f, action, name: str) -> None:
    try:
        f.add_rule(action, name)
    except Exception:  # noqa: BLE001 - a syscall this architecture does not have
        pass
