"""Linear models: regressors (``coef_·x + intercept_``) and LogisticRegression."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sparkml_ops.models.compile import sqltext as q
from sparkml_ops.models.compile.base import Feature, NotCompilable


def numeric(features: Sequence[Feature], what: str) -> list[str]:
    bad = [f.sql for f in features if f.kind != "num"]
    if bad:
        raise NotCompilable(f"{what} needs numeric inputs, but {len(bad)} input(s) are strings")
    return [f.sql for f in features]


def regressor(model, features: Sequence[Feature], method: str) -> str:
    """``predict`` of LinearRegression, Ridge, Lasso, ElasticNet (single target)."""
    name = type(model).__name__
    if method != "predict":
        raise NotCompilable(f"{name}.{method} does not compile (only predict)")
    coef = np.asarray(model.coef_, dtype=np.float64)
    if coef.ndim != 1 and coef.shape[0] != 1:
        raise NotCompilable(f"{name} with {coef.shape[0]} targets does not compile (one target only)")
    intercept = float(np.ravel(np.asarray(model.intercept_, dtype=np.float64))[0]) \
        if np.ndim(model.intercept_) else float(model.intercept_)
    return q.dot(numeric(features, name), coef.ravel(), intercept)


def logistic(model, features: Sequence[Feature], method: str) -> str:
    """LogisticRegression ``predict``/``predict_proba``: binary through the sigmoid, multinomial through softmax."""
    xs = numeric(features, "LogisticRegression")
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64).ravel()
    classes = list(model.classes_)
    scores = [q.dot(xs, coef[k], intercept[k]) for k in range(coef.shape[0])]
    if method == "predict":
        if len(scores) == 1:
            return q.positive_label(scores[0], classes, strict=True)
        return q.argmax_label(scores, classes)
    if method == "predict_proba":
        if len(scores) == 1:
            p = q.sigmoid(scores[0])
            return q.array_of([f"(1D - {p})", p])
        return q.array_of(q.softmax(scores))
    if method == "decision_function":
        return scores[0] if len(scores) == 1 else q.array_of(scores)
    raise NotCompilable(f"LogisticRegression.{method} does not compile (predict, predict_proba, decision_function)")
