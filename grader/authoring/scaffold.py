"""`grader new NAME`: a new assignment folder that works before the instructor edits it.

Starting from a folder that already passes `grader validate-assignment` means every later
step is a small edit to something that works, and each file shows by example what goes
where: the spec, a reference solution, one test file per exercise (a NumPy function and
a Keras model, or with `--framework torch` an nn.Module class, graded the two common ways), helpers shared between test files through
`tests/conftest.py`, a master notebook whose solutions become the student template, the
template itself, and a sample submission declaring the score it must get.
"""
from __future__ import annotations

import argparse
import copy
import re
import secrets
import sys
from pathlib import Path

import nbformat

from grader.exit_codes import EXIT_OK, EXIT_USAGE

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

SPEC = '''\
# The assignment's spec: every key is described in docs/authoring.md.
name = "@NAME@"
title = "@NAME@: row normalization and a small convolutional model"
version = "1"                    # bump it to regrade every submission
keras = "3"                      # students write tf.keras (Keras 3); "2" for Keras 2 era notebooks
reference = "reference.py"       # the solution the tests compare with; never released
exercises = ["normalize_rows", "small_model"]
call_timeout = 30                # seconds per call into the student's code
total_points = 8                 # validate-assignment checks that the tests add up to this
# probes = "probes.py"          # instructor code run in the sandbox beside the student's, for
                                 # functions that take Keras tensors (docs/authoring.md, Probes)
# Seeds the hidden inputs (the `hidden_rng` fixture). Students never receive this file.
secret = "@SECRET@"
'''

REFERENCE = '''\
"""Reference solutions for @NAME@. The tests call these in the grading process (never in
the student's sandbox) and compare the student's answers with them."""
import numpy as np


def normalize_rows(x):
    """Each row of x divided by its Euclidean length."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def small_model(input_shape):
    """Conv2D -> BatchNormalization -> ReLU -> global average pooling -> 3-way softmax."""
    import tensorflow as tf

    tfl = tf.keras.layers
    inputs = tf.keras.Input(shape=input_shape)
    x = tfl.Conv2D(4, 3, padding="same")(inputs)
    x = tfl.BatchNormalization(axis=3)(x)
    x = tfl.ReLU()(x)
    x = tfl.GlobalAveragePooling2D()(x)
    outputs = tfl.Dense(3, activation="softmax")(x)
    return tf.keras.Model(inputs=inputs, outputs=outputs)
'''

CONFTEST = '''\
"""Helpers shared by this assignment's test files.

The tests are imported in pytest's importlib mode, so a test file cannot import a sibling
module (`from helpers import ...` fails). A fixture defined here is visible to every test
file in this folder: share helpers this way.
"""
import numpy as np
import pytest


@pytest.fixture
def random_rows(hidden_rng):
    """make(n, d): an n x d float32 array no student has seen (seeded by the spec's secret)."""
    def make(n, d):
        return hidden_rng.normal(0.0, 3.0, size=(n, d)).astype(np.float32)
    return make
'''

TEST_NORMALIZE = '''\
"""normalize_rows: a NumPy function, called in the sandbox with arrays, compared here."""
from grader.checks.arrays import expect_array, expect_close
from grader.testing import depends, exercise, hidden, points

pytestmark = exercise("normalize_rows")


@points(2)
def test_rows_have_unit_length(submission, reference, random_rows):
    x = random_rows(5, 4)
    found = expect_array(submission.call("normalize_rows", x), name="normalize_rows(x)", shape=x.shape)
    expect_close(found, reference.normalize_rows(x), name="normalize_rows(x)", rtol=1e-5, atol=1e-6,
                 reveal=True)


@points(1)
@hidden
@depends("test_rows_have_unit_length")
def test_other_shapes(submission, reference, random_rows):
    for n, d in ((1, 7), (9, 2)):
        x = random_rows(n, d)
        found = expect_array(submission.call("normalize_rows", x), name="normalize_rows(x)", shape=x.shape)
        # reveal=False: hidden inputs and expected values never reach a student's feedback
        expect_close(found, reference.normalize_rows(x), name="normalize_rows(x)", rtol=1e-5, atol=1e-6,
                     reveal=False)
'''

