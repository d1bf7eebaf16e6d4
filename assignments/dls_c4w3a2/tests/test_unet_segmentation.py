"""The U-Net exercise: conv_block (encoder), upsampling_block (decoder) and unet_model.

conv_block: Conv2D(n, 3, relu, same, he_normal) twice -> Dropout(dropout_prob) when it is
> 0 -> MaxPooling2D(2x2) when max_pooling; returns (next_layer, skip_connection), the skip
connection taken before the pooling.
upsampling_block: Conv2DTranspose(n, 3, strides=2, same) -> concatenate with the skip
connection on the channel axis -> Conv2D(n, 3, relu, same, he_normal) twice.
unet_model: five conv_blocks (n x1, x2, x4, x8 with dropout 0.3, x16 with dropout 0.3 and no
pooling), four upsampling_blocks joined to the encoder's skip connections in mirror order,
Conv2D(n, 3, relu, same, he_normal), Conv2D(n_classes, 1, same).

The blocks take and return tensors, so the probes wrap them into models in the sandbox:
`conv_block_model` has two outputs, (next_layer, skip_connection); no check reads the
student's own weights, so block models come back without them (`weights=False`, never
drawn in the sandbox). One file for the three
exercises, so they share their helpers. The typical mistakes are named before the layer
graph is compared, each with its own message: the graph comparison would also catch most
of them, but in the words of a layer table, not of the U-Net.

Policy (the course's instructor's): `concatenate([contractive_input, up])` is the same
network up to the order of the next convolution's input channels and gets full marks;
`axis=-1` and Concatenate()'s default are the channel axis, as `axis=3` is; a missing
`he_normal` costs one point in each block and nothing in unet_model.
"""
import numpy as np

from grader.checks import CheckFailed
from grader.checks.architecture import expect_architecture
from grader.checks.graph import layer_graph
from grader.checks.models import expect_input_shape, expect_same_outputs
from grader.sandbox.client import SandboxError, StudentCodeError
from grader.testing import depends, exercise, hidden, points

BLOCK = "a model (the probe wraps your block's output tensors into one)"
CONV = "conv_block_model"
UP = "upsampling_block_model"
# conv_block: (input shape, n_filters, dropout_prob, max_pooling).
CONV_VISIBLE = ((16, 16, 3), 8, 0, True)
CONV_OPTIONS = ((16, 16, 3), 8, 0.3, False)  # the bottleneck's settings
CONV_HIDDEN = (((12, 20, 2), 5, 0.0, True), ((8, 6, 4), 3, 0.25, False), ((10, 14, 1), 6, 0.5, True))
# upsampling_block: (expansive shape, contractive shape, n_filters).
UP_VISIBLE = ((4, 4, 8), (8, 8, 4), 4)
UP_HIDDEN = (((3, 5, 6), (6, 10, 2), 5), ((4, 4, 3), (8, 8, 7), 2))
# unet_model: (input size, n_filters, n_classes); sizes divisible by 16 (four halvings).
# The layer graph is checked on the course's default U-Net (weights never leave the sandbox);
# outputs on a narrow one (4 filters: 0.1 M weights instead of 8.6 M, so the reference's
# weights a student kit records stay small); the hidden test changes size, filters and
# classes at once, so any of them written in fails.
UNET_DEFAULT = ((96, 128, 3), 32, 23)
UNET_NARROW = ((32, 48, 3), 4, 23)
UNET_HIDDEN = (((48, 80, 1), 5, 7),)

# The course's instructor accepts either order of concatenate's inputs (see the docstring).
MERGE_ORDER = "either"


def _kind(layer) -> str:
    return type(layer).__name__


def _of_kind(model, kind: str) -> list:
    return [layer for layer in model.layers if _kind(layer) == kind]


def _where(model, layer) -> str:
    """" (created in cell 7, line 14: `...`)" when the sandbox recorded where the student
    created the layer, else nothing."""
    try:
        location = layer_graph(model).located.get(layer.name)
    except CheckFailed:
        return ""
    return f" ({location.aside()})" if location else ""


def _hw(shape) -> tuple[int, int]:
    return int(shape[1]), int(shape[2])


def _same_graph(reference_model, found, exercise_name: str) -> None:
    expect_architecture(reference_model, found, exercise=exercise_name, merge_order=MERGE_ORDER)


