"""What makes a submission cheap to grade must not change what it is graded on.

- a rebuilt model reused for another submission (grader.frameworks.keras.model_pool) computes exactly what
  a fresh rebuild of that submission's payload computes, is lent to one submission at a
  time, and is never kept when some of its state is outside its weights (but for a seed
  generator's, put back before each loan);
- the full garbage collection runs every N submissions or on growth, not on each;
- a tf_keras child no longer imports Keras 3 just to seed it.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

keras = pytest.importorskip("keras")

from grader.run.grading import _Memory  # noqa: E402
from grader.frameworks.keras.model_pool import ModelPool, pool_key, reusable  # noqa: E402
from grader.frameworks.keras.rebuild import rebuild  # noqa: E402
from grader.frameworks.keras.child.payload import ModelPayload  # noqa: E402


def _model(seed: int, dropout: bool = False):
    keras.backend.clear_session()  # the same generated layer names, as in each fresh sandbox child
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 3), keras.layers.BatchNormalization(),
              keras.layers.ReLU(), keras.layers.Flatten()]
    if dropout:
        layers.append(keras.layers.Dropout(0.5))
    layers.append(keras.layers.Dense(2))
    return keras.Sequential(layers)


def _payload(model, *, weightless: bool = False, locations=()) -> ModelPayload:
    return ModelPayload(config=model.to_json(), weights=tuple(model.get_weights()), keras="3",
                        class_name=type(model).__name__, weightless=weightless, locations=tuple(locations))


def _outputs(model, x, training):
    return np.asarray(model(x, training=training))


def test_a_reused_model_computes_what_a_fresh_rebuild_computes():
    pool = ModelPool()
    first, second = _payload(_model(1)), _payload(_model(2), locations=[("conv2d", "cell 3", 7, "Conv2D(3, 3)")])
    key = pool_key(first)
    assert key == pool_key(second)  # same architecture, other weights
    lent = rebuild(first)
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype(np.float32)
    lent(x, training=True)  # a check's training call moves the BatchNormalization statistics
    pool.give_back(key, lent)

    reused = pool.take(key, second)
    fresh = rebuild(second)
    assert reused is lent and pool.hits == 1
    for a, b in zip(reused.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    for training in (False, True):
        np.testing.assert_array_equal(_outputs(reused, x, training), _outputs(fresh, x, training))
    assert reused._grader_locations == {"conv2d": ("cell 3", 7, "Conv2D(3, 3)")}


def test_a_model_is_lent_to_one_submission_at_a_time():
    pool = ModelPool()
    payload = _payload(_model(1))
    key = pool_key(payload)
    pool.give_back(key, rebuild(payload))
    assert pool.take(key, payload) is not None
    assert pool.take(key, payload) is None  # not given back yet: the next one rebuilds


def test_a_seed_state_is_put_back_before_a_model_is_lent_again():
    """A Dropout's seed generator is the one state outside the weights a rebuilt model may
    have: a reused model draws the dropout masks its fresh rebuild drew, whatever the
    previous submission's training calls drew."""
    pool = ModelPool()
    payload = _payload(_model(1, dropout=True))
    model = rebuild(payload)
    assert reusable(model)  # the Dropout's seed generator is a variable, not a weight, and recorded
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype(np.float32)
    first_mask = _outputs(model, x, True)
    assert not np.array_equal(_outputs(model, x, True), first_mask)  # the seed moved on
    pool.give_back(pool_key(payload), model)
    reused = pool.take(pool_key(payload), payload)
    assert reused is model
    np.testing.assert_array_equal(_outputs(reused, x, True), first_mask)


def test_models_with_unrecorded_state_outside_their_weights_are_never_kept():
    """A model whose extra state the rebuild did not record (here: built directly) is never
    reused: setting its weights would not reset it."""
    pool = ModelPool()
    model = _model(1, dropout=True)
    assert not reusable(model)
    payload = _payload(model)
    pool.give_back(pool_key(payload), model)
    assert pool.take(pool_key(payload), payload) is None


def test_a_weightless_model_is_reused_with_the_fresh_weights_it_was_rebuilt_with():
    """Sent without weights (`weights=False`), a model gets fresh ones from its initializers,
    which the output checks never read; reused, it keeps its first rebuild's. Its key is
    not a weighted payload's of the same architecture (that one must get its weights set)."""
    pool = ModelPool()
    weightless, weighted = _payload(_model(1), weightless=True), _payload(_model(1))
    assert pool_key(weightless) != pool_key(weighted)
    model = rebuild(weightless)
    fresh = [w.copy() for w in model.get_weights()]
    pool.give_back(pool_key(weightless), model)
    assert pool.take(pool_key(weighted), weighted) is None
    reused = pool.take(pool_key(weightless), weightless)
    assert reused is model
    for a, b in zip(reused.get_weights(), fresh):
        np.testing.assert_array_equal(a, b)