TEST_MODEL = '''\
"""small_model: a Keras model, rebuilt here from its config and compared layer by layer,
then output by output with the reference's weights copied in."""
import numpy as np

from grader.checks.architecture import expect_architecture, expect_bn_after_conv
from grader.checks.models import expect_same_outputs
from grader.testing import depends, exercise, hidden, points

pytestmark = exercise("small_model")
INPUT_SHAPE = (16, 16, 3)
OTHER_SHAPE = (12, 20, 1)  # the exercise lets the input shape vary, so the hidden test does


@points(3)
def test_layer_graph(submission, reference):
    found = submission.model("small_model", INPUT_SHAPE, expected="a functional tf.keras.Model")
    expect_architecture(reference.small_model(INPUT_SHAPE), found, exercise="small_model")
    expect_bn_after_conv(found)


@points(2)
@hidden
@depends("test_layer_graph")
def test_outputs_on_another_input_shape(submission, reference, hidden_rng):
    x = hidden_rng.normal(0.0, 1.0, size=(4, *OTHER_SHAPE)).astype(np.float32)
    found = submission.model("small_model", OTHER_SHAPE)
    expected = reference.small_model(OTHER_SHAPE)
    expect_same_outputs(expected, found, x, training=False, what="inference output")
    expect_same_outputs(expected, found, x, training=True, what="training output")
'''

# The master notebook's opening, the same for every framework but its imports: the
# assignment's header and the NumPy exercise an instructor replaces first.
_MASTER_HEAD = '''\
# ---
# jupyter:
#   grader:
#     assignment: @NAME@
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # @NAME@
#
# Replace `# YOUR CODE HERE` and `raise NotImplementedError()` with your code. The
# `check(...)` cell after each exercise grades your saved notebook and tells you what to fix.

# %%
import numpy as np
@IMPORTS@
# %% [markdown]
# ## Exercise 1: `normalize_rows(x)`
#
# Divide each row of the 2-D array `x` by its Euclidean length, so every row has length 1.

# %% tags=["normalize_rows"]
def normalize_rows(x):
    """x: array of shape (n, d). Returns an array of the same shape whose rows have length 1."""
    ### BEGIN SOLUTION
    return x / np.linalg.norm(x, axis=1, keepdims=True)
    ### END SOLUTION


# %%
from grader import check
check("normalize_rows")

'''

MASTER = _MASTER_HEAD.replace("@IMPORTS@",
                              'import tensorflow as tf\nfrom tensorflow.keras import layers as tfl\n') + '''\
# %% [markdown]
# ## Exercise 2: `small_model(input_shape)`
#
# With the functional API: `Conv2D(4, 3, padding="same")`, `BatchNormalization(axis=3)`,
# `ReLU()`, `GlobalAveragePooling2D()`, `Dense(3, activation="softmax")`. Build the input
# from the argument, `tf.keras.Input(shape=input_shape)`: the model must work for any
# image size.

# %% tags=["small_model"]
def small_model(input_shape):
    """Returns a tf.keras.Model (not compiled)."""
    ### BEGIN SOLUTION
    inputs = tf.keras.Input(shape=input_shape)
    x = tfl.Conv2D(4, 3, padding="same")(inputs)
    x = tfl.BatchNormalization(axis=3)(x)
    x = tfl.ReLU()(x)
    x = tfl.GlobalAveragePooling2D()(x)
    outputs = tfl.Dense(3, activation="softmax")(x)
    ### END SOLUTION
    return tf.keras.Model(inputs=inputs, outputs=outputs)


# %%
check("small_model")
'''

README = '''\
# @NAME@

Made by `grader new @NAME@`; it passes `grader validate-assignment` as it is. The guide to
every file and key is docs/authoring.md in the grader's repository.

| file | what it is |
|---|---|
| `assignment.toml` | the spec: exercises, reference, points total, secret |
| `reference.py` | the reference solution the tests compare with (never released) |
| `tests/test_*.py` | one test file per exercise: points, visibility, checks |
| `tests/conftest.py` | fixtures shared by the test files |
| `source/@NAME@.py` | the master notebook (Jupytext percent format), solutions inline |
| `release/@NAME@.ipynb` | the student template, made from the master |
| `samples/*.ipynb` | sample submissions; `validate-assignment` checks the score each declares |

After editing:

    grader assign @DIR@/source/@NAME@.py --out @DIR@/release     # rebuild the template
    grader validate-assignment @DIR@                             # reference full marks, template zero, ...
    grader grade SUBMISSIONS/ --assignment @DIR@
'''



# ---------------------------------------------------------------- the PyTorch variant
# `grader new NAME --framework torch`: the same two exercises, the model as an nn.Module
# class in PyTorch's layout (N, C, H, W). The spec's `framework = "torch"` makes the sandbox
# worker preload torch (never TensorFlow), and submission.model returns the student's module
# rebuilt in the grading process, compared by the same checks as a Keras model.