def _same_outputs(reference_model, found, x, **kwargs) -> None:
    expect_same_outputs(reference_model, found, x, merge_order=MERGE_ORDER, **kwargs)


def _forced_dropout(model) -> list:
    """Dropout layers called with `training=True` written in: Keras records a call's
    keyword arguments in the model, and the rebuilt model keeps them."""
    found = []
    for layer in _of_kind(model, "Dropout"):
        for node in getattr(layer, "_inbound_nodes", []):
            kwargs = getattr(getattr(node, "arguments", None), "kwargs", None) or {}
            if kwargs.get("training") is True:
                found.append(layer)
    return found


def expect_dropout_off_at_inference(model, function: str) -> None:
    forced = _forced_dropout(model)
    if forced:
        raise CheckFailed(
            f"Your `{function}` calls Dropout with training=True written in{_where(model, forced[0])}: the dropout "
            f"then stays on when the model predicts, so each prediction drops a random share of the features and "
            f"the same image gets a different segmentation every time.",
            hint="call the layer without `training`: `Dropout(dropout_prob)(conv)`; Keras switches it on during "
                 "fit() only.",
            diagnosis="dropout_training_hard_coded")


def expect_he_normal(model, function: str) -> None:
    """Every Conv2D (not the Conv2DTranspose) starts from he_normal: ReLU layers keep about
    half of their input, and He initialization doubles the variance to make up for it."""
    import keras
    for layer in _of_kind(model, "Conv2D"):
        name = keras.initializers.serialize(layer.kernel_initializer).get("class_name", "")
        if name != "HeNormal":
            raise CheckFailed(
                f"A Conv2D of your `{function}`{_where(model, layer)} starts from the {name} initializer; the "
                f"specification asks for he_normal. Before a ReLU, He initialization keeps the activations' "
                f"variance from shrinking layer after layer, which matters in a network as deep as a U-Net.",
                hint="add `kernel_initializer='he_normal'` to each Conv2D.",
                diagnosis="initializer_not_he_normal")


# ---------------------------------------------------------------- conv_block

