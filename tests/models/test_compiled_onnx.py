"""ONNX-flavor models compiled to Spark SQL: answers of onnxruntime itself, on real Spark.

Models are converted with skl2onnx and saved with MLflow's ``onnx`` flavor (signature from
``onnx_convert``: named double columns in, ``label`` and ``probabilities`` / ``variable`` out).
onnxruntime scores the float32 matrix of the same rows; the compiled expressions must give
its labels, and its scores to float32 precision (it sums and exponentiates in float32).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

NUM = ["f0", "f1", "f2", "f3"]
ROWS = 20_000
PROBA_TOL = 1e-5  # onnxruntime's float32 sums and sigmoid/softmax against the compiled double arithmetic


def _train(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.standard_normal((n, len(NUM))), columns=NUM)


def _models():
    """(id, estimator, target kind, whether NaN rows are meaningful)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    return [
        ("logreg", LogisticRegression(), "binary", False),
        ("logreg_multi", LogisticRegression(C=0.3), "multi", False),
        ("linreg", LinearRegression(), "reg", False),
        ("scaler_logreg", make_pipeline(StandardScaler(), LogisticRegression()), "multi", False),
        ("rf_clf", RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0), "multi", True),
        ("dt_clf", DecisionTreeClassifier(max_depth=7, random_state=0), "binary", True),
        ("rf_reg", RandomForestRegressor(n_estimators=8, max_depth=6, random_state=0), "reg", True),
        ("dt_reg", DecisionTreeRegressor(max_depth=7, random_state=0), "reg", True),
    ]


def _targets(X: pd.DataFrame) -> dict:
    score = X.f0 + 0.5 * X.f1 - X.f2
    return {"binary": (score > 0).astype(np.int64), "multi": np.digitize(score, [-0.8, 0.6]).astype(np.int64),
            "reg": score + 0.1 * X.f3}


def _thresholds(onnx_model) -> list[tuple[int, float]]:
    from onnx import helper

    for node in onnx_model.graph.node:
        if node.op_type.startswith("TreeEnsemble"):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            return [(int(f), float(t)) for f, t, m in zip(attrs["nodes_featureids"], attrs["nodes_values"],
                                                          attrs["nodes_modes"], strict=True) if m != b"LEAF"]
    return []


@pytest.fixture(scope="module")
def onnx_scores(spark, tmp_path_factory):
    """Every model converted, saved, compiled (full outputs and label only) and scored in one Spark job."""
    import mlflow.onnx
    import onnxruntime as ort

    from sparkml_ops.models.compile import compile_model
    from sparkml_ops.models.onnx_convert import onnx_signature, sklearn_to_onnx

    folder = tmp_path_factory.mktemp("onnx")
    X = _train()
    targets = _targets(X)
    rng = np.random.default_rng(5)
    test = pd.DataFrame(rng.standard_normal((ROWS, len(NUM))) * 1.5, columns=NUM)
    converted, compiled = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model_id, model, target, _ in _models():
            model.fit(X, targets[target])
            onnx_model = sklearn_to_onnx(model, X)
            converted[model_id] = onnx_model
            for outputs in (None, ["label"] if target != "reg" else None):
                path = folder / f"{model_id}-{'all' if outputs is None else 'label'}"
                if path.exists():
                    continue
                mlflow.onnx.save_model(onnx_model, str(path), pip_requirements=["onnxruntime"],
                                       signature=onnx_signature(onnx_model, NUM, X.head(20), outputs))
                compiled[path.name] = compile_model(str(path))
    edges = [{**dict.fromkeys(NUM, 0.1), col: v} for col in NUM for v in (np.nan, np.inf, -np.inf, 0.0, 1e30)]
    for onnx_model in converted.values():
        for feature, threshold in _thresholds(onnx_model)[:40]:
            t32 = np.float32(threshold)
            for v in (float(t32), float(np.nextafter(t32, np.float32(np.inf))),
                      float(np.nextafter(t32, np.float32(-np.inf))), (float(t32) + float(np.nextafter(
                          t32, np.float32(np.inf)))) / 2):
                edges.append({**dict.fromkeys(NUM, 0.1), NUM[feature]: v})
    test = pd.concat([test, pd.DataFrame(edges)], ignore_index=True)
    test["id"] = np.arange(len(test))
    df = spark.createDataFrame(test).repartition(2)
    exprs = [c.column(c.bind([f"`{n}`" for n in NUM])).alias(name.replace("-", "__")) for name, c in compiled.items()]
    scored = df.select("id", *exprs)
    out = scored.toPandas().sort_values("id").reset_index(drop=True)
    reference = {}
    for model_id, onnx_model in converted.items():
        session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, {session.get_inputs()[0].name: test[NUM].to_numpy(dtype=np.float32)})
        reference[model_id] = dict(zip(names, values, strict=True))
    return {"out": out, "reference": reference, "compiled": compiled, "plan": scored, "test": test}


