"""A reference model has the same weights in every grading process, whichever test builds
it first and whatever random state the process is in: the numbers feedback quotes from
it must not change between two gradings of the same notebook."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from grader.run.plugin import _ReferenceModels

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "conv_bn.py"


def _fresh_reference(name: str) -> _ReferenceModels:
    spec = importlib.util.spec_from_file_location(name, REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return _ReferenceModels(module)


def test_reference_weights_do_not_depend_on_the_process_random_state():
    import keras
    weights = []
    for state, name in ((1, "ref_seed_a"), (987654, "ref_seed_b")):
        keras.utils.set_random_seed(state)  # what earlier tests or builds left behind
        np.random.random(7 * state % 13 + 1)
        model = _fresh_reference(name).convolutional_model((64, 64, 3))
        weights.append(model.get_weights())
    assert len(weights[0]) > 2
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_different_builds_get_different_seeds():
    ref = _fresh_reference("ref_seed_c")
    small, large = ref.convolutional_model((32, 32, 3)), ref.convolutional_model((64, 64, 3))
    assert not np.array_equal(small.get_weights()[0], large.get_weights()[0])
