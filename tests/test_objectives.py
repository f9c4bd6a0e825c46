"""``crossentropy.objectives``: the gradient and Hessian that XGBoost and LightGBM fit.

The objectives are checked against plain loops of the libraries' own formulas (read in
their sources: XGBoost's ``multiclass_obj.cu`` and ``regression_loss.h``, LightGBM's
``multiclass_objective.hpp`` and ``binary_objective.hpp``), and, where the libraries are
installed (the ``boosting`` extra), by training: the same parameters give the models of the
built-in objectives.
"""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import objectives

CATEGORICAL = "categorical_cross_entropy_with_logits"
BINARY = "binary_cross_entropy_with_logits"
LIBRARIES = ("xgboost", "lightgbm")
MAKERS = {"xgboost": objectives.xgboost, "lightgbm": objectives.lightgbm}


class Data:
    """What an objective reads of an ``xgboost.DMatrix`` or a ``lightgbm.Dataset``."""

    def __init__(self, label, weight=None, *, library="xgboost"):
        self.label = np.asarray(label, dtype=np.float32)
        if weight is None:  # XGBoost says "no weights" with an empty array, LightGBM None
            self.weight = np.empty(0, np.float32) if library == "xgboost" else None
        else:
            self.weight = np.asarray(weight, dtype=np.float32)

    def get_label(self):
        return self.label

    def get_weight(self):
        return self.weight


def _softmax_loop(row):
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _softmax_reference(library, margins, labels, weight, hessian="builtin"):
    """The libraries' softmax objective, one row and one class at a time."""
    n_rows, n_classes = margins.shape
    grad, hess = np.empty(margins.shape), np.empty(margins.shape)
    for i in range(n_rows):
        p = _softmax_loop([float(v) for v in margins[i]])
        w = 1.0 if weight is None else float(weight[i])
        for k in range(n_classes):
            grad[i, k] = (p[k] - (1.0 if k == labels[i] else 0.0)) * w
            others = sum(p[j] for j in range(n_classes) if j != k)  # 1 - p, to the last bit
            exact = p[k] * others * w
            if hessian == "exact":
                hess[i, k] = exact
            elif library == "xgboost":
                hess[i, k] = max(2 * exact, 1e-16)  # fmax(2 p (1 - p) w, 1e-16)
            else:
                hess[i, k] = n_classes / (n_classes - 1) * exact
    return grad, hess


def _logistic_reference(library, margins, labels, weight, hessian="builtin"):
    """The libraries' logistic objective, one element at a time."""
    grad, hess = np.empty(margins.shape), np.empty(margins.shape)
    for i in range(margins.size):
        p = _sigmoid(float(margins.flat[i]))
        q = _sigmoid(-float(margins.flat[i]))  # 1 - p, to the last bit
        w = 1.0 if weight is None else float(weight[i])
        grad.flat[i] = (p - float(labels[i])) * w
        if hessian == "builtin" and library == "xgboost":
            hess.flat[i] = max(p * q, 1e-16) * w  # fmaxf(p (1 - p), 1e-16) * w
        else:
            hess.flat[i] = p * q * w
    return grad, hess


