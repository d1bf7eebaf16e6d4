"""Calling a Keras model on a batch, as cheaply as the same numbers allow.

An eager Keras 3 call walks every layer's Python machinery (about 9 ms for the conv_bn
models); the same graph traced once into a TensorFlow function runs in about 2 ms. Tracing
costs more than one eager call, so a model is traced only for a batch shape it has already
been called with: reference models, and rebuilt models the pool lends to submission after
submission (grader.frameworks.keras.model_pool), are called the same way by every submission, while a model
called once pays nothing extra. It is the Keras adapter's own (`grader.frameworks.keras.models`).

Why the numbers are exactly the eager ones: the traced function runs with TensorFlow's
graph optimizer (grappler) switched off, so no operations are fused or rewritten and each
one runs the kernel an eager call runs. Anything unusual goes the eager way: a model with
state outside its weights other than a seed generator's, a Keras 2 model, more than a few
shapes per model, or a traced call that fails (then the eager call gives its own error,
word for word as before).

A seed generator's state (a Dropout's) is the one thing a call writes that is kept: its new
value is read out of the call, traced or eager, and written back, so the next call draws
the next dropout mask exactly as a plain `model(x)` would. Without this a U-Net (Dropout in
its bottleneck) ran every check the slow way: weights snapshot, copied in, restored.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

MAX_TRACED = 8  # functions kept per model: each holds a graph; shapes past this run eagerly


@dataclass
class _Calls:
    """What one model has been called with, kept on the model itself."""

    index: dict[int, int]  # id(variable) -> its place in model.variables
    seeds: tuple[int, ...] = ()  # the places of the seed generators' states
    seen: set[tuple] = field(default_factory=set)
    traced: dict[tuple, Any] = field(default_factory=dict)
    eager_only: set[tuple] = field(default_factory=set)

    def slots(self, substitute: Sequence[tuple[Any, Any]]) -> tuple[int, ...] | None:
        """Which of the model's variables are substituted (None: one that is not its own)."""
        try:
            return tuple(self.index[id(variable)] for variable, _ in substitute)
        except KeyError:
            return None


def call_model(model: Any, inputs: np.ndarray, training: bool | None,
               substitute: Sequence[tuple[Any, Any]] = (), trace: bool = True) -> Any:
    """`model(inputs, training=training)`. A model `stateless()` says yes to is left exactly
    as it was: a training call's BatchNormalization statistics are dropped, not written, and
    each (variable, other variable) pair of `substitute` has the second read in place of the
    first, so the reference's weights can run in a student's model without copying them in.
    `trace=False`: the eager call, counted nowhere, for a call whose answer is kept elsewhere
    (`grader.frameworks.keras.reference_outputs`), so no function is traced for it."""
    if not stateless(model):
        if substitute:
            raise ValueError("substituted weights need a model that stateless() accepts")
        return model(inputs, training=training)
    if not trace:
        return _eager(model, inputs, training, substitute)
    calls = _calls_of(model)
    slots = calls.slots(substitute)
    key = _key(inputs, training, slots)
    if key is None or key in calls.eager_only:
        return _eager(model, inputs, training, substitute)
    function = calls.traced.get(key)
    if function is None:
        if key not in calls.seen or len(calls.traced) >= MAX_TRACED:
            calls.seen.add(key)
            return _eager(model, inputs, training, substitute)
        function = _trace(model, inputs, training, slots)
        if function is None:
            calls.eager_only.add(key)
            return _eager(model, inputs, training, substitute)
        calls.traced[key] = function
    try:
        outputs, seeds = _run_plain(function, inputs, [value for _, value in substitute])
    except Exception:  # noqa: BLE001 - the eager call says what went wrong, as it always did
        calls.eager_only.add(key)
        calls.traced.pop(key, None)
        return _eager(model, inputs, training, substitute)
    _write_seeds(model, calls, seeds)
    return outputs


def stateless(model: Any) -> bool:
    """Keras 3 models whose every variable is a weight or a seed generator's state: their
    calls can run without writing anything but the seed states (a tf_keras model, or one
    with other state, keeps the plain call)."""
    if isinstance(getattr(model, "_grader_calls", None), _Calls):
        return True
    if not type(model).__module__.startswith("keras."):
        return False
    return seeds_only_extra(model)


