"""Generic verdicts on arrays that came back from the sandbox: type, shape, dtype, values,
and whether an input was changed in place.

The exercise-specific checks (standardize, batchnorm) build on these so that every
exercise words the same kind of failure the same way, and so that the rule about hidden
inputs (never show an expected value when `reveal` is False) is enforced in one place.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from grader.checks import CheckFailed

__all__ = [
    "describe_value",
    "difference_message",
    "expect_array",
    "expect_close",
    "expect_floating",
    "expect_numbers",
    "expect_unchanged",
    "max_difference",
    "within_tolerance",
]


def _sentence(text: str) -> str:
    """Names like "the returned array" open sentences; names like "X_train_std" must keep
    their case, so only the first character is touched."""
    return text[:1].upper() + text[1:]


def _fmt(value: float) -> str:
    """Six significant digits: enough to see a 1e-4 difference on values of order 1-100,
    short enough to read."""
    return f"{float(value):.6g}"


def _shape_text(shape: tuple[int, ...]) -> str:
    """A 1-tuple prints as "(3,)", which students recognise from NumPy; keep that form."""
    return str(tuple(int(s) for s in shape))


def describe_value(obj: Any) -> str:
    """Say what a wrong return value is in the student's terms ("a list of 6 items"),
    since "not an ndarray" alone does not tell them what they did return."""
    if obj is None:
        return "None"
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return f"a {kind} of {len(obj)} item{'s' if len(obj) != 1 else ''}"
    if isinstance(obj, np.generic):
        return f"a single number ({type(obj).__name__})"
    if isinstance(obj, (bool, int, float, complex)):
        return f"a single number ({type(obj).__name__})"
    return f"a {type(obj).__name__}"


def _not_an_array_hint(obj: Any) -> str:
    """The fix differs by what came back: None means a missing return, a list means a
    missing conversion, a tuple often means an extra value (a cache) was returned."""
    if obj is None:
        return "Return the computed array: a function without a `return` statement returns None."
    if isinstance(obj, (list, tuple)):
        return ("Return one NumPy array: np.array(...) or np.stack(...) turns a list of arrays "
                "into one, and extra values (such as a cache) should not be returned.")
    return "Return a NumPy array."


def expect_array(found: Any, *, name: str, shape: tuple[int, ...] | None = None,
                 dtype: Any = None, same_as: str = "") -> np.ndarray:
    """Type, then shape, then dtype, each with its own diagnosis, because a wrong type makes
    the shape meaningless and a wrong shape makes the dtype beside the point.

    same_as names the input the shape is taken from ("X_test"), so the message can say
    where the expected shape comes from instead of presenting it as a magic number.
    Returns the array so callers can chain.
    """
    if not isinstance(found, np.ndarray):
        expected = f" of shape {_shape_text(shape)}" if shape is not None else ""
        raise CheckFailed(
            f"{_sentence(name)} is {describe_value(found)}, not a NumPy array{expected}.",
            hint=_not_an_array_hint(found), diagnosis="not_an_array")
    if shape is not None and tuple(found.shape) != tuple(shape):
        source = f", the same as {same_as}" if same_as else ""
        raise CheckFailed(
            f"{_sentence(name)} has shape {_shape_text(found.shape)} but should have shape "
            f"{_shape_text(shape)}{source}.",
            hint="Keep every axis: compute statistics with a reduction, but apply them to the "
                 "whole array so the result has the input's shape.",
            diagnosis="wrong_shape")
    if dtype is not None and found.dtype != np.dtype(dtype):
        raise CheckFailed(
            f"{_sentence(name)} has dtype {found.dtype} but should have dtype {np.dtype(dtype)}.",
            hint=f"Convert the result with `.astype(np.{np.dtype(dtype).name})` before returning it.",
            diagnosis="wrong_dtype")
    return found


_KINDS = {"c": "complex numbers", "U": "text", "S": "bytes", "O": "Python objects", "V": "raw records",
          "M": "dates", "m": "time spans"}


def expect_numbers(found: Any, *, name: str, shape: tuple[int, ...] | None = None,
                   same_as: str = "") -> np.ndarray:
    """The student's value as an array of real numbers (booleans and integers included),
    of `shape` when given; anything else that can come back from their function (None, a
    string, a dict, a ragged list, text or complex arrays) is a CheckFailed saying what it
    is, never a NumPy error reported as the grader's. A list of numbers is accepted as the
    array it spells."""
    if isinstance(found, np.ndarray):
        array = found
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                array = np.asarray(found)
        except (ValueError, TypeError, OverflowError):  # ragged lists, huge integers
            array = None
        if array is None or array.dtype.kind not in "biuf":
            expected = f" of shape {_shape_text(shape)}" if shape is not None else ""
            raise CheckFailed(f"{_sentence(name)} is {describe_value(found)}, not a NumPy array of numbers{expected}.",
                              hint=_not_an_array_hint(found), diagnosis="not_an_array")
    if array.dtype.kind not in "biuf":
        kind = _KINDS.get(array.dtype.kind, f"values of dtype {array.dtype}")
        raise CheckFailed(f"{_sentence(name)} holds {kind} (dtype {array.dtype}), not real numbers.",
                          hint="Compute with floating-point numbers and return them as one NumPy array.",
                          diagnosis="wrong_dtype")
    if shape is not None:
        expect_array(array, name=name, shape=shape, same_as=same_as)
    return array


def expect_floating(found: np.ndarray, *, name: str, atol: float) -> None:
    """Integers truncate every value and float16 rounds away more than the tolerance, so
    comparing such an array would only produce a confusing "values differ" message."""
    if found.dtype.kind != "f":
        raise CheckFailed(
            f"{_sentence(name)} has dtype {found.dtype}: it cannot hold the fractional values "
            f"of a normalized array (every value would be truncated or meaningless).",
            hint="Compute in floating point and return float32 (`.astype(np.float32)`).",
            diagnosis="wrong_dtype")
    resolution = float(np.finfo(found.dtype).resolution)
    if resolution > atol:
        raise CheckFailed(
            f"{_sentence(name)} has dtype {found.dtype}, which keeps only about "
            f"{np.finfo(found.dtype).precision} significant digits: too few to be compared "
            f"within the tolerance of {atol:g}.",
            hint="Return float32 (`.astype(np.float32)`).",
            diagnosis="wrong_dtype")


def max_difference(found: Any, expected: Any) -> tuple[float, tuple[int, ...] | None]:
    """The largest absolute difference and where it is, with NaN counted as infinitely far,
    because a NaN in a student's output is the most important thing to point at.

    Returns (0.0, None) for empty arrays: there is no place to point at.
    """
    a = np.asarray(found, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    diff = np.where(np.isnan(diff), np.inf, diff)
    if diff.size == 0:
        return 0.0, None
    flat = int(np.argmax(diff))
    index = tuple(int(i) for i in np.unravel_index(flat, diff.shape))
    return float(diff.reshape(-1)[flat]), index


def _outside(found: Any, expected: Any, rtol: float, atol: float) -> np.ndarray:
    """NaN matches only NaN: a reference never has one, but a wrong recipe computed to
    explain a student's output can (0/0 on a constant slice), exactly where theirs does."""
    a = np.asarray(found, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    return ~np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def within_tolerance(found: Any, expected: Any, *, rtol: float, atol: float) -> bool:
    """Shapes that differ are never close: broadcasting would hide a wrong shape."""
    if np.shape(found) != np.shape(expected):
        return False
    return not bool(np.any(_outside(found, expected, rtol, atol)))


def _tolerance_text(rtol: float, atol: float) -> str:
    if rtol:
        return f"{atol:g} + {rtol:g}·|expected|"
    return f"{atol:g}"


def _non_finite_message(found: np.ndarray, name: str) -> str | None:
    """NaN and inf have causes of their own (0/0, a zero std), worth naming directly."""
    a = np.asarray(found, dtype=np.float64)
    for test, what, cause in ((np.isnan, "NaN", "usually 0/0 or the square root of a negative number"),
                              (np.isinf, "infinite values", "usually a division by zero")):
        bad = test(a)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            return (f"{_sentence(name)} contains {what} ({int(bad.sum())} of {a.size} entries, the "
                    f"first at index {first}): {cause}.")
    return None


def difference_message(found: Any, expected: Any, *, name: str, rtol: float, atol: float,
                       reveal: bool) -> str:
    """How far off, where, and (only when `reveal`) the two values there.

    With reveal False the found value is withheld as well: together with the difference
    it would give the hidden expected value away.
    """
    special = _non_finite_message(found, name)
    if special:
        return special
    value, index = max_difference(found, expected)
    n_off = int(np.sum(_outside(found, expected, rtol, atol)))
    text = (f"{_sentence(name)} differs from the expected values in {n_off} of "
            f"{np.size(expected)} entries; the largest absolute difference is {value:.3g} "
            f"at index {index}")
    if reveal and index is not None:
        f = np.asarray(found, dtype=np.float64)[index]
        e = np.asarray(expected, dtype=np.float64)[index]
        text += f" (found {_fmt(f)}, expected {_fmt(e)})"
    return text + f", and the tolerance is {_tolerance_text(rtol, atol)}."


def expect_close(found: Any, expected: Any, *, name: str, rtol: float, atol: float,
                 reveal: bool, hint: str = "", diagnosis: str = "wrong_values") -> None:
    """Type, dtype and shape are checked first (expect_numbers): a value that is no array
    of numbers, or of another shape, is said to be that, not reported as a confusing value
    difference. The default diagnosis marks mismatches that no exercise-specific check
    could explain."""
    found = expect_numbers(found, name=name, shape=np.shape(expected))
    if within_tolerance(found, expected, rtol=rtol, atol=atol):
        return
    raise CheckFailed(difference_message(found, expected, name=name, rtol=rtol, atol=atol,
                                         reveal=reveal),
                      hint=hint, diagnosis=diagnosis)


def _same(before: np.ndarray, after: Any) -> bool:
    if not isinstance(after, np.ndarray) or after.shape != before.shape:
        return False
    equal_nan = before.dtype.kind in "fc" and after.dtype.kind in "fc"
    return bool(np.array_equal(before, after, equal_nan=equal_nan))


def _change_detail(before: np.ndarray, after: Any, reveal: bool) -> str:
    """Counts and a position are safe to show; the input values themselves only when
    the inputs are not hidden."""
    if not isinstance(after, np.ndarray):
        return f"it is now {describe_value(after)}"
    if after.shape != before.shape:
        return f"it now has shape {_shape_text(after.shape)} instead of {_shape_text(before.shape)}"
    changed = before != after
    if before.dtype.kind in "fc" and after.dtype.kind in "fc":
        changed &= ~(np.isnan(before) & np.isnan(after))
    first = tuple(int(i) for i in np.argwhere(changed)[0])
    detail = f"{int(changed.sum())} of {before.size} values are different after the call"
    if reveal:
        return detail + (f" (at index {first} it was {_fmt(before[first])} and is now "
                         f"{_fmt(after[first])})")
    return detail + f", the first at index {first}"


def expect_unchanged(before: np.ndarray, after: Any, *, name: str, function: str,
                     reveal: bool, hint: str = "") -> None:
    """An input written to in place corrupts the caller's data (running the cell twice
    applies the operation twice), even when the returned values are right.

    With reveal False no input value is shown: hidden inputs stay hidden.
    """
    if _same(before, after):
        return
    raise CheckFailed(
        f"{function} changed {name} in place: {_change_detail(before, after, reveal)}. The "
        f"caller's {name} is overwritten, so code that uses {name} afterwards sees modified "
        f"data, and running the cell twice applies the operation twice.",
        hint=hint or (f"Build the result as a new array instead of writing into {name}: "
                      f"`-=`, `/=`, `[...] =` and `out=` all modify the array you were given."),
        diagnosis="modified_input")