def expect_conv_block_outputs(model, input_shape, n_filters, dropout_prob, max_pooling) -> None:
    """The two outputs' sizes and the block's options, each mistake named."""
    size = _hw((None, *input_shape))
    pooled = (size[0] // 2, size[1] // 2)
    next_hw, skip_hw = _hw(model.outputs[0].shape), _hw(model.outputs[1].shape)
    if max_pooling and skip_hw == pooled and next_hw == pooled:
        raise CheckFailed(
            "Your conv_block's skip connection (its second output) is taken after the max-pooling: it is "
            f"{skip_hw[0]}x{skip_hw[1]}, the pooled size, where it should be the convolutions' full-size "
            f"{size[0]}x{size[1]} output. The decoder uses the skip connection to recover the detail the pooling "
            "threw away; a pooled one has already lost it, and it no longer matches the upsampled map it is "
            "joined to.",
            hint="return `next_layer, skip_connection` with `skip_connection` the convolutions' (or dropout's) "
                 "output, before MaxPooling2D.",
            diagnosis="skip_after_pooling")
    if max_pooling and next_hw == size:
        raise CheckFailed(
            f"Called with max_pooling=True, your conv_block's next_layer keeps the input's {size[0]}x{size[1]} "
            "size: it is not max-pooled, so the encoder never halves the feature map.",
            hint="when `max_pooling` is true, `next_layer = MaxPooling2D(pool_size=(2, 2))(conv)`.",
            diagnosis="pooling_missing")
    if not max_pooling and next_hw != size:
        raise CheckFailed(
            f"Called with max_pooling=False, your conv_block still shrinks next_layer to "
            f"{next_hw[0]}x{next_hw[1]}: it ignores its `max_pooling` argument. The U-Net's bottleneck (the fifth "
            "block) must not pool, or the decoder's first upsampling no longer meets the fourth block's skip "
            "connection at the same size.",
            hint="pool only when asked: `if max_pooling: next_layer = MaxPooling2D((2, 2))(conv)` and "
                 "`else: next_layer = conv`.",
            diagnosis="max_pooling_ignored")
    rates = [float(layer.rate) for layer in _of_kind(model, "Dropout")]
    active = [r for r in rates if r > 0]
    if dropout_prob > 0 and not active:
        raise CheckFailed(
            f"Called with dropout_prob={dropout_prob:g}, your conv_block has no Dropout layer: it ignores its "
            "`dropout_prob` argument, so the U-Net's two deepest blocks are not regularized.",
            hint="`if dropout_prob > 0: conv = Dropout(dropout_prob)(conv)`, after the second Conv2D.",
            diagnosis="dropout_ignored")
    if active and any(abs(r - dropout_prob) > 1e-6 for r in active):
        got = ", ".join(f"{r:g}" for r in active)
        raise CheckFailed(
            f"Called with dropout_prob={dropout_prob:g}, your conv_block drops at rate {got}: the rate is written "
            "in instead of taken from the `dropout_prob` argument.",
            hint="`Dropout(dropout_prob)`, and only when dropout_prob > 0.",
            diagnosis="dropout_rate_hard_coded")


def _conv_block(submission, args):
    return submission.probe_model(CONV, *args, weights=False, expected=BLOCK)


def _expect_conv_block(submission, reference, args, x) -> None:
    found = _conv_block(submission, args)
    expect_conv_block_outputs(found, *args)
    _same_graph(reference.conv_block_model(*args), found, "conv_block")
    expect_dropout_off_at_inference(found, "conv_block")
    _same_outputs(reference.conv_block_model(*args), found, x, training=None,
                        what="(next_layer, skip_connection)")


@points(2)
@exercise("conv_block")
def test_conv_block_returns_the_pooled_map_and_the_skip_connection(submission):
    """(next_layer, skip_connection): pooled, and full-size before the pooling."""
    expect_conv_block_outputs(_conv_block(submission, CONV_VISIBLE), *CONV_VISIBLE)


@points(2)
@exercise("conv_block")
def test_conv_block_follows_dropout_prob_and_max_pooling(submission):
    """The bottleneck's settings: dropout 0.3, no pooling."""
    expect_conv_block_outputs(_conv_block(submission, CONV_OPTIONS), *CONV_OPTIONS)


@points(3)
@exercise("conv_block")
def test_conv_block_layer_graph(submission, reference):
    for args in (CONV_VISIBLE, CONV_OPTIONS):
        _same_graph(reference.conv_block_model(*args), _conv_block(submission, args), "conv_block")


@points(1)
@exercise("conv_block")
def test_conv_block_he_normal_initializer(submission):
    expect_he_normal(_conv_block(submission, CONV_VISIBLE), "conv_block")


@points(2)
@exercise("conv_block")
@depends("test_conv_block_returns_the_pooled_map_and_the_skip_connection", "test_conv_block_layer_graph")
def test_conv_block_outputs(submission, reference):
    """Inference outputs with the reference's weights copied in: dropout must be off."""
    rng = np.random.default_rng(3)
    for args in (CONV_VISIBLE, CONV_OPTIONS):
        x = rng.normal(0.0, 1.0, size=(2, *args[0])).astype(np.float32)
        found = _conv_block(submission, args)
        expect_dropout_off_at_inference(found, "conv_block")
        _same_outputs(reference.conv_block_model(*args), found, x, training=None,
                            what="(next_layer, skip_connection)")


@points(3)
@hidden
@exercise("conv_block")
@depends("test_conv_block_layer_graph")
def test_conv_block_on_hidden_settings(submission, reference, hidden_rng):
    """Other sizes, filter counts, dropout rates and pooling choices."""
    for args in CONV_HIDDEN:
        x = hidden_rng.normal(0.0, 2.0, size=(2, *args[0])).astype(np.float32)
        _expect_conv_block(submission, reference, args, x)


# ---------------------------------------------------------------- upsampling_block

def _transpose_problem(model) -> None:
    for layer in _of_kind(model, "Conv2DTranspose"):
        activation = getattr(layer.activation, "__name__", "linear")
        if activation != "linear":
            raise CheckFailed(
                f"Your upsampling_block's Conv2DTranspose{_where(model, layer)} has activation='{activation}'; the "
                "specification's has none. The transposed convolution only upsamples: the two Conv2D after the "
                "concatenation apply the ReLU, and a ReLU here would cut off half of what is joined to the skip "
                "connection.",
                hint="`Conv2DTranspose(n_filters, 3, strides=2, padding='same')`, without `activation`.",
                diagnosis="transpose_activation")


def _concatenation_problem(model) -> None:
    if _of_kind(model, "Concatenate"):
        return
    raise CheckFailed(
        "Your upsampling_block never uses a concatenation's result: nothing of the skip connection "
        "(contractive_input) reaches the block's output, so the decoder works from the upsampled map alone and "
        "the U-Net loses the encoder's fine detail.",
        hint="feed the concatenation to the next layer: `merge = concatenate([up, contractive_input], axis=3)`, "
             "then `Conv2D(...)(merge)`.",
        diagnosis="concatenation_unused")


def _upsampling_block(submission, args, *, any_size=False):
    """The block wrapped into a model. When it does not build, a block whose transposed
    convolution keeps the map's size (strides=1) is recognised from a build where the skip
    connection has that size (returned as is with `any_size`, for checks of each layer's
    own settings); any other failure is the student's own error."""
    try:
        return submission.probe_model(UP, *args, weights=False, expected=BLOCK)
    except StudentCodeError as exc:
        expansive, contractive, n_filters = args
        try:
            same_size = submission.probe_model(UP, expansive, (*expansive[:2], contractive[2]), n_filters,
                                               weights=False, expected=BLOCK)
        except (SandboxError, CheckFailed):
            raise exc from None
        if any_size:
            return same_size
        for layer in _of_kind(same_size, "Conv2DTranspose"):
            if tuple(layer.strides) != (2, 2):
                where = f" ({exc.where}, line {exc.line})" if exc.where and exc.line else ""
                raise CheckFailed(
                    f"Your upsampling_block's Conv2DTranspose{_where(same_size, layer)} has strides="
                    f"{tuple(layer.strides)}: it does not double the map's size, so the upsampled map is "
                    f"{expansive[0]}x{expansive[1]} while the skip connection it is joined to is "
                    f"{contractive[0]}x{contractive[1]}, and the concatenation fails ({exc.type}{where}).",
                    hint="`Conv2DTranspose(n_filters, 3, strides=2, padding='same')`.",
                    diagnosis="transpose_stride") from None
        raise


def _up_inputs(rng, args, scale=1.0):
    expansive, contractive, _ = args
    return [rng.normal(0.0, scale, size=(2, *expansive)).astype(np.float32),
            rng.normal(0.0, scale, size=(2, *contractive)).astype(np.float32)]


@points(3)
@exercise("upsampling_block")
def test_upsampling_block_layer_graph(submission, reference):
    found = _upsampling_block(submission, UP_VISIBLE)
    _transpose_problem(found)
    _concatenation_problem(found)
    _same_graph(reference.upsampling_block_model(*UP_VISIBLE), found, "upsampling_block")


@points(1)
@exercise("upsampling_block")
def test_upsampling_block_he_normal_initializer(submission):
    expect_he_normal(_upsampling_block(submission, UP_VISIBLE, any_size=True), "upsampling_block")


@points(2)
@exercise("upsampling_block")
@depends("test_upsampling_block_layer_graph")
def test_upsampling_block_outputs(submission, reference):
    x = _up_inputs(np.random.default_rng(5), UP_VISIBLE)
    _same_outputs(reference.upsampling_block_model(*UP_VISIBLE), _upsampling_block(submission, UP_VISIBLE),
                        x, training=False)


@points(2)
@hidden
@exercise("upsampling_block")
@depends("test_upsampling_block_layer_graph")
def test_upsampling_block_on_hidden_shapes(submission, reference, hidden_rng):
    for args in UP_HIDDEN:
        found = _upsampling_block(submission, args)
        _same_graph(reference.upsampling_block_model(*args), found, "upsampling_block")
        _same_outputs(reference.upsampling_block_model(*args), found, _up_inputs(hidden_rng, args, 2.0),
                            training=False)


# ---------------------------------------------------------------- unet_model

def _fed_by(call, position: int):
    return call.args[position].source if len(call.args) > position else None


def _pairing_problem(submission, args, exc: StudentCodeError) -> None:
    """A U-Net that does not build because a decoder block is joined to the wrong encoder
    block's output, named from the student's own calls: decoder call k must read encoder
    call 5 - k's skip connection (element [1]), and the previous block's output."""
    try:
        trace = submission.trace("unet_model", *args, watch=["conv_block", "upsampling_block"])
    except SandboxError:
        return
    returned = {c.number: dict(c.outputs) for c in trace.of("conv_block")}
    for call in trace.of("upsampling_block"):
        k = call.number
        wanted = 5 - k
        skip, expansive = _fed_by(call, 1), _fed_by(call, 0)
        # A conv_block returning one tensor twice (a pooled skip connection) is traced as
        # element [0]: the right call is then the pairing the student meant.
        alike = len(set(map(str, returned.get(wanted, {}).values()))) == 1
        right_skip = skip is not None and (skip.function, skip.number) == ("conv_block", wanted) and (
            skip.element == 1 or alike)
        right_up = expansive is not None and (
            (expansive.function, expansive.number) == ("conv_block", 5) if k == 1
            else (expansive.function, expansive.number) == ("upsampling_block", k - 1))
        if right_skip and right_up:
            continue
        where = f" ({exc.where}, line {exc.line})" if exc.where and exc.line else ""
        shapes = "x".join(str(d) for d in (call.args[1].shape or ())[1:3]) if len(call.args) > 1 else ""
        if not right_skip:
            fed = str(skip) if skip is not None else "something other than a conv_block's output"
            sized = f" (a {shapes} map)" if shapes else ""
            problem = (f"your `unet_model` joins upsampling_block call {k} to {fed}{sized}; it must be joined "
                       f"to conv_block call {wanted}'s skip connection, element [1]")
        else:
            fed = str(expansive) if expansive is not None else "something other than a block's output"
            before = "conv_block call 5's output" if k == 1 else f"upsampling_block call {k - 1}'s output"
            problem = f"your `unet_model` feeds upsampling_block call {k} with {fed}; it must be {before}"
        raise CheckFailed(
            f"Your U-Net does not build ({exc.type}{where}): {problem}. Each decoder block doubles the map's size "
            "and is joined to the skip connection of the encoder block of that size, in mirror order "
            "(upsampling_block calls 1-4 with conv_block calls 4, 3, 2, 1), so the concatenation meets two maps "
            "of the same height and width.",
            hint=f"join upsampling_block call {k} to conv_block call {wanted}'s skip connection: "
                 f"`upsampling_block(<previous output>, cblock{wanted}[1], ...)` in the course's names.",
            diagnosis="decoder_pairing") from None
    _block_problem(trace, exc)


def _hw_of(shape) -> tuple | None:
    return tuple(shape[1:3]) if shape is not None and len(shape) >= 3 else None


def _block_problem(trace, exc: StudentCodeError) -> None:
    """The pairing is right, yet the U-Net does not build: a block returned maps of the
    wrong size (a pooled skip connection, pooling in the bottleneck) or raised. Say which
    block, so the student fixes it first instead of their unet_model."""
    problem = ""
    for call in trace.of("conv_block"):
        given = _hw_of(call.args[0].shape) if call.args else None
        returned = {element: _hw_of(shape) for element, shape in call.outputs}
        if given is None:
            continue
        if call.number < 5 and returned.get(1) not in (None, given):
            problem = (f"conv_block call {call.number} returns a {'x'.join(map(str, returned[1]))} skip connection for "
                       f"a {'x'.join(map(str, given))} input: the skip connection is taken after the pooling")
            break
        if call.number == 5 and returned.get(0) not in (None, given):
            problem = ("conv_block call 5 (max_pooling=False, the bottleneck) still pools its output: conv_block "
                       "ignores its `max_pooling` argument")
            break
    if not problem:
        raised = [c for c in trace.of("upsampling_block") if c.raised]
        if not raised:
            return
        problem = f"the error is raised inside upsampling_block call {raised[0].number}"
        function = "upsampling_block"
    else:
        function = "conv_block"
    where = f" ({exc.where}, line {exc.line})" if exc.where and exc.line else ""
    raise CheckFailed(
        f"Your U-Net does not build ({exc.type}{where}): {problem}. Your unet_model joins the blocks as the "
        f"specification does; the problem is in `{function}`, whose own tests say what to change.",
        hint=f"fix `{function}` first: the U-Net is built from it.", diagnosis="block_breaks_unet") from None


def _unet(submission, args):
    try:
        return submission.model("unet_model", *args, weights=False)
    except StudentCodeError as exc:
        _pairing_problem(submission, args, exc)
        raise


def expect_final_layer(model, n_classes: int, *, hidden_settings: bool = False) -> None:
    last = model.layers[-1]
    where = _where(model, last)
    if _kind(last) != "Conv2D":
        return  # the layer graph check names what is there instead
    if tuple(last.kernel_size) != (1, 1):
        raise CheckFailed(
            f"Your U-Net's last Conv2D{where} has a {last.kernel_size[0]}x{last.kernel_size[1]} kernel; the "
            "specification's is 1x1: after the 3x3 convolution, the last layer only turns each pixel's features "
            "into one score per class.",
            hint="`Conv2D(n_classes, 1, padding='same')`.", diagnosis="final_kernel_size")
    activation = getattr(last.activation, "__name__", "linear")
    if activation != "linear":
        raise CheckFailed(
            f"Your U-Net's last Conv2D{where} has activation='{activation}'; the specification's has none: the "
            "model returns logits, which the course's loss, SparseCategoricalCrossentropy(from_logits=True), "
            f"turns into probabilities itself. With a {activation} in front it would apply it twice.",
            hint="`Conv2D(n_classes, 1, padding='same')`, without `activation`.", diagnosis="final_activation")
    if int(last.filters) != n_classes:
        told = "Asked for another number of classes, y" if hidden_settings else "Y"
        asked = "" if hidden_settings else f" ({n_classes})"
        raise CheckFailed(
            f"{told}our U-Net's last Conv2D{where} has {last.filters} filters, not n_classes{asked}: "
            "the model must give one score per class and pixel, for whatever number of classes it is built for.",
            hint="`Conv2D(n_classes, 1, padding='same')`: use the argument, not a number.",
            diagnosis="final_classes")


def expect_filters_follow(model, n_filters: int) -> None:
    """The first Conv2D has n_filters filters, so the counts are not written in (otherwise
    the weight transplant would fail on shapes, in Keras' words)."""
    convs = _of_kind(model, "Conv2D")
    if convs and int(convs[0].filters) != n_filters:
        raise CheckFailed(
            f"Asked for another n_filters, your U-Net's first Conv2D{_where(model, convs[0])} still has "
            f"{convs[0].filters} filters: the filter counts are written in instead of computed from `n_filters` "
            "(n_filters, n_filters * 2, ... n_filters * 16), so the model only has the size it was written for.",
            hint="pass `n_filters * k` to each block, e.g. `conv_block(cblock1[0], n_filters * 2)`.",
            diagnosis="filters_hard_coded")


@points(4)
@exercise("unet_model")
def test_unet_model_layer_graph(submission, reference):
    """The default U-Net (96x128 images, 32 filters, 23 classes): final layer first, then
    the whole graph."""
    found = _unet(submission, UNET_DEFAULT)
    expect_final_layer(found, UNET_DEFAULT[2])
    _same_graph(reference.unet_model(*UNET_DEFAULT), found, "unet_model")


@points(2)
@exercise("unet_model")
@depends("test_unet_model_layer_graph")
def test_unet_model_outputs(submission, reference):
    x = np.random.default_rng(7).normal(0.0, 1.0, size=(2, *UNET_NARROW[0])).astype(np.float32)
    found = _unet(submission, UNET_NARROW)
    expect_filters_follow(found, UNET_NARROW[1])
    expect_dropout_off_at_inference(found, "conv_block")
    _same_outputs(reference.unet_model(*UNET_NARROW), found, x, training=None, what="logits",
                        rtol=1e-4, atol=1e-5)


@points(3)
@hidden
@exercise("unet_model")
@depends("test_unet_model_layer_graph")
def test_unet_model_on_hidden_settings(submission, reference, hidden_rng):
    """Other image sizes, filter counts and class counts: nothing written in."""
    for args in UNET_HIDDEN:
        found = _unet(submission, args)
        expect_input_shape(found, args[0], function="unet_model", usual=UNET_DEFAULT[0])
        expect_filters_follow(found, args[1])
        expect_final_layer(found, args[2], hidden_settings=True)
        expect_dropout_off_at_inference(found, "conv_block")
        expected = reference.unet_model(*args)
        _same_graph(expected, found, "unet_model")
        x = hidden_rng.normal(0.0, 1.0, size=(2, *args[0])).astype(np.float32)
        _same_outputs(expected, found, x, training=None, what="logits", rtol=1e-4, atol=1e-5)
