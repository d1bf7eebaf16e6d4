"""The sandbox's promises, one by one: limits, seccomp, timeouts, captured output, the wire
format, the model allow-list, worker replacement, fork safety, determinism, isolation levels.

Attacks dressed up as submissions are in test_adversarial.py; these tests talk to the
sandbox directly (`Worker.session`, `Session.call`) or to its parts (protocol, rebuild).
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "adversarial"))

import attacks  # noqa: E402
import processes  # noqa: E402

from grader.frameworks.sandbox_side import sandbox_side  # noqa: E402
import grader.frameworks.keras.child as keras_side  # noqa: E402 - models as the sandbox child sends them
from grader.sandbox import protocol  # noqa: E402
from grader.sandbox.client import (  # noqa: E402
    IsolationUnavailable, Limits, SandboxTimeout, StudentCodeError, Worker, choose_isolation,
)

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 ** 2
LIMITS = Limits(call_timeout=20, data_bytes=1536 * MIB, cpu_seconds=50, file_bytes=3 * MIB, open_files=100,
                processes=48, max_reply_bytes=8 * MIB)


def chunks(source: str) -> list[dict]:
    return [{"source": source, "line": 1, "label": "cell 1", "kind": "def"}]


def run(worker, source: str, name: str = "f", *args, timeout: float | None = None):
    session = worker.session(chunks(source))
    try:
        return session.call(name, *args, timeout=timeout)
    finally:
        session.close()


@pytest.fixture(scope="module")
def worker():
    # Other modules' workers (e.g. the session-wide one in conftest) may be alive: only
    # this module's sandbox processes must be gone after it stops.
    before = {p.pid for p in processes.descendants(os.getpid()) if p.sandbox}
    w = Worker(framework=sandbox_side(keras="3"), limits=LIMITS, control_timeout=3).start()
    yield w
    w.stop()
    assert not [p for p in processes.descendants(os.getpid()) if p.sandbox and p.pid not in before]


# ---------------------------------------------------------------- per-child confinement

def test_child_limits_are_applied(worker):
    got = run(worker, "import resource\n\ndef f():\n"
                      "    return {name: list(resource.getrlimit(getattr(resource, name))) for name in\n"
                      "            ('RLIMIT_DATA', 'RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_NOFILE', 'RLIMIT_NPROC',\n"
                      "             'RLIMIT_CORE', 'RLIMIT_MEMLOCK')}\n").value
    assert got["RLIMIT_DATA"] == [LIMITS.data_bytes] * 2
    assert got["RLIMIT_CPU"] == [LIMITS.cpu_seconds, LIMITS.cpu_seconds + 1]  # SIGXCPU first, then SIGKILL
    assert got["RLIMIT_FSIZE"] == [LIMITS.file_bytes] * 2
    assert got["RLIMIT_NOFILE"] == [LIMITS.open_files] * 2
    assert got["RLIMIT_NPROC"] == [LIMITS.processes] * 2
    assert got["RLIMIT_CORE"] == [0, 0] and got["RLIMIT_MEMLOCK"] == [0, 0]


def test_child_has_no_capabilities_and_a_seccomp_filter(worker):
    session = worker.session(chunks("def f():\n    return [l.split() for l in open('/proc/self/status')\n"
                                    "            if l.startswith(('Cap', 'NoNewPrivs', 'Seccomp:'))]\n"))
    try:
        status = {k.rstrip(":"): v for k, v in session.call("f").value}
        assert session.seccomp == "on" and session.privileges == "ok"
    finally:
        session.close()
    assert all(int(status[k], 16) == 0 for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"


@pytest.mark.parametrize("code, what", [
    ("import socket\n    socket.socket()", "socket"),
    ("import socket\n    socket.socketpair()", "socketpair"),
    ("import os\n    os.execv('/bin/true', ['true'])", "exec"),
    ("import os\n    os.fork()", "fork"),
    ("import subprocess\n    subprocess.run(['true'])", "subprocess"),
    ("import os\n    os.setsid()", "leave the process group"),
    ("import os\n    os.kill(os.getppid(), 0)", "signal the worker"),
    ("import mmap\n    mmap.mmap(-1, 4096)", "shared memory"),
])
def test_seccomp_refuses(worker, code, what):
    with pytest.raises(StudentCodeError) as info:
        run(worker, f"def f():\n    {code}\n")
    assert info.value.type in ("PermissionError", "OSError"), (what, info.value)
    assert "refused by the grading sandbox" in str(info.value.detail), what


def test_limits_cannot_be_changed_from_inside(worker):
    """Python reports the refused prlimit64 as a ValueError; lowering is refused too (harmless)."""
    got = run(worker, "import resource\n\ndef f():\n    out = []\n"
                      "    for new in ((resource.RLIM_INFINITY,) * 2, (10, 10)):\n"
                      "        try:\n            resource.setrlimit(resource.RLIMIT_CPU, new)\n"
                      "            out.append('changed')\n"
                      "        except ValueError as exc:\n            out.append(str(exc))\n"
                      "    return out, resource.getrlimit(resource.RLIMIT_CPU)\n").value
    assert got[0] == ["not allowed to raise maximum limit"] * 2
    assert list(got[1]) == [LIMITS.cpu_seconds, LIMITS.cpu_seconds + 1]


def test_threads_are_allowed(worker):
    got = run(worker, "import threading\n\ndef f():\n    out = []\n"
                      "    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]\n"
                      "    [t.start() for t in ts]\n    [t.join() for t in ts]\n    return sorted(out)\n").value
    assert got == list(range(8))


def test_timeout_kills_the_whole_process_group(worker):
    source = ("import threading, time\n\ndef spin():\n    while True:\n        pass\n\n"
              "def f():\n    for _ in range(3):\n        threading.Thread(target=spin, daemon=True).start()\n"
              "    spin()\n")
    session = worker.session(chunks(source))
    # The limit enforced is the one asked for (not the worker's default of 20 s), and the
    # spinning threads go with the child: nothing is left running once the call returns.
    with pytest.raises(SandboxTimeout, match=r"stopped after 1\.5 s .*the time limit was reached"):
        session.call("f", timeout=1.5)
    assert not os.path.exists(f"/proc/{session.pid}") or worker.level == "full"  # pid namespaces differ
    session.close()
    assert len(processes.sandbox_pythons(worker)) == 1  # the worker alone


def test_output_is_captured_capped_and_labelled(worker, capfd):
    source = ("import os, sys\n\ndef f():\n    print('a' * 100_000)\n    sys.stderr.write('from stderr\\n')\n"
              "    os.write(2, b'from fd 2\\n')\n    return 1\n\ndef g():\n    print('second call')\n    return 2\n")
    session = worker.session(chunks(source))
    try:
        first = session.call("f")
        second = session.call("g")
    finally:
        session.close()
    assert first.output.startswith("a" * 1000) and "[... output cut at" in first.output
    assert len(first.output) < 9000
    assert second.output == "second call\n"  # each call sees only its own output
    out, err = capfd.readouterr()
    assert "aaaa" not in out and "second call" not in out and "from fd 2" not in err


def test_printing_past_the_file_limit_is_stopped_with_a_message(worker):
    with pytest.raises(StudentCodeError, match="file-size limit"):
        run(worker, "def f():\n    while True:\n        print('x' * 65536)\n")


def test_reply_over_the_cap_is_refused_and_under_it_accepted(worker):
    ok = run(worker, "import numpy as np\n\ndef f(n):\n    return np.ones(n, np.uint8)\n", "f", 4 * MIB)
    assert ok.value.shape == (4 * MIB,)
    with pytest.raises(StudentCodeError, match="too large"):
        run(worker, "import numpy as np\n\ndef f(n):\n    return np.ones(n, np.uint8)\n", "f", 9 * MIB)


def test_arguments_sent_back_are_the_arguments_or_the_reply_is_refused(worker):
    """A test unpacks what comes back (`train_after, test_after = call.args_after`): a
    student's code that reaches into the child's frame to drop one is refused, by name."""
    from grader.sandbox.client import ReplyRejected
    source = ("import sys\n\ndef f(a, b):\n    sys._getframe(1).f_locals['args'].pop()\n    return a\n\n"
              "def g(a, b):\n    return a\n")
    session = worker.session(chunks(source))
    try:
        assert session.call("g", 1, 2, return_args=True).args_after == [1, 2]
        with pytest.raises(ReplyRejected, match="running `f`.*arguments"):
            session.call("f", 1, 2, return_args=True)
    finally:
        session.close()


def test_memory_error_names_the_limit(worker):
    with pytest.raises(StudentCodeError, match="memory limit of 1536 MiB"):
        run(worker, "import numpy as np\n\ndef f():\n    return np.ones((100_000, 100_000))\n")


# ---------------------------------------------------------------- the wire format

def _pair():
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    return a, b


def test_protocol_round_trip():
    value = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": (1, 2.5, float("nan"), None, "x"),
             "c": [np.float64(1.5), np.int8(-3), np.bool_(True)], "d": np.asfortranarray(np.eye(3)),
             "e": np.arange(10)[::3], "f": np.array(["ab", "c"]), "g": np.zeros((0, 5), ">i2")}
    tree, blob = protocol.encode_value(value)
    json.dumps(tree)  # the tree is plain JSON
    back = protocol.decode_value(json.loads(json.dumps(tree)), blob)
    for key in ("a", "d", "e", "f", "g"):
        assert back[key].dtype == value[key].dtype and np.array_equal(back[key], value[key])
        assert back[key].flags.writeable
    assert back["b"][:2] == (1, 2.5) and np.isnan(back["b"][2]) and back["b"][3:] == (None, "x")
    assert back["c"] == [1.5, -3, True] and isinstance(back["c"][1], np.int8)


@pytest.mark.parametrize("table, blob, why", [
    ([["|O8", [1], 0, 8]], b"\0" * 8, "type"),  # objects would need pickle
    ([["|V8", [1], 0, 8]], b"\0" * 8, "type"),  # records
    ([["<f8", [10 ** 6, 10 ** 6], 0, 8 * 10 ** 12]], b"\0" * 8, "did not send"),  # a bomb by declaration
    ([["<f8", [2], 0, 8]], b"\0" * 16, "shape"),  # bytes and shape disagree
    ([["<f8", [-1], 0, 8]], b"\0" * 8, "shape"),
    ([["<f8", [True], 0, 8]], b"\0" * 8, "shape"),
    ([["<f8", [1], 12, 8]], b"\0" * 16, "did not send"),
    ([["<f8", [1] * 40, 0, 8]], b"\0" * 8, "shape"),
    ("not a table", b"", "malformed"),
])
def test_protocol_rejects_forged_arrays(table, blob, why):
    with pytest.raises(protocol.ProtocolError, match=why):
        protocol.decode_value({"$arrays": table, "$value": {"$array": 0}}, blob)


def test_a_received_reply_costs_its_size_once():
    """The arrays decoded from a received reply are views of the one buffer it was read
    into (writable, as any array); a table that makes two arrays share bytes is refused."""
    a, b = _pair()
    with a, b:
        tree, blob = protocol.encode_value({"x": np.arange(1000, dtype=np.float64), "y": np.ones((3, 4), np.int32)})
        protocol.send_message(a, {"value": tree}, blob)
        header, received = protocol.recv_message(b)
    back = protocol.decode_value(header["value"], received)
    raw = np.frombuffer(received, np.uint8)
    for key in ("x", "y"):
        assert np.shares_memory(back[key], raw) and back[key].flags.writeable
    assert np.array_equal(back["x"], np.arange(1000.0)) and back["y"].sum() == 12
    with pytest.raises(protocol.ProtocolError, match="overlap"):
        protocol.decode_value({"$arrays": [["<f8", [1], 0, 8], ["<f8", [1], 0, 8]],
                               "$value": [{"$array": 0}, {"$array": 1}]}, bytearray(8))


def test_the_default_reply_cap_fits_a_resnet50_and_is_well_under_the_wire_cap():
    assert 90 * MIB < Limits().max_reply_bytes <= protocol.MAX_BLOB // 2


def test_protocol_rejects_data_it_does_not_describe_and_bad_references():
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_value({"$array": 0}, b"\0" * 8)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_value({"$arrays": [], "$value": {"$array": 3}}, b"")
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_value({"$pickle": "gASV"}, b"")


@pytest.mark.parametrize("payload", [
    b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than the JSON parser's recursion
    b'{"x": ' + b"9" * 100_000 + b"}",  # an integer Python refuses to convert
    b"\xff\xfe not utf-8",
    b"[1, 2]",  # JSON, but not an object
])
def test_protocol_rejects_malformed_headers(payload):
    a, b = _pair()
    with a, b:
        a.sendall(struct.pack("!II", len(payload), 0) + payload)
        with pytest.raises(protocol.ProtocolError):
            protocol.recv_message(b)


def test_protocol_refuses_oversized_messages_before_reading_them():
    a, b = _pair()
    with a, b:
        a.sendall(struct.pack("!II", 10, 2 ** 31))
        with pytest.raises(protocol.MessageTooLarge):
            protocol.recv_message(b, max_blob=1024)
    with pytest.raises(protocol.MessageTooLarge):
        protocol.send_message(None, {"x": "y" * 100}, max_header=10)


def test_encode_refuses_objects_and_oversized_values():
    with pytest.raises(TypeError):
        protocol.encode_value(np.array([object()]))
    with pytest.raises(ValueError, match="too large"):
        protocol.encode_value([np.zeros(100), np.zeros(100)], limit=1000)


# ---------------------------------------------------------------- the model allow-list

@pytest.fixture(scope="module")
def keras():
    import keras
    return keras


def _payload(model):
    return keras_side.ModelPayload(model.to_json(), tuple(model.get_weights()), "3", type(model).__name__)


def _rebuild(model_or_config, weights=()):
    from grader.frameworks.keras.rebuild import rebuild
    if isinstance(model_or_config, dict):
        return rebuild(keras_side.ModelPayload(json.dumps(model_or_config), tuple(weights), "3", "Sequential"))
    return rebuild(_payload(model_or_config))


def test_allowed_layers_rebuild_bit_identically(keras):
    L = keras.layers
    inp = keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3, padding="same")(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    y = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.Add()([x, y])
    x = L.MaxPooling2D()(x)
    x = L.ZeroPadding2D(1)(x)
    x = L.Dropout(0.1)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(3, activation="softmax")(x)
    model = keras.Model(inp, x)
    back = _rebuild(model)
    data = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    assert np.array_equal(np.asarray(model(data)), np.asarray(back(data)))


def test_lambda_and_custom_layers_are_refused_with_a_message(keras):
    from grader.frameworks.keras.rebuild import ModelRejected
    L = keras.layers

    class ReLU(L.Layer):  # a custom class wearing a built-in's name
        def call(self, x):
            return x

    for model, says in [
        (keras.Sequential([keras.Input((4,)), L.Lambda(lambda t: t * 2)]), "Lambda layer, which is not allowed"),
        (keras.Sequential([keras.Input((4,)), L.Lambda(keras.ops.relu)]), "Lambda layer, which is not allowed"),
        (keras.Sequential([keras.Input((4,)), ReLU()]), "custom ReLU class"),
    ]:
        with pytest.raises(ModelRejected, match=says):
            _rebuild(model)


def test_config_tricks_are_refused(keras):
    from grader.frameworks.keras.rebuild import ModelRejected
    base = json.loads(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).to_json())
    dense = base["config"]["layers"][1]

    def variant(change):
        cfg = json.loads(json.dumps(base))
        change(cfg, cfg["config"]["layers"][1])
        return cfg

    # Each trick with the reason it must be refused for: a refusal for some other reason
    # (say, weights that no longer fit) would leave the check it targets untested.
    cases = {
        "module": (variant(lambda c, d: d.update(module="kerasevil.layers")),
                   r"layer 'dense(_\d+)?' is a custom Dense class \(from module 'kerasevil.layers'\)"),
        "activation": (variant(lambda c, d: d["config"].update(
            activation={"module": "builtins", "class_name": "function", "config": "mine", "registered_name": "f"})),
            r"layer 'dense(_\d+)?' uses activation 'a function of its own', which is not a built-in activation"),
        "initializer": (variant(lambda c, d: d["config"].update(
            kernel_initializer={"module": "os", "class_name": "system", "config": {}})),
            r"layer 'dense(_\d+)?' uses system which comes from module 'os', not from Keras"),
        "registered": (variant(lambda c, d: d["config"].update(
            kernel_regularizer={"module": "keras.regularizers", "class_name": "L2", "config": {},
                                "registered_name": "Custom>L2"})),
            r"layer 'dense(_\d+)?' uses a custom registered object 'Custom>L2'"),
        "lambda anywhere": (variant(lambda c, d: d["config"].update(extra={"class_name": "__lambda__"})),
                            r"layer 'dense(_\d+)?' holds a Python lambda"),
        "too many layers": (variant(lambda c, d: c["config"].update(layers=[d] * 600)),
                            r"more than the 500 layers this grader checks"),
    }
    for why, (cfg, reason) in cases.items():
        with pytest.raises(ModelRejected, match=reason):
            _rebuild(cfg, [np.zeros((4, 2), np.float32), np.zeros(2, np.float32)])
    assert dense["class_name"] == "Dense"


def test_compile_config_is_dropped(keras):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    cfg = json.loads(model.to_json())
    cfg["compile_config"] = {"loss": {"module": "os", "class_name": "function", "config": "system"}}
    back = _rebuild(cfg, model.get_weights())
    assert not getattr(back, "compiled", False)


def test_huge_declared_sizes_are_refused_before_any_memory_is_spent(keras):
    from grader.frameworks.keras.rebuild import ModelRejected
    from keras.src.backend.common import global_state
    cfg = json.loads(keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)]).to_json())
    cfg["config"]["layers"][0]["config"]["batch_shape"] = [None, 200_000]
    cfg["config"]["layers"][1]["config"]["units"] = 200_000
    cfg["config"]["layers"][1]["build_config"]["input_shape"] = [None, 200_000]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelRejected, match="weights"):  # 4e10 weights: 160 GB if it were built
        _rebuild(cfg, [np.zeros((8, 4), np.float32), np.zeros(4, np.float32)])
    upsample = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.UpSampling2D(size=(2000, 2000))])
    with pytest.raises(ModelRejected, match="values per example"):
        _rebuild(upsample)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB
    assert not global_state.get_global_attribute("uninitialized_variables", [])


# ---------------------------------------------------------------- the worker

def test_worker_runs_no_tensorflow_op_and_children_do(worker):
    before = worker.probe()
    assert before["tf_context_initialized"] is False and before["threads"] == 1, before
    assert before["dumpable"] == 0  # no child can open its memory
    source = ("import numpy as np\nimport tensorflow as tf\n\ndef f():\n"
              "    m = tf.keras.Sequential([tf.keras.Input((8, 8, 3)), tf.keras.layers.Conv2D(2, 3),\n"
              "                             tf.keras.layers.BatchNormalization()])\n"
              "    return np.asarray(m(np.ones((1, 8, 8, 3), np.float32), training=True))\n")
    for _ in range(2):  # a child forked after an op anywhere in the worker would hang here
        assert run(worker, source, timeout=15).value.shape == (1, 6, 6, 2)
    after = worker.probe()
    assert after["tf_context_initialized"] is False and after["threads"] == 1, after


@pytest.mark.slow
def test_dead_worker_is_replaced(worker):
    restarts = worker.restarts
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(timeout=10)
    assert run(worker, "def f():\n    return 42\n").value == 42
    assert worker.restarts == restarts + 1


@pytest.mark.slow
def test_wedged_worker_is_replaced(worker):
    restarts = worker.restarts
    pythons = processes.sandbox_pythons(worker)
    ours = {p.pid for p in pythons}
    (main,) = [p for p in pythons if p.ppid not in ours]
    os.kill(main.pid, signal.SIGSTOP)  # alive, but answers nothing
    assert run(worker, "def f():\n    return 43\n").value == 43
    assert worker.restarts == restarts + 1  # replaced (after its control timeout), not waited on
    assert not os.path.exists(f"/proc/{main.pid}") or processes.snapshot().get(main.pid) is None


# ---------------------------------------------------------------- determinism and levels

def _reference_happy_model_source() -> str:
    return (REPO / "reference" / "conv_bn.py").read_text() + (
        "\n\ndef build_and_run():\n    model = happyModel()\n"
        "    x = np.linspace(-1, 1, 2 * 64 * 64 * 3, dtype=np.float32).reshape(2, 64, 64, 3)\n"
        "    return model, np.asarray(model(x, training=False)), np.asarray(model(x, training=True))\n")


@pytest.mark.slow
def test_same_submission_through_two_workers_is_bit_identical(worker, tmp_path):
    """Seeded per call: results do not depend on which worker, or which isolation level, ran it."""
    from grader.assignment.spec import load_assignment
    from grader.run.grading import grade_submission
    from grader.frameworks.keras.rebuild import rebuild

    def outcome(w):
        session = w.session(chunks(_reference_happy_model_source()), seed=7)
        try:
            first = session.call("build_and_run", seed=7, timeout=30).value
            again = session.call("build_and_run", seed=7, timeout=30).value
        finally:
            session.close()
        return first, again

    (m1, inf1, tr1), (m1b, _, _) = outcome(worker)
    assert all(np.array_equal(a, b) for a, b in zip(m1.weights, m1b.weights))  # call order does not matter
    other = Worker(framework=sandbox_side(keras="3"), isolation="process", limits=LIMITS).start()
    try:
        (m2, inf2, tr2), _ = outcome(other)
        tiny = load_assignment(attacks.write_assignment(tmp_path / "tiny"))
        nb = attacks.write_notebook(tmp_path / "correct.ipynb", attacks.CORRECT)
        result = grade_submission(nb, tiny, other)
    finally:
        other.stop()
    assert len(m1.weights) == len(m2.weights) > 0
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(m1.weights, m2.weights))
    assert np.array_equal(inf1, inf2) and np.array_equal(tr1, tr2)
    assert m1.config == m2.config
    rebuilt = rebuild(m1)
    assert [type(layer).__name__ for layer in rebuilt.layers] == ["ZeroPadding2D", "Conv2D", "BatchNormalization",
                                                                  "ReLU", "MaxPooling2D", "Flatten", "Dense"]
    assert result.isolation == "process" and result.score == result.max_score


def test_every_result_names_its_isolation_level(worker, tmp_path):
    from grader.assignment.spec import load_assignment
    from grader.run.grading import grade_submission
    tiny = load_assignment(attacks.write_assignment(tmp_path / "tiny"))
    nb = attacks.write_notebook(tmp_path / "correct.ipynb", attacks.CORRECT)
    result = grade_submission(nb, tiny, worker)
    assert result.score == result.max_score == 3
    assert result.isolation == worker.level
    assert result.to_dict()["isolation"] == worker.level


@pytest.mark.slow
def test_conv_bn_correct_sample_gets_full_marks(worker, tmp_path):
    from grader.assignment.spec import load_assignment
    from grader.run.grading import grade_submission
    sample = REPO / "assignments" / "conv_bn" / "samples" / "correct.ipynb"
    if not sample.exists():
        pytest.skip("the conv_bn samples have not been generated")
    result = grade_submission(sample, load_assignment("conv_bn"), worker)
    assert result.score == result.max_score > 0, [(t.name, t.message) for t in result.tests]
    assert result.isolation == worker.level


def _without_bwrap(tmp_path) -> str:
    """A PATH holding everything the grader may call except bubblewrap."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("unshare", "python3"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_strict_refuses_without_bubblewrap(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _without_bwrap(tmp_path))
    with pytest.raises(IsolationUnavailable, match="bubblewrap"):
        choose_isolation("strict")
    with pytest.raises(IsolationUnavailable):
        Worker(isolation="strict")
    assert choose_isolation("auto") in ("namespace", "process")  # auto still grades, and says how


def test_cli_strict_refuses_without_bubblewrap(tmp_path):
    nb = attacks.write_notebook(tmp_path / "correct.ipynb", attacks.CORRECT)
    tiny = attacks.write_assignment(tmp_path / "tiny")
    env = {**os.environ, "PATH": _without_bwrap(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", str(nb), "--assignment", str(tiny),
                           "--format", "json", "--sandbox", "strict"], capture_output=True, text=True,
                          env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "bubblewrap" in proc.stderr


def test_strict_works_where_bubblewrap_does(bubblewrap):
    assert choose_isolation("strict") == "full"
