"""Per-child confinement, applied after fork and before any student code runs.

Three layers that hold whatever isolation wraps the worker:

- kernel resource limits (memory, CPU, file size, open files, processes, no core dumps);
- no capabilities: at the `process` and `namespace` levels the grader may run as root, and
  root with capabilities could raise its own limits, trace other processes, set the clock;
- a seccomp filter refusing what a grading child never needs: new processes, exec,
  sockets, signals to anything but itself, shared memory (which no data limit counts),
  io_uring (whose operations bypass seccomp), tracing, mounts, namespaces, clocks.
  Threads stay allowed because TensorFlow needs them.

Everything here is best effort and reports what it could not do rather than raising: a
grader that refuses to run on a kernel without some feature helps nobody, and the
result names the isolation it actually had.
"""
from __future__ import annotations

import ctypes
import errno
import os
import resource

DEFAULT_LIMITS = {
    # Data segment, not address space: TensorFlow reserves gigabytes of virtual memory
    # for thread stacks, so RLIMIT_AS fails honest work while RLIMIT_DATA tracks real
    # allocations (a fresh child already holds about 260 MB, a small model about 420 MB).
    "data_bytes": 2 * 1024 ** 3,
    "cpu_seconds": 120,
    "file_bytes": 16 * 1024 ** 2,
    "open_files": 256,
    # Threads count too. Root is exempt from this limit outside a user namespace; the
    # seccomp filter is what stops process creation everywhere.
    "processes": 64,
}

# /proc entries a grading child never needs, masked as container runtimes mask them (and
# a few more): a sandbox's fresh /proc shows them all, and the child is uid 0 under
# bubblewrap run by root. sysrq-trigger reboots or crashes the host with one write where
# the kernel allows it; the rest leak kernel addresses and timers (kallsyms, timer_list,
# kcore), other users' keys, or raw memory and hardware. Files get a device node they
# cannot open (a nodev bind of /dev/null); directories an empty read-only tmpfs.
PROC_MASKED_FILES = (
    "sysrq-trigger", "kcore", "keys", "key-users", "timer_list", "timer_stats", "sched_debug",
    "latency_stats", "interrupts", "kallsyms", "kmsg", "kpagecount", "kpageflags", "kpagecgroup",
    "vmallocinfo", "slabinfo", "config.gz", "iomem", "ioports", "modules", "softirqs",
)
PROC_MASKED_DIRS = ("acpi", "asound", "scsi", "bus", "fs", "irq", "driver", "tty", "sysvipc")


def proc_masks(proc: str = "/proc") -> tuple[list[str], list[str]]:
    """The masked files and directories that exist under `proc` on this kernel: a mount
    over a path that does not exist would fail, and one that does not exist needs none."""
    files = [f"{proc}/{n}" for n in PROC_MASKED_FILES if os.path.isfile(f"{proc}/{n}")]
    dirs = [f"{proc}/{n}" for n in PROC_MASKED_DIRS if os.path.isdir(f"{proc}/{n}")]
    return files, dirs


CLONE_THREAD = 0x00010000
MAP_SHARED = 0x01  # MAP_SHARED_VALIDATE (0x03) has this bit too

# Refused outright with EPERM. Grouped by why a grading child never needs them.
DENIED = (
    # new processes and programs (clone without CLONE_THREAD is handled separately)
    "fork", "vfork", "execve", "execveat",
    # network and local sockets
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    # io_uring runs opens, sockets and more without passing through this filter
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # memory that RLIMIT_DATA does not count (shared mappings are refused in mmap below)
    "memfd_create", "memfd_secret", "shmget", "shmat", "shmctl", "shmdt",
    "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semctl",
    "mq_open", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr", "mq_unlink",
    "userfaultfd",
    # other processes: tracing, reading or writing their memory, their file descriptors
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp",
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "tkill",
    # leaving the process group the timeout kills, or the namespaces around it
    "setsid", "setpgid", "unshare", "setns", "chroot", "pivot_root",
    # limits and scheduling
    "setrlimit", "setpriority", "sched_setscheduler", "sched_setparam", "sched_setattr",
    # the machine itself
    "mount", "umount2", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "reboot", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "sethostname", "setdomainname", "iopl", "ioperm", "syslog", "acct", "quotactl",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init", "vhangup", "bpf",
    "perf_event_open", "keyctl", "add_key", "request_key", "lookup_dcookie", "uselib",
)


def apply_limits(limits: dict) -> None:
    merged = {**DEFAULT_LIMITS, **{k: v for k, v in limits.items() if v is not None and k in DEFAULT_LIMITS}}
    cpu = int(merged["cpu_seconds"])
    pairs = [
        (resource.RLIMIT_DATA, merged["data_bytes"], merged["data_bytes"]),
        # SIGXCPU at the soft limit gives a clear message; SIGKILL a second later if ignored.
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, merged["file_bytes"], merged["file_bytes"]),
        (resource.RLIMIT_NOFILE, merged["open_files"], merged["open_files"]),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_MSGQUEUE, 0, 0),
        (resource.RLIMIT_MEMLOCK, 0, 0),
    ]
    for which, soft, hard in pairs:
        _, old_hard = resource.getrlimit(which)
        soft, hard = int(soft), int(hard)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(which, (soft, hard))
    try:
        nproc = int(merged["processes"])
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    except (ValueError, OSError):
        pass


