"""scikit-learn's own tests of ``log_loss``, run against ``crossentropy.log_loss``.

Adapted from scikit-learn's test suite (BSD-3-Clause), ``sklearn/metrics/tests/
test_classification.py`` of scikit-learn 1.9.1: ``test_log_loss``, ``test_log_loss_eps``,
``test_log_loss_not_probabilities_warning``, ``test_log_loss_perfect_predictions``,
``test_log_loss_pandas_input`` and ``test_log_loss_warnings``. Their inputs, values and
assertions are kept; what changed:

- the expected error and warning messages are matched on what this package's messages
  say (the same facts, in other words), with the same exception and warning types;
- ``scipy.stats.bernoulli.logpmf`` is written out with ``np.log``, so that SciPy is not
  needed, and scikit-learn's internal ``MockDataFrame`` is replaced by a small
  array-like of the same kind;
- ``test_log_loss_y_pred_deprecation`` is not ported: it tests scikit-learn's
  deprecated ``y_pred=`` keyword, which this function never had.

None of these tests needs scikit-learn.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose

from crossentropy import log_loss


class _ArrayLike:
    """An array-like that is not an ndarray, in the spirit of scikit-learn's MockDataFrame."""

    def __init__(self, array):
        self.array = np.asarray(array)
        self.shape = self.array.shape
        self.ndim = self.array.ndim

    def __len__(self):
        return len(self.array)

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


def test_log_loss():
    # binary case with symbolic labels ("no" < "yes")
    y_true = ["no", "no", "no", "yes", "yes", "yes"]
    y_proba = np.array(
        [[0.5, 0.5], [0.1, 0.9], [0.01, 0.99], [0.9, 0.1], [0.75, 0.25], [0.001, 0.999]]
    )
    loss = log_loss(y_true, y_proba)
    positive = np.array(y_true) == "yes"
    loss_true = -np.mean(np.where(positive, np.log(y_proba[:, 1]), np.log1p(-y_proba[:, 1])))
    assert_allclose(loss, loss_true)

    # multiclass case; adapted from http://bit.ly/RJJHWA
    y_true = [1, 0, 2]
    y_proba = [[0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.6, 0.1, 0.3]]
    loss = log_loss(y_true, y_proba, normalize=True)
    assert_allclose(loss, 0.6904911)

    # check that we got all the shapes and axes right
    # by doubling the length of y_true and y_proba
    y_true *= 2
    y_proba *= 2
    loss = log_loss(y_true, y_proba, normalize=False)
    assert_allclose(loss, 0.6904911 * 6)

    # raise error if number of classes are not equal.
    y_true = [1, 0, 2]
    y_proba = [[0.3, 0.7], [0.6, 0.4], [0.4, 0.6]]
    with pytest.raises(ValueError):  # noqa: PT011  (as in scikit-learn)
        log_loss(y_true, y_proba)

    # raise error if labels do not contain all values of y_true
    y_true = ["a", "b", "c"]
    y_proba = [[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.1, 0.1, 0.8]]
    labels = ["a", "c", "d"]
    error_str = "y_true contains labels {'b'} that are not in labels ['a', 'c', 'd']"
    with pytest.raises(ValueError, match=re.escape(error_str)):
        log_loss(y_true, y_proba, labels=labels)

    # case when y_true is a string array object
    y_true = ["ham", "spam", "spam", "ham"]
    y_proba = [[0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.7, 0.3]]
    loss = log_loss(y_true, y_proba)
    assert_allclose(loss, 0.7469410)

    # test labels option

    y_true = [2, 2]
    y_proba = [[0.2, 0.8], [0.6, 0.4]]
    y_score = np.array([[0.1, 0.9], [0.1, 0.9]])
    error_str = "y_true contains only one label (2); pass every class, sorted, with labels="
    with pytest.raises(ValueError, match=re.escape(error_str)):
        log_loss(y_true, y_proba)

    y_proba = [[0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]
    error_str = "y_proba and y_true must have the same number of samples, got [3, 2]"
    with pytest.raises(ValueError, match=re.escape(error_str)):
        log_loss(y_true, y_proba)

    # works when the labels argument is used

    true_log_loss = -np.mean(np.log(y_score[:, 1]))
    calculated_log_loss = log_loss(y_true, y_score, labels=[1, 2])
    assert_allclose(calculated_log_loss, true_log_loss)

    # ensure labels work when len(np.unique(y_true)) != y_proba.shape[1]
    y_true = [1, 2, 2]
    y_score2 = [[0.7, 0.1, 0.2], [0.2, 0.7, 0.1], [0.1, 0.7, 0.2]]
    loss = log_loss(y_true, y_score2, labels=[1, 2, 3])
    assert_allclose(loss, -np.log(0.7))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_log_loss_eps(dtype):
    """Check the behaviour internal eps that changes depending on the input dtype.

    Non-regression test for scikit-learn issue 24315.
    """
    y_true = np.array([0, 1], dtype=dtype)
    y_proba = np.array([1, 0], dtype=dtype)

    loss = log_loss(y_true, y_proba)
    assert np.isfinite(loss)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_log_loss_not_probabilities_warning(dtype):
    """Check that log_loss raises a warning when y_proba values don't sum to 1."""
    y_true = np.array([0, 1, 1, 0])
    y_proba = np.array([[0.2, 0.7], [0.6, 0.3], [0.4, 0.7], [0.8, 0.3]], dtype=dtype)

    with pytest.warns(UserWarning, match="y_proba: 4 row.* do not sum to 1"):
        log_loss(y_true, y_proba)


@pytest.mark.parametrize(
    ("y_true", "y_proba"),
    [
        ([0, 1, 0], [0, 1, 0]),
        ([0, 1, 0], [[1, 0], [0, 1], [1, 0]]),
        ([0, 1, 2], [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
    ],
)
def test_log_loss_perfect_predictions(y_true, y_proba):
    """Check that log_loss returns 0 for perfect predictions."""
    # Because of the clipping, the result is not exactly 0
    assert log_loss(y_true, y_proba) == pytest.approx(0)


def test_log_loss_pandas_input():
    # case when input is a pandas series and dataframe (scikit-learn gh-5715)
    y_tr = np.array(["ham", "spam", "spam", "ham"])
    y_pr = np.array([[0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.7, 0.3]])
    types = [(_ArrayLike, _ArrayLike)]
    try:
        from pandas import DataFrame, Series

        types.append((Series, DataFrame))
    except ImportError:
        pass
    for true_input_type, pred_input_type in types:
        # y_proba dataframe, y_true series
        y_true, y_proba = true_input_type(y_tr), pred_input_type(y_pr)
        loss = log_loss(y_true, y_proba)
        assert_allclose(loss, 0.7469410)


def test_log_loss_warnings():
    expected_message = re.escape(
        "labels ['spam', 'eggs', 'ham'] are not sorted: the columns of y_proba are taken "
        "in the sorted order labels=['eggs', 'ham', 'spam']"
    )
    with pytest.warns(UserWarning, match=expected_message):
        log_loss(
            ["eggs", "spam", "ham"],
            [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            labels=["spam", "eggs", "ham"],
        )