def test_another_architecture_gets_another_key():
    other = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Flatten(), keras.layers.Dense(2)])
    assert pool_key(_payload(_model(1))) != pool_key(_payload(other))


def test_full_collection_every_n_submissions_or_on_growth():
    memory = _Memory()
    memory.every, memory.grow_mib = 5, 100.0
    assert [memory.due(500.0) for _ in range(5)] == [False, False, False, False, True]
    memory.collected(500.0)
    assert not memory.due(550.0)
    assert memory.due(601.0)  # grown by more than 100 MiB since the last collection


@pytest.fixture(scope="module")
def legacy_worker():
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    worker = Worker(framework=sandbox_side(keras="2")).start()
    yield worker
    worker.stop()


def _chunks(source: str) -> list[dict]:
    return [{"source": source, "line": 1, "label": "cell 1", "kind": "code"}]


def test_a_tf_keras_child_does_not_import_keras_3_to_seed_itself(legacy_worker):
    source = ("import sys\nimport tensorflow as tf\n"
              "def loaded():\n    return sorted(m for m in ('keras', 'tf_keras') if m in sys.modules)\n"
              "def draw():\n    return float(tf.random.uniform(()))\n")
    first = legacy_worker.session(_chunks(source), seed=3)
    second = legacy_worker.session(_chunks(source), seed=3)
    try:
        assert first.call("loaded").value == ["tf_keras"]
        # Still seeded: two children draw the same numbers.
        assert first.call("draw", seed=3).value == second.call("draw", seed=3).value
    finally:
        first.close()
        second.close()


# ---------------------------------------------------------------- preload (spec key)

def test_declared_preloads_reach_every_child_and_missing_ones_are_reported():
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker
    source = "import sys\ndef loaded():\n    return 'mailbox' in sys.modules\n"
    with Worker(framework=sandbox_side(keras="3"), preload=["mailbox", "no_such_module_for_grader"]) as worker:
        assert [s.split(":")[0] for s in worker.info.get("preload_skipped", [])] == ["no_such_module_for_grader"]
        session = worker.session(_chunks(source))
        try:
            assert session.call("loaded").value is True
        finally:
            session.close()
        assert worker.probe()["threads"] == 1  # still safe to fork
    with Worker(framework=sandbox_side(keras="3")) as plain:
        session = plain.session(_chunks(source))
        try:
            assert session.call("loaded").value is False  # the child did not get it some other way
        finally:
            session.close()


def test_a_preload_that_starts_a_thread_is_refused_by_name(tmp_path):
    import subprocess
    import sys
    (tmp_path / "spins.py").write_text("import threading, time\n"
                                       "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from grader.sandbox.worker import PreloadUnsafe, _preload_declared\n"
            "assert _preload_declared(['json']) == []\n"
            "try:\n    _preload_declared(['spins'])\nexcept PreloadUnsafe as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent),
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert "preloading `spins`" in out.stdout and "started 1 thread" in out.stdout, out.stderr[-2000:]


def test_preload_is_a_spec_key_checked_for_module_names():
    from grader.assignment.spec import spec_problems
    base = {"exercises": ["f"], "reference": "r.py"}
    assert spec_problems({**base, "preload": ["matplotlib.pyplot", "h5py"]}) == []
    assert "import name" in " ".join(spec_problems({**base, "preload": ["import h5py"]}))
    assert "list of strings" in " ".join(spec_problems({**base, "preload": "h5py"}))


def test_large_models_are_never_kept_and_the_pool_stays_within_its_budget():
    payload = _payload(_model(1))  # 6*6*... a few hundred weights
    size = sum(int(np.prod(w.shape)) for w in payload.weights)
    small = ModelPool(max_values=size - 1)
    small.give_back(pool_key(payload), rebuild(payload))
    assert small.take(pool_key(payload), payload) is None and small.held() == 0

    pool = ModelPool(max_values=size * 2)
    other = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Flatten(), keras.layers.Dense(2)])
    pool.give_back(pool_key(payload), rebuild(payload))
    pool.give_back(pool_key(payload), rebuild(payload))
    assert pool.held() == 2 * size
    pool.give_back(pool_key(_payload(other)), rebuild(_payload(other)))  # over budget: the oldest key goes
    assert pool.held() <= 2 * size and pool.take(pool_key(payload), payload) is None
