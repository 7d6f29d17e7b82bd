"""MLflow's scoring protocol against a real server on 127.0.0.1 serving a model logged through the store."""

from __future__ import annotations

import io
import json
import re
import threading

import httpx
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.models.serving.conftest import FEATURES, training_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return training_frame(rows=7, seed=42)[0]


def _mlflow_answer(pyfunc, body, content_type: str):
    """What MLflow's own scoring server code answers for the same body (in process, no HTTP)."""
    from mlflow.pyfunc import scoring_server

    result = scoring_server.invocations(body, content_type, pyfunc, pyfunc.metadata.get_input_schema())
    assert result.status == 200, result.response
    return json.loads(result.response)


def _post(server, body, content_type="application/json", **kw) -> httpx.Response:
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return httpx.post(server.url + "/invocations", content=body, headers={"Content-Type": content_type},
                      timeout=30, **kw)


def _expected(pyfunc, frame: pd.DataFrame) -> list:
    return pyfunc.predict(frame).tolist()


def test_health_version_metadata(lr_served):
    server, info, _ = lr_served
    assert httpx.get(server.url + "/ping").status_code == 200
    assert httpx.get(server.url + "/health").status_code == 200
    assert httpx.get(server.url + "/version").text == mlflow.__version__
    meta = httpx.get(server.url + "/metadata").json()
    assert meta["model_id"] == info.model_id
    assert meta["model_uri"] == info.model_uri
    assert [c["name"] for c in meta["signature"]["inputs"]] == FEATURES
    assert meta["signature"]["inputs"][0]["type"] == "double"
    assert meta["input_example"]["dataframe_split"]["columns"] == FEATURES
    assert meta["fast_path"] is True, meta["fast_path_reason"]
    assert httpx.post(server.url + "/ping").status_code == 405


@pytest.mark.parametrize("fmt", ["split", "split_reordered", "split_with_index", "records", "instances_rows",
                                 "instances_records", "inputs_columns", "inputs_rows", "inputs_records",
                                 "inputs_with_params"])
def test_json_formats_match_mlflow(lr_served, frame, fmt):
    server, _, pyfunc = lr_served
    reordered = frame[list(reversed(FEATURES))]
    payload = {
        "split": {"dataframe_split": frame.to_dict(orient="split", index=False)},
        "split_reordered": {"dataframe_split": reordered.to_dict(orient="split", index=False)},
        "split_with_index": {"dataframe_split": json.loads(frame.to_json(orient="split"))},
        "records": {"dataframe_records": frame.to_dict(orient="records")},
        "instances_rows": {"instances": frame.values.tolist()},
        "instances_records": {"instances": frame.to_dict(orient="records")},
        "inputs_columns": {"inputs": frame.to_dict(orient="list")},
        "inputs_rows": {"inputs": frame.values.tolist()},
        "inputs_records": {"inputs": frame.to_dict(orient="records")},
        "inputs_with_params": {"inputs": frame.to_dict(orient="list"), "params": {"unused": 1}},
    }[fmt]
    response = _post(server, payload)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"predictions": _expected(pyfunc, frame)}
    if fmt not in ("instances_rows", "inputs_rows"):  # MLflow needs names for these; we map by position
        assert response.json() == _mlflow_answer(pyfunc, json.dumps(payload), "application/json")


def test_single_row_and_empty(lr_served, frame):
    server, _, pyfunc = lr_served
    one = frame.iloc[[3]]
    response = _post(server, {"dataframe_split": one.to_dict(orient="split", index=False)})
    assert response.json() == {"predictions": _expected(pyfunc, one)}
    empty = _post(server, {"dataframe_split": {"columns": FEATURES, "data": []}})
    assert empty.status_code == 200 and empty.json() == {"predictions": []}


