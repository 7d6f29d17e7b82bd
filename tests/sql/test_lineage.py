"""Lineage: log what a run read through MLflow's dataset model, and get exactly that data back."""

from __future__ import annotations

import json

import mlflow
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from mlflow.data.delta_dataset_source import DeltaDatasetSource

from sparkml_ops.errors import BadInput, InvalidState, NotFound, StorageError
from sparkml_ops.lineage import describe, load_input, log_input
from tests.sql.conftest import flush

TRAIN = pa.table({"id": [1, 2, 3], "label": [0.0, 1.0, 0.0]})


def test_delta_table_that_changed_after_the_run_comes_back_as_it_was(tracking_uri, tmp_path):
    table = str(tmp_path / "train_delta")
    write_deltalake(table, TRAIN)
    write_deltalake(table, pa.table({"id": [4], "label": [1.0]}), mode="append")  # version 1: 4 rows
    with mlflow.start_run() as run:
        logged = log_input(table, name="train")
    write_deltalake(table, pa.table({"id": [9], "label": [9.0]}), mode="overwrite")  # changed since
    flush(tracking_uri)

    back = load_input(run.info.run_id, "train")
    assert back.sort_by("id").column("id").to_pylist() == [1, 2, 3, 4]
    assert DeltaTable(table).to_pyarrow_table().column("id").to_pylist() == [9]

    stock = mlflow.get_run(run.info.run_id).inputs.dataset_inputs  # the stock client sees it
    assert [(d.dataset.name, d.dataset.source_type, d.dataset.digest) for d in stock] == [
        ("train", "delta_table", logged.digest)]
    assert {t.key: t.value for t in stock[0].tags} == {"mlflow.data.context": "training"}
    source = mlflow.data.get_source(stock[0])
    assert isinstance(source, DeltaDatasetSource)
    assert (source.path, source.delta_table_version) == (table, 1)
    assert json.loads(stock[0].dataset.profile)["num_rows"] == 4


def test_version_zero_is_pinned_too(tracking_uri, tmp_path):
    table = str(tmp_path / "t0")
    write_deltalake(table, TRAIN)
    with mlflow.start_run() as run:
        log_input(DeltaTable(table), name="t0", context="evaluation")
    write_deltalake(table, TRAIN, mode="append")
    assert load_input(run.info.run_id, "t0").num_rows == 3


def test_parquet_and_csv_files_round_trip_and_changes_are_refused(tracking_uri, tmp_path):
    parquet, csv = tmp_path / "holdout.parquet", tmp_path / "extra.csv"
    pq.write_table(TRAIN, parquet)
    pacsv.write_csv(TRAIN, csv)
    with mlflow.start_run() as run:
        log_input(str(parquet), context="evaluation")
        log_input(str(csv), name="extra")
    run_id = run.info.run_id
    assert load_input(run_id, "holdout.parquet").equals(TRAIN)
    assert load_input(run_id, "extra").column("id").to_pylist() == [1, 2, 3]

    pq.write_table(pa.table({"id": [1, 2, 3], "label": [0.0, 1.0, 1.0]}), parquet)  # same size, new content
    with pytest.raises(InvalidState, match=r"holdout.parquet changed since it was logged"):
        load_input(run_id, "holdout.parquet")
    csv.write_text(csv.read_text() + "4,1\n")
    with pytest.raises(InvalidState, match="extra.csv changed"):
        load_input(run_id, "extra")


def test_directory_of_parquet_files(tracking_uri, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(TRAIN.slice(0, 2), folder / "part-0.parquet")
    pq.write_table(TRAIN.slice(2), folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    with mlflow.start_run() as run:
        logged = log_input(str(folder))
    assert json.loads(logged.profile)["files"] == 2
    assert load_input(run.info.run_id, "parts").sort_by("id").equals(TRAIN)


def test_vacuumed_version_is_a_clear_error(tracking_uri, tmp_path):
    table = str(tmp_path / "gone")
    write_deltalake(table, TRAIN)
    with mlflow.start_run() as run:
        log_input(table)
    write_deltalake(table, pa.table({"id": [7], "label": [7.0]}), mode="overwrite")
    DeltaTable(table).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    with pytest.raises(StorageError, match="version 0 of Delta table .*gone cannot be read"):
        load_input(run.info.run_id, "gone")


def test_bad_sources_and_names(tracking_uri, tmp_path):
    with pytest.raises(BadInput, match="no file, directory or Delta table at"):
        log_input(str(tmp_path / "missing.parquet"))
    with pytest.raises(BadInput, match="cannot log an input of type dict"):
        log_input({"a": 1})
    (tmp_path / "data.bin").write_bytes(b"xx")
    with pytest.raises(BadInput, match="cannot tell the format"):
        log_input(str(tmp_path / "data.bin"))
    with pytest.raises(BadInput, match="version=3 applies to Delta tables only"):
        pq.write_table(TRAIN, tmp_path / "x.parquet")
        log_input(str(tmp_path / "x.parquet"), version=3)
    with pytest.raises(BadInput, match="context="):
        log_input(str(tmp_path / "x.parquet"), context="")
    with mlflow.start_run() as run:
        log_input(str(tmp_path / "x.parquet"))
    with pytest.raises(NotFound, match=r"no dataset input named 'nope'.*'x.parquet'"):
        load_input(run.info.run_id, "nope")


def test_describe_lists_inputs_and_models(filled):
    _, uri, ids = filled
    info = describe(ids["a"], uri)
    assert info["run_name"] == "a" and info["experiment"] == "ctr-model"
    assert [(i["name"], i["context"], i["source_type"]) for i in info["inputs"]] == [("train", "training", "local")]
    assert info["inputs"][0]["location"].endswith("train.parquet")
    assert [m["name"] for m in info["logged_models"]] == ["clf"]


@pytest.mark.spark
def test_spark_dataframes_resolve_to_their_source(spark, tracking_uri, tmp_path):
    table = str(tmp_path / "events")
    write_deltalake(table, TRAIN)
    write_deltalake(table, pa.table({"id": [4], "label": [1.0]}), mode="append")
    df = spark.read.parquet(*DeltaTable(table, version=0).file_uris())  # a snapshot read without Delta jars
    folder = tmp_path / "plain"
    spark.createDataFrame(TRAIN.to_pandas()).coalesce(1).write.parquet(str(folder))
    with mlflow.start_run() as run:
        from_delta = log_input(df, name="events")
        from_files = log_input(spark.read.parquet(str(folder)).where("id > 1"), name="plain")
    assert mlflow.data.get_source(from_delta).delta_table_version == 0
    assert json.loads(from_files.source)["uri"] == str(folder)
    assert sorted(r.id for r in load_input(run.info.run_id, "events", spark).collect()) == [1, 2, 3]
    assert load_input(run.info.run_id, "plain", spark).count() == 3  # the source, not the filter