SPEC_TORCH = '''\
# The assignment's spec: every key is described in docs/authoring.md.
name = "@NAME@"
title = "@NAME@: row normalization and a small convolutional model (PyTorch)"
version = "1"                    # bump it to regrade every submission
framework = "torch"              # students write PyTorch; the sandbox worker preloads torch, not TensorFlow
reference = "reference.py"       # the solution the tests compare with; never released
exercises = ["normalize_rows", "SmallModel"]   # a class is an exercise too: the tests instantiate it
call_timeout = 30                # seconds per call into the student's code
total_points = 8                 # validate-assignment checks that the tests add up to this
# Seeds the hidden inputs (the `hidden_rng` fixture). Students never receive this file.
secret = "@SECRET@"
'''

REFERENCE_TORCH = '''\
"""Reference solutions for @NAME@. The tests call these in the grading process (never in
the student's sandbox) and compare the student's answers with them."""
import numpy as np
from torch import nn


def normalize_rows(x):
    """Each row of x divided by its Euclidean length."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class SmallModel(nn.Module):
    """Conv2d -> BatchNorm2d -> ReLU -> global average pooling -> Linear (logits)."""

    def __init__(self, in_channels=3, num_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.relu(self.bn(self.conv(x))))))
'''

TEST_MODEL_TORCH = '''\
"""SmallModel: an nn.Module class. submission.model instantiates it in the sandbox and
returns it rebuilt here (layers, forward graph, weights and BatchNorm statistics as data);
it is compared layer by layer, then output by output with the reference's weights copied
in, after model.eval() and in train() mode."""
import numpy as np

from grader.checks.architecture import expect_architecture, expect_bn_after_conv
from grader.checks.models import expect_same_outputs
from grader.testing import depends, exercise, hidden, points

pytestmark = exercise("SmallModel")
OTHER = (1, 5)  # in_channels, num_classes: the class takes both, so the hidden test varies them


@points(3)
def test_layer_graph(submission, reference):
    found = submission.model("SmallModel", expected="a torch nn.Module")
    expect_architecture(reference.SmallModel(), found, exercise="SmallModel")
    expect_bn_after_conv(found)


@points(2)
@hidden
@depends("test_layer_graph")
def test_outputs_for_other_channels_and_classes(submission, reference, hidden_rng):
    # (N, C, H, W): PyTorch puts the channels first
    x = hidden_rng.normal(0.0, 1.0, size=(4, OTHER[0], 12, 20)).astype(np.float32)
    found = submission.model("SmallModel", *OTHER)
    expected = reference.SmallModel(*OTHER)
    expect_same_outputs(expected, found, x, training=False, what="output after model.eval()")
    expect_same_outputs(expected, found, x, training=True, what="output in train() mode")
'''

MASTER_TORCH = _MASTER_HEAD.replace("@IMPORTS@", 'import torch\nfrom torch import nn\n') + '''\
# %% [markdown]
# ## Exercise 2: `SmallModel(in_channels, num_classes)`
#
# An `nn.Module` whose `forward` takes images of shape `(N, C, H, W)`: `nn.Conv2d(in_channels,
# 4, kernel_size=3, padding=1, bias=False)`, `nn.BatchNorm2d(4)`, `nn.ReLU()`,
# `nn.AdaptiveAvgPool2d(1)`, `nn.Flatten()`, `nn.Linear(4, num_classes)`. Make the layers in
# `__init__` and call them in `forward`; return the logits (no softmax).

# %% tags=["SmallModel"]
class SmallModel(nn.Module):
    def __init__(self, in_channels=3, num_classes=3):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv = nn.Conv2d(in_channels, 4, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4, num_classes)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.fc(self.flatten(self.pool(self.relu(self.bn(self.conv(x))))))
        ### END SOLUTION


# %%
check("SmallModel")
'''

# What differs by framework: the templates, the model exercise's name, and the sample that
# forgets batch normalization (it loses the model's 3 + 2 points: 8 - 5 = 3).
FRAMEWORKS = {
    "keras": dict(spec=SPEC, reference=REFERENCE, test_model=TEST_MODEL, master=MASTER, model="small_model",
                  forget_bn=('    x = tfl.BatchNormalization(axis=3)(x)\n', '')),
    "torch": dict(spec=SPEC_TORCH, reference=REFERENCE_TORCH, test_model=TEST_MODEL_TORCH, master=MASTER_TORCH,
                  model="SmallModel", forget_bn=("self.relu(self.bn(self.conv(x)))", "self.relu(self.conv(x))")),
}
SAMPLE_SCORES = {"solved": 8, "no_batchnorm": 3}


