"""Feedback points at the student's own code: the sandbox child records where each Keras
layer was created (cell, line, source line), the locations travel with the model as
bounded data, and the checks name layers by them instead of Keras' internal names."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

from grader.checks import CheckFailed  # noqa: E402
from grader.checks.architecture import expect_bn_after_conv, layer_graph  # noqa: E402
import grader.frameworks.keras.child as keras_side  # noqa: E402 - reads models as the grading process does
from grader.frameworks.keras.child import provenance  # noqa: E402
from grader.sandbox import protocol  # noqa: E402

from conftest import REPO, SAMPLES  # noqa: E402

BLOCK = textwrap.dedent("""\
    from keras import layers as L
    def build():
        x_in = keras.Input((8, 8, 3))
        x = L.Conv2D(4, 3, padding="same")(x_in)
        x = L.ReLU()(x)
        return keras.Model(x_in, L.BatchNormalization()(L.Conv2D(4, 1)(x)))
    """)


@pytest.fixture
def recorder():
    """The recorder as the child installs it, on this process's Keras, undone after."""
    layer_cls = keras.layers.Layer
    original = layer_cls.__dict__["__init__"]
    provenance.install({"cell In [4] [build]"})
    yield
    layer_cls.__init__ = original
    provenance._RECORDED.clear()
    provenance._LABELS.clear()


def build_in_cell(label: str):
    namespace = {"keras": keras}
    exec(compile(BLOCK, label, "exec"), namespace)  # noqa: S102 - our own test code, as the child runs a cell
    import linecache
    linecache.cache[label] = (len(BLOCK), None, BLOCK.splitlines(True), label)
    return namespace["build"]()


def test_layers_created_in_a_student_cell_are_located(recorder):
    model = build_in_cell("cell In [4] [build]")
    entries = {name: (cell, line, src) for name, cell, line, src in provenance.locations_for(model)}
    conv = model.layers[1].name
    assert entries[conv] == ("cell In [4] [build]", 4, 'x = L.Conv2D(4, 3, padding="same")(x_in)')
    object.__setattr__(model, "_grader_locations", entries)
    with pytest.raises(CheckFailed) as info:
        expect_bn_after_conv(model, every_conv=True)
    message = info.value.message
    assert message.startswith('The Conv2D created in cell In [4], line 4 (`x = L.Conv2D(4, 3, padding="same")(x_in)`) '
                              "is followed by ReLU, not by BatchNormalization")
    assert conv not in message and "re_lu" not in message


def test_layers_created_elsewhere_get_no_location(recorder):
    model = build_in_cell("cell 9 [not the student's]")
    assert provenance.locations_for(model) == []
    graph = layer_graph(model)
    assert all(node.location is None for node in graph.nodes)


def _model_tree(locations):
    return {"$model": {"config": "{}", "weights": [], "keras": "3", "class_name": "Functional",
                       "disconnected": [], "locations": locations}}


def test_locations_are_validated_as_bounded_data():
    good = ["conv2d", "cell In [3] [happyModel]", 12, "tfl.Conv2D(32, 7),"]
    payload = protocol.decode_value(_model_tree([good, ["x", "cell 1", -4, ""], ["y", "cell\x1b[2J", 1, ""],
                                                 ["z", "cell 1", 1, "a" * 500], "junk"]), b"",
                                    side=keras_side)
    assert payload.locations == (("conv2d", "cell In [3] [happyModel]", 12, "tfl.Conv2D(32, 7),"),)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_value(_model_tree([good] * (provenance.MAX_LOCATIONS + 1)), b"", side=keras_side)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_value(_model_tree({"conv2d": good}), b"", side=keras_side)
    with pytest.raises(protocol.ProtocolError):  # a model is the framework's to read: without it, refused
        protocol.decode_value(_model_tree([good]), b"")


def test_trim_keeps_one_printable_line():
    assert provenance.trim("  X = Conv2D(F2,\t(f, f))  ") == "X = Conv2D(F2, (f, f))"
    assert provenance.trim("a\x1b[2Jb") == "a?[2Jb"
    assert len(provenance.trim("x" * 1000)) == provenance.MAX_SOURCE