def test_csv_parquet_arrow_bodies(lr_served, frame):
    server, _, pyfunc = lr_served
    expected = {"predictions": _expected(pyfunc, frame)}
    csv_body = frame.to_csv(index=False)
    response = _post(server, csv_body, "text/csv")
    assert response.status_code == 200, response.text
    assert response.json() == expected == _mlflow_answer(pyfunc, csv_body, "text/csv")
    with_index = _post(server, frame.to_csv(), "text/csv; charset=utf-8")  # pandas' default writes the index
    assert with_index.json() == expected

    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    for media in ("application/vnd.apache.parquet", "application/x-parquet"):
        response = _post(server, parquet.getvalue(), media)
        assert response.status_code == 200, response.text
        assert response.json() == expected
    assert expected == _mlflow_answer(pyfunc, parquet.getvalue(), "application/vnd.apache.parquet")

    table = pa.Table.from_pandas(frame, preserve_index=False)
    stream, file = io.BytesIO(), io.BytesIO()
    with pa.ipc.new_stream(stream, table.schema) as writer:
        writer.write_table(table)
    with pa.ipc.new_file(file, table.schema) as writer:
        writer.write_table(table)
    assert _post(server, stream.getvalue(), "application/vnd.apache.arrow.stream").json() == expected
    assert _post(server, file.getvalue(), "application/vnd.apache.arrow.file").json() == expected


def test_stock_mlflow_client_payloads(lr_served, frame):
    """MLflow's own client and helpers, unchanged, against our server."""
    from mlflow.models.utils import convert_input_example_to_serving_input
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    server, info, pyfunc = lr_served
    client = ScoringServerClient("127.0.0.1", server.port)
    client.wait_server_ready(timeout=10)
    assert client.get_version() == mlflow.__version__
    answer = client.invoke(frame)
    assert answer["predictions"] == _expected(pyfunc, frame)
    assert answer.get_predictions()[0].tolist() == _expected(pyfunc, frame)
    assert client.invoke(frame.values)["predictions"] == _expected(pyfunc, frame)

    serving_input = convert_input_example_to_serving_input(frame.head(3))
    assert _post(server, serving_input).json() == {"predictions": _expected(pyfunc, frame.head(3))}

    # The serving example MLflow saved next to the model, posted byte for byte.
    model_dir = mlflow.artifacts.download_artifacts(info.model_uri)
    with open(f"{model_dir}/serving_input_example.json", "rb") as handle:
        body = handle.read()
    assert _post(server, body).json() == _mlflow_answer(pyfunc, body, "application/json")

    # The docs' curl example shape, with NaN-free floats written by the stdlib encoder.
    doc_payload = ('{"dataframe_split": {"columns": ' + json.dumps(FEATURES)
                   + ', "data": [' + json.dumps(frame.iloc[0].tolist()) + "]}}")
    assert _post(server, doc_payload).json() == {"predictions": _expected(pyfunc, frame.head(1))}


