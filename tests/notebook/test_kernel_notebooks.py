"""Notebooks executed by nbclient in a real ipykernel, logging to a real Delta root."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import tracking_to
from tests.notebook.conftest import kernel_env, outputs_text, write_notebook


def _runs(root: Path, experiment_name: str | None = None, experiment_id: str | None = None) -> list:
    import mlflow

    with tracking_to(root):
        client = mlflow.MlflowClient()
        if experiment_name is not None:
            experiment = client.get_experiment_by_name(experiment_name)
            assert experiment is not None, f"no experiment named {experiment_name!r}"
            experiment_id = experiment.experiment_id
        return client.search_runs([experiment_id], order_by=["attributes.start_time ASC"])


def _artifacts(root: Path, run_id: str, dest: Path) -> tuple[dict, str]:
    import mlflow

    with tracking_to(root):
        local = Path(mlflow.MlflowClient().download_artifacts(run_id, "notebook", str(dest)))
    return json.loads((local / "notebook.ipynb").read_text()), (local / "notebook.html").read_text()


def _git_repo(path: Path) -> str:
    path.mkdir()
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout.strip()
    git("init", "-q", "-b", "nb-branch")
    git("remote", "add", "origin", "https://example.invalid/team/notebooks.git")
    (path / "README").write_text("notebooks\n")
    git("add", "README")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "init")
    return git("rev-parse", "HEAD")


MAIN_CELLS = [
    "import mlflow\nprint('cell-one-output')",
    "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()",
    "from sklearn.linear_model import LogisticRegression\n"
    "LogisticRegression(C=0.5).fit([[0.0], [1.0], [0.2], [0.9]], [0, 1, 0, 1])\nprint('fitted')",
    "with mlflow.start_run(run_name='manual') as run:\n"
    "    mlflow.log_param('alpha', 0.1)\n"
    "    for s in range(3):\n        mlflow.log_metric('loss', 1.0 / (s + 1), step=s)\n"
    "    print('manual-run', run.info.run_id)",
    "mlflow.get_run(run.info.run_id)",
    "mlflow.search_runs()",
    "from sparkml_ops.notebook import plot_metrics\nplot_metrics([run.info.run_id], 'loss')",
    "print(mlflow.get_tracking_uri())",
]


def test_notebook_defaults_tags_snapshot_autolog_display_and_rerun(tmp_path, notebook_runner):
    root = tmp_path / "lake"
    commit = _git_repo(tmp_path / "repo")
    path = write_notebook(tmp_path / "repo" / "train.ipynb", MAIN_CELLS)

    executed = notebook_runner(path, kernel_env(root))  # no %load_ext: `import mlflow` is enough

    # defaults: the embedded root, the notebook's own experiment
    assert outputs_text(executed.cells[7]).strip() == f"delta:{root}"
    runs = _runs(root, experiment_name=str(path))
    by_name = {r.info.run_name: r for r in runs}
    assert len(runs) == 2 and "manual" in by_name, [r.info.run_name for r in runs]
    manual = by_name["manual"]
    autologged = next(r for r in runs if r.info.run_id != manual.info.run_id)

    # source tags
    tags = manual.data.tags
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert tags["mlflow.source.name"] == str(path)
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.source.git.branch"] == "nb-branch"
    assert tags["mlflow.source.git.repoURL"] == "https://example.invalid/team/notebooks.git"
    assert tags["sparkml_ops.kernel_version"].startswith("ipykernel ")
    assert tags["sparkml_ops.python_version"].count(".") == 2
    assert "sparkml_ops.spark.app_id" not in tags  # no Spark session in this notebook

    # autolog on by default: the sklearn fit made its own run, with the notebook's tags
    assert autologged.data.params["C"] == "0.5"
    assert autologged.data.tags["mlflow.source.name"] == str(path)

    # the snapshot logged when the manual run ended: cells 0..3 with their outputs, an image, as ipynb and HTML
    ipynb, page = _artifacts(root, manual.info.run_id, tmp_path / "dl")
    assert ["".join(c["source"]) for c in ipynb["cells"]] == MAIN_CELLS[:4]
    texts = ["".join("".join(o.get("text", "")) for o in c["outputs"]) for c in ipynb["cells"]]
    assert "cell-one-output" in texts[0] and "fitted" in texts[2]
    assert f"manual-run {manual.info.run_id}" in texts[3]
    assert any("image/png" in o.get("data", {}) for o in ipynb["cells"][1]["outputs"])
    assert [c["execution_count"] for c in ipynb["cells"]] == [1, 2, 3, 4]
    for text in ("cell-one-output", "fitted", f"manual-run {manual.info.run_id}", "data:image/png;base64,"):
        assert text in page, text
    assert "<script src=" not in page and "cdnjs" not in page and "<link" not in page  # self-contained

    # rich display: Run, search_runs result, plot_metrics
    run_html = executed.cells[4].outputs[0]["data"]["text/html"]
    assert "smo-run" in run_html and "alpha=0.1" in run_html and "FINISHED" in run_html and "loss=0.333" in run_html
    search_html = executed.cells[5].outputs[0]["data"]["text/html"]
    assert "2 run(s)" in search_html and "manual" in search_html
    assert any("image/png" in o.get("data", {}) for o in executed.cells[6].outputs)

    # a second run of the same notebook lands in the same notebook experiment
    notebook_runner(path, kernel_env(root))
    again = _runs(root, experiment_name=str(path))
    assert len(again) == 4
    assert sorted(r.info.run_name for r in again).count("manual") == 2
    assert len({r.info.experiment_id for r in again}) == 1


def test_failing_cell_ends_the_run_failed_with_its_snapshot(tmp_path, notebook_runner):
    from nbclient.exceptions import CellExecutionError

    root = tmp_path / "lake"
    path = write_notebook(tmp_path / "fails.ipynb", [
        "%load_ext sparkml_ops",
        "%sparkml_ops autolog off",
        "import mlflow\nfor i in range(2):\n    with mlflow.start_run(run_name=f'loop{i}'):\n"
        "        mlflow.log_param('i', i)",
        "from sklearn.linear_model import LogisticRegression\n"
        "LogisticRegression().fit([[0.0], [1.0]], [0, 1])\n"
        "run = mlflow.start_run(run_name='will-fail')\nmlflow.log_metric('m', 1.5)\nprint('before-failure')",
        "raise ValueError('boom-in-cell')",
        "print('never runs')",
    ])
    with pytest.raises(CellExecutionError, match="boom-in-cell"):
        notebook_runner(path, kernel_env(root))

    runs = _runs(root, experiment_name=str(path))
    assert [r.info.run_name for r in runs] == ["loop0", "loop1", "will-fail"]  # autolog off: the fit logged none
    for loop_run in runs[:2]:  # two runs started and ended in one cell: each has the snapshot up to that cell
        snapshot, _ = _artifacts(root, loop_run.info.run_id, tmp_path / loop_run.info.run_id)
        assert len(snapshot["cells"]) == 3 and loop_run.info.status == "FINISHED"
    run = runs[2]
    assert run.info.status == "FAILED"
    assert run.data.tags["mlflow.source.name"] == str(path)  # %load_ext path: the provider tags runs too
    assert run.data.metrics == {"m": 1.5}  # nothing logged before the failure is lost
    ipynb, page = _artifacts(root, run.info.run_id, tmp_path / "dl")
    assert len(ipynb["cells"]) == 5  # up to and including the failing cell
    last = ipynb["cells"][-1]["outputs"]
    assert [(o["output_type"], o.get("ename"), o.get("evalue")) for o in last] == [
        ("error", "ValueError", "boom-in-cell")]
    assert "before-failure" in page and "boom-in-cell" in page and "never runs" not in page


def test_unknown_path_no_git_small_cap_and_autolog_off_by_config(tmp_path, notebook_runner):
    root = tmp_path / "lake"
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    path = write_notebook(tmp_path / "anon.ipynb", [
        # sparkml_ops.errors imports mlflow, which loads our provider while sparkml_ops.errors is half-imported
        "import sparkml_ops.errors\nimport mlflow\nprint('x' * 20000)",
        "from sklearn.linear_model import LogisticRegression\nLogisticRegression().fit([[0.0], [1.0]], [0, 1])",
        "with mlflow.start_run() as run:\n    mlflow.log_param('p', 'kept')\nprint('small-output')",
    ])
    env = kernel_env(root, SPARKML_OPS_NOTEBOOK_AUTOLOG="false", SPARKML_OPS_NOTEBOOK_SNAPSHOT_MAX_BYTES="4000",
                     PATH=str(empty_bin))  # a kernel without git
    executed = notebook_runner(path, env, with_path=False)  # plain nbclient: the kernel cannot know its path

    printed = "".join(outputs_text(c) for c in executed.cells)
    assert "path cannot be found" in printed
    assert "git is not installed" in printed
    runs = _runs(root, experiment_id="0")  # no path, no notebook experiment: the default one
    assert len(runs) == 1  # autolog off by config
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.params == {"p": "kept"}
    assert run.data.tags["mlflow.source.name"] == "unknown"
    assert run.data.tags["sparkml_ops.notebook.path_from"] == "unknown"
    assert run.data.tags["mlflow.source.git.commit"] == "unknown"
    ipynb, page = _artifacts(root, run.info.run_id, tmp_path / "dl")
    raw = json.dumps(ipynb)
    assert "x" * 20000 not in raw and "output truncated" in raw and "small-output" in raw
    assert "output truncated" in page


@pytest.mark.spark
def test_spark_executors_log_to_the_notebook_root_with_its_tags(tmp_path, notebook_runner):
    import sys

    root = tmp_path / "lake"
    path = write_notebook(tmp_path / "spark.ipynb", [
        "import mlflow\nfrom pyspark.sql import SparkSession\n"
        "spark = (SparkSession.builder.master('local[2]').config('spark.ui.enabled', 'false')\n"
        "         .config('spark.sql.shuffle.partitions', '2').getOrCreate())",
        "with mlflow.start_run(run_name='driver') as run:\n    mlflow.log_param('side', 'driver')",
        "def task(_):\n    import mlflow\n    with mlflow.start_run(run_name='executor') as r:\n"
        "        mlflow.log_param('side', 'executor')\n    yield r.info.run_id\n"
        "executor_runs = spark.sparkContext.parallelize(range(2), 2).mapPartitions(task).collect()\n"
        "print(executor_runs)",
        "spark.stop()",
    ])
    env = kernel_env(root, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    notebook_runner(path, env)

    runs = _runs(root, experiment_name=str(path))
    names = sorted(r.info.run_name for r in runs)
    assert names == ["driver", "executor", "executor"], names
    driver = next(r for r in runs if r.info.run_name == "driver")
    assert driver.data.tags["sparkml_ops.spark.master"] == "local[2]"
    assert driver.data.tags["sparkml_ops.spark.app_id"].startswith("local-")
    for run in runs:
        assert run.data.tags["mlflow.source.name"] == str(path)
        assert run.data.tags["mlflow.source.type"] == "NOTEBOOK"
        assert run.data.tags["sparkml_ops.notebook.path_from"] == "setting"
    assert {r.data.params["side"] for r in runs} == {"driver", "executor"}
    assert os.path.isdir(root)
