"""The assignment's framework imported ahead of the first submission, for the front ends
and the classroom's grading processes, which must not import an adapter themselves
(`tests/test_import_boundaries.py`): they name the framework, this module knows what
importing it means (TensorFlow quietly, with the Keras the students wrote for; or torch,
and then never TensorFlow)."""
from __future__ import annotations


def quiet_env() -> None:
    """Before any framework is imported: their native start-up notices off (read once, at import)."""
    from grader.frameworks.keras.tensorflow_import import quiet_env as keras_quiet
    keras_quiet()


def preload(framework: str, keras: str = "3", *, plotting: bool = True) -> None:
    """Import the framework an assignment's models are written in (`framework` and `keras`
    as in its spec); FrameworkMissing, naming the pip line, when it is not installed."""
    if framework == "torch":
        try:
            import torch  # noqa: F401
        except ModuleNotFoundError as exc:
            if exc.name != "torch":
                raise
            from grader.frameworks.installed import FrameworkMissing, not_installed
            raise FrameworkMissing(not_installed("torch", "")) from exc
        return
    from grader.frameworks.keras.tensorflow_import import import_quietly
    import_quietly(keras, plotting=plotting)


__all__ = ["preload", "quiet_env"]
