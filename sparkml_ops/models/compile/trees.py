"""Decision trees and their ensembles, from scikit-learn's fitted arrays, as nested CASE expressions.

scikit-learn routes a row the way these expressions do:

- ``DecisionTree*``, forests, extra trees and ``GradientBoosting*`` cast the input to float32
  and compare it with the float64 threshold (``x <= t`` goes left); NaN (and Spark NULL, which
  the Python path also turns into NaN) follows the node's learned missing-value direction.
- ``HistGradientBoosting*`` compares the float64 input with ``num_threshold``; NaN follows
  ``missing_go_to_left``. Leaf values already include the learning rate.

Ensemble sums are written left to right in the estimators' order, as scikit-learn adds them,
so sums (and therefore class decisions on ties) come out bit for bit the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sparkml_ops.models.compile import sqltext as q
from sparkml_ops.models.compile.base import Feature, NotCompilable
from sparkml_ops.models.compile.linear import numeric


def _emit(left: np.ndarray, right: np.ndarray, feature: np.ndarray, threshold: Sequence[str],
          missing_left: np.ndarray, xs: Sequence[str], leaves: Sequence[str]) -> str:
    """One tree's CASE expression (iterative, so deep trees cannot exhaust Python's stack).

    ``leaves[n]`` is the SQL of node ``n``'s value when ``n`` is a leaf.
    """
    lefts, rights = left.tolist(), right.tolist()
    cols = [xs[f] if f >= 0 else "" for f in feature.tolist()]
    miss = np.asarray(missing_left, dtype=bool).tolist()
    out: list[str | None] = [None] * len(lefts)
    stack = [0]
    while stack:
        node = stack[-1]
        lo = lefts[node]
        if lo < 0:
            out[node] = leaves[node]
            stack.pop()
            continue
        hi = rights[node]
        if out[lo] is None:
            stack.append(lo)
            continue
        if out[hi] is None:
            stack.append(hi)
            continue
        stack.pop()
        x, t = cols[node], threshold[node]
        if miss[node]:
            # NaN > t is true in Spark (NaN sorts last) and NULL > t is NULL: both must go left
            out[node] = f"CASE WHEN {x} > {t} AND NOT isnan({x}) THEN {out[hi]} ELSE {out[lo]} END"
        else:
            out[node] = f"CASE WHEN {x} <= {t} THEN {out[lo]} ELSE {out[hi]} END"
        out[lo] = out[hi] = ""  # free the children's text as soon as the parent holds it
    root = out[0]
    assert root is not None  # the walk ends only when the root has its text
    return root


def _sk_tree(tree, xs32: Sequence[str], values: np.ndarray) -> Callable[[int], str]:
    """A function: column k of ``values`` (one row per node) → the tree's expression for it."""
    t = tree.tree_
    thresholds = q.doubles(t.threshold)
    missing = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=np.uint8))
    left, right, feature = t.children_left, t.children_right, t.feature

    def for_column(k: int) -> str:
        return _emit(left, right, feature, thresholds, missing, xs32, q.doubles(values[:, k]))
    return for_column


def _float32(features: Sequence[Feature], what: str) -> list[str]:
    return [f"CAST(CAST({x} AS FLOAT) AS DOUBLE)" for x in numeric(features, what)]


def _check_single_output(model, name: str) -> None:
    if getattr(model, "n_outputs_", 1) != 1:
        raise NotCompilable(f"{name} with {model.n_outputs_} outputs does not compile (one output only)")


def _tree_proba(tree) -> np.ndarray:
    """Per node, the class probabilities ``DecisionTreeClassifier.predict_proba`` returns (normalised)."""
    proba = np.array(tree.tree_.value[:, 0, :], dtype=np.float64)
    norm = proba.sum(axis=1)
    norm[norm == 0.0] = 1.0
    return proba / norm[:, None]


def decision_tree(model, features: Sequence[Feature], method: str) -> str:
    name = type(model).__name__
    _check_single_output(model, name)
    xs = _float32(features, name)
    if not hasattr(model, "classes_"):
        if method != "predict":
            raise NotCompilable(f"{name}.{method} does not compile (only predict)")
        return _sk_tree(model, xs, np.asarray(model.tree_.value[:, 0, :], dtype=np.float64))(0)
    classes = list(model.classes_)
    if method == "predict":
        winners = np.argmax(model.tree_.value[:, 0, :], axis=1)  # predict takes argmax of the raw values
        t = model.tree_
        names = [q.label(c) for c in classes]
        return _emit(t.children_left, t.children_right, t.feature, q.doubles(t.threshold),
                     getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=np.uint8)), xs,
                     [names[w] for w in winners.tolist()])
    if method == "predict_proba":
        build = _sk_tree(model, xs, _tree_proba(model))
        return q.array_of([build(k) for k in range(len(classes))])
    raise NotCompilable(f"{name}.{method} does not compile (predict, predict_proba)")


