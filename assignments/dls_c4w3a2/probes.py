"""Probes for dls_c4w3a2: run in the sandbox after the student's definitions, with the
student's names (`conv_block`, `upsampling_block`, `unet_model`) in scope.

The two blocks take Keras tensors and return them, which cannot cross the sandbox
boundary; each probe wraps a block into a model, which can:

- `conv_block_model`: Input -> conv_block -> Model with two outputs, (next_layer,
  skip_connection), so the tests can tell which output is which.
- `upsampling_block_model`: two Inputs (the decoder's map, the encoder's skip connection)
  -> upsampling_block -> Model.

Arguments go by position, in the course's order: real notebooks rename nothing but drop
or change defaults (`conv_block(inputs, n_filters=32, ...)` without `inputs=None`), and a
keyword would fail on a renamed parameter where a position does not.
"""


def _keras():
    """The Keras the student's layers come from: `Input` and `Model` must be the same
    package's, or the block's layers would not accept the input tensor."""
    import keras
    return keras


def _is_tensor(value):
    return value is not None and hasattr(value, "shape") and hasattr(value, "dtype")


def _returned_pair(value):
    """conv_block must return (next_layer, skip_connection); anything else is the
    student's mistake, named in their terms rather than as Keras' complaint about
    `Model(outputs=...)` deep in the probe."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_tensor(v) for v in value):
        return list(value)
    if _is_tensor(value):
        shown = "one tensor"
    elif isinstance(value, (tuple, list)):
        shown = f"a {type(value).__name__} of {len(value)} values"
    else:
        shown = "None" if value is None else f"a {type(value).__name__}"
    raise TypeError(f"`conv_block` returned {shown} instead of the pair (next_layer, skip_connection): "
                    f"end it with `return next_layer, skip_connection`.")


def conv_block_model(input_shape, n_filters, dropout_prob, max_pooling):
    keras = _keras()
    X = keras.Input(tuple(input_shape))
    outputs = _returned_pair(conv_block(X, n_filters, dropout_prob, max_pooling))  # noqa: F821
    return keras.Model(X, outputs)


def upsampling_block_model(expansive_shape, contractive_shape, n_filters):
    keras = _keras()
    expansive = keras.Input(tuple(expansive_shape))
    contractive = keras.Input(tuple(contractive_shape))
    out = upsampling_block(expansive, contractive, n_filters)  # noqa: F821
    if not _is_tensor(out):
        shown = "None" if out is None else f"a {type(out).__name__}"
        raise TypeError(f"`upsampling_block` returned {shown} instead of the block's output tensor: "
                        f"end it with `return conv`.")
    return keras.Model([expansive, contractive], out)
