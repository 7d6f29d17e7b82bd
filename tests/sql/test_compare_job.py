"""jobs/compare_experiments.py: in the test's Spark session, and once through spark-submit."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from sparkml_ops.errors import BadInput

JOB = Path(__file__).resolve().parents[2] / "jobs" / "compare_experiments.py"


def _job():
    spec = importlib.util.spec_from_file_location("compare_experiments", JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_comparison_table_to_delta(spark, filled, tmp_path, capsys):
    root, _, ids = filled
    out = tmp_path / "cmp"
    assert _job().main(["--root", root, "--experiment", "ctr-model", "--experiment", "other", "--metric", "auc",
                        "--metric", "loss", "--output", str(out), "--top", "3"], spark=spark) == 0
    table = DeltaTable(str(out)).to_pyarrow_table().sort_by("rank")
    assert table.column_names == ["rank", "run_id", "run_name", "experiment_name", "status", "start_time",
                                  "param_layers", "param_lr", "param_opt", "metric_auc", "metric_loss"]
    # active runs only (e is deleted); best auc first; d has no auc and ranks last
    assert table.column("run_name").to_pylist() == ["b", "c", "a", "f", "d"]
    assert table.column("rank").to_pylist() == [1, 2, 3, 4, 5]
    assert table.column("metric_auc").to_pylist()[:4] == [0.8, 0.75, 0.7, 0.5]
    assert table.column("param_lr").to_pylist()[0] == "0.01"
    printed = capsys.readouterr().out
    assert "wrote 5 runs" in printed and ids["b"] in printed


def test_comparison_to_parquet_ranked_ascending(spark, filled, tmp_path):
    root, _, _ = filled
    out = tmp_path / "cmp_parquet"
    assert _job().main(["--root", root, "--experiment", "ctr-model", "--metric", "loss", "--param", "lr",
                        "--ascending", "--include-deleted", "--output", str(out), "--format", "parquet"],
                       spark=spark) == 0
    rows = spark.read.parquet(str(out)).orderBy("rank").collect()
    assert [r.run_name for r in rows][:2] == ["b", "a"]  # lowest loss first
    assert set(rows[0].asDict()) == {"rank", "run_id", "run_name", "experiment_name", "status", "start_time",
                                     "param_lr", "metric_loss"}
    assert len(rows) == 5  # deleted run e included


def test_unknown_experiment_is_a_clear_error(spark, filled, tmp_path):
    root, _, _ = filled
    with pytest.raises(BadInput, match=r"no experiment named \['nope'\]"):
        _job().main(["--root", root, "--experiment", "nope", "--metric", "auc", "--output", str(tmp_path / "x")],
                    spark=spark)


@pytest.mark.slow
def test_runs_under_spark_submit(filled, tmp_path):
    root, _, _ = filled
    submit = shutil.which("spark-submit") or str(Path(sys.executable).parent / "spark-submit")
    out = tmp_path / "cmp_submit"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    proc = subprocess.run(
        [submit, "--master", "local[1]", "--conf", "spark.ui.enabled=false", str(JOB), "--root", root,
         "--experiment", "ctr-model", "--metric", "auc", "--output", str(out)],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote 4 runs" in proc.stdout
    assert DeltaTable(str(out)).to_pyarrow_table().num_rows == 4
