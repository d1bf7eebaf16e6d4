"""A hidden test that makes the very same call a visible test made takes the visible child's
reply instead of asking a hidden child to compute it again (for a ResNet50, a second build
of 23.6 million weights per submission): a visible child never saw hidden inputs, so its
reply carries none. The hidden side still rebuilds its own model from that reply (the two
sides never share a model object), and any other call still runs in a hidden child.

Real notebook, real sandbox, real Keras models.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import notebook
from grader.assignment.spec import load_assignment
from grader.run.submission import Submission

sys.path.insert(0, str(Path(__file__).resolve().parent / "adversarial"))

import attacks  # noqa: E402

pytest.importorskip("keras")

CELL = """import keras

def build(units):
    print("building", units)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(units)])
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_assignment(attacks.write_assignment(tmp_path_factory.mktemp("tiny"), timeout=30))


def _calls(submission: Submission, side: str) -> int:
    session = submission._channels[side].session
    return session.calls if session is not None else 0


def test_the_same_call_on_the_hidden_side_reuses_the_visible_reply(tmp_path, tiny, worker):
    submission = Submission(notebook(tmp_path / "s.ipynb", CELL), tiny, worker).open()
    try:
        visible = submission.model("build", 4, weights=False)
        before = _calls(submission, "hidden")
        submission.use_channel("hidden")
        hidden = submission.model("build", 4, weights=False)
        assert _calls(submission, "hidden") == before  # no hidden child was asked
        assert hidden is not visible  # rebuilt on its own: the sides share no model
        assert hidden.to_json() == visible.to_json()
        other = submission.model("build", 5, weights=False)  # a call the visible side never made
        assert _calls(submission, "hidden") > before
        assert tuple(other.outputs[0].shape) == (None, 5)
        submission.use_channel("visible")
        assert submission.model("build", 4, weights=False) is visible  # its own cache, as before
        np.testing.assert_array_equal(np.asarray(visible(np.ones((1, 3), np.float32))).shape, (1, 4))
    finally:
        submission.close()


def test_visible_calls_never_reuse_hidden_replies(tmp_path, tiny, worker):
    submission = Submission(notebook(tmp_path / "s.ipynb", CELL), tiny, worker).open()
    try:
        submission.use_channel("hidden")
        submission.model("build", 4, weights=False)
        submission.use_channel("visible")
        before = _calls(submission, "visible")
        submission.model("build", 4, weights=False)
        assert _calls(submission, "visible") > before  # computed by a visible child
    finally:
        submission.close()
