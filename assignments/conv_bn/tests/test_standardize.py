"""standardize: per-channel statistics from the training set only, applied to both sets."""
from grader.checks.standardize import (expect_float32, expect_inputs_unchanged, expect_standardize_returns,
                                       expect_standardized_values, make_hidden_standardize_inputs)
from grader.testing import depends, exercise, points, title

pytestmark = exercise("standardize")


def _hidden_inputs(hidden_rng):
    return make_hidden_standardize_inputs(int(hidden_rng.integers(0, 2**31)))


@points(2)
@title("shape and dtype, inputs left untouched")
def test_shape_dtype_and_inputs_untouched(submission, hidden_rng):
    X_train, X_test = _hidden_inputs(hidden_rng)
    call = submission.call_full("standardize", X_train.copy(), X_test.copy(), return_args=True)
    expect_standardize_returns(call.value, X_train, X_test)
    train_after, test_after = call.args_after
    expect_inputs_unchanged(X_train, X_test, train_after, test_after, reveal=False)


@points(3)
@title("values on new data")
@depends("test_shape_dtype_and_inputs_untouched")
def test_values_on_hidden_data(submission, reference, hidden_rng):
    X_train, X_test = _hidden_inputs(hidden_rng)
    found = submission.call("standardize", X_train, X_test)
    expect_standardized_values(X_train, X_test, found, expected=reference.standardize(X_train, X_test), reveal=False)
    expect_float32(found)