def _margins(rng, shape):
    margins = rng.normal(scale=2.0, size=shape).astype(np.float32)
    margins.flat[0] = 40.0  # probabilities below 1e-16 elsewhere in that row: the floor
    return margins


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("hessian", ["builtin", "exact"])
def test_softmax_is_the_librarys_formula(rng, library, weighted, hessian):
    margins = _margins(rng, (30, 4))
    labels = rng.integers(0, 4, 30)
    weight = rng.uniform(0.0, 2.0, 30).astype(np.float32) if weighted else None
    if weighted:
        weight[3] = 0  # XGBoost: a Hessian of 1e-16 all the same
    objective = MAKERS[library](CATEGORICAL, hessian=hessian)
    grad, hess = objective(margins, Data(labels, weight, library=library))
    expected_grad, expected_hess = _softmax_reference(library, margins, labels, weight, hessian)
    assert grad.shape == hess.shape == margins.shape
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(hess, expected_hess, rtol=1e-12, atol=1e-300)
    if library == "xgboost" and hessian == "builtin":
        assert hess[0, 1] == 1e-16  # below the floor


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("hessian", ["builtin", "exact"])
def test_logistic_is_the_librarys_formula(rng, library, weighted, hessian):
    margins = _margins(rng, (40,))
    labels = rng.integers(0, 2, 40)
    labels[0] = 0
    weight = rng.uniform(0.0, 2.0, 40).astype(np.float32) if weighted else None
    objective = MAKERS[library](BINARY, hessian=hessian)
    grad, hess = objective(margins, Data(labels, weight, library=library))
    expected = _logistic_reference(library, margins, labels, weight, hessian)
    np.testing.assert_allclose(grad, expected[0], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(hess, expected[1], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("loss", [CATEGORICAL, BINARY])
def test_the_scikit_learn_call_gives_the_same(rng, library, loss):
    shape = (12, 3) if loss == CATEGORICAL else (12,)
    margins = rng.normal(size=shape)
    labels = rng.integers(0, 3 if loss == CATEGORICAL else 2, 12).astype(np.float64)
    weight = rng.uniform(size=12)
    objective = MAKERS[library](loss)
    signature = inspect.signature(objective).parameters
    assert len(signature) == 3  # LightGBM then passes the weights,
    assert "sample_weight" in signature  # and XGBoost by this name
    expected = objective(margins, Data(labels, weight, library=library))
    for got in (
        objective(labels, margins, weight),
        objective(labels, margins, sample_weight=weight),
    ):
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)  # float32 in Data
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-6)
    unweighted = objective(labels, margins)
    np.testing.assert_allclose(unweighted[0], objective(margins, Data(labels))[0], rtol=1e-15)


@pytest.mark.parametrize(("library", "order"), [("lightgbm", "F"), ("xgboost", "C")])
def test_flat_predictions_of_older_versions_are_answered_in_kind(rng, library, order):
    # LightGBM < 4 passed class-major scores (all rows of class 0, then of class 1...).
    margins = rng.normal(size=(15, 4))
    labels = rng.integers(0, 4, 15)
    objective = MAKERS[library](CATEGORICAL)
    grad, hess = objective(margins, Data(labels))
    flat_grad, flat_hess = objective(margins.ravel(order=order), Data(labels))
    assert flat_grad.shape == (60,)
    np.testing.assert_array_equal(flat_grad, grad.ravel(order=order))
    np.testing.assert_array_equal(flat_hess, hess.ravel(order=order))
    with pytest.raises(ValueError, match="61 flat predictions do not make rows of classes"):
        objective(np.zeros(61), Data(labels))


def test_multi_output_binary_has_one_label_per_prediction_and_one_weight_per_row(rng):
    margins = rng.normal(size=(10, 3))
    labels = rng.integers(0, 2, (10, 3))
    weight = rng.uniform(size=10)
    grad, hess = objectives.xgboost(BINARY)(margins, Data(labels.ravel(), weight))
    for k in range(3):
        expected = _logistic_reference("xgboost", margins[:, k], labels[:, k], weight)
        np.testing.assert_allclose(grad[:, k], expected[0], rtol=1e-6)
        np.testing.assert_allclose(hess[:, k], expected[1], rtol=1e-6)
    with pytest.raises(ValueError, match="one label per prediction: got 10 labels"):
        objectives.xgboost(BINARY)(margins, Data(labels[:, 0]))


@pytest.mark.parametrize("library", LIBRARIES)
def test_options_are_the_losss(rng, library):
    margins = rng.normal(size=(20, 4))
    labels = rng.integers(0, 4, 20)
    weight = rng.uniform(size=20)
    options = {"class_weight": "balanced", "label_smoothing": 0.1, "ignore_index": 2}
    objective = MAKERS[library](CATEGORICAL, hessian="exact", **options)
    grad, hess = objective(labels, margins, weight)
    _, expected_grad, expected_hess = ce.categorical_cross_entropy_with_logits(
        margins, labels, reduction="sum", sample_weight=weight, return_hess=True, **options
    )
    np.testing.assert_array_equal(grad, expected_grad)
    np.testing.assert_array_equal(hess, expected_hess)
    assert not grad[labels == 2].any()  # ignored rows


def test_names_and_functions_are_the_same_loss(rng):
    margins = rng.normal(size=(6, 3))
    data = Data(rng.integers(0, 3, 6))
    by_name = objectives.lightgbm(CATEGORICAL)(margins, data)
    by_function = objectives.lightgbm(ce.categorical_cross_entropy_with_logits)(margins, data)
    np.testing.assert_array_equal(by_name[0], by_function[0])
    np.testing.assert_array_equal(by_name[1], by_function[1])


