r"""Custom objectives for XGBoost and LightGBM: this package's losses, gradient and Hessian.

- :func:`xgboost`: a callable for ``xgboost.train(params, data, obj=...)`` and
  ``xgboost.XGBClassifier(objective=...)``;
- :func:`lightgbm`: a callable for ``lightgbm.train({"objective": ...}, data)`` and
  ``lightgbm.LGBMClassifier(objective=...)``.

Either takes one of the losses that return the diagonal of their Hessian
(``return_hess=True``) — the cross-entropies and the focal losses with logits — by name
or as the function, and any of its options: class weights (``"balanced"`` too), label
smoothing, ``gamma``, ``alpha``... The objective is the sum of the losses over the rows
(``reduction="sum"``), weighted by the sample weights of the training data; its gradient
and Hessian with respect to the raw predictions (margins) are what a boosting round fits.

With no options they reproduce the libraries' own objectives, ``binary:logistic`` and
``multi:softprob`` (XGBoost), ``binary`` and ``multiclass`` (LightGBM), Hessian conventions
included (``hessian="builtin"``): XGBoost's softmax Hessian is ``max(2 p (1 - p) w, 1e-16)``
and its logistic one ``max(p (1 - p), 1e-16) w``; LightGBM's softmax Hessian is
``C / (C - 1) p (1 - p) w`` and its logistic one ``p (1 - p) w``. Trained with the same
parameters, the models' probabilities agree to about 1e-7 (XGBoost, which computes in
float32) and 1e-15 (LightGBM) when they start from the same score:

- XGBoost does not estimate the starting score from the labels for a custom objective
  (its built-in objectives do, unless ``base_score`` is given). Give both the same
  ``base_score`` and the built-in objective's name in ``params``
  (``{"objective": "binary:logistic", "base_score": 0.5}``): the name makes
  ``base_score`` a probability (margin 0 for 0.5) and makes ``predict`` return
  probabilities. Without it, ``base_score`` is a margin (default 0.5) and ``predict``
  returns margins (apply ``scipy.special.expit`` or ``softmax``).
- LightGBM starts a custom objective from 0: give the built-in one
  ``boost_from_average=False``. ``predict`` returns raw scores for a custom objective
  (``LGBMClassifier.predict_proba`` warns and returns them too: use
  ``predict(X, raw_score=True)``); apply ``expit`` or ``softmax``. ``lightgbm.train``
  needs ``num_class`` in ``params`` for a categorical loss (``LGBMClassifier`` sets it).

Categorical losses take the labels as class indices ``0, ..., C - 1``, one per row;
binary losses take 0/1 labels (or probabilities), one per prediction: XGBoost's
multi-output predictions ``(n, K)`` are ``K`` labels per row.
Predictions come as ``(n, C)`` arrays (XGBoost >= 2.1, LightGBM >= 4.0); the flat
layouts of older versions (row-major for XGBoost, class-major for LightGBM) are read and
answered in kind. The loss is computed in float64.

Neither library is imported here: the package works without them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

import crossentropy

from ._types import FloatArray

__all__ = ["lightgbm", "xgboost"]

# XGBoost's floor of its Hessians (multiclass_obj.cu, regression_loss.h).
_XGBOOST_FLOOR = 1e-16

# Options that the objective sets itself, and why.
_RESERVED = {
    "reduction": "the objective is the sum over the rows (reduction='sum'), as gradient "
    "boosting expects",
    "sample_weight": "sample weights come from the training data: xgboost.DMatrix(weight=...), "
    "lightgbm.Dataset(weight=...) or fit(X, y, sample_weight=...)",
    "return_grad": "the objective returns the gradient and the Hessian",
    "return_hess": "the objective returns the gradient and the Hessian",
    "out": "the objective returns new arrays",
    "axis": "the classes are the last axis of the predictions",
}


def _losses_with_hessian() -> list[str]:
    """Return the names of the public losses that take ``return_hess``."""
    return [
        name
        for name in crossentropy.__all__
        if inspect.isfunction(function := getattr(crossentropy, name))
        and "return_hess" in inspect.signature(function).parameters
    ]


def _resolve(loss: object) -> tuple[Callable[..., Any], str, bool]:
    """Return the loss function, its name, and whether it is categorical."""
    names = _losses_with_hessian()
    if isinstance(loss, str):
        function = getattr(crossentropy, loss, None) if loss in crossentropy.__all__ else None
        if not inspect.isfunction(function):
            msg = f"loss must be one of {', '.join(names)} (a name or the function), got {loss!r}"
            raise ValueError(msg)
    elif callable(loss):
        function = loss
    else:
        msg = f"loss must be a loss function or its name, got {type(loss).__name__}"
        raise TypeError(msg)
    name = getattr(function, "__name__", repr(function))
    parameters = inspect.signature(function).parameters
    if "return_hess" not in parameters:
        msg = (
            f"loss must return the diagonal of its Hessian (return_hess=True), as "
            f"{', '.join(names)} do; {name} does not"
        )
        raise TypeError(msg)
    if "class_weight" in parameters:
        return function, name, True
    if "pos_weight" in parameters:
        return function, name, False
    msg = f"loss must be a categorical (class_weight=) or binary (pos_weight=) loss, got {name}"
    raise TypeError(msg)


class _Objective:
    """A custom objective: the gradient and Hessian of a loss's sum over the rows.

    Called as ``(preds, data)`` by ``xgboost.train`` and ``lightgbm.train`` (`data` a
    ``DMatrix`` or ``Dataset``: its labels and weights are read), and as ``(y_true,
    y_pred, sample_weight)`` by their scikit-learn interfaces. Returns ``(grad, hess)``
    in the layout of the predictions.
    """

    def __init__(
        self,
        library: Literal["xgboost", "lightgbm"],
        loss: object,
        hessian: object,
        options: dict[str, Any],
    ) -> None:
        self.function, self.name, self.categorical = _resolve(loss)
        if not isinstance(hessian, str) or hessian not in ("builtin", "exact"):
            msg = f"hessian must be 'builtin' or 'exact', got {hessian!r}"
            raise ValueError(msg)
        parameters = inspect.signature(self.function).parameters
        allowed = sorted(
            key
            for key, parameter in parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and key not in _RESERVED
        )
        for key in options:
            if key in _RESERVED and key in parameters:
                msg = f"{library}() sets {key} itself: {_RESERVED[key]}"
                raise TypeError(msg)
            if key not in allowed:
                msg = (
                    f"{library}() got an unexpected option {key!r} for {self.name}; "
                    f"its options are {', '.join(allowed)}"
                )
                raise TypeError(msg)
        self.library = library
        self.hessian = hessian
        self.options = dict(options)

    def __repr__(self) -> str:
        arguments = [repr(self.name)]
        if self.hessian != "builtin":
            arguments.append(f"hessian={self.hessian!r}")
        arguments += [f"{key}={value!r}" for key, value in self.options.items()]
        return f"crossentropy.objectives.{self.library}({', '.join(arguments)})"

    def __call__(
        self, preds_or_labels: Any, data_or_preds: Any, sample_weight: Any = None
    ) -> tuple[FloatArray, FloatArray]:
        """Return ``(grad, hess)``; see the class docstring for the two conventions."""
        if hasattr(data_or_preds, "get_label"):  # xgboost.DMatrix, lightgbm.Dataset
            predictions = preds_or_labels
            labels = data_or_preds.get_label()
            sample_weight = data_or_preds.get_weight()
        else:  # the scikit-learn interfaces: (y_true, y_pred[, sample_weight])
            labels, predictions = preds_or_labels, data_or_preds
        if sample_weight is not None and np.size(sample_weight) == 0:
            sample_weight = None  # XGBoost's "no weights"
        return self.gradient_and_hessian(predictions, labels, sample_weight)

    def gradient_and_hessian(
        self, predictions: Any, labels: Any, sample_weight: Any
    ) -> tuple[FloatArray, FloatArray]:
        """Return the gradient and the Hessian's diagonal for these margins and labels."""
        margins = np.asarray(predictions, dtype=np.float64)
        labels = np.asarray(labels)
        order: Literal["C", "F"] = "C" if self.library == "xgboost" else "F"  # old flat layouts
        flat = False
        if self.categorical:
            if margins.ndim == 1:
                n_rows = labels.size
                n_classes = margins.size // max(n_rows, 1)
                if n_classes < 2 or n_classes * n_rows != margins.size:
                    msg = (
                        f"{margins.size} flat predictions do not make rows of classes for "
                        f"{n_rows} labels"
                    )
                    raise ValueError(msg)
                margins = margins.reshape((n_rows, n_classes), order=order)
                flat = True
            elif margins.ndim != 2:
                msg = f"predictions of a categorical loss must be (n, C), got {margins.shape}"
                raise ValueError(msg)
            target = self._class_targets(labels, margins.shape)
            weight = sample_weight
        else:
            if labels.size != margins.size:
                msg = (
                    f"a binary loss needs one label per prediction: got {labels.size} labels "
                    f"for predictions of shape {margins.shape}"
                )
                raise ValueError(msg)
            target = labels.reshape(margins.shape)
            weight = sample_weight
            if weight is not None and margins.ndim == 2:
                weight = np.asarray(weight).reshape(-1, 1)  # one weight per row
        _, grad, hess = self.function(
            margins,
            target,
            reduction="sum",
            sample_weight=weight,
            return_hess=True,
            **self.options,
        )
        if self.hessian == "builtin":
            self._builtin_hessian(hess, weight)
        if flat:
            return grad.ravel(order=order), hess.ravel(order=order)
        return grad, hess

    def _class_targets(self, labels: np.ndarray[Any, Any], shape: tuple[int, ...]) -> Any:
        """Return the labels, one per row, as class indices."""
        n_rows, n_classes = shape
        flat = labels.reshape(-1)
        if flat.size != n_rows:
            msg = (
                f"a categorical loss needs one label per row: got {flat.size} labels for "
                f"predictions of shape {shape}"
            )
            raise ValueError(msg)
        indices = flat.astype(np.intp)
        if not np.array_equal(indices, flat):
            bad = flat[indices != flat][0].item()
            msg = (
                f"labels of a categorical loss must be class indices 0, ..., {n_classes - 1}, "
                f"got {bad!r}"
            )
            raise ValueError(msg)
        return indices

    def _builtin_hessian(self, hess: FloatArray, weight: Any) -> None:
        """Scale and floor the exact diagonal, in place, as the library's own objective.

        Negative values (focal losses, where a prediction is confidently wrong) become
        the floor: 1e-16 for XGBoost (times the sample weight for a binary loss, as its
        logistic objective), 0 for LightGBM.
        """
        if self.categorical:
            n_classes = hess.shape[-1]
            if self.library == "xgboost":
                hess *= 2.0
            elif n_classes > 1:
                hess *= n_classes / (n_classes - 1)
        if self.library == "lightgbm":
            np.maximum(hess, 0.0, out=hess)
        elif self.categorical or weight is None:
            np.maximum(hess, _XGBOOST_FLOOR, out=hess)
        else:
            np.maximum(hess, np.multiply(_XGBOOST_FLOOR, weight, dtype=np.float64), out=hess)