@pytest.mark.parametrize(("count", "cell_name"), [
    (None, "the cell starting `def happyModel():`"),  # never run: its first line
    (12, "cell In [12]"),  # run and saved: the number Jupyter shows beside it
])
def test_a_graded_notebook_names_the_students_cell_and_line(tmp_path, worker, conv_bn, count, cell_name):
    """Through the real sandbox: happyModel without its BatchNormalization, its cell named as
    the student finds it in Jupyter (never "cell 16", which counts markdown cells too)."""
    from grader.run.grading import grade_submission
    nb = json.loads((SAMPLES / "correct.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and "def happyModel" in "".join(c["source"]))
    source = "".join(cell["source"])
    assert "tfl.BatchNormalization(axis=3),\n" in source
    cell["source"] = source.replace("        tfl.BatchNormalization(axis=3),\n", "")
    cell["execution_count"] = count
    line = cell["source"].split("\n").index("        tfl.Conv2D(32, 7, strides=1),") + 1
    path = tmp_path / "happy_without_bn.ipynb"
    path.write_text(json.dumps(nb))
    result = grade_submission(path, conv_bn, worker, only_exercises=frozenset({"happyModel"}))
    failed = [t for t in result.tests if t.exercise == "happyModel" and t.diagnosis == "bn_missing"]
    assert failed, [(t.name, t.diagnosis, t.message) for t in result.tests]
    message = failed[0].message
    assert f"right after the Conv2D created in {cell_name}, line {line} (`tfl.Conv2D(32, 7, strides=1),`)" in message, \
        message
    assert not re.search(r"conv2d|batch_normalization|re_lu", message), message


TF_KERAS_SCRIPT = textwrap.dedent("""\
    import json, linecache, sys
    import tf_keras
    from grader.frameworks.keras.child import provenance
    from grader.checks import CheckFailed
    from grader.checks.architecture import expect_bn_after_conv
    SOURCE = '''from tf_keras import layers as K
    def build():
        x = tf_keras.Input((8, 8, 3))
        y = K.Conv2D(4, 3, padding="same")(x)
        return tf_keras.Model(x, K.Activation("relu")(y))
    '''
    label = "the cell starting `from tf_keras import layers as K` [build]"
    print(json.dumps(provenance.install({label})))
    linecache.cache[label] = (len(SOURCE), None, SOURCE.splitlines(True), label)
    ns = {"tf_keras": tf_keras}
    exec(compile(SOURCE, label, "exec"), ns)
    model = ns["build"]()
    object.__setattr__(model, "_grader_locations",
                       {n: (c, l, s) for n, c, l, s in provenance.locations_for(model)})
    K = tf_keras.layers

    def block(shortcut_first):
        x_in = tf_keras.Input((8, 8, 6))
        x = K.ReLU()(K.BatchNormalization(axis=3)(K.Conv2D(4, 1, strides=2)(x_in)))
        x = K.BatchNormalization(axis=3)(K.Conv2D(4, 3, padding="same")(x))
        s = K.BatchNormalization(axis=3)(K.Conv2D(4, 1, strides=2)(x_in))
        return tf_keras.Model(x_in, K.Activation("relu")(K.Add()([s, x] if shortcut_first else [x, s])))
    from grader.checks.architecture import expect_architecture, expect_skip_connection
    expect_architecture(block(False), block(True), exercise="convolutional_block")
    expect_skip_connection(block(True), projection=True)
    try:
        expect_bn_after_conv(model, minimum=0, every_conv=True)
    except CheckFailed as err:
        print(json.dumps(err.message))
    """)


def test_tf_keras_layers_are_located_and_blocks_match_either_way():
    tf_keras = pytest.importorskip("tf_keras")
    del tf_keras
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", TF_KERAS_SCRIPT], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    patched, message = [json.loads(line) for line in done.stdout.strip().splitlines()[-2:]]
    assert "tf_keras" in patched
    assert message.startswith("The Conv2D created in the cell starting `from tf_keras import layers as K`, line 4 "
                              '(`y = K.Conv2D(4, 3, padding="same")(x)`) is followed by ReLU'), message


DECODER = textwrap.dedent("""\
    from keras import layers as L
    def block(x, skip, swap):
        up = L.Conv2DTranspose(2, 3, strides=2, padding="same")(x)
        merge = L.Concatenate()([skip, up] if swap else [up, skip])
        return L.Conv2D(2, 3, padding="same")(merge)
    def build(swap_second):
        x_in = keras.Input((8, 8, 3))
        d1 = L.MaxPooling2D(2)(x_in)
        d2 = L.MaxPooling2D(2)(d1)
        return keras.Model(x_in, block(block(d2, d1, False), x_in, swap_second))
    """)


def test_a_line_that_built_several_layers_is_named_by_its_rank_and_function():
    """A decoder block called twice: the merge of the second call is the one named, by the
    function that built it, and with no residual words (a Concatenate is no residual block)."""
    from grader.checks.architecture import expect_architecture
    label = "cell In [6] [block]"
    layer_cls = keras.layers.Layer
    original = layer_cls.__dict__["__init__"]
    provenance.install({label})
    try:
        import linecache
        linecache.cache[label] = (len(DECODER), None, DECODER.splitlines(True), label)
        namespace = {"keras": keras}
        exec(compile(DECODER, label, "exec"), namespace)  # noqa: S102 - our own test code, as the child runs a cell
        found = namespace["build"](True)
        object.__setattr__(found, "_grader_locations",
                           {n: (c, l, s) for n, c, l, s in provenance.locations_for(found)})
    finally:
        layer_cls.__init__ = original
        provenance._RECORDED.clear()
        provenance._LABELS.clear()
    namespace = {"keras": keras}
    exec(compile(DECODER, "reference", "exec"), namespace)  # noqa: S102 - our own test code
    with pytest.raises(CheckFailed) as info:
        expect_architecture(namespace["build"](False), found, exercise="decoder")
    message = info.value.message
    assert info.value.diagnosis == "wrong_input_order"
    assert message.startswith("The second of the 2 Concatenate layers that `block` creates in cell In [6], line 4 "
                              "(`merge = L.Concatenate()([skip, up] if swap else [up, skip])`) takes its inputs in "
                              "another order"), message
    assert "the model's input" in message and "residual" not in message and "shortcut" not in message
