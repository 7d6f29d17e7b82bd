"""Decision trees and their ensembles, from scikit-learn's fitted arrays, as nested CASE expressions.

scikit-learn routes a row the way these expressions do:

- ``DecisionTree*``, forests, extra trees and ``GradientBoosting*`` cast the input to float32
  and compare it with the float64 threshold (``x <= t`` goes left); NaN (and Spark NULL, which
  the Python path also turns into NaN) follows the node's learned missing-value direction.
- ``HistGradientBoosting*`` compares the float64 input with ``num_threshold``; NaN follows
  ``missing_go_to_left``. Leaf values already include the learning rate.

The float32 cast is folded into the thresholds (:func:`~sqltext.float32_le_bounds`), so a node
compares the double input with a double literal. Ensemble sums are written left to right in the
estimators' order, as scikit-learn adds them, so sums (and therefore class decisions on ties)
come out bit for bit the same. An ensemble is an :class:`Ensemble`: its trees apart from the
step that combines them, so it can be written as one SQL text or built as a Column whose trees
stay apart in generated code (``columns``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkml_ops.models.compile import sqltext as q
from sparkml_ops.models.compile.base import Feature, NotCompilable
from sparkml_ops.models.compile.linear import numeric


def _emit(left: np.ndarray, right: np.ndarray, feature: np.ndarray, threshold: Sequence[str],
          missing_left: np.ndarray, xs: Sequence[str], leaves: Sequence[str]) -> str:
    """One tree's CASE expression (iterative, so deep trees cannot exhaust Python's stack).

    ``leaves[n]`` is the SQL of node ``n``'s value when ``n`` is a leaf; node ``n`` sends
    ``x <= threshold[n]`` left.
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


@dataclass(frozen=True)
class Tree:
    """One decision tree: node arrays, thresholds as SQL literals, and ``width`` values per leaf.

    Children ``-1`` mark a leaf; node ``n`` sends rows with ``xs[feature[n]] <= threshold[n]``
    left, and NaN left where ``missing_left[n]``.
    """

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: Sequence[str]
    missing_left: np.ndarray
    xs: Sequence[str]
    values: np.ndarray  # (nodes, width) float64

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    def sql(self, column: int) -> str:
        """The tree's value ``column`` as a DOUBLE expression."""
        return self._emit(q.doubles(self.values[:, column]))

    def sql_all(self) -> str:
        """All its values at once: a DOUBLE for one value, else an ``array<double>``."""
        if self.width == 1:
            return self.sql(0)
        columns = [q.doubles(self.values[:, k]) for k in range(self.width)]
        return self._emit([f"array({', '.join(row)})" for row in zip(*columns, strict=True)])

    def _emit(self, leaves: Sequence[str]) -> str:
        return _emit(self.left, self.right, self.feature, self.threshold, self.missing_left, self.xs, leaves)


Head = Callable[[Any, list[list[Any]]], Any]


@dataclass(frozen=True)
class Ensemble:
    """Trees and the step that combines their values: ``head(ops, values)``, ``values[i][k]`` the
    value ``k`` of tree ``i``, written with ``ops`` (SQL text or Columns, one emitter for both)."""

    trees: tuple[Tree, ...]
    head: Head

    def sql(self) -> str:
        return self.head(q.TEXT, [[t.sql(k) for k in range(t.width)] for t in self.trees])


def _missing(tree_) -> np.ndarray:
    return getattr(tree_, "missing_go_to_left", np.zeros(tree_.node_count, dtype=np.uint8))


def _sk_tree(tree, xs: Sequence[str], values: np.ndarray) -> Tree:
    """A fitted scikit-learn tree over the double inputs ``xs``: it compares ``float32(x) <= t``,
    which is ``x <= b`` for the bound ``b`` of :func:`~sqltext.float32_le_bounds`."""
    t = tree.tree_
    return Tree(t.children_left, t.children_right, t.feature, q.doubles(q.float32_le_bounds(t.threshold)),
                _missing(t), xs, np.asarray(values, dtype=np.float64).reshape(t.node_count, -1))


def _inputs(features: Sequence[Feature], what: str) -> list[str]:
    return numeric(features, what)


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
    xs = _inputs(features, name)
    if not hasattr(model, "classes_"):
        if method != "predict":
            raise NotCompilable(f"{name}.{method} does not compile (only predict)")
        return _sk_tree(model, xs, model.tree_.value[:, 0, :]).sql(0)
    classes = list(model.classes_)
    if method == "predict":
        winners = np.argmax(model.tree_.value[:, 0, :], axis=1)  # predict takes argmax of the raw values
        names = [q.label(c) for c in classes]
        return _sk_tree(model, xs, model.tree_.value[:, 0, :])._emit([names[w] for w in winners.tolist()])
    if method == "predict_proba":
        tree = _sk_tree(model, xs, _tree_proba(model))
        return q.array_of([tree.sql(k) for k in range(len(classes))])
    raise NotCompilable(f"{name}.{method} does not compile (predict, predict_proba)")


def forest(model, features: Sequence[Feature], method: str) -> Ensemble:
    """RandomForest / ExtraTrees: the mean of the trees' outputs (summed in order, then divided)."""
    name = type(model).__name__
    _check_single_output(model, name)
    xs = _inputs(features, name)
    estimators = list(model.estimators_)
    n = float(len(estimators))
    if not hasattr(model, "classes_"):
        if method != "predict":
            raise NotCompilable(f"{name}.{method} does not compile (only predict)")
        trees = tuple(_sk_tree(t, xs, t.tree_.value[:, 0, :]) for t in estimators)
        return Ensemble(trees, lambda ops, v: ops.divide(ops.chain_sum([t[0] for t in v]), n))
    classes = list(model.classes_)
    if method not in ("predict", "predict_proba"):
        raise NotCompilable(f"{name}.{method} does not compile (predict, predict_proba)")

    def head(ops, values):
        proba = [ops.divide(ops.chain_sum([t[k] for t in values]), n) for k in range(len(classes))]
        return ops.argmax_label(proba, classes) if method == "predict" else ops.array_of(proba)
    return Ensemble(tuple(_sk_tree(t, xs, _tree_proba(t)) for t in estimators), head)