def xgboost(
    loss: str | Callable[..., Any],
    /,
    *,
    hessian: Literal["builtin", "exact"] = "builtin",
    **options: Any,
) -> Callable[..., tuple[FloatArray, FloatArray]]:
    r"""Return a custom objective for XGBoost: the gradient and Hessian of `loss`.

    Parameters
    ----------
    loss : str or callable
        A loss that returns the diagonal of its Hessian, by name or as the function:
        ``"categorical_cross_entropy_with_logits"`` (softmax, ``num_class`` classes),
        ``"binary_cross_entropy_with_logits"`` (logistic), and the focal losses with
        logits.
    hessian : {'builtin', 'exact'}, default 'builtin'
        ``'builtin'``: XGBoost's convention, ``max(2 h, 1e-16)`` for a categorical loss
        (its softmax objective's ``max(2 p (1 - p) w, 1e-16)``) and ``max(h, 1e-16 w)``
        for a binary one, with ``h`` the loss's exact diagonal and ``w`` the sample
        weight. ``'exact'``: ``h`` itself (negative for a focal loss where a prediction
        is confidently wrong).
    **options
        Options of `loss`: ``class_weight``, ``pos_weight`` (``"balanced"`` too),
        ``label_smoothing``, ``ignore_index``, ``where``, ``gamma``, ``alpha``.
        ``reduction`` (always ``"sum"``), ``sample_weight`` (the ``DMatrix``'s
        weights), ``axis`` and the return flags are set by the objective. Values are
        checked by the loss when the objective is first called.

    Returns
    -------
    objective : callable
        ``objective(preds, dtrain) -> (grad, hess)`` for ``xgboost.train(..., obj=)``,
        with `preds` the margins, ``(n, C)`` or ``(n,)``; it also takes ``(y_true,
        y_pred, sample_weight=None)``, the call of ``XGBClassifier(objective=)``.

    Raises
    ------
    ValueError
        For an unknown loss name or `hessian`.
    TypeError
        For a loss without ``return_hess``, or an option it does not take or that the
        objective sets itself.

    See Also
    --------
    lightgbm : the same for LightGBM.

    Notes
    -----
    The objective is :math:`\sum_i \ell_i` over the rows, with the sample weights of the
    ``DMatrix``; the gradient is that of the loss (``s (A p - a)`` for the categorical
    cross-entropy), computed in float64. XGBoost builds its own objectives in float32,
    so trees can differ in the last bits of their leaf values.

    With the built-in objective's name and an explicit ``base_score`` in ``params``
    (XGBoost then starts a custom objective from the same score, and ``predict``
    returns probabilities), the model equals the built-in one.

    Examples
    --------
    >>> import numpy as np
    >>> import xgboost as xgb
    >>> from sklearn.datasets import load_breast_cancer
    >>> from crossentropy import objectives
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> data = xgb.DMatrix(X, label=y)
    >>> params = {"objective": "binary:logistic", "base_score": 0.5, "max_depth": 3, "nthread": 1}
    >>> builtin = xgb.train(params, data, num_boost_round=10)
    >>> objective = objectives.xgboost("binary_cross_entropy_with_logits")
    >>> ours = xgb.train(params, data, num_boost_round=10, obj=objective)
    >>> bool(np.abs(ours.predict(data) - builtin.predict(data)).max() < 1e-5)
    True

    ``pos_weight="balanced"`` (negatives over positives) is XGBoost's
    ``scale_pos_weight`` set to that ratio:

    >>> ratio = float(np.sum(y == 0) / np.sum(y == 1))
    >>> scaled = xgb.train({**params, "scale_pos_weight": ratio}, data, num_boost_round=10)
    >>> objective = objectives.xgboost("binary_cross_entropy_with_logits", pos_weight="balanced")
    >>> ours = xgb.train(params, data, num_boost_round=10, obj=objective)
    >>> bool(np.abs(ours.predict(data) - scaled.predict(data)).max() < 1e-5)
    True
    """
    return _Objective("xgboost", loss, hessian, options)


