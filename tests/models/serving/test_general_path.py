"""A model the fast path cannot take (a string column) is served through MLflow's own pyfunc path."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.models.serving.conftest import flush_store, start_server


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"color": rng.choice(["red", "green", "blue"], rows),
                         "x": rng.normal(size=rows), "n": rng.integers(0, 10, rows)})


@pytest.fixture(scope="module")
def pipeline_served(module_root, tmp_path_factory):
    import mlflow.sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    train = _frame(300, 0)
    target = ((train["color"] == "red") ^ (train["x"] > 0)).astype(int)
    pipe = Pipeline([("prep", ColumnTransformer([("onehot", OneHotEncoder(), ["color"])], remainder="passthrough")),
                     ("lr", LogisticRegression())]).fit(train, target)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(pipe, name="model", input_example=train.head(2),
                                 serialization_format="cloudpickle",
                                 pip_requirements=mlflow.sklearn.get_default_pip_requirements())
    flush_store()
    uri = f"runs:/{run.info.run_id}/model"
    server = start_server(uri, module_root, tmp_path_factory.mktemp("logs"))
    yield server, mlflow.pyfunc.load_model(uri)
    assert server.stop() == 0, server.output()


def _post(server, body, media="application/json") -> httpx.Response:
    body = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(server.url + "/invocations", content=body, headers={"Content-Type": media}, timeout=30)


def test_metadata_says_why_the_fast_path_is_off(pipeline_served):
    server, _ = pipeline_served
    meta = httpx.get(server.url + "/metadata").json()
    assert meta["fast_path"] is False
    assert "'color'" in meta["fast_path_reason"]
    assert {c["name"]: c["type"] for c in meta["signature"]["inputs"]} == {"color": "string", "x": "double",
                                                                           "n": "long"}


def test_every_format_through_mlflow_path(pipeline_served):
    server, pyfunc = pipeline_served
    frame = _frame(6, 1)
    expected = {"predictions": pyfunc.predict(frame).tolist()}
    for payload in ({"dataframe_split": frame.to_dict(orient="split", index=False)},
                    {"dataframe_records": frame.to_dict(orient="records")},
                    {"inputs": frame.to_dict(orient="list")}):
        response = _post(server, payload)
        assert response.status_code == 200, response.text
        assert response.json() == expected
    assert _post(server, frame.to_csv(index=False), "text/csv").json() == expected
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    assert _post(server, parquet.getvalue(), "application/x-parquet").json() == expected
    stream = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(stream, table.schema) as writer:
        writer.write_table(table)
    assert _post(server, stream.getvalue(), "application/vnd.apache.arrow.stream").json() == expected


def test_bad_payloads_are_400_naming_the_problem(pipeline_served):
    server, _ = pipeline_served
    frame = _frame(2, 2)
    missing = _post(server, {"dataframe_split": frame.drop(columns=["n"]).to_dict(orient="split", index=False)})
    assert missing.status_code == 400 and "n" in missing.json()["message"], missing.text
    wrong = frame.astype(object)
    wrong.loc[0, "x"] = "not a number"
    response = _post(server, {"dataframe_split": wrong.to_dict(orient="split", index=False)})
    assert response.status_code == 400 and "x" in response.json()["message"], response.text
    assert _post(server, b"{not json").status_code == 400
    assert _post(server, b"").status_code == 400
    assert _post(server, b"\x00garbage", "application/vnd.apache.arrow.file").status_code == 400
    assert _post(server, b"a,b\n1,2\n", "text/csv").status_code == 400
