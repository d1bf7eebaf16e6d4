"""The one error class-grading commands report as a usage problem (exit 2), whichever part
of the results folder (gradebook, roster, overrides, exports) found it."""


class GradebookError(Exception):
    """The results folder, roster or request cannot be used as asked; the message says how
    to fix it."""
