"""Compiled scoring: every supported model type gives the model's own answers as a Spark SQL expression.

One shared DataFrame (100,000 random rows plus edge rows: NaN, NULL, ±inf, values exactly
at and next to the trees' split thresholds, an unseen category) is scored once by all the
compiled models together; each test compares one model's column with scikit-learn's own
``predict`` / ``predict_proba`` on the same rows.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from tests.models.conftest import SKLEARN_REQS

pytestmark = pytest.mark.usefixtures("allow_pickle")

NUM = ["f0", "f1", "f2", "f3"]
CATS = ["a", "b", "c"]
ROWS = 100_000
NULL = -123456.789  # stands for a Spark NULL in the edge rows (scikit-learn sees NaN, as the Python path gives it)


def _train_frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.standard_normal((n, len(NUM))), columns=NUM)
    X.loc[rng.random(n) < 0.05, "f3"] = np.nan  # trees learn a missing-value direction for f3
    X["cat"] = rng.choice(CATS, n)
    return X


def _targets(X: pd.DataFrame):
    f = X[NUM].fillna(0.0)
    score = f.f0 + 0.5 * f.f1 - f.f2 + (X.cat == "b") * 0.7
    binary = (score > 0).astype(np.int64)
    multi = np.digitize(score, [-0.8, 0.6]).astype(np.int64)
    return binary, multi, score + 0.1 * f.f3


def _models():
    """(id, estimator, target name, uses the 'cat' column, predict methods)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    def front(scaler):
        return ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["cat"]),
                                  ("num", scaler, ["f0", "f1", "f2"])], remainder="drop")

    both, clf, reg = ("predict", "predict_proba"), ("predict", "predict_proba"), ("predict",)
    return [
        ("linreg", make_pipeline(StandardScaler(), LinearRegression()), "reg", False, reg),
        ("ridge", Ridge(alpha=0.5), "reg", False, reg),
        ("lasso", Lasso(alpha=0.01), "reg", False, reg),
        ("enet", ElasticNet(alpha=0.01, l1_ratio=0.3), "reg", False, reg),
        ("logreg", LogisticRegression(), "binary", False, both),
        ("logreg_multi", LogisticRegression(C=0.3), "multi", False, both),
        ("tree_clf", DecisionTreeClassifier(max_depth=6, random_state=0), "multi", False, clf),
        ("tree_reg", DecisionTreeRegressor(max_depth=6, random_state=0), "reg", False, reg),
        ("rf_clf", RandomForestClassifier(n_estimators=12, max_depth=6, random_state=0), "binary", False, clf),
        ("rf_reg", RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0), "reg", False, reg),
        ("et_clf", ExtraTreesClassifier(n_estimators=8, max_depth=5, random_state=0), "multi", False, clf),
        ("et_reg", ExtraTreesRegressor(n_estimators=6, max_depth=5, random_state=0), "reg", False, reg),
        ("gb_clf", GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0), "binary", False, clf),
        ("gb_multi", GradientBoostingClassifier(n_estimators=6, max_depth=2, random_state=0), "multi", False, clf),
        ("gb_reg", GradientBoostingRegressor(n_estimators=15, max_depth=3, random_state=0), "reg", False, reg),
        ("hgb_clf", HistGradientBoostingClassifier(max_iter=20, random_state=0), "binary", False, clf),
        ("hgb_multi", HistGradientBoostingClassifier(max_iter=8, random_state=0), "multi", False, clf),
        ("hgb_reg", HistGradientBoostingRegressor(max_iter=20, random_state=0), "reg", False, reg),
        ("pipe_logreg", make_pipeline(front(StandardScaler()), LogisticRegression()), "multi", True, both),
        ("pipe_rf", make_pipeline(front(MinMaxScaler()), RandomForestClassifier(n_estimators=6, max_depth=5,
                                                                               random_state=0)), "binary", True, clf),
        ("pipe_ridge", make_pipeline(front(MinMaxScaler(clip=True)), Ridge()), "reg", True, reg),
    ]


def _needs_finite(model_id: str) -> bool:
    """Linear models (and their pipelines) and GradientBoosting reject NaN in scikit-learn; other trees route it."""
    return model_id in ("linreg", "ridge", "lasso", "enet", "logreg", "logreg_multi", "pipe_logreg", "pipe_ridge",
                        "gb_clf", "gb_multi", "gb_reg")


def _thresholds(model) -> list[tuple[int, float]]:
    """(feature, threshold) pairs from the model's trees (float64 as stored)."""
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    pairs: list[tuple[int, float]] = []
    if hasattr(est, "_predictors"):
        for predictor in (p for it in est._predictors[:3] for p in it):
            nodes = predictor.nodes[~predictor.nodes["is_leaf"].astype(bool)]
            pairs += [(int(f), float(t)) for f, t in zip(nodes["feature_idx"], nodes["num_threshold"], strict=True)]
        return pairs
    trees = [est] if hasattr(est, "tree_") else list(np.ravel(getattr(est, "estimators_", [])))[:3]
    for tree in trees:
        t = tree.tree_
        inner = t.children_left >= 0
        pairs += [(int(f), float(v)) for f, v in zip(t.feature[inner], t.threshold[inner], strict=True)]
    return pairs


