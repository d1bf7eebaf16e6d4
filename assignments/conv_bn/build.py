"""Regenerate every notebook derived from the master `source/conv_bn.py`.

    python assignments/conv_bn/build.py

The percent-format `.py` file is the only thing an instructor edits. This script rebuilds
the master notebook, the student release (template plus `faces.py`) and the sample
submissions from it, so none of them can drift from the source. A test rebuilds into a
temporary folder and compares, which catches a forgotten rebuild.

Each sample is made from the solved notebook by a small textual edit, and the edit must
match exactly as often as expected. Its written answers are a student's, never the master's
model answers (`STUDENT_ANSWERS`, or the sample's own). If the master changes so that an edit no longer
applies, the build fails. It does not quietly write a "broken" sample identical to the
correct one.
"""
from __future__ import annotations

import copy
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
MASTER = HERE / "source" / "conv_bn.py"
DATA_MODULE = HERE / "faces.py"

if __package__ in (None, "") and str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))  # run as a script from a checkout

import nbformat  # noqa: E402

from grader.authoring.assign import MARKDOWN_STUB, annotate, answer_question, make_template, read_master  # noqa: E402
from grader.authoring.samples import answer_cell as _answer, edit_cell as _edit  # noqa: E402
from grader.authoring.samples import write_notebook as _write  # noqa: E402


def _relu_before_bn(nb):
    return _edit(nb, "happyModel",
                 "        tfl.BatchNormalization(axis=3),\n        tfl.ReLU(),\n",
                 "        tfl.ReLU(),\n        tfl.BatchNormalization(axis=3),\n")


def _bn_missing(nb):
    return _edit(nb, "convolutional_model", "    x = tfl.BatchNormalization(axis=3)(x)\n", "", count=2)


def _test_stats_leak(nb):
    return _edit(nb, "standardize",
                 "    X_test_std = ((test - mean) / std).astype(np.float32)",
                 "    X_test_std = ((test - test.mean(axis=axes)) / test.std(axis=axes)).astype(np.float32)")


def _eps_outside_sqrt(nb):
    return _edit(nb, "batchnorm_forward", "np.sqrt(var + eps)", "(np.sqrt(var) + eps)")


LONG_TRAINING_CELL = """\
%matplotlib inline
# More data and more epochs, to see how good happyModel can get.
X_big, y_big, _, _ = load_faces(n_train=20000, n_test=2)
model = happyModel()
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(X_big, y_big, epochs=200, batch_size=16)
"""


def _broken_tags(nb):
    """What a student's notebook looks like after retyping the answers into new cells.

    Cells the student creates carry no metadata, so the grader must find the functions by
    name. The added training cell would run for hours if the grader executed the notebook
    top to bottom.
    """
    graded = [c for c in nb.cells if c.metadata.get("grader", {}).get("grade")]
    others = [c for c in nb.cells if not c.metadata.get("grader", {}).get("grade")]
    for cell in graded:
        cell.metadata = {}
    nb.cells = others + graded + [nbformat.v4.new_code_cell(LONG_TRAINING_CELL.rstrip("\n"), id="student-training")]
    return nb


def _no_answer_tags(nb):
    """The written answer cells lost their `written:ID` tags (retyped into new cells): the
    grader finds the answers below their questions and says so."""
    for cell in nb.cells:
        if answer_question(cell) is not None:
            cell.metadata["tags"] = []
    return nb


def _broken_tags_and_answer_tags(nb):
    return _no_answer_tags(_broken_tags(nb))


# What a good student writes (scored by a person: `grader review`).
STUDENT_ANSWERS = {
    "why_bn_after_conv": (
        "Whatever comes out of a Conv2D is what the next layer gets as input, and its mean and spread "
        "shift every time the conv weights are updated. BatchNormalization standardizes it per channel, "
        "so the next layer always sees inputs with a stable distribution, the same thing we did by hand "
        "for the images.\n\n"
        "It comes before the ReLU because then every channel is centred when it reaches the ReLU, which "
        "keeps roughly half of it (no channel is all negative and dead). The bias of the Conv2D is useless "
        "then, because BN subtracts the mean anyway and beta adds its own shift, so use_bias=False is fine."),
    "standardize_inputs": (
        "Yes. The first Conv2D sees the raw pixels, and its gradients are proportional to them, so a channel "
        "with big values (red) gets much bigger steps than a small one (blue) and one learning rate cannot fit "
        "both. Standardizing evens that out. The mean and std must come from X_train only and be reused "
        "for X_test, otherwise we would use information from the test set."),
}

