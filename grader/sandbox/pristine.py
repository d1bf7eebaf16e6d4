"""The interpreter as it was before any student code ran, for loading the instructor's probes.

Why: a student's notebook runs code at definition time (a class body, a decorator, a
default argument). That code could wrap `builtins.compile` and print the probes' source
into its own feedback, or replace `builtins.__import__`, a module in `sys.modules` or the
import hooks so that the probes fail to load, and every probe test would then say "the
grader's own check failed ... not your fault". So the child takes a snapshot in the worker
(builtins, when this module is imported) and just before the student's definitions run
(modules, import hooks, recursion limit); the probes are compiled with the `compile` and
`exec` captured here, loaded while that state is put back, and keep a private copy of the
original builtins for their whole life. What the student changed is theirs again at once.

If the probes still fail to load, `changes` says what the student's code changed, so the
failure can be reported as theirs rather than the instructor's.
"""
from __future__ import annotations

import builtins
import contextlib
import sys
import types
from dataclasses import dataclass, field

# Captured in the worker, before any child exists: nothing a student writes can reach these.
BUILTINS: dict = dict(builtins.__dict__)
compile_ = compile
exec_ = exec
# What `restored` calls before builtins are put back, bound here so that a replaced
# `builtins.dict` or `builtins.list` cannot stop it.
dict, list, max = dict, list, max  # noqa: A001, PLW0127
_MISSING = object()


def builtins_copy() -> dict:
    """A private copy of the original builtins, for a namespace student code never holds."""
    return dict(BUILTINS)


@dataclass
class Snapshot:
    """What the import system looked like before the student's definitions ran."""

    modules: dict = field(default_factory=dict)
    meta_path: list = field(default_factory=list)
    path_hooks: list = field(default_factory=list)
    recursion_limit: int = 1000

    @classmethod
    def now(cls) -> "Snapshot":
        return cls(dict(sys.modules), list(sys.meta_path), list(sys.path_hooks), sys.getrecursionlimit())

    def changes(self) -> list[str]:
        """What student code changed that the grader's own code relies on, in the
        student's terms; [] when nothing is known to have changed."""
        now = builtins.__dict__
        found = [f"builtins.{k}" for k, v in BUILTINS.items() if now.get(k, _MISSING) is not v]
        for name, module in self.modules.items():
            current = sys.modules.get(name, _MISSING)
            # A lazily loaded module replaces its own entry with the real module (same name):
            # that is the library's doing, not the student's.
            if current is not module and not (isinstance(current, types.ModuleType)
                                               and getattr(current, "__name__", None) == name):
                found.append(f"sys.modules[{name!r}]")
        if [id(h) for h in sys.meta_path] != [id(h) for h in self.meta_path]:
            found.append("sys.meta_path")
        if [id(h) for h in sys.path_hooks] != [id(h) for h in self.path_hooks]:
            found.append("sys.path_hooks")
        if sys.getrecursionlimit() < self.recursion_limit:
            found.append("the recursion limit")
        return found

    @contextlib.contextmanager
    def restored(self):
        """Inside, builtins, the modules, the import hooks and the recursion limit are as
        they were before the student's code; afterwards, as the student left them."""
        ours = builtins.__dict__
        theirs = dict(ours)
        modules = {k: sys.modules.get(k, _MISSING) for k, v in self.modules.items() if sys.modules.get(k) is not v}
        meta_path, path_hooks, limit = list(sys.meta_path), list(sys.path_hooks), sys.getrecursionlimit()
        _put_back(ours, BUILTINS)
        sys.modules.update({k: self.modules[k] for k in modules})
        sys.meta_path[:], sys.path_hooks[:] = self.meta_path, self.path_hooks
        sys.setrecursionlimit(max(limit, self.recursion_limit))
        try:
            yield
        finally:
            _put_back(ours, theirs)
            for k, v in modules.items():
                if v is _MISSING:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
            sys.meta_path[:], sys.path_hooks[:] = meta_path, path_hooks
            sys.setrecursionlimit(limit)


def _put_back(target: dict, source: dict) -> None:
    """Make `target` hold exactly `source`'s entries, without a moment where it is empty."""
    for key in [k for k in target if k not in source]:
        del target[key]
    target.update(source)