def _edge_rows(fitted: dict) -> pd.DataFrame:
    base = {"f0": 0.3, "f1": -0.2, "f2": 0.1, "f3": 0.05, "cat": "a"}
    rows = []
    for col in NUM:
        for value in (np.nan, np.inf, -np.inf, NULL, 0.0, -0.0, 1e300, -1e-300):
            rows.append({**base, col: value})
    rows += [{**base, "cat": "zzz-unseen"}, {**base, "cat": "c", "f3": np.nan}]
    for model_id, (model, _) in fitted.items():
        if not model_id.startswith(("tree", "rf", "et", "gb", "hgb")):
            continue
        for feature, threshold in _thresholds(model)[:60]:
            as32 = float(np.float32(threshold))
            for value in (threshold, as32, np.nextafter(threshold, np.inf), np.nextafter(as32, -np.inf),
                          float(np.nextafter(np.float32(threshold), np.float32(np.inf)))):
                rows.append({**base, NUM[feature]: value})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def compiled_scores(spark, tmp_path_factory):
    """Every model trained, saved as an MLflow model, compiled, and scored in one Spark job."""
    import mlflow.sklearn
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mlflow.models import infer_signature
    from pyspark.sql import functions as F

    from sparkml_ops.models.compile import compile_model

    folder = tmp_path_factory.mktemp("compiled")
    X = _train_frame()
    binary, multi, reg = _targets(X)
    targets = {"binary": binary, "multi": multi, "reg": reg}
    fitted, paths = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model_id, model, target, uses_cat, methods in _models():
            cols = [*NUM, "cat"] if uses_cat else NUM
            train = X[cols] if not _needs_finite(model_id) else X[cols].fillna(0.0)
            model.fit(train, targets[target])
            fitted[model_id] = (model, uses_cat)
            for method in methods:
                path = folder / f"{model_id}-{method}"
                out = getattr(model, method)(train.head(50))
                mlflow.sklearn.save_model(model, str(path), signature=infer_signature(train.head(50), out),
                                          serialization_format="cloudpickle", pyfunc_predict_fn=method,
                                          pip_requirements=SKLEARN_REQS)
                paths[(model_id, method)] = path
    rng = np.random.default_rng(7)
    test = pd.DataFrame(rng.standard_normal((ROWS, len(NUM))) * 1.5, columns=NUM)
    test["cat"] = rng.choice([*CATS, "unseen"], ROWS, p=[0.3, 0.3, 0.3, 0.1])
    test = pd.concat([test, _edge_rows(fitted)], ignore_index=True)
    test["id"] = np.arange(len(test))
    # NaN stays NaN (from_pandas would turn it into NULL); the NULL marker becomes a real NULL
    arrays = {c: pa.array(test[c].to_numpy(dtype=np.float64), mask=test[c].to_numpy() == NULL) for c in NUM}
    table = pa.table({**arrays, "cat": pa.array(test["cat"].tolist()), "id": pa.array(test["id"].to_numpy())})
    test[NUM] = test[NUM].replace(NULL, np.nan)
    pq.write_table(table, folder / "rows.parquet")
    df = spark.read.parquet(str(folder / "rows.parquet"))
    compiled = {key: compile_model(str(path)) for key, path in paths.items()}
    names = {key: f"{key[0]}__{key[1]}" for key in compiled}
    exprs = [F.expr(c.sql()).alias(names[key]) for key, c in compiled.items()]
    # ensembles also as the Column spark_udf builds (trees parsed apart, combined with the Column API)
    exprs += [c.column(c.bind([f"`{n}`" for n in c.input_names])).alias(names[key] + "__column")
              for key, c in compiled.items() if c.ensemble is not None]
    out = df.select("id", *exprs).toPandas().sort_values("id").reset_index(drop=True)
    return {"fitted": fitted, "test": test, "out": out, "names": names, "compiled": compiled}