WRONG_PLACE_ANSWER = (
    "BatchNormalization should really come after the ReLU, so that it normalizes the activations the next "
    "layer actually receives. It makes training faster.")

TEST_STATISTICS_ANSWER = (
    "Yes, both sets should be standardized, each with its own mean and standard deviation, so that the "
    "test images are centred at 0 too.")


def _mixed(nb):
    _edit(nb, "batchnorm_forward", "var = x.var(axis=axes)", "var = np.variance(x, axis=axes)")
    return _edit(nb, "convolutional_model", "\n    return model", "")


@dataclass(frozen=True)
class Sample:
    name: str
    contents: str
    should_fail: str
    make: Callable
    expected_score: float  # written into the sample's metadata; `grader validate-assignment` checks it
    # question id -> the sample's written answer; a question left out keeps the placeholder
    answers: dict = field(default_factory=lambda: dict(STUDENT_ANSWERS))


SAMPLES = (
    Sample("correct", "the master's solutions, outputs cleared",
           "nothing", lambda nb: nb, 23),
    Sample("template", "the untouched student template",
           "all four exercises (NotImplementedError); no written answers", None, 0, answers={}),
    Sample("relu_before_bn", "happyModel puts ReLU before BatchNormalization, and the written answer says "
           "BN belongs after the ReLU",
           "happyModel (layer order: BN must follow the Conv2D directly)", _relu_before_bn, 16,
           answers={**STUDENT_ANSWERS, "why_bn_after_conv": WRONG_PLACE_ANSWER}),
    Sample("bn_missing", "convolutional_model has no BatchNormalization layers",
           "convolutional_model (two layers missing, output shape still (None, 6))", _bn_missing, 16),
    Sample("test_stats_leak", "standardize uses the test set's own mean and std for X_test, and the written "
           "answer recommends it",
           "standardize (X_test values; X_train is still right)", _test_stats_leak, 20,
           answers={**STUDENT_ANSWERS, "standardize_inputs": TEST_STATISTICS_ANSWER}),
    Sample("eps_outside_sqrt", "batchnorm_forward divides by sqrt(var) + eps",
           "batchnorm_forward (error about 1e-3 for unit variance, large for small variance)",
           _eps_outside_sqrt, 20),
    Sample("broken_tags", "correct code, but the graded cells lost their tags and metadata and moved "
           "to the end, followed by a `%matplotlib inline` + `model.fit` cell that would train for hours; "
           "the written answer cells lost their `written:` tags",
           "nothing, if the grader finds functions by name and runs no top-level statements (and finds "
           "the answers below their questions)",
           _broken_tags_and_answer_tags, 23),
    Sample("mixed", "standardize and happyModel correct; batchnorm_forward raises AttributeError "
           "(np.variance); convolutional_model returns None",
           "batchnorm_forward and convolutional_model; standardize and happyModel pass; no written answers",
           _mixed, 12, answers={}),
)


def _readme() -> str:
    lines = ["# Sample submissions for conv_bn",
             "",
             "Generated by `assignments/conv_bn/build.py` from the master; do not edit by hand.",
             "Each sample needs `faces.py` (one folder up) to be importable, like a real submission.",
             "Written answers are a student's, never the master's model answers; they are scored by a person",
             "and count in no `expected_score`.",
             ""]
    lines += [f"- `{s.name}.ipynb`: {s.contents}. Should fail: {s.should_fail}. Scores {s.expected_score:g} / 23."
              for s in SAMPLES]
    return "\n".join(lines) + "\n"


def build(root: Path = HERE) -> list[Path]:
    """Write the master notebook, release and samples under `root`; return the paths written."""
    root = Path(root)
    master = read_master(MASTER)
    for cell in master.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    written = [_write(master, root / "source" / "conv_bn.ipynb")]

    template = make_template(master)
    written.append(_write(template, root / "release" / "conv_bn.ipynb"))
    (root / "release").mkdir(parents=True, exist_ok=True)
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
