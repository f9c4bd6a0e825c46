"""The public API used with types, as users write it: ``mypy --strict`` checks this file.

``mypy`` (in CI, and the ``[tool.mypy]`` files of pyproject.toml) fails when an overload
regresses: ``assert_type`` pins the type of what each call returns, and `_rejected`
holds calls that must not type-check, each with a ``type: ignore`` of the error that
is expected there, which ``--strict`` reports as unused if the call ever type-checks.
Run by pytest, the same calls check that the values are what their types say.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

import crossentropy as ce

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # pragma: no cover

    def assert_type(value, _):
        return value


Floats: TypeAlias = npt.NDArray[np.floating[Any]]
Loss: TypeAlias = np.floating[Any] | Floats

LOGITS = np.array([[1.5, -0.3, 0.2], [-2.0, 4.0, 0.5]])
PROBS = np.array([[0.7, 0.1, 0.2], [0.2, 0.5, 0.3]])
MULTI_LABEL = np.array([[1, 0, 1], [0, 1, 1]])
LABELS = np.array([0, 1])
BINARY_PROBS = np.array([[0.8, 0.2], [0.4, 0.6]])


def check_loss(loss: Loss, shape: tuple[int, ...] = ()) -> float:
    """Check that `loss` is a NumPy floating scalar, or for `shape`, such an array."""
    if shape:
        assert isinstance(loss, np.ndarray)
        assert loss.shape == shape
    assert np.issubdtype(loss.dtype, np.floating)
    assert isinstance(loss, np.floating) == (not shape)
    return float(np.sum(loss))


def check_array(values: Floats, shape: tuple[int, ...]) -> None:
    assert isinstance(values, np.ndarray)
    assert values.shape == shape
    assert np.issubdtype(values.dtype, np.floating)


def test_binary_cross_entropy_with_logits() -> None:
    f = ce.binary_cross_entropy_with_logits
    loss: float = float(f(LOGITS, MULTI_LABEL))
    per_element = f(LOGITS.tolist(), MULTI_LABEL.astype(bool), reduction="none")
    assert_type(per_element, Loss)
    assert check_loss(per_element, (2, 3)) == check_loss(f(LOGITS, MULTI_LABEL, reduction="sum"))
    value, grad = f(LOGITS, MULTI_LABEL, pos_weight=[2.0, 1.0, 1.0], return_grad=True)
    assert_type(grad, Floats)
    value, grad, hess = f(LOGITS, MULTI_LABEL, sample_weight=[[1.0], [2.0]], return_hess=True)
    assert_type(hess, Floats)
    buffer = np.empty_like(LOGITS)
    value, grad = f(LOGITS, MULTI_LABEL, where=LOGITS > 0, return_grad=True, out=buffer)
    assert grad is buffer
    check_loss(value)
    check_array(hess, grad.shape)
    assert loss > 0


def test_binary_cross_entropy() -> None:
    f = ce.binary_cross_entropy
    loss: float = float(f(PROBS, MULTI_LABEL, eps=None, label_smoothing=0.1))
    check_loss(f(PROBS, MULTI_LABEL, pos_weight="balanced", reduction="none"), (2, 3))
    value, grad = f(PROBS, MULTI_LABEL, pos_weight=2.0, return_grad=True)
    assert_type(value, Loss)
    assert_type(grad, Floats)
    check_array(grad, PROBS.shape)
    assert loss > 0


def test_binary_focal_loss_with_logits() -> None:
    f = ce.binary_focal_loss_with_logits
    loss: float = float(f(LOGITS, MULTI_LABEL, gamma=1.0, alpha=0.25))
    check_loss(f(LOGITS, MULTI_LABEL, reduction="none"), (2, 3))
    value, grad = f(LOGITS, MULTI_LABEL, return_grad=True)
    value, grad, hess = f(LOGITS, MULTI_LABEL, return_grad=False, return_hess=True)
    assert_type(value, Loss)
    assert_type(hess, Floats)
    check_array(hess, grad.shape)
    assert loss > 0


def test_binary_focal_loss() -> None:
    f = ce.binary_focal_loss
    loss: float = float(f(PROBS, MULTI_LABEL, gamma=0.5, eps=1e-7))
    check_loss(f(PROBS, MULTI_LABEL, reduction="none"), (2, 3))
    _, grad = f(PROBS, MULTI_LABEL, return_grad=True)
    assert_type(grad, Floats)
    check_array(grad, PROBS.shape)
    assert loss > 0


def test_categorical_cross_entropy_with_logits() -> None:
    f = ce.categorical_cross_entropy_with_logits
    loss: float = float(f(LOGITS, LABELS, class_weight=[1.0, 2.0, 1.0], ignore_index=-100))
    check_loss(f(LOGITS.T, LABELS, axis=0, z_loss=1e-4, softcap=30.0, reduction="none"), (2,))
    value, grad = f(LOGITS, PROBS, label_smoothing=0.1, return_grad=True)
    value, grad, hess = f(LOGITS, LABELS, return_grad=True, return_hess=True)
    assert_type(value, Loss)
    assert_type(grad, Floats)
    assert_type(hess, Floats)
    check_array(hess, grad.shape)
    assert loss > 0


def test_categorical_cross_entropy() -> None:
    f = ce.categorical_cross_entropy
    loss: float = float(f(PROBS, LABELS, eps=0.0, sample_weight=[1.0, 3.0]))
    check_loss(f(PROBS, LABELS, class_weight="balanced", reduction="none"), (2,))
    _, grad = f(PROBS, LABELS, class_weight=np.ones(3), return_grad=True)
    assert_type(grad, Floats)
    check_array(grad, PROBS.shape)
    assert loss > 0


def test_categorical_focal_loss_with_logits() -> None:
    f = ce.categorical_focal_loss_with_logits
    loss: float = float(f(LOGITS, LABELS, gamma=2.0, where=[True, False]))
    check_loss(f(LOGITS, LABELS, reduction="none"), (2,))
    value, grad = f(LOGITS, LABELS, return_grad=True)
    check_loss(value)
    _, grad, hess = f(LOGITS, LABELS, return_hess=True)
    assert_type(hess, Floats)
    check_array(hess, grad.shape)
    assert loss > 0


def test_categorical_focal_loss() -> None:
    f = ce.categorical_focal_loss
    loss: float = float(f(PROBS, LABELS, gamma=1.0, axis=-1))
    check_loss(f(PROBS, LABELS, reduction="none"), (2,))
    _, grad = f(PROBS, LABELS, return_grad=True)
    assert_type(grad, Floats)
    check_array(grad, PROBS.shape)
    assert loss > 0


def test_flags_that_are_not_literals() -> None:
    # A bool variable: the result is one of the shapes, to be told apart by the caller.
    with_grad = bool(LOGITS.size)
    result = ce.categorical_cross_entropy(PROBS, LABELS, return_grad=with_grad)
    assert_type(result, Loss | tuple[Loss, Floats])
    assert isinstance(result, tuple)
    with_hess = not with_grad
    both = ce.binary_focal_loss_with_logits(LOGITS, MULTI_LABEL, return_hess=with_hess)
    assert_type(both, Loss | tuple[Loss, Floats] | tuple[Loss, Floats, Floats])
    assert isinstance(both, np.floating)


def test_log_loss_and_threads() -> None:
    loss: float = ce.log_loss(["spam", "ham"], BINARY_PROBS)
    assert_type(ce.log_loss(LABELS, BINARY_PROBS, normalize=False, labels=[0, 1]), float)
    with ce.num_threads(2) as n:
        assert_type(n, int)
        assert ce.get_num_threads() == n == 2
    ce.set_num_threads(None)
    assert_type(ce.get_num_threads(), int)
    assert loss > 0


def test_objectives() -> None:
    # Calling them needs XGBoost's or LightGBM's training data: tests/test_objectives.py.
    objective = ce.objectives.xgboost("binary_cross_entropy_with_logits", pos_weight=2.0)
    assert_type(objective, Callable[..., tuple[Floats, Floats]])
    lightgbm_objective = ce.objectives.lightgbm(ce.categorical_focal_loss_with_logits, gamma=1.0)
    assert callable(objective)
    assert callable(lightgbm_objective)


def test_every_public_function_is_used_here() -> None:
    used = set()
    for name, value in globals().items():
        if name.startswith("test_"):
            code = value.__code__
            used |= set(code.co_names) | {c for c in code.co_consts if isinstance(c, str)}
    functions = {name for name in ce.__all__ if callable(getattr(ce, name))}
    functions |= set(ce.objectives.__all__)
    functions.discard("ProbabilitySumWarning")
    assert functions - used == set()


def _rejected() -> None:
    """Calls that must not type-check (never run)."""
    _l, _g = ce.binary_cross_entropy(PROBS, MULTI_LABEL)  # type: ignore[misc]
    _l, _g, _h = ce.binary_cross_entropy(PROBS, MULTI_LABEL, return_grad=True)  # type: ignore[misc]
    _l, _g = ce.categorical_cross_entropy_with_logits(LOGITS, LABELS, return_hess=True)  # type: ignore[misc]
    float(ce.categorical_focal_loss(PROBS, LABELS, return_grad=True))  # type: ignore[arg-type]
    ce.binary_cross_entropy(PROBS, MULTI_LABEL, return_hess=True)  # type: ignore[call-overload]
    ce.binary_focal_loss(PROBS, MULTI_LABEL, class_weight=[1.0])  # type: ignore[call-overload]
    ce.categorical_focal_loss_with_logits(LOGITS, LABELS, z_loss=0.1)  # type: ignore[call-overload]
    ce.binary_focal_loss_with_logits(LOGITS, MULTI_LABEL, reduction="avg")  # type: ignore[call-overload]
    ce.categorical_cross_entropy(PROBS, LABELS, return_grad=1)  # type: ignore[call-overload]
    ce.log_loss(LABELS, PROBS, eps=1e-3)  # type: ignore[call-arg]
    ce.num_threads("2")  # type: ignore[arg-type]
    ce.objectives.xgboost(2)  # type: ignore[arg-type]
