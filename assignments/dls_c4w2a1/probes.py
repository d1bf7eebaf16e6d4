"""Probes for dls_c4w2a1: run in the sandbox after the student's definitions, with the
student's names (`identity_block`, `convolutional_block`, `ResNet50`) in scope.

The two blocks take a Keras tensor and return one, which cannot cross the sandbox
boundary; each probe wraps a block into a model (Input -> block -> Model), which can.
Students' notebooks come with three signatures, and each probe adapts to the one it finds:

- current: `identity_block(X, f, filters, training=True, initializer=random_uniform)`
- 2021: the same without `training` (BatchNormalization follows the call's mode)
- Keras 2 era: `identity_block(X, f, filters, stage, block)` and
  `convolutional_block(X, f, filters, stage, block, s=2)` (stage and block only name layers)

`training` is passed on only when the student's function has that parameter: None leaves
BatchNormalization's mode to the caller (`model(x, training=...)`), False asks for an
inference-mode block. A block that ignores it (BatchNormalization hard-coded to
`training=True`) keeps its hard-coded mode in the returned model, where the tests see it.
"""
import inspect as _inspect


def _keras():
    """The Keras the student's layers come from: `Input` and `Model` must be the same
    package's, or the block's layers would not accept the input tensor."""
    import keras
    return keras


def _returned(name, value, what, fix):
    """A value the wrapping cannot use is the student's mistake, named in their terms
    (Keras would otherwise complain about `Model(outputs=None)`, deep in the probe)."""
    if value is None or not (hasattr(value, "shape") and hasattr(value, "dtype") or hasattr(value, "layers")):
        shown = "None" if value is None else f"a {type(value).__name__}"
        raise TypeError(f"`{name}` returned {shown} instead of {what}: {fix}")
    return value


def _call_block(function, X, f, filters, *, training, stage_block, **extra):
    params = _inspect.signature(function).parameters
    kwargs = dict(extra)
    if "training" in params and training is not None:
        kwargs["training"] = training
    if "stage" in params:
        kwargs["stage"] = stage_block[0]
    if "block" in params:
        kwargs["block"] = stage_block[1]
    out = function(X, f, list(filters), **kwargs)
    return _returned(function.__name__, out, "the block's output tensor", "end it with `return X`.")


def identity_block_model(input_shape, f, filters, training=None):
    keras = _keras()
    X = keras.Input(tuple(input_shape))
    out = _call_block(identity_block, X, f, filters, training=training, stage_block=(2, "b"))  # noqa: F821
    return keras.Model(X, out)


def convolutional_block_model(input_shape, f, filters, s, training=None):
    keras = _keras()
    X = keras.Input(tuple(input_shape))
    out = _call_block(convolutional_block, X, f, filters, training=training, stage_block=(2, "a"),  # noqa: F821
                      s=s)
    return keras.Model(X, out)


def resnet50_model(input_shape, classes):
    params = _inspect.signature(ResNet50).parameters  # noqa: F821
    if "input_shape" in params and "classes" in params:
        model = ResNet50(input_shape=tuple(input_shape), classes=classes)  # noqa: F821
    else:
        model = ResNet50(tuple(input_shape), classes)  # noqa: F821
    return _returned("ResNet50", model, "a Model", "end it with `return model`.")