def _link(model, method: str, name: str) -> Callable[[Any, list], Any]:
    """Classifier outputs from raw scores through the model's loss (sigmoid or softmax): ``f(ops, raw)``."""
    loss = type(model._loss).__name__
    classes = list(model.classes_)
    hist = hasattr(model, "_predictors")
    binary = len(classes) == 2
    if binary and loss not in ("HalfBinomialLoss", "ExponentialLoss") or \
            not binary and loss != "HalfMultinomialLoss":
        raise NotCompilable(f"{name} with loss {loss} does not compile")
    if method not in ("predict", "predict_proba", "decision_function"):
        raise NotCompilable(f"{name}.{method} does not compile (predict, predict_proba, decision_function)")

    def link(ops, raw):
        if binary:
            if method == "predict":
                return ops.positive_label(raw[0], classes, strict=hist)
            if method == "predict_proba":
                p = ops.sigmoid(raw[0] if loss == "HalfBinomialLoss" else ops.times(2.0, raw[0]))
                return ops.array_of([ops.one_minus(p), p])
            return raw[0]
        if method == "predict":
            return ops.argmax_label(raw, classes)
        if method == "predict_proba":
            return ops.array_of(ops.softmax(raw))
        return ops.array_of(raw)
    return link


def _boosted(trees: list[list[Tree]], base: np.ndarray, rate: float | None,
             finish: Callable[[Any, list], Any]) -> Ensemble:
    """``raw[k] = base[k] + Σ_i rate·tree[i][k]`` (left to right, as scikit-learn adds stages), then ``finish``."""
    flat = tuple(t for stage in trees for t in stage)
    per_stage = len(base)

    def head(ops, values):
        raw = []
        for k in range(per_stage):
            terms = [values[i * per_stage + k][0] for i in range(len(trees))]
            if rate is not None:
                terms = [ops.times(rate, v) for v in terms]
            raw.append(ops.chain_sum([ops.const(base[k]), *terms]))
        return finish(ops, raw)
    return Ensemble(flat, head)


def gradient_boosting(model, features: Sequence[Feature], method: str) -> Ensemble:
    """GradientBoosting: init score + Σ learning_rate · tree value, stage by stage."""
    name = type(model).__name__
    xs = _inputs(features, name)
    init = model.init_
    if not (isinstance(init, str) and init == "zero") and type(init).__module__ != "sklearn.dummy":
        raise NotCompilable(f"{name} with init estimator {type(init).__name__} does not compile")
    base = np.asarray(model._raw_predict_init(np.zeros((1, len(xs)), dtype=np.float32)), dtype=np.float64)[0]
    stages = model.estimators_
    trees = [[_sk_tree(stages[i, k], xs, stages[i, k].tree_.value[:, 0, :]) for k in range(stages.shape[1])]
             for i in range(stages.shape[0])]
    if hasattr(model, "classes_"):
        finish = _link(model, method, name)
    elif method != "predict":
        raise NotCompilable(f"{name}.{method} does not compile (only predict)")
    else:
        def finish(ops, raw):
            return raw[0]
    return _boosted(trees, base, float(model.learning_rate), finish)


def _hist_tree(predictor, xs: Sequence[str]) -> Tree:
    nodes = predictor.nodes
    if nodes["is_categorical"].any():
        raise NotCompilable("HistGradientBoosting with categorical splits does not compile")
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    return Tree(left, right, np.where(leaf, -1, nodes["feature_idx"].astype(np.int64)),
                q.doubles(nodes["num_threshold"]), nodes["missing_go_to_left"], xs,
                np.asarray(nodes["value"], dtype=np.float64).reshape(-1, 1))


def hist_gradient_boosting(model, features: Sequence[Feature], method: str) -> Ensemble:
    """HistGradientBoosting: baseline + Σ leaf values (float64 comparisons, learned NaN direction)."""
    name = type(model).__name__
    if getattr(model, "_preprocessor", None) is not None or getattr(model, "is_categorical_", None) is not None \
            and np.any(model.is_categorical_):
        raise NotCompilable(f"{name} with categorical features does not compile")
    xs = numeric(features, name)
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    trees = [[_hist_tree(predictor, xs) for predictor in iteration] for iteration in model._predictors]
    if hasattr(model, "classes_"):
        return _boosted(trees, baseline, None, _link(model, method, name))
    if method != "predict":
        raise NotCompilable(f"{name}.{method} does not compile (only predict)")
    link = type(model._loss.link).__name__
    if link not in ("IdentityLink", "LogLink"):
        raise NotCompilable(f"{name} with link {link} does not compile")

    def finish(ops, raw):
        return raw[0] if link == "IdentityLink" else ops.exp(raw[0])
    return _boosted(trees, baseline, None, finish)


def tree_count(model) -> int:
    """How many trees the model holds (what the size limits depend on)."""
    if hasattr(model, "_predictors"):
        return sum(len(it) for it in model._predictors)
    trees = getattr(model, "estimators_", None)
    if trees is None:
        return 1 if hasattr(model, "tree_") else 0
    return int(np.size(trees))
