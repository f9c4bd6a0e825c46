"""Argument checking and conversion, shared by every loss.

Every function here raises ``TypeError`` for a wrong kind of value and ``ValueError``
for a wrong value, with a message that names the argument, what was expected and
what was given. None of them writes into an array it is given.
"""

from __future__ import annotations

import math
import operator
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ._threads import run_in_ranges
from ._types import BoolArray, FloatArray, Reduction

__all__ = [
    "ProbabilitySumWarning",
    "as_float_argument",
    "as_real_array",
    "broadcast_argument",
    "check_axis",
    "check_balanced",
    "check_binary_target",
    "check_class_weight",
    "check_eps",
    "check_focal",
    "check_ignore_index",
    "check_label_smoothing",
    "check_memory_budget",
    "check_out",
    "check_real_dtype",
    "check_reduction",
    "check_return_flag",
    "check_softcap",
    "check_unit_interval",
    "check_weight",
    "check_where",
    "check_where_dtype",
    "check_z_loss",
    "refuse_masked",
    "rows_off_one",
    "unmasked",
    "value_bounds",
    "warn",
    "warn_if_integer_probabilities",
    "warn_if_rows_do_not_sum_to_one",
    "warn_rows_off_one",
]

_REDUCTIONS = ("mean", "sum", "none")
# Elements checked at a time: a block stays in cache for its minimum and maximum.
_CHECK_BLOCK = 1 << 16
# Frames in this folder are not "the caller" that a warning points at.
_PACKAGE_FOLDER = os.path.dirname(__file__) + os.sep


class ProbabilitySumWarning(UserWarning):
    """Rows of probabilities that do not sum to 1 along the class axis.

    The loss is computed as given; filter this category to silence exactly this
    warning, for instance with ``warnings.simplefilter("ignore", ce.ProbabilitySumWarning)``.

    Examples
    --------
    >>> import warnings
    >>> import crossentropy as ce
    >>> probs = [[0.5, 0.6], [0.2, 0.8]]  # the first row sums to 1.1
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     loss = ce.categorical_cross_entropy(probs, [0, 1])
    >>> [warning.category.__name__ for warning in caught]
    ['ProbabilitySumWarning']
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error")
    ...     warnings.simplefilter("ignore", ce.ProbabilitySumWarning)
    ...     float(ce.categorical_cross_entropy(probs, [0, 1]))
    0.4581...
    """


def _is_internal(filename: str) -> bool:
    if filename.startswith(_PACKAGE_FOLDER):
        return True
    # Dask runs chunk tasks through its own frames: they are not the caller either.
    return any(f"{os.sep}{name}{os.sep}" in filename for name in ("dask", "distributed", "toolz"))


def warn(message: str, category: type[Warning]) -> None:
    """Warn, pointing at the first frame outside this package (and Dask): the caller's line.

    Where no such frame exists (a chunk task on one of Dask's worker threads), the
    warning points at the outermost frame.
    """
    frame = sys._getframe(1)
    level = 2  # stacklevel 2 is the frame that called this function
    while frame.f_back is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _describe(array: Any) -> str:
    return f"an array of shape {array.shape} and dtype {array.dtype}"


def check_real_dtype(array: Any, name: str) -> None:
    """Raise unless `array` (NumPy or Dask) has a real dtype: float, int or bool."""
    if array.dtype.kind not in "biuf":
        msg = f"{name} must hold real numbers (float, int or bool), got {_describe(array)}"
        raise TypeError(msg)


def check_where_dtype(array: Any) -> None:
    """Raise unless `where` (NumPy or Dask) is boolean."""
    if array.dtype != np.bool_:
        msg = f"where must be a boolean array, got {_describe(array)}"
        raise TypeError(msg)


def unmasked(value: object, name: str) -> tuple[object, BoolArray | None]:
    """Return a NumPy masked array's data and its mask (None: nothing is masked).

    Anything else comes back as it is, with None. The data is not copied: the masked
    values are left out of every check, and the kernels weigh them by exactly 0.
    """
    if not isinstance(value, np.ma.MaskedArray):
        return value, None
    mask = np.ma.getmaskarray(value)
    if not mask.any():
        return value.data, None
    if value.dtype.kind not in "biuf":
        msg = f"{name} must hold real numbers (float, int or bool), got a masked {value.dtype}"
        raise TypeError(msg)
    return value.data, mask


