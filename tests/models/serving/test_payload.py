"""Decoding and batching pieces in process: signature → fast schema, JSON/table → matrix, the batcher, the CLI."""

from __future__ import annotations

import asyncio
import io

import click
import numpy as np
import pyarrow as pa
import pytest
from mlflow.types import ColSpec, Schema, TensorSpec

from sparkml_ops.models.serving.batcher import MicroBatcher
from sparkml_ops.models.serving.http_errors import PayloadError, UnsupportedMediaType
from sparkml_ops.models.serving.payload import content_kind, decode_json, json_to_matrix, table_to_matrix
from sparkml_ops.models.serving.settings import ServeConfig
from sparkml_ops.models.spec import schema_inputs


def _schema(*specs: tuple[str, str]) -> Schema:
    return Schema([ColSpec(t, n) for n, t in specs])


def fast_schema(schema: Schema | None, feature_order: list[str] | None = None):
    """The matrix view of a signature, as every fast path takes it."""
    return schema_inputs(schema).matrix(feature_order)


def test_fast_schema_accepts_numeric_columns_and_tensors():
    fs, why = fast_schema(_schema(("a", "double"), ("b", "long"), ("c", "float")))
    assert why == "" and fs.names == ("a", "b", "c") and fs.dtype == np.float64
    ints, _ = fast_schema(_schema(("a", "long"), ("b", "integer")))
    assert ints.dtype == np.int64
    reordered, _ = fast_schema(_schema(("a", "double"), ("b", "long")), feature_order=["b", "a"])
    assert reordered.names == ("b", "a") and reordered.index == {"b": 0, "a": 1}
    # Named input lands in the estimator's order; unnamed rows are read in the signature's order.
    for payload in ({"inputs": [[1.5, 2]]}, {"dataframe_records": [{"a": 1.5, "b": 2}]},
                    {"dataframe_split": {"data": [[1.5, 2]]}}, {"inputs": {"b": [2], "a": [1.5]}}):
        assert json_to_matrix(payload, reordered)[0].tolist() == [[2.0, 1.5]], payload
    tensor, _ = fast_schema(Schema([TensorSpec(np.dtype("float32"), (-1, 4))]))
    assert tensor.names is None and tensor.width == 4 and tensor.dtype == np.float32


@pytest.mark.parametrize("schema,reason", [
    (None, "no input signature"),
    (_schema(("a", "double"), ("s", "string")), "'s'"),
    (Schema([ColSpec("double", "a", required=False)]), "optional"),
    (Schema([TensorSpec(np.dtype("float64"), (-1, 2, 2))]), "not a numeric (-1, k) matrix"),
])
def test_fast_schema_refuses_what_it_cannot_check(schema, reason):
    fs, why = fast_schema(schema)
    assert fs is None and reason in why


def test_json_formats_give_the_same_matrix():
    fs, _ = fast_schema(_schema(("a", "double"), ("b", "long")))
    want = np.array([[1.5, 2], [3.0, 4]])
    for payload in (
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 2], [3, 4]]}},
        {"dataframe_split": {"columns": ["b", "x", "a"], "data": [[2, "extra", 1.5], [4, None, 3]], "index": [0, 1]}},
        {"dataframe_split": {"data": [[1.5, 2], [3, 4]]}},
        {"dataframe_records": [{"a": 1.5, "b": 2}, {"b": 4, "a": 3, "zzz": "ignored"}]},
        {"instances": [[1.5, 2], [3, 4]]},
        {"instances": [{"a": 1.5, "b": 2}, {"a": 3, "b": 4}]},
        {"inputs": {"a": [1.5, 3], "b": [2, 4]}},
        {"inputs": [[1.5, 2], [3, 4]], "params": {"k": 1}},
    ):
        matrix, _ = json_to_matrix(payload, fs)
        assert np.array_equal(matrix, want), payload
    one, _ = json_to_matrix({"inputs": {"a": 1.0, "b": 2}}, fs)
    assert one.shape == (1, 2)
    single, _ = fast_schema(_schema(("a", "double"),))
    assert json_to_matrix({"instances": [1.0, 2.0]}, single)[0].shape == (2, 1)


@pytest.mark.parametrize("payload,needle", [
    ({"inputs": [[1.5, 2.5]]}, "column 'b' (long) got number 2.5, not an integer"),
    ({"inputs": [[1.5, True]]}, "boolean true"),
    ({"inputs": [["1.5", 2]]}, "column 'a' (double) got string '1.5'"),
    ({"inputs": {"a": [1.0, 2.0], "b": [1]}}, "has 1 values but the first column has 2"),
    ({"inputs": [[1.0, 2**70]]}, "column 'b' (long) value 1180591620717411303424 is out of range"),
    ({"inputs": {"a": [1.0], "b": [-(2**63) - 1]}}, "out of range"),
    ({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2, 3]]}}, "row 0 must be a list of 2 values"),
    ({"dataframe_split": {"columns": "a", "data": []}}, "list of column names"),
    ({"dataframe_split": {"columns": ["a", "b"]}}, "no 'data'"),
    ({"dataframe_records": {"a": 1}}, "list of objects"),
    ({"dataframe_records": [[1.0, 2]]}, "row 0 must be an object"),
    ({"params": {}}, "got none"),
    ({}, "got none"),
])
def test_json_errors_name_the_field(payload, needle):
    fs, _ = fast_schema(_schema(("a", "double"), ("b", "long")))
    with pytest.raises(PayloadError) as err:
        json_to_matrix(payload, fs)
    assert needle in err.value.message


