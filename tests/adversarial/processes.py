"""Which sandbox processes exist, read from /proc (no psutil): to prove none is left behind.

Other engineers may run their own graders on the same machine at the same time, so the
checks look only at descendants of a given process, or at orphans started after a given
moment, never at every sandbox process on the machine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

SANDBOX_WORDS = ("grader_sandbox", "grader.sandbox")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    start: int  # clock ticks after boot
    cmdline: str

    @property
    def sandbox(self) -> bool:
        return any(word in self.cmdline for word in SANDBOX_WORDS)


def snapshot() -> dict[int, Proc]:
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
        if fields[0] == "Z":  # a zombie is already dead, only not yet reaped
            continue
        procs[int(entry)] = Proc(int(entry), int(fields[1]), int(fields[19]), cmdline.strip())
    return procs


def descendants(root: int, procs: dict[int, Proc] | None = None) -> list[Proc]:
    procs = procs if procs is not None else snapshot()
    children: dict[int, list[Proc]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def now_ticks() -> int:
    with open("/proc/self/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[19])


def orphans_since(ticks: int, signature: str) -> list[Proc]:
    """Sandbox processes that started after `ticks` and lost their parent (re-parented to init).

    `signature` (a string in the command line or environment, e.g. the limits the test's
    worker was given) tells ours from those of other graders running on the machine."""
    procs = snapshot()
    return [p for p in procs.values()
            if p.sandbox and p.start >= ticks and (p.ppid == 1 or p.ppid not in procs)
            and (signature in p.cmdline or signature in _environ(p.pid))]


def _environ(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def sandbox_pythons(worker) -> list[Proc]:
    """The worker's Python process and every child it forked (they share its command line)."""
    if worker.proc is None:
        return []
    return [p for p in descendants(worker.proc.pid) if p.sandbox and "python" in p.cmdline.split()[0]]