def _reference(model_id: str, model, method: str, X: pd.DataFrame):
    """scikit-learn's answers and a mask of the rows it answers: linear models and GradientBoosting refuse
    NaN; every model but HistGradientBoosting refuses ±inf and values beyond float32 (the trees' dtype)."""
    values = X[NUM].to_numpy(dtype=np.float64)
    keep = np.ones(len(X), dtype=bool)
    if not model_id.startswith("hgb"):
        keep &= ~(np.abs(values) > np.finfo(np.float32).max).any(axis=1)
    if _needs_finite(model_id):
        keep &= ~np.isnan(values).any(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(model, method)(X[keep]), keep


CASES = [(model_id, method) for model_id, _, _, _, methods in _models() for method in methods]


@pytest.mark.parametrize(("model_id", "method"), CASES, ids=[f"{m}-{p}" for m, p in CASES])
def test_compiled_model_gives_the_models_own_answers(compiled_scores, model_id, method):
    model, uses_cat = compiled_scores["fitted"][model_id]
    test = compiled_scores["test"]
    X = test[[*NUM, "cat"]] if uses_cat else test[NUM]
    X = X.astype({c: np.float64 for c in NUM})
    expected, keep = _reference(model_id, model, method, X)
    assert keep.sum() >= ROWS
    name = compiled_scores["names"][(model_id, method)]
    ensemble = compiled_scores["compiled"][(model_id, method)].ensemble is not None
    assert ensemble == model_id.startswith(("rf", "et", "gb", "hgb", "pipe_rf"))
    for column in [name, name + "__column"] if ensemble else [name]:
        _check(model, method, compiled_scores["out"][column].to_numpy()[keep], expected)


def _check(model, method: str, got, expected) -> None:
    if method == "predict_proba":
        got = np.array([np.asarray(v, dtype=np.float64) for v in got])
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
        assert got.shape == expected.shape
    elif hasattr(model, "classes_"):
        assert got.tolist() == expected.tolist()
        assert len(set(expected.tolist())) > 1
    else:
        np.testing.assert_allclose(got.astype(np.float64), expected, rtol=1e-9, atol=1e-12)


def test_output_types_follow_the_signature(compiled_scores):
    compiled = compiled_scores["compiled"]
    assert compiled[("logreg", "predict")].result_type == "bigint"
    assert compiled[("logreg", "predict_proba")].result_type == "array<double>"
    assert compiled[("ridge", "predict")].result_type == "double"
    assert compiled[("pipe_rf", "predict")].input_names == (*NUM, "cat")


def test_threshold_and_missing_rows_are_in_the_data(compiled_scores):
    """The edge rows exist: NaN/NULL/inf rows and rows exactly at float32-rounded tree thresholds."""
    test = compiled_scores["test"]
    assert test[NUM].isna().any(axis=1).sum() >= 8 and np.isinf(test[NUM].to_numpy(dtype=float)).any()
    out = compiled_scores["out"]
    assert len(out) == len(test) and out["id"].tolist() == list(range(len(test)))
    model, _ = compiled_scores["fitted"]["rf_clf"]
    feature, threshold = _thresholds(model)[0]
    assert (test[NUM[feature]] == float(np.float32(threshold))).any()


def test_not_compilable_names_the_part(tmp_path):
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    from sparkml_ops.models.compile import NotCompilable, compile_model

    X = _train_frame(200)[NUM].fillna(0.0)
    y = _targets(_train_frame(200))[0]
    knn = KNeighborsClassifier(3).fit(X, y)
    mlflow.sklearn.save_model(knn, str(tmp_path / "knn"), signature=infer_signature(X, knn.predict(X)),
                              serialization_format="cloudpickle", pip_requirements=SKLEARN_REQS)
    with pytest.raises(NotCompilable, match="KNeighborsClassifier does not compile"):
        compile_model(str(tmp_path / "knn"))
    pipe = make_pipeline(PolynomialFeatures(), KNeighborsClassifier(3)).fit(X, y)
    mlflow.sklearn.save_model(pipe, str(tmp_path / "poly"), signature=infer_signature(X, pipe.predict(X)),
                              serialization_format="cloudpickle", pip_requirements=SKLEARN_REQS)
    with pytest.raises(NotCompilable, match="pipeline step PolynomialFeatures"):
        compile_model(str(tmp_path / "poly"))




def test_float32_bounds_decide_like_a_float32_cast():
    """``x <= float32_le_bounds(t)`` in double says what ``float32(x) <= t`` says, next to every threshold."""
    from sparkml_ops.models.compile.sqltext import float32_le_bounds

    rng = np.random.default_rng(3)
    t = np.concatenate([rng.standard_normal(3000) * 10, (rng.standard_normal(3000) * 10).astype(np.float32),
                        [0.0, -0.0, 1e-45, -1e-45, 5e-324, 1e-300, float(np.finfo(np.float32).max)]])
    bounds = float32_le_bounds(t)
    xs = np.stack([bounds, np.nextafter(bounds, np.inf), np.nextafter(bounds, -np.inf), t,
                   np.nextafter(t, np.inf), np.nextafter(t, -np.inf), t.astype(np.float32).astype(np.float64)])
    with np.errstate(over="ignore"):
        cast = xs.astype(np.float32).astype(np.float64) <= t
    assert (cast == (xs <= bounds)).all()
    assert cast.any() and not cast.all()


def test_long_sums_are_chunked_and_add_every_term():
    from sparkml_ops.models.compile.sqltext import SUM_CHUNK, chain_sum

    terms = [f"t{i}" for i in range(SUM_CHUNK * 3 + 5)]
    text = chain_sum(terms)
    assert [int(n) for n in re.findall(r"t(\d+)", text)] == list(range(len(terms)))
    assert text.count("(") == 5  # the outer sum and four runs
