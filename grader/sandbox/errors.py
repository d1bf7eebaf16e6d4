"""What can go wrong while grading in the sandbox, as values whose `str()` a student reads.

Shared by the worker client and the sessions; every trusted-side module raises these,
so a test (and the plugin) can tell the student's failures from the grader's own.
"""
from __future__ import annotations


class SandboxError(Exception):
    """Grading this submission hit a problem in the sandbox; `str()` is student-facing."""


class StudentCodeError(SandboxError):
    def __init__(self, name: str, error: dict, output: str = ""):
        self.name = name
        self.type = str(error.get("type", "Exception"))
        self.detail = str(error.get("message", ""))
        self.traceback = str(error.get("traceback", ""))
        self.not_implemented = bool(error.get("not_implemented"))
        self.output = output
        # The innermost of the student's own frames: its cell as the student finds it ("cell
        # In [7]", grader.notebook.cellnames), line 14, and the definition that cell's code was
        # compiled for ("identity_block"; "" for a statement outside any def).
        from grader.notebook.cellnames import split_label
        self.where, self.function = split_label(str(error.get("where") or "")[:200])
        self.line = error.get("line") if type(error.get("line")) is int else None
        self.via_probe = False  # raised while an instructor's probe was calling the student's code
        if self.not_implemented:
            text = f"`{name}` is not implemented yet (it raises NotImplementedError)."
        else:
            text = f"`{name}` raised {self.type}: {self.detail}".rstrip(": ")
        super().__init__(text)


class MissingFunction(SandboxError):
    pass


class SandboxTimeout(SandboxError):
    pass


class SandboxCrashed(SandboxError):
    pass


class ReplyRejected(SandboxError):
    pass


class IsolationUnavailable(SandboxError):
    pass


class WorkerFailed(SandboxError):
    """The sandbox itself could not be started or restarted: the grader's problem, not the student's."""


class ProbeError(Exception):
    """The assignment's probe code is broken or names no such probe: the instructor's problem.

    Deliberately not a SandboxError, so a test that hits it reports a grader error, never
    a student's mistake."""


class ProbeBlocked(SandboxError):
    """The student's code stopped the assignment's probes from loading (it changed what
    they rely on at definition time, or a function of theirs raised while they loaded):
    the student's to fix, said in their terms."""