@pytest.mark.parametrize("body,needle", [
    ('{"dataframe_split": {"columns": ["f0"', "not valid JSON"),
    ("[1, 2, 3]", "must be a JSON object"),
    ('{"dataframe_splitt": {}}', "dataframe_splitt"),
    ('{"dataframe_split": {}, "inputs": []}', "both"),
    ('{"dataframe_split": {"columns": ["f0"], "data": [[1]]}}', "'f1'"),
    ('{"dataframe_split": {"colums": [], "data": []}}', "colums"),
    ('{"dataframe_records": [{"f0": 1}]}', "missing column(s) ['f1'"),
    ('{"inputs": {"f0": [1, 2]}}', "'f19'"),
    ('{"inputs": [[1, 2, 3]]}', "20 values"),
    ('{"inputs": [1.0]}', "20 values"),
    ('{"dataframe_split": {"columns": ["f0", "f0"], "data": []}}', "repeats column 'f0'"),
    ('{"inputs": [{"f0": 1}], "params": [1]}', "'params'"),
    ('{"instances": "x"}', "instances"),
])
def test_malformed_requests_are_400(lr_served, body, needle):
    server, _, _ = lr_served
    response = _post(server, body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error_code"] == "BAD_REQUEST"
    assert needle in error["message"], error["message"]


def test_wrong_column_names_type_and_value(lr_served, frame):
    server, _, _ = lr_served
    renamed = frame.rename(columns={"f3": "f_3"})
    response = _post(server, {"dataframe_split": renamed.to_dict(orient="split", index=False)})
    assert response.status_code == 400
    assert "missing column(s) ['f3']" in response.json()["message"]
    assert "unexpected column(s) ['f_3']" in response.json()["message"]

    rows = frame.to_dict(orient="records")
    for bad, words in (("abc", "string 'abc'"), (None, "null"), (True, "boolean true"), ([1.0], "an array")):
        rows[1] = dict(rows[1], f7=bad)
        response = _post(server, {"dataframe_records": rows})
        assert response.status_code == 400, response.text
        message = response.json()["message"]
        assert "column 'f7' (double)" in message and words in message and "row 1" in message, message

    bad_csv = frame.astype(object)
    bad_csv.loc[2, "f5"] = "oops"
    response = _post(server, bad_csv.to_csv(index=False), "text/csv")
    assert response.status_code == 400 and "'f5'" in response.json()["message"], response.text
    response = _post(server, frame.drop(columns=["f9"]).to_csv(index=False), "text/csv")
    assert response.status_code == 400 and "['f9']" in response.json()["message"], response.text

    strings = io.BytesIO()
    frame.astype({"f4": str}).to_parquet(strings)
    response = _post(server, strings.getvalue(), "application/vnd.apache.parquet")
    assert response.status_code == 400 and "'f4'" in response.json()["message"], response.text
    response = _post(server, b"PAR1 not really", "application/vnd.apache.parquet")
    assert response.status_code == 400 and "not valid Parquet" in response.json()["message"]
    response = _post(server, b"\x00\x01", "application/vnd.apache.arrow.stream")
    assert response.status_code == 400 and "Arrow" in response.json()["message"]


def test_media_type_and_empty_body(lr_served):
    server, _, _ = lr_served
    assert _post(server, b"").status_code == 400
    assert "empty" in _post(server, b"").json()["message"]
    assert _post(server, b"{}", "application/xml").status_code == 415
    assert _post(server, b"{}", "application/json; charset=latin-1").status_code == 415
    no_type = httpx.post(server.url + "/invocations", content=b"{}", timeout=10)
    assert no_type.status_code == 415 and "Content-Type" in no_type.json()["message"]


def test_oversized_body_is_413(lr_served, frame):
    server, _, pyfunc = lr_served
    big = {"dataframe_split": {"columns": FEATURES, "data": [frame.iloc[0].tolist()] * 2000}}  # ~800 KB
    response = _post(server, big)
    assert response.status_code == 413, response.text
    # the client sends Content-Length: refused before the body is read, naming both sizes
    assert re.fullmatch(r"the body is \d+ bytes; the limit is \d+ bytes \(--max-body-bytes\)",
                        response.json()["message"]), response.json()

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"inputs": ['
        for _ in range(3000):
            yield json.dumps(frame.iloc[0].tolist()).encode() + b","
        yield b"[]]}"

    response = httpx.post(server.url + "/invocations", content=chunks(), timeout=30,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    # The server is still fine afterwards.
    ok = _post(server, {"inputs": frame.head(2).to_dict(orient="list")})
    assert ok.json() == {"predictions": _expected(pyfunc, frame.head(2))}


def test_concurrent_requests_are_batched_and_answered_correctly(lr_served):
    """16 clients, requests of 1-4 rows: every answer belongs to its own request."""
    server, _, pyfunc = lr_served
    data, _ = training_frame(rows=400, seed=7)
    expected = pyfunc.predict(data)
    before = httpx.get(server.url + "/metadata").json()
    errors: list[str] = []

    def client(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(40):
                start = (worker * 40 + i) % 396
                n = 1 + (worker + i) % 4
                body = {"dataframe_split": data.iloc[start:start + n].to_dict(orient="split", index=False)}
                response = http.post("/invocations", json=body)
                if response.status_code != 200:
                    errors.append(response.text)
                elif response.json()["predictions"] != expected[start:start + n].tolist():
                    errors.append(f"wrong answer for rows {start}:{start + n}")

    threads = [threading.Thread(target=client, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[:3]
    after = httpx.get(server.url + "/metadata").json()
    requests = after["requests"] - before["requests"]
    batches = after["batches"] - before["batches"]
    assert requests == 16 * 40
    assert batches < requests, "concurrent requests should share model calls"


def test_numpy_outputs_match_for_many_rows(lr_served):
    server, _, pyfunc = lr_served
    data, _ = training_frame(rows=400, seed=3)  # ~170 KB: decoded off the event loop
    response = _post(server, {"dataframe_split": data.to_dict(orient="split", index=False)})
    assert response.status_code == 200
    assert np.array_equal(np.array(response.json()["predictions"]), pyfunc.predict(data))