def test_repr_says_what_it_computes():
    objective = objectives.xgboost(BINARY, hessian="exact", pos_weight="balanced")
    assert repr(objective) == (
        "crossentropy.objectives.xgboost('binary_cross_entropy_with_logits', "
        "hessian='exact', pos_weight='balanced')"
    )
    assert repr(objectives.lightgbm(ce.categorical_cross_entropy_with_logits)) == (
        "crossentropy.objectives.lightgbm('categorical_cross_entropy_with_logits')"
    )


@pytest.mark.parametrize("library", LIBRARIES)
def test_bad_arguments_are_refused_at_once(library):
    make = MAKERS[library]
    with pytest.raises(ValueError, match=r"loss must be one of .*binary_cross_entropy_with_logits"):
        make("softmax")
    with pytest.raises(TypeError, match=r"return_hess=True.*binary_cross_entropy does not"):
        make("binary_cross_entropy")
    with pytest.raises(TypeError, match=r"return_hess=True.*log_loss does not"):
        make(ce.log_loss)
    with pytest.raises(TypeError, match="loss must be a loss function or its name, got int"):
        make(42)
    with pytest.raises(ValueError, match="hessian must be 'builtin' or 'exact', got 'diagonal'"):
        make(BINARY, hessian="diagonal")
    with pytest.raises(TypeError, match=f"{library}\\(\\) got an unexpected option 'class_weight'"):
        make(BINARY, class_weight=[1.0, 2.0])
    for option, reason in [
        ("reduction", "sum over the rows"),
        ("sample_weight", "DMatrix"),
        ("return_grad", "returns the gradient"),
        ("axis", "last axis"),
    ]:
        with pytest.raises(TypeError, match=f"{library}\\(\\) sets {option} itself: .*{reason}"):
            make(CATEGORICAL, **{option: None})