def lightgbm(
    loss: str | Callable[..., Any],
    /,
    *,
    hessian: Literal["builtin", "exact"] = "builtin",
    **options: Any,
) -> Callable[..., tuple[FloatArray, FloatArray]]:
    r"""Return a custom objective for LightGBM: the gradient and Hessian of `loss`.

    Parameters
    ----------
    loss : str or callable
        A loss that returns the diagonal of its Hessian, by name or as the function:
        ``"categorical_cross_entropy_with_logits"`` (softmax, ``num_class`` classes),
        ``"binary_cross_entropy_with_logits"`` (logistic), and the focal losses with
        logits.
    hessian : {'builtin', 'exact'}, default 'builtin'
        ``'builtin'``: LightGBM's convention, ``C / (C - 1) h`` for a categorical loss
        of ``C`` classes (its multiclass objective's ``C / (C - 1) p (1 - p) w``) and
        ``h`` for a binary one, with ``h`` the loss's exact diagonal, and never below 0.
        ``'exact'``: ``h`` itself (negative for a focal loss where a prediction is
        confidently wrong).
    **options
        Options of `loss`: ``class_weight``, ``pos_weight`` (``"balanced"`` too),
        ``label_smoothing``, ``ignore_index``, ``where``, ``gamma``, ``alpha``.
        ``reduction`` (always ``"sum"``), ``sample_weight`` (the ``Dataset``'s
        weights), ``axis`` and the return flags are set by the objective. Values are
        checked by the loss when the objective is first called.

    Returns
    -------
    objective : callable
        ``objective(preds, train_data) -> (grad, hess)`` for
        ``lightgbm.train({"objective": objective, ...}, train_data)``, with `preds` the
        raw scores, ``(n, C)`` or ``(n,)``; it also takes ``(y_true, y_pred, weight)``,
        the call of ``LGBMClassifier(objective=objective)``.

    Raises
    ------
    ValueError
        For an unknown loss name or `hessian`.
    TypeError
        For a loss without ``return_hess``, or an option it does not take or that the
        objective sets itself.

    See Also
    --------
    xgboost : the same for XGBoost.

    Notes
    -----
    The objective is :math:`\sum_i \ell_i` over the rows, with the sample weights of the
    ``Dataset``, computed in float64 as LightGBM computes its own. A custom objective
    starts from 0: with ``boost_from_average=False`` the built-in objective does too,
    and the models are the same. LightGBM then returns raw scores.

    Examples
    --------
    >>> import lightgbm as lgb
    >>> import numpy as np
    >>> from scipy.special import softmax
    >>> from sklearn.datasets import load_digits
    >>> from crossentropy import objectives
    >>> X, y = load_digits(return_X_y=True)
    >>> params = {"num_class": 10, "num_leaves": 7, "num_threads": 1, "verbose": -1}
    >>> builtin = lgb.train(
    ...     {**params, "objective": "multiclass", "boost_from_average": False},
    ...     lgb.Dataset(X, label=y),
    ...     num_boost_round=5,
    ... )
    >>> objective = objectives.lightgbm("categorical_cross_entropy_with_logits")
    >>> ours = lgb.train(
    ...     {**params, "objective": objective}, lgb.Dataset(X, label=y), num_boost_round=5
    ... )
    >>> bool(np.abs(softmax(ours.predict(X), axis=1) - builtin.predict(X)).max() < 1e-5)
    True

    In scikit-learn's interface, with balanced class weights and label smoothing:

    >>> model = lgb.LGBMClassifier(
    ...     objective=objectives.lightgbm(
    ...         "categorical_cross_entropy_with_logits",
    ...         class_weight="balanced",
    ...         label_smoothing=0.05,
    ...     ),
    ...     n_estimators=5,
    ...     n_jobs=1,
    ...     verbose=-1,
    ... ).fit(X, y)
    >>> softmax(model.predict(X, raw_score=True), axis=1).shape
    (1797, 10)
    """
    return _Objective("lightgbm", loss, hessian, options)
