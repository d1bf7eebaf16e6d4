"""grader: a pytest-style autograder for deep-learning notebook assignments.

Data flows one way: notebook -> sandbox -> checks -> results -> render.
"""
__version__ = "0.1.0"


def check(exercise: str | None = None, **kwargs):
    """Self-check one exercise (every one when None) from inside the notebook (see grader.kit.selfcheck)."""
    from grader.kit.selfcheck import check as _check
    return _check(exercise, **kwargs)


__all__ = ["check", "__version__"]