def test_labels_of_a_categorical_loss_are_class_indices(rng):
    objective = objectives.xgboost(CATEGORICAL)
    margins = rng.normal(size=(3, 4))
    with pytest.raises(ValueError, match=r"class indices 0, \.\.\., 3, got 1\.5"):
        objective(margins, Data([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match=r"one label per row: got 2 labels .* shape \(3, 4\)"):
        objective(margins, Data([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"class index 7, outside \[0, 4\)"):
        objective(margins, Data([0.0, 7.0, 2.0]))  # the loss's own check
    objective = objectives.xgboost(CATEGORICAL, label_smoothing=2.0)  # values: at the call
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        objective(margins, Data([0.0, 1.0, 2.0]))


def test_the_package_works_without_xgboost_and_lightgbm():
    script = textwrap.dedent("""
        import sys
        sys.modules["xgboost"] = sys.modules["lightgbm"] = None  # imports now fail
        import numpy as np
        import crossentropy as ce

        class Data:
            def get_label(self):
                return np.array([0.0, 1.0])

            def get_weight(self):
                return None

        grad, hess = ce.objectives.lightgbm("binary_cross_entropy_with_logits")(
            np.zeros(2), Data()
        )
        print(grad.tolist(), hess.tolist())
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[0.5, -0.5] [0.25, 0.25]"


def _focal_has_hessian():
    return "return_hess" in inspect.signature(ce.binary_focal_loss_with_logits).parameters


# --- Training with the libraries (the ``boosting`` extra) -------------------------------


@pytest.fixture(scope="module")
def breast_cancer():
    datasets = pytest.importorskip("sklearn.datasets")
    return datasets.load_breast_cancer(return_X_y=True)


@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    return datasets.load_digits(return_X_y=True)


def _expit(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


AGREEMENT = 1e-5  # the probabilities of the two models


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_xgboost_trains_the_builtin_model(breast_cancer, digits, kind, weighted):
    xgb = pytest.importorskip("xgboost")
    X, y = breast_cancer if kind == "binary" else digits
    weight = np.random.default_rng(3).uniform(0.5, 2.0, len(y)) if weighted else None
    data = xgb.DMatrix(X, label=y, weight=weight)
    builtin = (
        {"objective": "binary:logistic"}
        if kind == "binary"
        else {"objective": "multi:softprob", "num_class": 10}
    )
    params = {**builtin, "base_score": 0.5, "max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 0}
    loss = BINARY if kind == "binary" else CATEGORICAL
    reference = xgb.train(params, data, num_boost_round=15).predict(data)
    ours = xgb.train(params, data, num_boost_round=15, obj=objectives.xgboost(loss))
    np.testing.assert_allclose(ours.predict(data), reference, rtol=0, atol=AGREEMENT)
    # Without the objective's name, base_score is a margin and predict returns margins.
    no_name = {key: value for key, value in params.items() if key != "objective"}
    margins = xgb.train(
        {**no_name, "base_score": 0.0}, data, num_boost_round=15, obj=objectives.xgboost(loss)
    ).predict(data, output_margin=True)
    probabilities = _expit(margins) if kind == "binary" else _softmax(margins)
    np.testing.assert_allclose(probabilities, reference, rtol=0, atol=AGREEMENT)
    # The exact Hessian of the softmax is half XGBoost's: another model.
    if kind == "multiclass":
        exact = xgb.train(
            params, data, num_boost_round=15, obj=objectives.xgboost(loss, hessian="exact")
        )
        assert np.abs(exact.predict(data) - reference).max() > 1e-2


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_xgbclassifier_takes_the_objective(breast_cancer, digits, kind):
    xgb = pytest.importorskip("xgboost")
    X, y = breast_cancer if kind == "binary" else digits
    loss = BINARY if kind == "binary" else CATEGORICAL
    weight = np.random.default_rng(4).uniform(0.5, 2.0, len(y))
    settings = {"n_estimators": 10, "max_depth": 3, "base_score": 0.5, "n_jobs": 1}
    reference = xgb.XGBClassifier(**settings).fit(X, y, sample_weight=weight)
    ours = xgb.XGBClassifier(objective=objectives.xgboost(loss), **settings)
    ours.fit(X, y, sample_weight=weight)
    np.testing.assert_allclose(
        ours.predict_proba(X), reference.predict_proba(X), rtol=0, atol=AGREEMENT
    )


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lightgbm_trains_the_builtin_model(breast_cancer, digits, kind, weighted):
    lgb = pytest.importorskip("lightgbm")
    X, y = breast_cancer if kind == "binary" else digits
    weight = np.random.default_rng(5).uniform(0.5, 2.0, len(y)) if weighted else None
    extra = {} if kind == "binary" else {"num_class": 10}
    params = {**extra, "num_leaves": 7, "learning_rate": 0.3, "num_threads": 1, "verbose": -1}
    loss = BINARY if kind == "binary" else CATEGORICAL
    builtin = {"objective": kind, "boost_from_average": False}
    reference = lgb.train({**params, **builtin}, lgb.Dataset(X, y, weight=weight), 15)
    ours = lgb.train(
        {**params, "objective": objectives.lightgbm(loss)}, lgb.Dataset(X, y, weight=weight), 15
    )
    raw = ours.predict(X)
    probabilities = _expit(raw) if kind == "binary" else _softmax(raw)
    np.testing.assert_allclose(probabilities, reference.predict(X), rtol=0, atol=AGREEMENT)


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_lgbmclassifier_takes_the_objective(breast_cancer, digits, kind):
    lgb = pytest.importorskip("lightgbm")
    X, y = breast_cancer if kind == "binary" else digits
    loss = BINARY if kind == "binary" else CATEGORICAL
    weight = np.random.default_rng(6).uniform(0.5, 2.0, len(y))
    settings = {"n_estimators": 10, "num_leaves": 7, "n_jobs": 1, "verbose": -1}
    reference = lgb.LGBMClassifier(boost_from_average=False, **settings)
    reference.fit(X, y, sample_weight=weight)
    ours = lgb.LGBMClassifier(objective=objectives.lightgbm(loss), **settings)
    ours.fit(X, y, sample_weight=weight)
    raw = ours.predict(X, raw_score=True)
    probabilities = _softmax(raw) if kind == "multiclass" else _expit(raw)
    expected = reference.predict_proba(X)
    expected = expected if kind == "multiclass" else expected[:, 1]
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=AGREEMENT)


def test_balanced_positive_weight_is_scale_pos_weight_and_is_unbalance(breast_cancer):
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    X, y = breast_cancer
    y = 1 - y  # malignant (212 of 569) as the positive class: the minority
    ratio = float(np.sum(y == 0) / np.sum(y == 1))
    data = xgb.DMatrix(X, label=y)
    params = {"objective": "binary:logistic", "base_score": 0.5, "max_depth": 3, "nthread": 1}
    scaled = xgb.train({**params, "scale_pos_weight": ratio}, data, num_boost_round=15)
    balanced = objectives.xgboost(BINARY, pos_weight="balanced")
    ours = xgb.train(params, data, num_boost_round=15, obj=balanced)
    np.testing.assert_allclose(ours.predict(data), scaled.predict(data), rtol=0, atol=AGREEMENT)
    # LightGBM's is_unbalance weighs the positives by negatives / positives when rarer.
    params = {"num_leaves": 7, "num_threads": 1, "verbose": -1}
    unbalanced = lgb.train(
        {**params, "objective": "binary", "is_unbalance": True, "boost_from_average": False},
        lgb.Dataset(X, y),
        15,
    )
    balanced = objectives.lightgbm(BINARY, pos_weight="balanced")
    ours = lgb.train({**params, "objective": balanced}, lgb.Dataset(X, y), 15)
    np.testing.assert_allclose(
        _expit(ours.predict(X)), unbalanced.predict(X), rtol=0, atol=AGREEMENT
    )


# --- Focal losses: any loss that returns its Hessian makes an objective ------------------


def _focal_losses():
    """The focal losses with logits that take ``return_hess`` (binary, categorical)."""
    found = []
    for name in ("binary_focal_loss_with_logits", "categorical_focal_loss_with_logits"):
        function = getattr(ce, name, None)
        if function is not None and "return_hess" in inspect.signature(function).parameters:
            found.append(name)
    return found


FOCAL = _focal_losses()
needs_focal = pytest.mark.skipif(not FOCAL, reason="no focal loss takes return_hess yet")


def _problem(rng, name, n_rows=40):
    if name.startswith("categorical"):
        return rng.normal(scale=3.0, size=(n_rows, 3)), rng.integers(0, 3, n_rows), CATEGORICAL
    return rng.normal(scale=3.0, size=n_rows), rng.integers(0, 2, n_rows), BINARY


@needs_focal
@pytest.mark.parametrize("name", FOCAL or ["none"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_focal_with_gamma_zero_is_the_cross_entropy(rng, name, library):
    margins, labels, cross_entropy = _problem(rng, name)
    weight = rng.uniform(size=labels.size)
    focal = MAKERS[library](name, gamma=0.0)(labels, margins, weight)
    expected = MAKERS[library](cross_entropy)(labels, margins, weight)
    np.testing.assert_allclose(focal[0], expected[0], rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(focal[1], expected[1], rtol=1e-14, atol=1e-300)


@needs_focal
@pytest.mark.parametrize("name", FOCAL or ["none"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_focal_objective_is_the_losss_gradient_and_convention(rng, name, library):
    margins, labels, _ = _problem(rng, name)
    margins[:5] = -8.0 if margins.ndim == 1 else [8.0, -8.0, -8.0]  # confidently wrong
    labels[:5] = 1
    loss = getattr(ce, name)
    grad, exact = MAKERS[library](name, hessian="exact", gamma=2.0)(labels, margins)
    _, expected_grad, expected_hess = loss(
        margins, labels, gamma=2.0, reduction="sum", return_hess=True
    )
    np.testing.assert_array_equal(grad, expected_grad)
    np.testing.assert_array_equal(exact, expected_hess)
    assert (exact < 0).any()  # the focal loss is not convex there
    _, builtin = MAKERS[library](name, gamma=2.0)(labels, margins)
    factor = 1.0
    if name.startswith("categorical"):
        factor = 2.0 if library == "xgboost" else 3 / 2
    floor = 1e-16 if library == "xgboost" else 0.0
    np.testing.assert_allclose(builtin, np.maximum(factor * exact, floor), rtol=1e-15)


@needs_focal
@pytest.mark.parametrize("library", LIBRARIES)
def test_a_focal_objective_trains(breast_cancer, library):
    pytest.importorskip(library)
    X, y = breast_cancer
    objective = MAKERS[library]("binary_focal_loss_with_logits", gamma=2.0)
    if library == "xgboost":
        import xgboost as xgb

        data = xgb.DMatrix(X, label=y)
        params = {"objective": "binary:logistic", "base_score": 0.5, "nthread": 1}
        probabilities = xgb.train(params, data, 50, obj=objective).predict(data)
    else:
        import lightgbm as lgb

        params = {"objective": objective, "num_threads": 1, "verbose": -1}
        probabilities = _expit(lgb.train(params, lgb.Dataset(X, y), 50).predict(X))
    start = ce.binary_focal_loss(np.full(y.shape, 0.5), y, gamma=2.0)
    assert ce.binary_focal_loss(probabilities, y, gamma=2.0) < start / 10
    assert np.mean((probabilities > 0.5) == y) > 0.97