# ---------------------------------------------------------------- capabilities

_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
# NOROOT, NO_SETUID_FIXUP and KEEP_CAPS, each locked: uid 0 alone never brings capabilities back.
_SECUREBITS = 0x01 | 0x02 | 0x04 | 0x08 | 0x20
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_privileges() -> str:
    """Give up every capability for good; returns "ok" or what failed.

    Under bubblewrap there are none left to drop. At the lower levels the grader's user
    may be root, and a root child could otherwise raise its own limits or reach into the
    memory of processes that made themselves non-dumpable (the worker does).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:
        return f"no libc ({exc})"
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.prctl(_PR_SET_SECUREBITS, _SECUREBITS, 0, 0, 0)  # needs CAP_SETPCAP: fails harmlessly without
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability this kernel knows
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    problems = []
    if libc.capset(ctypes.byref(header), data) != 0:
        problems.append(f"capset: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        problems.append(f"no_new_privs: {os.strerror(ctypes.get_errno())}")
    return "ok" if not problems else "; ".join(problems)


_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV = 0x1, 0x2, 0x4
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000


def shield_sysctls() -> str:
    """Make /proc/sys read-only for this child, in a mount namespace of its own.

    Dropping capabilities is not enough for a child running as uid 0: most sysctls are
    plain files owned by root, so the owner's write bit would let it retune the machine.
    Bubblewrap mounts /proc/sys read-only itself; at the lower levels this does, where the
    child still holds CAP_SYS_ADMIN (it fails harmlessly where it does not). The other
    sensitive /proc entries (PROC_MASKED_FILES, PROC_MASKED_DIRS) are masked here too.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
        if libc.unshare(_CLONE_NEWNS) != 0:
            return f"unshare: {os.strerror(ctypes.get_errno())}"
        steps = [(None, b"/", None, _MS_REC | _MS_PRIVATE),  # nothing mounted here leaks back out
                 (b"/proc/sys", b"/proc/sys", None, _MS_BIND),
                 (None, b"/proc/sys", None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY)]
        files, dirs = proc_masks()
        for path in files:  # nodev: the /dev/null placed there cannot even be opened
            steps += [(b"/dev/null", path.encode(), None, _MS_BIND),
                      (None, path.encode(), None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NODEV | _MS_NOSUID)]
        steps += [(b"tmpfs", path.encode(), b"tmpfs", _MS_RDONLY | _MS_NODEV | _MS_NOSUID) for path in dirs]
        for source, target, fstype, flags in steps:
            if libc.mount(source, target, fstype, flags, None) != 0:
                return f"mount {target.decode()}: {os.strerror(ctypes.get_errno())}"
    except (OSError, AttributeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


# ---------------------------------------------------------------- seccomp

def apply_seccomp() -> str:
    """Install the filter; returns "on", or why it is off (shown as the isolation level)."""
    try:
        import pyseccomp as sc
    except Exception as exc:  # noqa: BLE001 - missing library: report it, do not crash
        return f"off ({type(exc).__name__})"
    me = os.getpid()
    try:
        f = sc.SyscallFilter(defaction=sc.ALLOW)
        deny = sc.ERRNO(errno.EPERM)
        for name in DENIED:
            _add(sc, f, deny, name)
        # clone without CLONE_THREAD makes a process; with it, a thread (which TF needs).
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        # clone3 hides its flags in memory a filter cannot read: make libc fall back to clone.
        _add(sc, f, sc.ERRNO(errno.ENOSYS), "clone3")
        # Signals go to this process only: not the worker, not the grader, not "everyone" (-1),
        # not a sibling. A full 64-bit comparison, so odd upper bits are refused too.
        f.add_rule(deny, "kill", sc.Arg(0, sc.NE, me))
        for name in ("tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
            _add(sc, f, deny, name, sc.Arg(0, sc.NE, me))
        # Shared mappings are memory no RLIMIT_DATA counts (anonymous, /dev/zero, tmpfs files).
        f.add_rule(deny, "mmap", sc.Arg(3, sc.MASKED_EQ, MAP_SHARED, MAP_SHARED))
        # Reading limits is fine; setting them is not (root could raise its own).
        _add(sc, f, deny, "prlimit64", sc.Arg(2, sc.NE, 0))
        f.load()
    except Exception as exc:  # noqa: BLE001
        return f"off ({type(exc).__name__}: {exc})"
    return "on"


def _add(sc, f, action, name: str, *args) -> None:
    try:
        f.add_rule(action, name, *args)
    except Exception:  # noqa: BLE001 - a syscall this architecture or libseccomp does not have
        pass