def forest(model, features: Sequence[Feature], method: str) -> str:
    """RandomForest / ExtraTrees: the mean of the trees' outputs (summed in order, then divided)."""
    name = type(model).__name__
    _check_single_output(model, name)
    xs = _float32(features, name)
    trees = list(model.estimators_)
    n = q.double(float(len(trees)))
    if not hasattr(model, "classes_"):
        if method != "predict":
            raise NotCompilable(f"{name}.{method} does not compile (only predict)")
        sums = q.chain_sum([_sk_tree(t, xs, np.asarray(t.tree_.value[:, 0, :], dtype=np.float64))(0) for t in trees])
        return f"({sums} / {n})"
    classes = list(model.classes_)
    builders = [_sk_tree(t, xs, _tree_proba(t)) for t in trees]
    proba = [f"({q.chain_sum([b(k) for b in builders])} / {n})" for k in range(len(classes))]
    if method == "predict":
        return q.argmax_label(proba, classes)
    if method == "predict_proba":
        return q.array_of(proba)
    raise NotCompilable(f"{name}.{method} does not compile (predict, predict_proba)")


def _link(model, raw: list[str], method: str, name: str) -> str:
    """Classifier outputs from raw scores through the model's loss (sigmoid or softmax)."""
    loss = type(model._loss).__name__
    classes = list(model.classes_)
    hist = hasattr(model, "_predictors")
    if len(raw) == 1:
        if loss not in ("HalfBinomialLoss", "ExponentialLoss"):
            raise NotCompilable(f"{name} with loss {loss} does not compile")
        if method == "predict":
            return q.positive_label(raw[0], classes, strict=hist)
        if method == "predict_proba":
            p = q.sigmoid(raw[0] if loss == "HalfBinomialLoss" else f"(2D * {raw[0]})")
            return q.array_of([f"(1D - {p})", p])
        if method == "decision_function":
            return raw[0]
    else:
        if loss != "HalfMultinomialLoss":
            raise NotCompilable(f"{name} with loss {loss} does not compile")
        if method == "predict":
            return q.argmax_label(raw, classes)
        if method == "predict_proba":
            return q.array_of(q.softmax(raw))
        if method == "decision_function":
            return q.array_of(raw)
    raise NotCompilable(f"{name}.{method} does not compile (predict, predict_proba, decision_function)")


def gradient_boosting(model, features: Sequence[Feature], method: str) -> str:
    """GradientBoosting: init score + Σ learning_rate · tree value, stage by stage."""
    name = type(model).__name__
    xs = _float32(features, name)
    init = model.init_
    if not (isinstance(init, str) and init == "zero") and type(init).__module__ != "sklearn.dummy":
        raise NotCompilable(f"{name} with init estimator {type(init).__name__} does not compile")
    base = np.asarray(model._raw_predict_init(np.zeros((1, len(xs)), dtype=np.float32)), dtype=np.float64)[0]
    rate = q.double(model.learning_rate)
    stages = model.estimators_
    raw = []
    for k in range(stages.shape[1]):
        terms = [q.double(base[k])]
        for i in range(stages.shape[0]):
            tree = stages[i, k]
            value = _sk_tree(tree, xs, np.asarray(tree.tree_.value[:, 0, :], dtype=np.float64))(0)
            terms.append(f"({rate} * {value})")
        raw.append(q.chain_sum(terms))
    if not hasattr(model, "classes_"):
        if method != "predict":
            raise NotCompilable(f"{name}.{method} does not compile (only predict)")
        return raw[0]
    return _link(model, raw, method, name)


def _hist_tree(predictor, xs: Sequence[str]) -> str:
    nodes = predictor.nodes
    if nodes["is_categorical"].any():
        raise NotCompilable("HistGradientBoosting with categorical splits does not compile")
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    return _emit(left, right, np.where(leaf, -1, nodes["feature_idx"].astype(np.int64)),
                 q.doubles(nodes["num_threshold"]), nodes["missing_go_to_left"], xs, q.doubles(nodes["value"]))


def hist_gradient_boosting(model, features: Sequence[Feature], method: str) -> str:
    """HistGradientBoosting: baseline + Σ leaf values (float64 comparisons, learned NaN direction)."""
    name = type(model).__name__
    if getattr(model, "_preprocessor", None) is not None or getattr(model, "is_categorical_", None) is not None \
            and np.any(model.is_categorical_):
        raise NotCompilable(f"{name} with categorical features does not compile")
    xs = numeric(features, name)
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    raw = []
    for k in range(len(baseline)):
        terms = [q.double(baseline[k])] + [_hist_tree(iteration[k], xs) for iteration in model._predictors]
        raw.append(q.chain_sum(terms))
    if hasattr(model, "classes_"):
        return _link(model, raw, method, name)
    if method != "predict":
        raise NotCompilable(f"{name}.{method} does not compile (only predict)")
    link = type(model._loss.link).__name__
    if link == "IdentityLink":
        return raw[0]
    if link == "LogLink":
        return f"exp({raw[0]})"
    raise NotCompilable(f"{name} with link {link} does not compile")


def tree_count(model) -> int:
    """How many trees the model holds (what the size limits depend on)."""
    if hasattr(model, "_predictors"):
        return sum(len(it) for it in model._predictors)
    trees = getattr(model, "estimators_", None)
    if trees is None:
        return 1 if hasattr(model, "tree_") else 0
    return int(np.size(trees))
