"""Import TensorFlow in the grading process without its start-up chatter.

TensorFlow 2.21 writes oneDNN/CUDA notices to file descriptor 2 from C++ before Python's
logging exists, ignoring TF_CPP_MIN_LOG_LEVEL for some of them. A grader's stderr is its
progress and error channel, so those lines are dropped for the import only.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager


@contextmanager
def _fd2_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_env() -> None:
    """Must run before TensorFlow is imported: the level is read once, at import."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"


# A grader installed without the `keras` (or `keras2`) extra: said as the pip line to run,
# not as a ModuleNotFoundError (see grader.frameworks.installed).
_FRAMEWORK_MODULES = ("tensorflow", "keras", "tf_keras")


def import_quietly(keras: str = "3", *, plotting: bool = True) -> None:
    """Import TensorFlow and the requested Keras ("3" or "2" = tf_keras) once, silently.

    `plotting=False` is for a process that draws nothing (a grading process): importing
    TensorFlow imports Keras 3, whose image-gallery helpers import matplotlib.pyplot, about
    0.4 s of CPU (0.7 s wall) that nothing uses. Keras guards that import (matplotlib is
    not one of its dependencies), so matplotlib is hidden for the length of the import,
    as if it were not installed; importing it afterwards works as usual.

    Without TensorFlow (or tf_keras for "2") it raises FrameworkMissing, whose message is
    the pip line that installs it."""
    quiet_env()
    if "tensorflow" in sys.modules and (keras != "2" or "tf_keras" in sys.modules):
        return
    hidden = not plotting and "matplotlib" not in sys.modules
    if hidden:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]  # import fails with ImportError
    try:
        with _fd2_silenced():
            import tensorflow  # noqa: F401
            if keras == "2":
                import tf_keras  # noqa: F401
            else:
                import keras as _keras  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name not in _FRAMEWORK_MODULES:
            raise  # one of TensorFlow's own dependencies: a broken install, not a missing extra
        from grader.frameworks.installed import FrameworkMissing, not_installed
        raise FrameworkMissing(not_installed("keras", keras)) from exc
    finally:
        if hidden and "matplotlib" in sys.modules and sys.modules["matplotlib"] is None:
            del sys.modules["matplotlib"]
