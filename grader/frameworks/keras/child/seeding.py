"""Seeding Keras and TensorFlow in the sandbox child before each call, cheaply.

Only the Keras versions already imported are seeded: importing Keras 3 here in a tf_keras
worker cost 0.43 s of CPU in every child, for a module most Keras 2 era notebooks never
touch; TensorFlow is never imported just to seed it.
"""
from __future__ import annotations

import contextlib
import sys


class _KernelCache:
    """When reseeding must empty TensorFlow's kernel cache.

    `tf.random.set_seed` empties it so that a stateful random op (`tf.random.uniform`,
    tf_keras' initializers) starts its sequence again: its kernel, kept in that cache,
    holds how far it has drawn. Emptying it also throws away every other kernel, and each
    is instantiated again in the next call (about 50 ms when a conv_bn model is built
    again). Every stateful random op TensorFlow's Python API makes asks `get_seed` for its
    seeds first, so the cache is emptied only when `get_seed` was asked since it last was:
    a call sees exactly the random state a fresh child would, either way.
    """

    def __init__(self) -> None:
        self.drawn = True  # until watching starts, assume the worst
        self.watching = False

    def watch(self) -> None:
        """Before any student code: note every request for a random op's seeds."""
        module = sys.modules.get("tensorflow.python.framework.random_seed")
        original = getattr(module, "get_seed", None)
        if original is None or self.watching:
            return

        def get_seed(*args, **kwargs):
            self.drawn = True
            return original(*args, **kwargs)

        module.get_seed = get_seed
        self.watching, self.drawn = True, False

    @contextlib.contextmanager
    def kept_unless_needed(self):
        """Reseed inside: TensorFlow's kernel cache survives unless a random op drew."""
        context = sys.modules.get("tensorflow.python.eager.context")
        ctx = getattr(context, "_context", None) if context is not None else None
        handle = getattr(ctx, "_context_handle", None)
        if self.drawn or not self.watching or handle is None:
            self.drawn = not self.watching
            yield
            return
        ctx._context_handle = None  # tf.random.set_seed empties the cache only with a handle
        try:
            yield
        finally:
            ctx._context_handle = handle


_KERNELS = _KernelCache()


def watch() -> None:
    _KERNELS.watch()


def seed(value: int) -> None:
    seeded = False
    with _KERNELS.kept_unless_needed():
        for name in ("keras", "tf_keras"):
            module = sys.modules.get(name)
            try:
                module.utils.set_random_seed(value)
                seeded = True
            except Exception:  # noqa: BLE001 - absent, or a Keras that exposes it elsewhere
                pass
        tf = sys.modules.get("tensorflow")
        if not seeded and tf is not None:
            try:
                tf.random.set_seed(value)
            except Exception:  # noqa: BLE001 - seeding is best effort
                pass