def test_decode_json_and_media_types():
    assert decode_json(b'{"a": NaN}')["a"] != decode_json(b'{"a": NaN}')["a"]  # stdlib fallback, NaN kept
    with pytest.raises(PayloadError, match="not valid JSON"):
        decode_json(b"{nope")
    assert content_kind("application/json") == "json"
    assert content_kind("Application/JSON; charset=UTF-8") == "json"
    assert content_kind("text/csv") == "csv"
    assert content_kind("application/x-parquet") == "parquet"
    assert content_kind("application/vnd.apache.arrow.file") == "arrow_file"
    for bad, needle in ((None, "missing"), ("text/plain", "text/plain"), ("application/json; charset=ascii", "ascii"),
                        ("application/json; format=pandas-split", "format")):
        with pytest.raises(UnsupportedMediaType, match=needle):
            content_kind(bad)


def test_table_to_matrix_checks_types_and_nulls():
    fs, _ = fast_schema(_schema(("a", "double"), ("b", "long")))
    table = pa.table({"b": [1, 2], "a": [0.5, 1.5], "other": ["x", "y"]})
    assert np.array_equal(table_to_matrix(table, fs, "csv"), [[0.5, 1], [1.5, 2]])
    with pytest.raises(PayloadError, match="'b' \\(long\\) has Arrow type double"):
        table_to_matrix(pa.table({"a": [0.5], "b": [1.5]}), fs, "parquet")
    with pytest.raises(PayloadError, match="1 null"):
        table_to_matrix(pa.table({"a": [0.5, None], "b": [1, 2]}), fs, "parquet")
    with pytest.raises(PayloadError, match=r"missing column\(s\) \['b'\]"):
        table_to_matrix(pa.table({"a": [0.5]}), fs, "csv")


def test_batcher_shares_calls_and_isolates_a_failing_request():
    calls: list[int] = []

    def predict(matrix: np.ndarray) -> np.ndarray:
        calls.append(matrix.shape[0])
        if (matrix < 0).any():
            raise ValueError("negative input")
        return matrix[:, 0] * 10

    async def scenario():
        batcher = MicroBatcher(predict, max_rows=8, max_wait_s=0.05)
        batcher.start()
        inputs = [np.full((2, 1), float(i)) for i in range(6)] + [np.full((1, 1), -1.0)]
        results = await asyncio.gather(*(batcher.submit(m) for m in inputs), return_exceptions=True)
        await batcher.close()
        return inputs, results, batcher

    inputs, results, batcher = asyncio.run(scenario())
    for matrix, result in zip(inputs[:6], results[:6], strict=True):
        assert np.array_equal(result, matrix[:, 0] * 10)
    assert isinstance(results[6], ValueError)
    assert max(calls) > 2, f"requests were never batched: {calls}"
    assert all(n <= 8 for n in calls)
    assert batcher.requests == 7


def test_batcher_close_answers_queued_requests():
    async def scenario():
        batcher = MicroBatcher(lambda m: m.sum(axis=1), max_rows=1000, max_wait_s=5.0)
        batcher.start()
        pending = asyncio.ensure_future(batcher.submit(np.ones((3, 2))))
        await asyncio.sleep(0.01)
        await batcher.close()  # does not wait the full 5 s
        return await pending

    assert asyncio.run(asyncio.wait_for(scenario(), 3)).tolist() == [2.0, 2.0, 2.0]


def test_cli_parses_models_serve():
    from sparkml_ops.cli.models import serve

    params = serve.make_context("serve", ["-m", "models:/m-1", "--port", "6001", "--workers", "2",
                                          "--max-wait-ms", "2"]).params
    assert (params["model"], params["host"], params["port"], params["workers"], params["max_wait_ms"]) == (
        "models:/m-1", "127.0.0.1", 6001, 2, 2.0)
    with pytest.raises(click.MissingParameter) as missing:
        serve.make_context("serve", [])  # -m is required
    assert missing.value.format_message() == "Missing option '--model' / '-m'."


def test_serve_config_validates_and_travels_as_json(monkeypatch):
    config = ServeConfig(model_uri="runs:/x/model", model_path="/tmp/m", workers=3, max_wait_ms=1.5)
    monkeypatch.setenv("SPARKML_OPS_SERVE_CONFIG", config.to_env())
    assert ServeConfig.from_env() == config
    for bad in ({"workers": 0}, {"port": 70000}, {"max_batch_rows": 0}, {"max_wait_ms": -1}, {"max_body_bytes": 0}):
        with pytest.raises(ValueError):
            ServeConfig(model_uri="x", **bad)


def test_predictions_are_encoded_like_mlflow():
    import json

    import pandas as pd
    from mlflow.pyfunc.scoring_server import predictions_to_json

    from sparkml_ops.models.serving.predictor import encode_predictions

    for output in (np.array([0, 1]), np.array([[0.25, 0.75]]), np.array([0.1], dtype=np.float32),
                   np.array(["cat", "dog"], dtype=object), pd.Series([1.5, 2.5]), np.array([True, False])):
        expected = io.StringIO()
        predictions_to_json(output, expected)
        assert json.loads(encode_predictions(output)) == json.loads(expected.getvalue()), output