def refuse_masked(value: object, name: str) -> object:
    """Return the data of `value`, or raise if it is a masked array with masked entries."""
    if isinstance(value, np.ma.MaskedArray):
        if np.ma.getmaskarray(value).any():
            msg = (
                f"{name} must not have masked entries, got a masked array with "
                f"{np.count_nonzero(np.ma.getmaskarray(value))} masked; leave elements out "
                "with where= or by masking the input instead"
            )
            raise ValueError(msg)
        return value.data
    return value


def as_real_array(value: object, name: str) -> np.ndarray[Any, Any]:
    """Return `value` as a NumPy array of a real (float, int or bool) dtype."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged nested lists, for instance
        msg = f"{name} must be array-like, got {type(value).__name__}: {error}"
        raise TypeError(msg) from None
    check_real_dtype(array, name)
    return array


def computation_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """Return the dtype a loss computes in for a first argument of `dtype`.

    float32 and float64 are kept, float16 is computed in float32, integer and bool
    arrays (and longer floats) in float64.
    """
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind in "biu" or dtype.itemsize > 8:
        return np.dtype(np.float64)
    return dtype


def as_float_argument(value: object, name: str, dtype: np.dtype[Any]) -> FloatArray:
    """Convert a floating argument (targets, weights) to the computation dtype."""
    return as_real_array(value, name).astype(dtype, copy=False)


def check_reduction(reduction: object) -> Reduction:
    """Return `reduction` if it is one of ``"mean"``, ``"sum"``, ``"none"``."""
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        msg = f"reduction must be one of 'mean', 'sum', 'none', got {reduction!r}"
        raise ValueError(msg)
    return reduction  # type: ignore[return-value]


def check_return_flag(value: object, name: str) -> bool:
    """Return `value` if it is a bool (``return_grad``, ``return_hess``)."""
    if not isinstance(value, bool | np.bool_):
        msg = f"{name} must be a bool, got {value!r} of type {type(value).__name__}"
        raise TypeError(msg)
    return bool(value)


def _check_real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        msg = f"{name} must be a real number, got {value!r} of type {type(value).__name__}"
        raise TypeError(msg)
    return float(value)


def check_label_smoothing(label_smoothing: object) -> float:
    """Return `label_smoothing` as a float in [0, 1]."""
    value = _check_real(label_smoothing, "label_smoothing")
    if not 0.0 <= value <= 1.0:
        msg = f"label_smoothing must be in [0, 1], got {label_smoothing!r}"
        raise ValueError(msg)
    return value


def check_memory_budget(memory_budget: object) -> int:
    """Return `memory_budget`, a positive int: a number of bytes."""
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int | np.integer):
        msg = (
            "memory_budget must be an int, a number of bytes, got "
            f"{memory_budget!r} of type {type(memory_budget).__name__}"
        )
        raise TypeError(msg)
    if memory_budget < 1:
        msg = f"memory_budget must be a positive number of bytes, got {memory_budget}"
        raise ValueError(msg)
    return int(memory_budget)


def check_eps(eps: object, dtype: np.dtype[Any]) -> float:
    """Return the clipping bound: `eps`, or the machine epsilon of `dtype` for None."""
    if eps is None:
        return float(np.finfo(dtype).eps)
    value = _check_real(eps, "eps")
    if not 0.0 <= value <= 0.5:
        msg = f"eps must be None or a number in [0, 0.5], got {eps!r}"
        raise ValueError(msg)
    return value


def check_focal(gamma: object, alpha: object) -> tuple[float, float | None]:
    """Return the focusing exponent `gamma` (finite, >= 0) and `alpha` (None or in [0, 1])."""
    gamma_value = _check_real(gamma, "gamma")
    if not 0.0 <= gamma_value < math.inf:
        msg = f"gamma must be a finite number >= 0, got {gamma!r}"
        raise ValueError(msg)
    if alpha is None:
        return gamma_value, None
    alpha_value = _check_real(alpha, "alpha")
    if not 0.0 <= alpha_value <= 1.0:
        msg = f"alpha must be None or a number in [0, 1], got {alpha!r}"
        raise ValueError(msg)
    return gamma_value, alpha_value


def check_z_loss(z_loss: object, dtype: np.dtype[Any]) -> float:
    """Return `z_loss` as a float >= 0 that is finite in the computation `dtype`."""
    if z_loss.__class__ is float and z_loss == 0.0:
        return 0.0  # the default, at no cost
    value = _check_real(z_loss, "z_loss")
    if not 0.0 <= value < math.inf:
        msg = f"z_loss must be a finite number >= 0, got {z_loss!r}"
        raise ValueError(msg)
    if value and value > float(np.finfo(dtype).max):
        msg = f"z_loss must be at most the largest {dtype} number, got {z_loss!r}"
        raise ValueError(msg)
    return value


def check_softcap(softcap: object, dtype: np.dtype[Any]) -> float | None:
    """Return `softcap` as None or a float > 0 that is a normal number of `dtype`."""
    if softcap is None:
        return None
    value = _check_real(softcap, "softcap")
    if not 0.0 < value < math.inf:
        msg = f"softcap must be None or a finite number > 0, got {softcap!r}"
        raise ValueError(msg)
    info = np.finfo(dtype)
    if not float(info.tiny) <= value <= float(info.max):
        msg = (
            f"softcap must be a normal {dtype} number, in [{info.tiny}, {info.max}], "
            f"got {softcap!r}"
        )
        raise ValueError(msg)
    return value


def check_axis(axis: object, ndim: int) -> int:
    """Return `axis` as a non-negative index into `ndim` dimensions."""
    if isinstance(axis, bool):
        msg = f"axis must be an int, got {axis!r}"
        raise TypeError(msg)
    try:
        index = operator.index(axis)  # type: ignore[arg-type]
    except TypeError:
        msg = f"axis must be an int, got {axis!r} of type {type(axis).__name__}"
        raise TypeError(msg) from None
    if not -ndim <= index < ndim:
        msg = f"axis {index} is out of range for an input with {ndim} dimension(s)"
        raise ValueError(msg)
    return index % ndim


def check_ignore_index(ignore_index: object) -> int | None:
    """Return `ignore_index` as an int, or None."""
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer):
        msg = (
            f"ignore_index must be an int or None, got {ignore_index!r} "
            f"of type {type(ignore_index).__name__}"
        )
        raise TypeError(msg)
    return int(ignore_index)


def broadcast_argument(
    array: Any,
    name: str,
    shape: tuple[int, ...],
    what: str,
    broadcast_to: Callable[[Any, tuple[int, ...]], Any] = np.broadcast_to,
) -> Any:
    """Return `array` broadcast to `shape` (with `broadcast_to`), or raise naming it."""
    try:
        return broadcast_to(array, shape)
    except ValueError:
        msg = f"{name} of shape {array.shape} does not broadcast against the {what} {shape}"
        raise ValueError(msg) from None


def check_weight(
    weight: object, name: str, shape: tuple[int, ...], what: str, dtype: np.dtype[Any]
) -> np.ndarray[Any, Any]:
    """Return a weight, finite and non-negative in `dtype`, that broadcasts to `shape`.

    The weight comes back as a NumPy array of its own shape and real dtype (it is
    broadcast and converted a block at a time where it is used); it is read once, block
    by block, for its minimum and maximum, which are checked as they are in `dtype`.
    """
    array = as_real_array(refuse_masked(weight, name), name)
    broadcast = broadcast_argument(array, name, shape, what)
    low, high = value_bounds(array.view(np.uint8) if array.dtype == np.bool_ else array)
    if array.size == 0:
        low, high = 0, 0
    with np.errstate(over="ignore"):
        low, high = dtype.type(low), dtype.type(high)
    if not (np.isfinite(low) and np.isfinite(high)):
        msg = f"{name} must be finite, got {_describe(broadcast)} with non-finite values"
        raise ValueError(msg)
    if low < 0:
        msg = f"{name} must be >= 0, got a minimum of {low}"
        raise ValueError(msg)
    return array


def check_balanced(value: object, name: str, expected: str) -> bool:
    """Return whether `value` is the string ``"balanced"``; raise for any other string.

    `expected` describes what else `name` may be, for the message.
    """
    if not isinstance(value, str):
        return False
    if value != "balanced":
        msg = f"{name} must be None, 'balanced' or {expected}, got the string {value!r}"
        raise ValueError(msg)
    return True


def check_class_weight(
    class_weight: object, n_classes: int, dtype: np.dtype[Any]
) -> FloatArray | None:
    """Return `class_weight` as a finite, non-negative vector of length `n_classes`.

    ``"balanced"`` is resolved by the caller, from the targets; other strings raise.
    """
    if class_weight is None:
        return None
    expected = f"an array of {n_classes} weights, one per class index"
    balanced = check_balanced(class_weight, "class_weight", expected)
    assert not balanced, "class_weight='balanced' is resolved from the targets beforehand"
    if isinstance(class_weight, dict):
        msg = (
            f"class_weight must be None, 'balanced' or {expected}, got a dict; pass for "
            f"instance np.array([weights[c] for c in range({n_classes})])"
        )
        raise TypeError(msg)
    weight = as_float_argument(refuse_masked(class_weight, "class_weight"), "class_weight", dtype)
    if weight.shape != (n_classes,):
        msg = (
            f"class_weight must have shape ({n_classes},), one weight per class, "
            f"got shape {weight.shape}"
        )
        raise ValueError(msg)
    return check_weight(weight, "class_weight", (n_classes,), "classes", dtype)


def check_where(where: object, shape: tuple[int, ...], what: str) -> BoolArray | None:
    """Return `where` as a boolean array broadcast to `shape`, or None."""
    if where is None:
        return None
    array = np.asarray(refuse_masked(where, "where"))
    check_where_dtype(array)
    return broadcast_argument(array, "where", shape, what)  # type: ignore[no-any-return]


def value_bounds(values: np.ndarray[Any, Any]) -> tuple[Any, Any]:
    """Return the minimum and maximum of `values` (NaN if any is NaN; +-inf if empty).

    Large arrays are read block by block on every core, each block once for both.
    """
    flat = values.reshape(-1)
    if 0 < flat.size <= _CHECK_BLOCK:
        return flat.min(), flat.max()
    if flat.dtype.kind == "f":
        start_low, start_high = flat.dtype.type(np.inf), flat.dtype.type(-np.inf)
    else:
        start_low, start_high = np.iinfo(flat.dtype).max, np.iinfo(flat.dtype).min
    if flat.size == 0:
        return start_low, start_high

    def bounds(start: int, stop: int) -> tuple[Any, Any]:
        low, high = start_low, start_high
        for begin in range(start, stop, _CHECK_BLOCK):
            part = flat[begin : begin + _CHECK_BLOCK]
            low = np.minimum(low, part.min())
            high = np.maximum(high, part.max())
        return low, high

    ranges = run_in_ranges(bounds, flat.size, 1)
    return np.min([low for low, _ in ranges]), np.max([high for _, high in ranges])


def check_unit_interval(
    values: np.ndarray[Any, Any], name: str, counted: np.ndarray[Any, Any] | None
) -> None:
    """Raise unless every counted value lies in [0, 1] (NaN does not)."""
    if counted is None:
        low, high = value_bounds(values)
        if low >= 0 and high <= 1:
            return
    inside = (values >= 0) & (values <= 1)
    if counted is not None:
        inside |= ~counted
    if not np.all(inside):
        bad = values[~inside]
        msg = (
            f"{name} must lie in [0, 1], got {bad.size} value(s) outside it "
            f"or NaN, for example {bad.flat[0].item()!r}"
        )
        raise ValueError(msg)


def check_binary_target(
    array: np.ndarray[Any, Any],
    dtype: np.dtype[Any],
    counted: np.ndarray[Any, Any] | None,
) -> np.ndarray[Any, Any]:
    """Return a binary target (of the input's shape, checked by the caller) in [0, 1].

    Integer and floating targets come back as they are, bools as ``uint8``: integers
    must hold only 0 and 1, floats lie in [0, 1] once in the computation `dtype`,
    where `counted` (None: everywhere).
    """
    if array.dtype.kind == "b":
        return array.view(np.uint8)
    if counted is None:
        low, high = value_bounds(array)
        if array.dtype.kind == "f":
            low, high = dtype.type(low), dtype.type(high)
        if array.size == 0 or (low >= 0 and high <= 1):
            return array
    if array.dtype.kind in "iu":
        is_binary = (array == 0) | (array == 1)
        if counted is not None:
            is_binary |= ~counted
        if not np.all(is_binary):
            msg = (
                "target with an integer dtype must hold only 0 and 1, got "
                f"{array[~is_binary].flat[0].item()!r}"
            )
            raise ValueError(msg)
        return array
    check_unit_interval(array.astype(dtype, copy=False), "target", counted)
    return array


def rows_off_one(
    sums: np.ndarray[Any, Any], counted: np.ndarray[Any, Any] | None
) -> tuple[int, Any]:
    """Return how many row `sums` of probabilities are not 1, and one of them (or None).

    The tolerance is that of :func:`warn_if_rows_do_not_sum_to_one`; rows not
    `counted` are not checked.
    """
    tolerance = np.sqrt(np.finfo(sums.dtype).eps)
    if counted is None and (
        sums.size == 0 or (sums.min() >= 1 - tolerance and sums.max() <= 1 + tolerance)
    ):
        return 0, None
    off = np.abs(sums - 1) > tolerance
    if counted is not None:
        off &= counted
    count = int(np.count_nonzero(off))
    return count, (sums[off][0] if count else None)


def warn_rows_off_one(name: str, count: int, example: Any, dtype: np.dtype[Any]) -> None:
    """Warn that `count` rows of `name` (of `dtype`) do not sum to 1, `example` one sum."""
    if count:
        tolerance = np.sqrt(np.finfo(dtype).eps)
        msg = (
            f"{name}: {count} row(s) along the class axis do not sum to 1 "
            f"(tolerance {tolerance:.2g}), for example {example.item()!r}; "
            "the loss is computed as given"
        )
        warn(msg, ProbabilitySumWarning)


def warn_if_rows_do_not_sum_to_one(
    sums: np.ndarray[Any, Any], name: str, counted: np.ndarray[Any, Any] | None
) -> None:
    """Warn, as scikit-learn does, when the row `sums` of probabilities are not 1.

    The tolerance is ``sqrt(eps)`` of the dtype of `sums`; rows not `counted` are not
    checked. The category is :class:`ProbabilitySumWarning`.
    """
    warn_rows_off_one(name, *rows_off_one(sums, counted), sums.dtype)


def warn_if_integer_probabilities(dtype: np.dtype[Any], function: str) -> None:
    """Warn when the `probs` of `function` have an integer or bool `dtype`.

    Such arrays are most often labels passed first, in scikit-learn's order.
    """
    if dtype.kind in "biu":
        msg = (
            f"probs of {function} has the dtype {dtype}: predicted probabilities are "
            f"usually floats. {function} takes (probs, target), predictions first; "
            "scikit-learn's log_loss takes (y_true, y_proba). Cast probs to float if "
            "the order is right"
        )
        warn(msg, UserWarning)


def check_out(
    out: object, shape: tuple[int, ...], dtype: np.dtype[Any], *inputs: object
) -> FloatArray:
    """Return `out` if it can receive the gradient and shares no memory with an input."""
    if not isinstance(out, np.ndarray):
        msg = f"out must be a NumPy array, got {type(out).__name__}"
        raise TypeError(msg)
    if out.dtype != dtype:
        msg = f"out must have the computation dtype {dtype}, got dtype {out.dtype}"
        raise TypeError(msg)
    if out.shape != shape:
        msg = f"out must have the input's shape {shape}, got shape {out.shape}"
        raise ValueError(msg)
    if not out.flags.writeable:
        msg = "out must be writeable, got a read-only array"
        raise ValueError(msg)
    for array in inputs:
        if isinstance(array, np.ndarray) and np.shares_memory(out, array):
            msg = "out must not share memory with an input array"
            raise ValueError(msg)
    return out
