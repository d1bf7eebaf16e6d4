"""Regenerate every notebook derived from the master `source/conv_bn_torch.py`.

    python assignments/conv_bn_torch/build.py

The percent-format `.py` file is the only thing an instructor edits. This script rebuilds
the master notebook, the student release (template plus `faces.py`, shared with conv_bn)
and the sample submissions from it, so none of them can drift from the source.

Each sample is the solved notebook with one small textual edit, a mistake PyTorch students
make; the edit must match exactly as often as expected, so a master that changes under it
fails the build instead of quietly writing a "broken" sample identical to the correct one.
Written answers are a student's, never the master's model answers.
"""
from __future__ import annotations

import copy
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
MASTER = HERE / "source" / "conv_bn_torch.py"
DATA_MODULE = HERE.parent / "conv_bn" / "faces.py"
TOTAL = 23

if __package__ in (None, "") and str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))  # run as a script from a checkout

import nbformat  # noqa: E402

from grader.authoring.assign import MARKDOWN_STUB, annotate, answer_question, make_template, read_master  # noqa: E402
from grader.authoring.samples import answer_cell as _answer, edit_cell as _edit  # noqa: E402
from grader.authoring.samples import write_notebook as _write  # noqa: E402


def _relu_before_bn(nb):
    return _edit(nb, "happy_model", "        nn.BatchNorm2d(32),\n        nn.ReLU(),\n",
                 "        nn.ReLU(),\n        nn.BatchNorm2d(32),\n")


def _bn_after_pool(nb):
    """The first block normalizes after pooling: Conv -> ReLU -> MaxPool -> BatchNorm2d."""
    return _edit(nb, "ConvolutionalModel", "x = self.pool1(self.relu1(self.bn1(self.conv1(x))))",
                 "x = self.bn1(self.pool1(self.relu1(self.conv1(x))))")


def _wrong_num_features(nb):
    return _edit(nb, "ConvolutionalModel", "self.bn2 = nn.BatchNorm2d(16)", "self.bn2 = nn.BatchNorm2d(8)")


def _batch_stats_at_eval(nb):
    """BatchNorm2d without running statistics: after model.eval() it still normalizes with
    the batch's own statistics, so a prediction depends on the rest of the batch."""
    return _edit(nb, "happy_model", "nn.BatchNorm2d(32),", "nn.BatchNorm2d(32, track_running_stats=False),")


def _conv_bias_true(nb):
    """PyTorch's default bias=True before each BatchNorm2d: the same network (BN cancels it)."""
    _edit(nb, "happy_model", "nn.Conv2d(3, 32, kernel_size=7, bias=False)", "nn.Conv2d(3, 32, kernel_size=7)")
    _edit(nb, "ConvolutionalModel", "kernel_size=5, padding=2, bias=False)", "kernel_size=5, padding=2)")
    return _edit(nb, "ConvolutionalModel", "kernel_size=3, padding=1, bias=False)", "kernel_size=3, padding=1)")


def _test_stats_leak(nb):
    return _edit(nb, "standardize",
                 "    X_test_std = ((test - mean) / std).astype(np.float32)",
                 "    X_test_std = ((test - test.mean(axis=(0, 2, 3), keepdims=True))\n"
                 "                  / test.std(axis=(0, 2, 3), keepdims=True)).astype(np.float32)")


def _channels_last_axes(nb):
    """The Keras habit: statistics over every axis but the last."""
    return _edit(nb, "standardize", "axis=(0, 2, 3), keepdims=True", "axis=(0, 1, 2), keepdims=True", count=2)


def _eps_outside_sqrt(nb):
    return _edit(nb, "batchnorm_forward", "np.sqrt(var + eps)", "(np.sqrt(var) + eps)")


def _unbiased_variance(nb):
    return _edit(nb, "batchnorm_forward", "var = x.var(axis=axes, keepdims=True)",
                 "var = x.var(axis=axes, keepdims=True, ddof=1)")