CASES = [m[0] for m in _models()]


@pytest.mark.parametrize("model_id", CASES)
def test_compiled_onnx_gives_onnxruntimes_answers(onnx_scores, model_id):
    kind, nan_rows = next((m[2], m[3]) for m in _models() if m[0] == model_id)
    test, ref = onnx_scores["test"], onnx_scores["reference"][model_id]
    keep = np.isfinite(test[NUM].to_numpy()).all(axis=1) | nan_rows
    full = onnx_scores["out"][f"{model_id}__all"]
    if kind == "reg":
        got = full.to_numpy(dtype=np.float64)[keep]
        expected = np.asarray(ref["variable"], dtype=np.float64).reshape(-1)[keep]
        finite = np.isfinite(expected)
        assert finite.sum() >= ROWS
        np.testing.assert_allclose(got[finite], expected[finite], rtol=PROBA_TOL, atol=PROBA_TOL)
        return
    assert onnx_scores["compiled"][f"{model_id}-all"].result_type == "struct<label:bigint,probabilities:array<float>>"
    labels = np.array([r["label"] for r in full])[keep]
    proba = np.array([np.asarray(r["probabilities"], dtype=np.float64) for r in full])[keep]
    expected_proba = np.asarray(ref["probabilities"], dtype=np.float64)[keep]
    expected_labels = np.asarray(ref["label"])[keep]
    finite = np.isfinite(expected_proba).all(axis=1)
    assert finite.sum() >= ROWS
    np.testing.assert_allclose(proba[finite], expected_proba[finite], rtol=PROBA_TOL, atol=PROBA_TOL)
    top2 = np.sort(expected_proba[finite], axis=1)[:, -2:]
    clear = np.abs(top2[:, 1] - top2[:, 0]) > PROBA_TOL  # labels can differ only on float32 near-ties
    assert clear.sum() >= ROWS * 0.99
    assert (labels[finite][clear] == expected_labels[finite][clear]).all()
    assert len(set(expected_labels.tolist())) > 1
    label_only = onnx_scores["out"][f"{model_id}__label"].to_numpy()[keep]
    assert (label_only == labels).all()


def test_trees_of_onnx_models_are_split_and_plan_has_no_python_node(onnx_scores):
    compiled = onnx_scores["compiled"]
    assert compiled["rf_clf-all"].ensemble is not None and compiled["rf_clf-all"].tree_count == 10
    assert compiled["logreg-all"].ensemble is None
    plan = onnx_scores["plan"]._jdf.queryExecution().executedPlan().toString()
    assert not [n for n in ("ArrowEvalPython", "BatchEvalPython", "MapInArrow", "MapInPandas", "PythonUDF")
                if n in plan], plan


def test_unsupported_onnx_graph_names_the_operator(spark, tmp_path, allow_pickle):
    import mlflow.onnx
    from sklearn.neighbors import KNeighborsClassifier

    from sparkml_ops.models import spark_udf
    from sparkml_ops.models.compile import NotCompilable, compile_model
    from sparkml_ops.models.onnx_convert import onnx_signature, sklearn_to_onnx

    X = _train(200)
    model = KNeighborsClassifier(3).fit(X, _targets(X)["binary"])
    onnx_model = sklearn_to_onnx(model, X)
    ops = [n.op_type for n in onnx_model.graph.node]
    path = str(tmp_path / "knn")
    mlflow.onnx.save_model(onnx_model, path, pip_requirements=["onnxruntime"],
                           signature=onnx_signature(onnx_model, NUM, X.head(20), ["label"]))
    with pytest.raises(NotCompilable, match=r"cannot compile: (\w+)") as info:
        compile_model(path)
    assert info.match("|".join(set(ops) - {"Identity", "Cast"}))
    udf = spark_udf(spark, path)
    assert udf.compiled is None and "cannot compile" in udf.compile_reason
    with pytest.raises(NotCompilable, match="cannot compile"):
        spark_udf(spark, path, compile=True)
    df = spark.createDataFrame(X.head(50))
    got = df.withColumn("p", udf()).toPandas()
    assert got.p.tolist() == model.predict(X.head(50)).tolist()
