"""`sparkml-ops run` / `rebuild` from git sources, and rebuilds that pin Delta input versions."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient

from sparkml_ops.projects import EnvOptions, rebuild, run
from tests.cli_run import run_cli
from tests.projects.conftest import git, write_project

LOCAL_ENV = EnvOptions(manager="local")  # this interpreter: no env to build


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_run_git_versions_and_rebuild(tracking_uri, root: Path, git_repo, capsys):
    url, commits = git_repo
    code = run_cli("run", f"{url}#proj", "-v", "v1", "-P", "scale=3", "--env-manager", "local", "--root", str(root))
    old = last_json(capsys)
    assert code == 0 and old["status"] == "FINISHED"
    code = run_cli("run", f"{url}#proj", "-P", "scale=3", "--env-manager", "local", "--root", str(root))
    new = last_json(capsys)
    client = MlflowClient()
    old_run, new_run = client.get_run(old["run_id"]), client.get_run(new["run_id"])
    assert old_run.data.metrics == {"value": 3.0}  # the older commit's behaviour
    assert new_run.data.metrics == {"value": 6.0}
    assert old_run.data.tags["mlflow.source.git.commit"] == commits[0]
    assert new_run.data.tags["mlflow.source.git.commit"] == commits[1]
    assert old_run.data.params == {"scale": "3"}

    code = run_cli("rebuild", old["run_id"], "--root", str(root))
    result = last_json(capsys)
    assert code == 0 and result["metrics_match"] and result["status"] == "FINISHED"
    again = client.get_run(result["run_id"])
    assert again.data.tags["mlflow.source.git.commit"] == commits[0]
    assert again.data.tags["sparkml_ops.rebuild_of"] == old["run_id"]
    assert again.data.metrics == {"value": 3.0}

    runs_before = len(client.search_runs(["0"]))
    assert run_cli("run", f"{url}#proj", "-P", "scale=fast", "--env-manager", "local", "--root", str(root)) == 2
    assert "parameter 'scale' must be a float, got 'fast'" in capsys.readouterr().err
    assert len(client.search_runs(["0"])) == runs_before  # nothing ran, nothing was recorded


SCORER = {
    "MLproject": """
        name: scorer
        entry_points:
          main:
            parameters:
              data: path
            command: "bash run.sh {data}"
    """,
    "run.sh": 'python score.py "$1"\n',
    "score.py": """
        import sys

        import deltalake
        import mlflow
        from mlflow.data.delta_dataset_source import DeltaDatasetSource

        from sparkml_ops.projects.pins import pinned_version

        path = sys.argv[1]
        version = pinned_version(path)  # set by `sparkml-ops rebuild`, else None: the latest version
        table = deltalake.DeltaTable(path, version=version) if version is not None else deltalake.DeltaTable(path)
        frame = table.to_pandas()
        source = DeltaDatasetSource(path=path, delta_table_version=table.version())
        mlflow.log_input(mlflow.data.from_pandas(frame, source=source, name="points"), context="training")
        mlflow.log_metric("mean", float(frame["x"].mean()))
        mlflow.log_metric("rows", len(frame))
    """,
}


def test_rebuild_reads_the_original_input_version(tracking_uri, tmp_path: Path):
    import pandas as pd
    from deltalake import write_deltalake

    repo = tmp_path / "repo"
    write_project(repo / "scorer", SCORER)
    git("init", "-q", "-b", "main", cwd=repo)
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "init",
        cwd=repo)
    git("add", "-A", cwd=repo)
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "scorer", cwd=repo)
    table = tmp_path / "points"
    write_deltalake(str(table), pd.DataFrame({"x": [1.0]}))
    write_deltalake(str(table), pd.DataFrame({"x": [2.0, 3.0]}), mode="append")  # version 1

    original = run(str(repo / "scorer"), parameters={"data": str(table)}, env=LOCAL_ENV, stream_output=False)
    client = MlflowClient()
    first = client.get_run(original.run_id)
    assert first.info.status == "FINISHED" and first.data.metrics == {"mean": 2.0, "rows": 3.0}
    assert first.data.tags["sparkml_ops.project.repo_subdirectory"] == "scorer"

    write_deltalake(str(table), pd.DataFrame({"x": [100.0]}), mode="append")  # the data moves on
    latest = run(str(repo / "scorer"), parameters={"data": str(table)}, env=LOCAL_ENV, stream_output=False)
    assert client.get_run(latest.run_id).data.metrics == {"mean": 26.5, "rows": 4.0}

    result = rebuild(original.run_id, stream_output=False)
    assert result.status == "FINISHED" and result.metrics_match and result.differences == {}
    assert [(p["path"], p["version"]) for p in result.pinned_inputs] == [(str(table), 1)]
    rebuilt = client.get_run(result.run_id)
    assert rebuilt.data.metrics == {"mean": 2.0, "rows": 3.0}
    assert rebuilt.data.tags["sparkml_ops.rebuild.metrics_match"] == "true"
    assert rebuilt.data.tags["mlflow.source.git.commit"] == first.data.tags["mlflow.source.git.commit"]
    sources = [json.loads(i.dataset.source) for i in rebuilt.inputs.dataset_inputs]
    assert sources == [{"path": str(table), "delta_table_version": 1}]  # logged the pinned version again

    later = rebuild(latest.run_id, stream_output=False)  # each rebuild pins its own original's version
    assert later.metrics_match and later.pinned_inputs[0]["version"] == 2
