"""What every framework adapter may raise to the grading process, kept where no adapter
has to import another: a torch module and a Keras model that came back from the sandbox
malformed are refused with the same exception, which `grader.run.submission` turns into the
student's feedback."""
from __future__ import annotations


class ModelRejected(Exception):
    """The returned model cannot be checked; `str()` is the student-facing reason."""


__all__ = ["ModelRejected"]