LONG_TRAINING_CELL = """\
%matplotlib inline
# More data and more epochs, to see how good happy_model can get.
X_big, y_big, _, _ = load_faces(n_train=20000, n_test=2)
model = happy_model()
optimizer = torch.optim.Adam(model.parameters())
images = torch.from_numpy(standardize(X_big.transpose(0, 3, 1, 2), X_big[:2].transpose(0, 3, 1, 2))[0])
for epoch in range(200):
    for start in range(0, len(images), 16):
        loss = F.binary_cross_entropy(model(images[start:start + 16])[:, 0], torch.from_numpy(y_big[start:start + 16]).float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def _broken_tags(nb):
    """The graded cells lost their metadata (retyped into new cells) and moved to the end,
    followed by a training cell that would run for hours if the grader ran the notebook."""
    graded = [c for c in nb.cells if c.metadata.get("grader", {}).get("grade")]
    others = [c for c in nb.cells if not c.metadata.get("grader", {}).get("grade")]
    for cell in graded:
        cell.metadata = {}
    nb.cells = others + graded + [nbformat.v4.new_code_cell(LONG_TRAINING_CELL.rstrip("\n"), id="student-training")]
    return nb


def _untraceable_forward(nb):
    """A forward with an `if` on a tensor's value: torch.fx cannot trace it."""
    return _edit(nb, "ConvolutionalModel",
                 "        x = self.softmax(self.fc(self.flatten(x)))\n",
                 "        x = self.fc(self.flatten(x))\n"
                 "        if x.abs().max() > 1e6:  # guard against blow-ups\n"
                 "            x = x / x.abs().max()\n"
                 "        x = self.softmax(x)\n")


STUDENT_ANSWERS = {
    "why_bn_after_conv": (
        "The output of a conv layer is what the next layer gets as input, and its mean and spread shift every "
        "time the conv weights are updated. BatchNorm2d standardizes it per channel, so the next layer always "
        "sees inputs with a stable distribution, like we did by hand for the images.\n\n"
        "It comes before the ReLU so every channel is centred when it reaches the ReLU, which keeps roughly half "
        "of it. The conv bias is useless then, because BN subtracts the mean anyway and beta adds its own shift, "
        "so bias=False is fine."),
    "standardize_inputs": (
        "Yes. The first conv sees the raw pixels and its gradients are proportional to them, so a channel with "
        "big values gets bigger steps than a small one. Standardizing evens that out. The mean and std come from "
        "X_train only, over axes 0, 2, 3, and are reused for X_test."),
}

WRONG_PLACE_ANSWER = ("BatchNorm2d should come after the ReLU, so that it normalizes the activations the next layer "
                      "actually receives. It makes training faster.")
TEST_STATISTICS_ANSWER = ("Yes, both sets should be standardized, each with its own mean and standard deviation, so "
                          "that the test images are centred at 0 too.")


@dataclass(frozen=True)
class Sample:
    name: str
    contents: str
    should_fail: str
    make: Callable | None
    expected_score: float  # written into the sample's metadata; `grader validate-assignment` checks it
    answers: dict = field(default_factory=lambda: dict(STUDENT_ANSWERS))


