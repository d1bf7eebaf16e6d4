"""standardize: per-channel statistics over axes 0, 2, 3 of (N, C, H, W), from the training set only."""
from grader.checks.standardize import expect_inputs_unchanged
from grader.sandbox.errors import StudentCodeError
from grader.testing import depends, exercise, points, title

pytestmark = exercise("standardize")


def _call(submission, nchw, X_train, X_test, **kwargs):
    try:
        return submission.call_full("standardize", X_train, X_test, **kwargs)
    except StudentCodeError as exc:
        nchw.explain_broadcast(exc, what="The per-channel mean and std must line up with axis 1.")


@points(2)
@title("shape and dtype, inputs left untouched")
def test_shape_dtype_and_inputs_untouched(submission, nchw, hidden_rng):
    X_train, X_test = nchw.standardize_inputs(int(hidden_rng.integers(0, 2**31)))
    call = _call(submission, nchw, X_train.copy(), X_test.copy(), return_args=True)
    nchw.standardize_pair(call.value, X_train, X_test)
    train_after, test_after = call.args_after
    expect_inputs_unchanged(X_train, X_test, train_after, test_after, reveal=False)


@points(3)
@title("values on new data")
@depends("test_shape_dtype_and_inputs_untouched")
def test_values_on_hidden_data(submission, reference, nchw, hidden_rng):
    X_train, X_test = nchw.standardize_inputs(int(hidden_rng.integers(0, 2**31)))
    found = _call(submission, nchw, X_train, X_test).value
    nchw.expect_standardized(X_train, X_test, found, expected=reference.standardize(X_train, X_test), reveal=False)
    nchw.expect_float32(nchw.standardize_pair(found, X_train, X_test))