class ScaffoldError(ValueError):
    """The assignment cannot be created where asked, and why."""


def _fill(text: str, **values: str) -> str:
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def _samples(master_path: Path, name: str, framework: str = "keras") -> dict[str, nbformat.NotebookNode]:
    from grader.authoring.assign import annotate, read_master

    layout = FRAMEWORKS[framework]
    solved = annotate(read_master(master_path))
    out = {}
    for sample, score in SAMPLE_SCORES.items():
        nb = copy.deepcopy(solved)
        if sample == "no_batchnorm":
            old, new = layout["forget_bn"]
            cell = next(c for c in nb.cells if layout["model"] in c.metadata.get("tags", []))
            assert old in cell.source, "the sample's edit no longer applies to the master"
            cell.source = cell.source.replace(old, new)
        nb.metadata.setdefault("grader", {"assignment": name})["expected_score"] = score
        out[sample] = nb
    return out


def create(name: str, parent: str | Path, framework: str = "keras") -> Path:
    """Write the assignment folder `parent/name` for students who write `framework` ("keras"
    or "torch") and return it."""
    from grader.authoring.assign import assign

    if not _NAME.match(name):
        raise ScaffoldError(f"{name!r} cannot name an assignment: use letters, digits and underscores, "
                            f"starting with a letter (it names a Python file and the tests)")
    root = Path(parent) / name
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"{root} already exists and is not empty: choose another name or --dir")
    if framework not in FRAMEWORKS:
        raise ScaffoldError(f"--framework must be one of {', '.join(FRAMEWORKS)}, not {framework!r}")
    layout = FRAMEWORKS[framework]
    values = {"NAME": name, "SECRET": f"{name}-{secrets.token_hex(8)}", "DIR": str(root)}
    files = {
        "assignment.toml": layout["spec"], "reference.py": layout["reference"], "README.md": README,
        "tests/conftest.py": CONFTEST, f"tests/test_{name}_normalize_rows.py": TEST_NORMALIZE,
        f"tests/test_{name}_{layout['model'].lower()}.py": layout["test_model"],
        f"source/{name}.py": layout["master"],
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(text, **values), encoding="utf-8")
    master = root / "source" / f"{name}.py"
    assign(master, root / "release")
    (root / "samples").mkdir()
    for sample, nb in _samples(master, name, framework).items():
        nbformat.write(nb, root / "samples" / f"{sample}.ipynb")
    return root


def _default_parent() -> Path:
    """The repository's layout when run from its top (assignments/NAME), else here."""
    return Path("assignments") if Path("assignments").is_dir() else Path(".")


# ---------------------------------------------------------------- command line

def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "new", help="create a new assignment folder that passes validate-assignment as created",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Create DIR/NAME with a working example of every part of an assignment:

  assignment.toml     the spec (keys: docs/authoring.md)
  reference.py        the reference solution (never released)
  tests/              one test file per exercise, and conftest.py for shared helpers
  source/NAME.py      the master notebook (Jupytext percent format), solutions inline
  release/NAME.ipynb  the student template made from the master
  samples/            sample submissions declaring the score they must get

Edit it into your assignment, then run `grader validate-assignment DIR/NAME`.""",
        epilog="examples:\n  grader new week3_resnets --dir assignments\n"
               "  grader new week3_torch --framework torch")
    p.add_argument("name", metavar="NAME", help="the assignment's name (letters, digits, underscores)")
    p.add_argument("--dir", default=None, metavar="DIR",
                   help="folder to create NAME in (default: ./assignments if it exists, else .)")
    p.add_argument("--framework", choices=tuple(FRAMEWORKS), default="keras",
                   help="what students write their models in: keras (tf.keras, the default) or torch "
                        "(an nn.Module class; the spec gets framework = \"torch\")")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    """0 when created, 2 when the name or place is unusable."""
    parent = Path(args.dir) if args.dir else _default_parent()
    try:
        root = create(args.name, parent, getattr(args, "framework", "keras"))
    except ScaffoldError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    words = " (PyTorch)" if getattr(args, "framework", "keras") == "torch" else ""
    print(f"created {root}{words}: spec, reference, 2 exercises with a test file each, master, template, 2 samples\n"
          f"next: edit it, then `grader validate-assignment {root}`")
    return EXIT_OK
