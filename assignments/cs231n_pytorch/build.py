"""Regenerate the notebooks derived from the master `source/cs231n_pytorch.py`.

    python assignments/cs231n_pytorch/build.py

Writes the master notebook, the student release and the samples. Each sample is the solved
notebook with one textual edit, a mistake students of this exercise make; an edit that no
longer matches the master fails the build instead of writing a "broken" sample identical
to the correct one. `course_notebook` gives the same notebooks as real students hand them
in: no tags, no grader metadata (tests/test_cs231n_pytorch.py grades those).
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
MASTER = HERE / "source" / "cs231n_pytorch.py"
TOTAL = 20

if __package__ in (None, "") and str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))  # run as a script from a checkout

from grader.authoring.assign import annotate, make_template, read_master  # noqa: E402
from grader.authoring.samples import edit_cell, write_notebook as _write  # noqa: E402


def _edit(exercise: str, old: str, new: str, count: int = 1) -> Callable:
    """The sample edit as a step of `_both`."""
    return lambda nb: edit_cell(nb, exercise, old, new, count)


def _both(*edits: Callable) -> Callable:
    def apply(nb):
        for edit in edits:
            nb = edit(nb)
        return nb
    return apply


@dataclass(frozen=True)
class Sample:
    name: str
    contents: str
    make: Callable | None
    expected_score: float
    diagnosis: str = ""  # what the failing test's feedback is labelled (tests assert it)


SAMPLES = (
    Sample("correct", "the master's solutions", lambda nb: nb, TOTAL),
    Sample("template", "the untouched template", None, 0),
    Sample("no_padding", "three_layer_convnet calls F.conv2d without padding",
           _both(_edit("three_layer_convnet", "conv_b1, padding=2)", "conv_b1)"),
                 _edit("three_layer_convnet", "conv_b2, padding=1)", "conv_b2)")), 15, "padding_missing"),
    Sample("linear_no_transpose", "three_layer_convnet ends with F.linear(x, fc_w, fc_b)",
           _edit("three_layer_convnet", "flatten(x).mm(fc_w) + fc_b", "F.linear(flatten(x), fc_w, fc_b)"), 15,
           "linear_without_transpose"),
    Sample("relu_after_fc", "three_layer_convnet puts a ReLU on the scores",
           _edit("three_layer_convnet", "scores = flatten(x).mm(fc_w) + fc_b", "scores = F.relu(flatten(x).mm(fc_w) + fc_b)"),
           15, "relu_after_fc"),
    Sample("params_not_used", "three_layer_convnet draws weights of its own instead of using params",
           _edit("three_layer_convnet", "    ### BEGIN SOLUTION\n",
                 "    ### BEGIN SOLUTION\n    conv_w1, conv_b1, conv_w2, conv_b2, fc_w, fc_b = [torch.randn(p.shape) for p in params]\n"),
           15, "params_not_used"),
    Sample("hardcoded_classes", "ThreeLayerConvNet's nn.Linear ends in 10 instead of num_classes",
           _edit("ThreeLayerConvNet", "nn.Linear(channel_2 * 32 * 32, num_classes)", "nn.Linear(channel_2 * 32 * 32, 10)"),
           12, "hardcoded_classes"),
    Sample("module_no_padding", "ThreeLayerConvNet's 5x5 convolution has no padding",
           _edit("ThreeLayerConvNet", "kernel_size=5, padding=2)", "kernel_size=5)"), 12, "padding_missing"),
    Sample("module_relu_missing", "ThreeLayerConvNet's forward has no ReLU after the second convolution",
           _edit("ThreeLayerConvNet", "x = F.relu(self.conv2(x))", "x = self.conv2(x)"), 12, "relu_missing"),
    Sample("kaiming_partial", "ThreeLayerConvNet leaves the nn.Linear at PyTorch's default initialization",
           _edit("ThreeLayerConvNet", "        nn.init.kaiming_normal_(self.fc.weight)\n", ""), 17, "kaiming_partial"),
    Sample("no_kaiming", "ThreeLayerConvNet keeps PyTorch's default initialization everywhere",
           _edit("ThreeLayerConvNet", "        nn.init.kaiming_normal_(", "        # nn.init.kaiming_normal_(", 3),
           17, "kaiming_missing"),
    Sample("no_nesterov", "the Sequential model's optimizer has momentum=0.9 without nesterov=True",
           _edit("sequential_convnet", "momentum=0.9, nesterov=True)", "momentum=0.9)"), 17,
           "wrong_hyperparameter:nesterov"),
    Sample("sequential_hardcoded_channels", "the Sequential model writes 16 * 32 * 32 but uses channel_2 = 12",
           _both(_edit("sequential_convnet", "channel_2 = 16", "channel_2 = 12"),
                 _edit("sequential_convnet", "nn.Linear(channel_2 * 32 * 32, 10)", "nn.Linear(16 * 32 * 32, 10)")),
           16, "wrong_linear_input"),
)


def course_notebook(nb):
    """The notebook as a real student hands it in: no tags, no grader metadata."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata = {}
    nb.metadata.pop("grader", None)
    return nb


def solved():
    master = read_master(MASTER)
    for cell in master.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return master, annotate(master)


def sample_notebook(sample: Sample):
    master, nb = solved()
    return make_template(master) if sample.make is None else sample.make(copy.deepcopy(nb))


def build(root: Path = HERE) -> list[Path]:
    root = Path(root)
    master, _ = solved()
    written = [_write(master, root / "source" / "cs231n_pytorch.ipynb"),
               _write(make_template(master), root / "release" / "cs231n_pytorch.ipynb")]
    for sample in SAMPLES:
        nb = sample_notebook(sample)
        nb.metadata.setdefault("grader", {})["expected_score"] = sample.expected_score
        written.append(_write(nb, root / "samples" / f"{sample.name}.ipynb"))
    lines = ["# Sample submissions for cs231n_pytorch", "",
             "Generated by `assignments/cs231n_pytorch/build.py` from the master; do not edit by hand.", ""]
    lines += [f"- `{s.name}.ipynb`: {s.contents}. Scores {s.expected_score:g} / {TOTAL}." for s in SAMPLES]
    (root / "samples" / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written + [root / "samples" / "README.md"]


if __name__ == "__main__":
    for path in build():
        print(path.relative_to(HERE))