def seed_states(model: Any) -> int:
    """How many seed generators' states (Dropout's, a noise layer's) the model holds: a call
    of a model with one may draw random numbers."""
    try:
        return sum(1 for v in model.variables if _is_seed_state(v))
    except Exception:  # noqa: BLE001 - uninspectable: assume it draws
        return 1


def seeds_only_extra(model: Any) -> bool:
    """Whether every variable outside the model's weights is a seed generator's state."""
    try:
        weights = {id(w) for w in model.weights}
        return all(id(v) in weights or _is_seed_state(v) for v in model.variables)
    except Exception:  # noqa: BLE001 - a model we cannot inspect keeps the plain call
        return False


def _is_seed_state(variable: Any) -> bool:
    return str(getattr(variable, "name", "")) == "seed_generator_state" and not getattr(variable, "trainable", True)


def _eager(model: Any, inputs: np.ndarray, training: bool | None, substitute) -> Any:
    from keras import StatelessScope
    with StatelessScope(state_mapping=list(substitute)) as scope:
        outputs = model(inputs, training=training)
    calls = _calls_of(model)
    if calls.seeds:
        variables = model.variables
        _write_seeds(model, calls, [scope.get_current_value(variables[i]) for i in calls.seeds])
    return outputs


def _write_seeds(model: Any, calls: _Calls, values: Sequence[Any]) -> None:
    """The seed states a call moved, written back as a plain call would have left them."""
    if not calls.seeds:
        return
    variables = model.variables
    for i, value in zip(calls.seeds, values):
        if value is not None:
            variables[i].assign(value)


def _key(inputs: Any, training: bool | None, slots: tuple[int, ...] | None) -> tuple | None:
    if slots is None or not isinstance(inputs, np.ndarray) or inputs.dtype.kind not in "fiub":
        return None
    return training, inputs.shape, inputs.dtype.str, slots


def _calls_of(model: Any) -> _Calls:
    calls = getattr(model, "_grader_calls", None)
    if not isinstance(calls, _Calls):
        variables = model.variables
        calls = _Calls({id(v): i for i, v in enumerate(variables)},
                       tuple(i for i, v in enumerate(variables) if _is_seed_state(v)))
        object.__setattr__(model, "_grader_calls", calls)  # outside Keras' attribute tracking
    return calls


def _trace(model: Any, inputs: np.ndarray, training: bool | None, slots: tuple[int, ...]):
    try:
        import tensorflow as tf
        from keras import StatelessScope
        owner = weakref.ref(model)  # the model holds its functions: no cycle through them

        def forward(x, values):
            variables = owner().variables
            with StatelessScope(state_mapping=[(variables[i], v) for i, v in zip(slots, values)]) as scope:
                outputs = owner()(x, training=training)
            moved = [scope.get_current_value(variables[i]) for i in seeds]
            return outputs, [variables[i].value if m is None else m for i, m in zip(seeds, moved)]

        seeds = _calls_of(model).seeds

        variables = model.variables
        specs = [tf.TensorSpec(tuple(variables[i].shape), variables[i].dtype) for i in slots]
        spec = tf.TensorSpec(inputs.shape, tf.as_dtype(inputs.dtype))
        return tf.function(forward, autograph=False).get_concrete_function(spec, specs)
    except Exception:  # noqa: BLE001 - not traceable: eager calls only
        return None


_PLAIN: list[Any] = []  # the call options without grappler, made once


def _plain_options():
    if not _PLAIN:
        from tensorflow.core.protobuf import config_pb2
        from tensorflow.python.eager import context
        config = config_pb2.ConfigProto()  # the process's own options (soft placement...)
        config.ParseFromString(context.context().function_call_options.config_proto_serialized)
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        _PLAIN.append(context.FunctionCallOptions(config_proto=config))
    return _PLAIN[0]


def _run_plain(function: Any, inputs: np.ndarray, values: list) -> Any:
    """Run a traced function with grappler off, for this thread only, then put back
    whatever options were in force."""
    import tensorflow as tf
    from tensorflow.python.eager import context
    ctx = context.context()
    saved = ctx.function_call_options
    ctx.function_call_options = _plain_options()
    try:
        return function(tf.convert_to_tensor(inputs), [tf.convert_to_tensor(v) for v in values])
    finally:
        ctx.function_call_options = saved


__all__ = ["call_model", "stateless", "seed_states", "MAX_TRACED"]
