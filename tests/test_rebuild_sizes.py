"""The size limits admit real course models and refuse memory bombs before memory is spent.

The course's Residual Networks exercise returns a ResNet50 (about 175 layers, 23.6 M
weights, 90 MiB of float32): it must cross the wire and be rebuilt under Keras 3 and
tf_keras alike. A tf_keras model cannot be built without memory, so its weight count is
checked from the declared shapes, as each variable is about to be created.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader.frameworks.keras.rebuild import MAX_LAYERS, MAX_PARAMS, ModelRejected, rebuild
import grader.frameworks.keras.child as keras_side  # noqa: E402 - encodes as the sandbox child does
from grader.sandbox import protocol

REPO = Path(__file__).resolve().parent.parent
RESNET = "ResNet50(weights=None, input_shape=(64, 64, 3), classes=6)"


# The tf_keras checks below each run a script in a fresh interpreter where tf.keras is
# tf_keras (Keras 2), all of them in ONE such interpreter, one after another: importing
# TensorFlow and tf_keras is most of each one's cost. The script that measures how much the
# process grows runs first, before anything has grown it, so its peak RSS reads as it would
# in a process of its own. Each script's last printed line (or its traceback) comes back
# under its name; a script that raises fails its own test only.
LEGACY_SCRIPTS = {
    "model_too_big": """
        import json, resource, tf_keras
        from grader.frameworks.keras.rebuild import ModelRejected, rebuild
        from grader.frameworks.keras.child.payload import ModelPayload
        L = tf_keras.layers
        config = json.loads(tf_keras.Sequential([tf_keras.Input((1024,)), L.Dense(4), L.Dense(4)]).to_json())
        for layer in config["config"]["layers"][-2:]:
            layer["config"]["units"] = 100_000
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            rebuild(ModelPayload(json.dumps(config), (), "2", "Sequential"))
            said = "accepted"
        except ModelRejected as exc:
            said = str(exc)
        print(json.dumps([said, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before]))
    """,
    "layer_output_too_big": """
        import json, tf_keras
        from grader.frameworks.keras.rebuild import ModelRejected, rebuild
        from grader.frameworks.keras.child.payload import ModelPayload
        model = tf_keras.Sequential([tf_keras.Input((8, 8, 3)), tf_keras.layers.UpSampling2D(size=(1000, 1000))])
        try:
            rebuild(ModelPayload(model.to_json(), (), "2", "Sequential"))
            print(json.dumps("accepted"))
        except ModelRejected as exc:
            print(json.dumps(str(exc)))
    """,
    "resnet50": f"""
        import json, numpy as np, tf_keras
        from grader.frameworks.keras.rebuild import rebuild
        from grader.sandbox import protocol
        import grader.frameworks.keras.child as keras_side
        model = tf_keras.applications.{RESNET}
        tree, blob = protocol.encode_value(model, limit=protocol.MAX_BLOB, side=keras_side)
        payload = protocol.decode_value(tree, blob, side=keras_side)
        assert payload.keras == "2", payload.keras
        back = rebuild(payload)
        x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
        print(json.dumps([len(model.layers), int(model.count_params()),
                          float(np.abs(back(x).numpy() - model(x).numpy()).max())]))
    """,
}

_RUNNER = """
import contextlib, io, json, sys, traceback
for name, code in json.loads(sys.stdin.read()).items():
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, name, "exec"), {"__name__": "__main__"})
        reply = [name, True, out.getvalue().strip().splitlines()[-1]]
    except BaseException:
        reply = [name, False, out.getvalue() + traceback.format_exc()]
    print("RESULT " + json.dumps(reply), flush=True)
"""


@pytest.fixture(scope="module")
def legacy_outputs() -> dict[str, tuple[bool, str]]:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    scripts = {name: textwrap.dedent(code) for name, code in LEGACY_SCRIPTS.items()}
    done = subprocess.run([sys.executable, "-c", _RUNNER], input=json.dumps(scripts), capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    replies = [json.loads(line[len("RESULT "):]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return {name: (ok, out) for name, ok, out in replies}


def _run_legacy(outputs: dict[str, tuple[bool, str]], name: str) -> str:
    """The last line script `name` printed in the tf_keras interpreter."""
    assert name in outputs, f"{name} did not run: {sorted(outputs)}"
    ok, out = outputs[name]
    assert ok, out[-3000:]
    return out


def test_a_keras3_resnet50_crosses_the_wire_and_rebuilds_bit_identically():
    import keras
    model = getattr(keras.applications, RESNET.split("(")[0])(weights=None, input_shape=(64, 64, 3), classes=6)
    assert len(model.layers) <= MAX_LAYERS and model.count_params() <= MAX_PARAMS
    tree, blob = protocol.encode_value(model, limit=protocol.MAX_BLOB, side=keras_side)  # the child's own reply limit
    assert len(blob) > 64 * 1024 ** 2  # more than the old limit, which refused it
    payload = protocol.decode_value(tree, blob, side=keras_side)
    back = rebuild(payload)
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(back(x)), np.asarray(model(x)))


def test_a_tf_keras_resnet50_rebuilds_bit_identically(legacy_outputs):
    out = _run_legacy(legacy_outputs, "resnet50")
    layers, params, difference = json.loads(out)
    assert layers > 170 and params > 23_000_000
    assert difference == 0.0


def test_a_tf_keras_model_too_big_is_refused_before_its_weights_exist(legacy_outputs):
    # 1,024 x 100,000 weights per Dense: 400 MB each if built, every declared size under the
    # per-dimension cap. Refused from the shapes; the interpreter grows by far less.
    out = _run_legacy(legacy_outputs, "model_too_big")
    said, grew_kib = json.loads(out)
    assert "weights, more than the 50,000,000" in said, said
    assert grew_kib < 200 * 1024, grew_kib


def test_a_tf_keras_layer_output_too_big_is_refused(legacy_outputs):
    out = _run_legacy(legacy_outputs, "layer_output_too_big")
    assert "values per example" in json.loads(out)


def test_a_resnet50_returned_by_a_student_is_graded_through_the_real_sandbox(worker):
    source = ("import tensorflow as tf\n\ndef f():\n"
              f"    return tf.keras.applications.{RESNET}\n")
    session = worker.session([{"source": source, "line": 1, "label": "cell 1", "kind": "def"}])
    try:
        value = session.call("f").value
    finally:
        session.close()
    model = rebuild(value) if isinstance(value, keras_side.ModelPayload) else value
    assert model.count_params() == 23_600_006
    assert model.output.shape[-1] == 6

