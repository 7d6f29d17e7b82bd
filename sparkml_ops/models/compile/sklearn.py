"""scikit-learn estimators and pipelines → one Spark SQL expression."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sparkml_ops.models.compile import linear, preprocess, trees
from sparkml_ops.models.compile.base import Feature, NotCompilable

_MODELS: dict[str, Callable[[Any, Sequence[Feature], str], str | trees.Ensemble]] = {
    "LinearRegression": linear.regressor, "Ridge": linear.regressor, "Lasso": linear.regressor,
    "ElasticNet": linear.regressor, "RidgeCV": linear.regressor, "LassoCV": linear.regressor,
    "ElasticNetCV": linear.regressor, "LogisticRegression": linear.logistic,
    "LogisticRegressionCV": linear.logistic,
    "DecisionTreeClassifier": trees.decision_tree, "DecisionTreeRegressor": trees.decision_tree,
    "ExtraTreeClassifier": trees.decision_tree, "ExtraTreeRegressor": trees.decision_tree,
    "RandomForestClassifier": trees.forest, "RandomForestRegressor": trees.forest,
    "ExtraTreesClassifier": trees.forest, "ExtraTreesRegressor": trees.forest,
    "GradientBoostingClassifier": trees.gradient_boosting, "GradientBoostingRegressor": trees.gradient_boosting,
    "HistGradientBoostingClassifier": trees.hist_gradient_boosting,
    "HistGradientBoostingRegressor": trees.hist_gradient_boosting,
}
SUPPORTED = tuple(sorted(_MODELS)) + ("Pipeline", "StandardScaler", "MinMaxScaler", "OneHotEncoder",
                                       "ColumnTransformer")


def transform(step, features: Sequence[Feature]) -> list[Feature]:
    """Features after one fitted transformer (or a pipeline of them)."""
    name = type(step).__name__
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return list(features)
    _check_width(step, features, name)
    if name == "Pipeline":
        for _, inner in step.steps:
            features = transform(inner, features)
        return list(features)
    if name == "StandardScaler":
        return preprocess.standard_scaler(step, features)
    if name == "MinMaxScaler":
        return preprocess.min_max_scaler(step, features)
    if name == "OneHotEncoder":
        return preprocess.one_hot_encoder(step, features)
    if name == "ColumnTransformer":
        return preprocess.column_transformer(step, features, transform)
    raise NotCompilable(f"pipeline step {name} does not compile; compilable steps: StandardScaler, MinMaxScaler, "
                        "OneHotEncoder, ColumnTransformer (of those), passthrough")


def _check_width(step, features: Sequence[Feature], name: str) -> None:
    expected = getattr(step, "n_features_in_", None)
    if expected is not None and expected != len(features):
        raise NotCompilable(f"{name} was fitted on {expected} features but the model's signature gives {len(features)}")


def predict(model, features: Sequence[Feature], method: str) -> str | trees.Ensemble:
    """The SQL for ``model.<method>`` on ``features``; Pipelines transform, then their last step predicts."""
    name = type(model).__name__
    if name == "Pipeline":
        *head, (_, last) = model.steps
        for _, step in head:
            features = transform(step, features)
        return predict(last, features, method)
    compile_one = _MODELS.get(name)
    if compile_one is None:
        raise NotCompilable(f"estimator {name} does not compile; compilable: {', '.join(SUPPORTED)}")
    _check_width(model, features, name)
    return compile_one(model, features, method)


def count_trees(model) -> int:
    if type(model).__name__ == "Pipeline":
        return count_trees(model.steps[-1][1])
    return trees.tree_count(model)