SAMPLES = (
    Sample("correct", "the master's solutions, outputs cleared", "nothing", lambda nb: nb, 23),
    Sample("template", "the untouched student template",
           "all four exercises (NotImplementedError); no written answers", None, 0, answers={}),
    Sample("relu_before_bn", "happy_model puts nn.ReLU() before nn.BatchNorm2d(32), and the written answer says "
           "BN belongs after the ReLU", "happy_model (layer order; its output test is not run)", _relu_before_bn, 16,
           answers={**STUDENT_ANSWERS, "why_bn_after_conv": WRONG_PLACE_ANSWER}),
    Sample("bn_after_pool", "ConvolutionalModel's first block normalizes after pooling (Conv -> ReLU -> MaxPool -> "
           "BatchNorm2d)", "ConvolutionalModel (layer graph; its output tests are not run)", _bn_after_pool, 16),
    Sample("wrong_num_features", "ConvolutionalModel's second BatchNorm2d is told 8 channels instead of 16",
           "ConvolutionalModel (num_features; its output tests are not run)", _wrong_num_features, 16),
    Sample("batch_stats_at_eval", "happy_model's BatchNorm2d keeps no running statistics "
           "(track_running_stats=False), so after model.eval() it still uses the batch's",
           "happy_model (output in eval() mode); the layer graph passes", _batch_stats_at_eval, 20),
    Sample("conv_bias_true", "every nn.Conv2d keeps PyTorch's default bias=True before its BatchNorm2d",
           "nothing: BatchNorm cancels the bias, the same network", _conv_bias_true, 23),
    Sample("test_stats_leak", "standardize scales X_test with the test set's own statistics, and the written "
           "answer recommends it", "standardize (values; shapes are right)", _test_stats_leak, 20,
           answers={**STUDENT_ANSWERS, "standardize_inputs": TEST_STATISTICS_ANSWER}),
    Sample("channels_last_axes", "standardize reduces over axis=(0, 1, 2), the Keras habit",
           "standardize (values)", _channels_last_axes, 20),
    Sample("eps_outside_sqrt", "batchnorm_forward divides by sqrt(var) + eps",
           "batchnorm_forward (both tests)", _eps_outside_sqrt, 19),
    Sample("unbiased_variance", "batchnorm_forward uses the unbiased variance (ddof=1)",
           "batchnorm_forward (both tests)", _unbiased_variance, 19),
    Sample("untraceable_forward", "ConvolutionalModel's forward has an `if` on a tensor's value, which torch.fx "
           "cannot trace", "nothing: its layers are read through forward hooks, its outputs computed in the sandbox",
           _untraceable_forward, 23),
    Sample("broken_tags", "correct code, but the graded cells lost their tags and metadata and moved to the end, "
           "followed by a training cell that would run for hours",
           "nothing, if the grader finds functions and classes by name and runs no top-level statements",
           _broken_tags, 23),
)


def _readme() -> str:
    lines = ["# Sample submissions for conv_bn_torch",
             "",
             "Generated by `assignments/conv_bn_torch/build.py` from the master; do not edit by hand.",
             "Each sample needs `faces.py` (in `release/`, the same as conv_bn's) to run, like a real submission.",
             "Written answers are a student's, never the master's model answers; they are scored by a person",
             "and count in no `expected_score`.",
             ""]
    lines += [f"- `{s.name}.ipynb`: {s.contents}. Should fail: {s.should_fail}. Scores {s.expected_score:g} / {TOTAL}."
              for s in SAMPLES]
    return "\n".join(lines) + "\n"


def build(root: Path = HERE) -> list[Path]:
    """Write the master notebook, release and samples under `root`; return the paths written."""
    root = Path(root)
    master = read_master(MASTER)
    for cell in master.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    written = [_write(master, root / "source" / "conv_bn_torch.ipynb")]

    written.append(_write(make_template(master), root / "release" / "conv_bn_torch.ipynb"))
    written.append(Path(shutil.copyfile(DATA_MODULE, root / "release" / "faces.py")))

    solved = annotate(master)
    for cell in solved.cells:  # the master's model answers never go into a sample
        if answer_question(cell) is not None:
            cell.source = "\n".join(MARKDOWN_STUB)
    for sample in SAMPLES:
        nb = copy.deepcopy(solved)
        for question, text in sample.answers.items():
            _answer(nb, question, text)
        nb = make_template(master) if sample.make is None else sample.make(nb)
        nb.metadata.setdefault("grader", {})["expected_score"] = sample.expected_score
        written.append(_write(nb, root / "samples" / f"{sample.name}.ipynb"))
    readme = root / "samples" / "README.md"
    readme.write_text(_readme(), encoding="utf-8")
    written.append(readme)
    return written


if __name__ == "__main__":
    for path in build():
        print(path.relative_to(HERE) if path.is_relative_to(HERE) else path)
