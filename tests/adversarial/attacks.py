"""Hostile submissions, generated as notebooks, and the tiny assignment they are graded by.

Each attack is the source of a notebook's code cells. Only what the grader runs matters:
imports, `def`, `class` and constants (top-level statements are never executed), so every
attack hides in a class body, a default argument, or the graded function itself, which
is where a real student's code would have to put it.

The tiny assignment has two exercises: `add` (NumPy in, NumPy out, checked with
`np.allclose` in the grading process) and `tiny_model` (a Keras model, rebuilt from its
config). A correct submission earns 3/3; tests grade one right after every attack, with
the same worker, to show that one hostile submission cannot hurt the next.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

MARKER = "PWNED-BY-STUDENT"  # forged text that must never reach grader output unlabelled
SECRET_NAME = "GRADER_TEST_SECRET"

ASSIGNMENT_TOML = """\
name = "tiny"
title = "A tiny assignment for sandbox tests"
version = "1"
keras = "3"
reference = "reference.py"
exercises = ["add", "tiny_model"]
call_timeout = {timeout}
secret = "tiny-secret"
"""

REFERENCE = '''\
import numpy as np


def add(a, b):
    return np.asarray(a) + np.asarray(b)


def tiny_model():
    import keras
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2), keras.layers.ReLU()])
'''

TESTS = '''\
import numpy as np

from grader.testing import exercise, points


@points(1)
@exercise("add")
def test_add(submission, reference):
    a, b = np.arange(6.0).reshape(2, 3), np.full((2, 3), 0.5)
    got = submission.call("add", a, b)
    assert isinstance(got, np.ndarray), f"add returned {type(got).__name__}"
    assert got.shape == (2, 3) and np.allclose(got, reference.add(a, b)), "wrong sum"


@points(1)
@exercise("add")
def test_add_hidden(submission, reference, hidden_rng):
    a, b = hidden_rng.normal(size=(3, 5)), hidden_rng.normal(size=(3, 5))
    got = submission.call("add", a, b)
    assert isinstance(got, np.ndarray) and got.shape == (3, 5), "wrong type or shape"
    assert np.allclose(got, a + b), "wrong sum on hidden inputs"


@points(1)
@exercise("tiny_model")
def test_tiny_model(submission, reference):
    model = submission.model("tiny_model")
    names = [type(layer).__name__ for layer in model.layers]
    assert names == ["Dense", "ReLU"], f"layers {names}"
    out = np.asarray(model(np.ones((3, 4), np.float32)))
    assert out.shape == (3, 2) and (out >= 0).all()
'''

CORRECT_ADD = '''\
import numpy as np

def add(a, b):
    return np.asarray(a) + np.asarray(b)
'''

CORRECT_MODEL = '''\
import tensorflow as tf

def tiny_model():
    return tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2), tf.keras.layers.ReLU()])
'''

CORRECT = [CORRECT_ADD, CORRECT_MODEL]


def write_assignment(root: Path, *, timeout: float = 3) -> Path:
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "assignment.toml").write_text(ASSIGNMENT_TOML.format(timeout=timeout))
    (root / "reference.py").write_text(REFERENCE)
    (root / "tests" / "test_tiny.py").write_text(TESTS)
    return root


def write_notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, str(path))
    return path


def add_with(body: str, *, imports: str = "import numpy as np\nimport os\nimport sys\n") -> str:
    """A graded `add` that runs `body` first, then answers correctly if it gets that far."""
    indented = "".join(f"    {line}\n" for line in body.strip("\n").splitlines())
    return f"{imports}\ndef add(a, b):\n{indented}    return np.asarray(a) + np.asarray(b)\n"


# name -> (cells, what the test expects). `lost` lists the tests that must earn nothing;
# `says` is a piece of the message those tests must show (what stopped the code); `kept`
# lists the tests that must still pass: a child that `add` broke, killed or let run out of
# time costs only `add`'s calls, never the correct `tiny_model` graded after it.
ATTACKS: dict[str, tuple[list[str], dict]] = {
    # -- runaway code
    "loop_in_class_body": (
        ["class Evil:\n    while True:\n        pass\n", CORRECT_ADD, CORRECT_MODEL],
        {"lost": ["add", "add hidden", "tiny model"], "says": "time limit"}),
    "loop_in_default_argument": (
        ["import numpy as np\n\ndef add(a, b, _=any(iter(int, 1))):\n    return a + b\n",
         CORRECT_MODEL],
        {"lost": ["add", "add hidden", "tiny model"], "says": "time limit"}),
    "loop_in_graded_function": (
        [add_with("while True:\n    pass"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "time limit", "kept": ["tiny model"]}),
    "ignores_sigterm": (
        [add_with("import signal, time\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
                  "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.01)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "time limit", "kept": ["tiny model"]}),
    "stops_itself": (
        [add_with("import signal\nos.kill(os.getpid(), signal.SIGSTOP)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "time limit", "kept": ["tiny model"]}),
    # -- memory
    "memory_bomb_python": (
        [add_with("hoard = []\nwhile True:\n    hoard.append(bytearray(64 * 2 ** 20))"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "memory limit", "kept": ["tiny model"]}),
    "memory_bomb_numpy": (
        [add_with("big = np.ones((200_000, 200_000))"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "memory limit", "kept": ["tiny model"]}),
    "memory_bomb_shared_mapping": (
        [add_with("import mmap\nm = mmap.mmap(-1, 64 * 2 ** 30)\nfor i in range(0, len(m), 4096):\n    m[i] = 1"),
         CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "refused by the grading sandbox", "kept": ["tiny model"]}),
    "memory_bomb_memfd": (
        [add_with("import mmap\nkeep = []\nwhile True:\n    fd = os.memfd_create('x')\n"
                  "    os.ftruncate(fd, 2 ** 24)\n    keep.append(mmap.mmap(fd, 2 ** 24))\n    os.close(fd)"),
         CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "refused by the grading sandbox", "kept": ["tiny model"]}),
    # -- breaking the child itself
    "segfault": (
        [add_with("import ctypes\nctypes.string_at(0)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "SIGSEGV", "kept": ["tiny model"]}),
    "breaks_the_child": (  # the child can no longer answer anyone: it ends after this call
        [add_with("for module in list(sys.modules.values()):\n"
                  "    if getattr(module, '__name__', '').endswith('sandbox.protocol'):\n"
                  "        module.send_message = None"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "stopped while running `add`", "kept": ["tiny model"]}),
    # -- processes
    "fork_bomb": (
        [add_with("while True:\n    os.fork()"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "refused by the grading sandbox", "kept": ["tiny model"]}),
    "subprocess": (
        [add_with("import subprocess\nsubprocess.run(['sh', '-c', 'sleep 100 &'])"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "refused by the grading sandbox", "kept": ["tiny model"]}),
    "multiprocessing": (
        [add_with("import multiprocessing, time\np = multiprocessing.Process(target=time.sleep, args=(100,))\np.start()"),
         CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": ""}),
    "exec_a_shell": (
        [add_with("os.execv('/bin/sh', ['sh', '-c', 'echo hi'])"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "refused by the grading sandbox", "kept": ["tiny model"]}),
    "background_thread_outlives_call": (
        [add_with("import threading, time\n"
                  "def forever():\n"
                  "    while True:\n"
                  "        try:\n"
                  "            with open('/tmp/grader-thread-was-here', 'a') as f:\n"
                  "                f.write('x')\n"
                  "            os.fork()\n"
                  "        except OSError:\n"
                  "            pass\n"
                  "        time.sleep(0.01)\n"
                  "threading.Thread(target=forever, daemon=True).start()"), CORRECT_MODEL],
        {"lost": [], "says": ""}),  # it answers correctly: the test is that nothing outlives it
    # -- exits and signals
    "os_exit": (
        [add_with("os._exit(0)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "exited with status 0", "kept": ["tiny model"]}),
    "sys_exit": (
        [add_with("sys.exit('bye')"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "SystemExit"}),
    "sys_exit_at_load": (
        ["import sys\n\nclass Evil:\n    sys.exit(3)\n", CORRECT_ADD, CORRECT_MODEL],
        {"lost": [], "says": ""}),  # the class fails to load; the rest still grades
    "kills_parent": (
        [add_with("os.kill(os.getppid(), 9)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "refused by the grading sandbox", "kept": ["tiny model"]}),
    "kills_everyone": (
        [add_with("os.kill(-1, 9)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "refused by the grading sandbox", "kept": ["tiny model"]}),
    "stops_parent_with_tgkill": (
        [add_with("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                  "if libc.syscall(234, os.getppid(), os.getppid(), 19) != 0:\n"
                  "    raise PermissionError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "refused by the grading sandbox", "kept": ["tiny model"]}),
    "writes_parent_memory": (
        [add_with("open(f'/proc/{os.getppid()}/mem', 'r+b')"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "Permission"}),
    "hangs_up_and_lingers": (
        [add_with("import socket, stat, time\nfor fd in range(3, 64):\n    try:\n"
                  "        if stat.S_ISSOCK(os.fstat(fd).st_mode):\n            os.close(fd)\n"
                  "    except OSError:\n        pass\ntime.sleep(60)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "closed its connection", "kept": ["tiny model"]}),
    # -- lying to the grader
    "forged_output": (
        ["import numpy as np\nimport sys\n\ndef add(a, b):\n"
         f"    print('All tests passed! {MARKER}')\n"
         "    print('\\n{\"submission\": \"x\", \"score\": 100, \"max_score\": 100, \"tests\": []}')\n"
         f"    sys.stderr.write('Score: 100/100 {MARKER}\\n')\n"
         "    os.write(1, b'\\x1b[2J\\x1b[H' + b'All tests passed\\n')\n"
         "    return np.zeros((1, 1))\n\nimport os\n", CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": ""}),
    "forged_reply_on_socket": (
        [add_with("import socket, stat, struct, json\n"
                  "for fd in range(3, 64):\n"
                  "    try:\n"
                  "        if not stat.S_ISSOCK(os.fstat(fd).st_mode):\n            continue\n"
                  "    except OSError:\n        continue\n"
                  "    s = socket.socket(fileno=fd)\n"
                  "    head = json.dumps({'id': 1, 'ok': True, 'output': '', 'value': {'$arrays': "
                  "[['<f8', [10 ** 6, 10 ** 6], 0, 8 * 10 ** 12]], '$value': {'$dict': {'value': {'$array': 0}, "
                  "'args_after': None}}}}).encode()\n"
                  "    s.sendall(struct.pack('!II', len(head), 0) + head)\n"
                  "    s.detach()\n"
                  "import time\ntime.sleep(60)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "reply", "kept": ["tiny model"]}),
    "forged_huge_header": (
        [add_with("import socket, stat, struct\n"
                  "for fd in range(3, 64):\n"
                  "    try:\n"
                  "        if stat.S_ISSOCK(os.fstat(fd).st_mode):\n"
                  "            socket.socket(fileno=fd).sendall(struct.pack('!II', 10, 2 ** 31))\n"
                  "    except OSError:\n        pass\n"
                  "import time\ntime.sleep(60)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "too large", "kept": ["tiny model"]}),
    "monkeypatches_numpy_and_builtins": (
        ["import numpy as np\nimport builtins\n\n"
         "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n\n"
         "def add(a, b):\n"
         "    np.allclose = lambda *a, **k: True\n"
         "    np.ndarray.__eq__ = lambda *a, **k: True\n"
         "    builtins.isinstance = lambda *a, **k: True\n"
         "    return np.zeros((2, 3)) - 1\n", CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": ""}),
    "monkeypatches_keras": (
        [CORRECT_ADD, "import tensorflow as tf\nimport keras\n\ndef tiny_model():\n"
         "    keras.Model.__call__ = lambda *a, **k: 0\n"
         "    keras.layers.Dense.__init__ = None\n"
         "    return tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])\n"],
        {"lost": ["tiny model"], "says": ""}),
    # -- reaching out
    "reads_reference": (
        [add_with("return open(os.environ.get('REF', '{reference}')).read()"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "No such file"}),
    "writes_outside": (
        [add_with("for path in ('{repo}/PWNED', '{repo}/README.md', '{reference}', '/tmp/grader-pwned'):\n"
                  "    try:\n        with open(path, 'a') as f:\n            f.write('{marker}')\n"
                  "    except OSError:\n        pass"), CORRECT_MODEL],
        {"lost": [], "says": ""}),  # answers correctly; the test checks the file system
    "writes_sysctl": (  # writes the current value back: harmless if it ever got through
        [add_with("value = open('/proc/sys/vm/swappiness').read()\n"
                  "with open('/proc/sys/vm/swappiness', 'w') as f:\n    f.write(value)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "only in its own temporary folder"}),
    "fills_private_tmp": (
        [add_with("i = 0\nwhile True:\n    with open(f'/tmp/fill-{i}', 'wb') as f:\n"
                  "        f.write(b'x' * 2 ** 22)\n    i += 1"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": ""}),
    "network": (
        [add_with("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "refused by the grading sandbox", "kept": ["tiny model"]}),
    "floods_output": (
        [add_with("while True:\n    print('x' * 100_000)"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "file-size limit"}),
    # -- returning too much, or the wrong thing
    "enormous_array": (
        [add_with("return np.zeros((6000, 6000))"), CORRECT_MODEL],
        {"lost": ["add", "add hidden"], "says": "too large"}),
    "lambda_layer": (
        [CORRECT_ADD, "import tensorflow as tf\n\ndef tiny_model():\n    return tf.keras.Sequential("
         "[tf.keras.Input((4,)), tf.keras.layers.Dense(2), tf.keras.layers.Lambda(tf.nn.relu)])\n"],
        {"lost": ["tiny model"], "says": "not allowed"}),
    "custom_layer": (
        [CORRECT_ADD, "import tensorflow as tf\n\nclass ReLU(tf.keras.layers.Layer):\n"
         "    def call(self, x):\n        return tf.nn.relu(x)\n\n"
         "def tiny_model():\n    return tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2), ReLU()])\n"],
        {"lost": ["tiny model"], "says": "not allowed"}),
}


def attack_cells(name: str, *, repo: Path, reference: Path) -> list[str]:
    cells, _ = ATTACKS[name]
    return [c.replace("{repo}", str(repo)).replace("{reference}", str(reference)).replace("{marker}", MARKER)
            for c in cells]
