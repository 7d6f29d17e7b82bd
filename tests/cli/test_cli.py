"""The ``sparkml-ops`` command: fast help, one-line errors, completion, and the root commands."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sparkml_ops.cli import COMMANDS, main
from tests.cli_run import run_cli

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("mlflow", "pyspark", "deltalake", "pyarrow", "pandas", "sparkml_ops.errors", "sparkml_ops.config")
SUBCOMMANDS = [[name] for name in COMMANDS] + [["models", c] for c in ("serve", "list", "versions", "promote")]


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparkml_ops.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_every_help_imports_nothing_heavy():
    """``--help`` of the group and of every command loads click and our CLI modules only."""
    script = (
        "import json, sys\n"
        "from sparkml_ops.cli import main\n"
        f"for args in {SUBCOMMANDS!r} + [[]]:\n"
        "    main.main(args=[*args, '--help'], prog_name='sparkml-ops', standalone_mode=False)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
    for name in COMMANDS:
        assert f"  {name} " in done.stdout  # the group lists every command


@pytest.mark.parametrize("args", [[], ["score"], ["models", "serve"]], ids=["group", "score", "models-serve"])
def test_help_takes_under_0_3_s_of_cpu(args):
    """CPU time of the whole process (best of 3), which the machine's load does not inflate as wall time does."""
    best = float("inf")
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = _cli(*args, "--help", timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert done.returncode == 0 and "Usage: sparkml-ops" in done.stdout, done.stderr
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    assert best <= 0.3, f"sparkml-ops {' '.join(args)} --help used {best:.2f} s of CPU"


def test_every_command_in_the_table_loads_and_has_help():
    runner = CliRunner()
    for args in SUBCOMMANDS:
        result = runner.invoke(main, [*args, "--help"], prog_name="sparkml-ops")
        assert result.exit_code == 0, (args, result.output)
        assert f"Usage: sparkml-ops {' '.join(args)}" in result.output
    result = runner.invoke(main, ["nope"], prog_name="sparkml-ops")
    assert result.exit_code == 2 and "No such command 'nope'" in result.output


def test_shell_completion_lists_commands_and_options():
    done = _cli(env={"_SPARKML_OPS_COMPLETE": "bash_complete", "COMP_WORDS": "sparkml-ops ma", "COMP_CWORD": "1"})
    assert done.returncode == 0 and done.stdout.split() == ["plain,maintain"], done.stdout + done.stderr
    done = _cli(env={"_SPARKML_OPS_COMPLETE": "bash_complete", "COMP_WORDS": "sparkml-ops maintain --re",
                     "COMP_CWORD": "2"})
    assert "plain,--retention-hours" in done.stdout.split(), done.stdout
    source = _cli(env={"_SPARKML_OPS_COMPLETE": "bash_source"})
    assert "_sparkml_ops_completion" in source.stdout and "complete -o nosort -F" in source.stdout


def test_version():
    from importlib.metadata import version

    assert run_cli_output("--version") == (0, f"sparkml-ops, version {version('sparkml_ops')}\n")


def run_cli_output(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), prog_name="sparkml-ops")
    return result.exit_code, result.output


def _log_runs(n: int = 3) -> list[str]:
    import mlflow

    mlflow.set_experiment("cli")
    ids = []
    for i in range(n):
        with mlflow.start_run(run_name=f"r{i}") as run:
            mlflow.log_param("n", i)
            mlflow.log_metric("loss", 1.0 / (i + 1))
            ids.append(run.info.run_id)
    mlflow.flush_async_logging()
    return ids


def test_info_and_maintain(tracking_uri, root, capsys):
    _log_runs(3)
    assert run_cli("info", "--root", str(root)) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["root"].endswith(str(root))
    assert info["tables"]["runs"]["rows"] == 6  # the runs table appends a row at each run's start and end
    assert info["tables"]["params"]["rows"] == 3
    assert info["tables"]["metrics"]["rows"] == 3 and info["tables"]["experiments"]["rows"] == 2  # + Default
    assert all(t["version"] >= 0 and t["files"] >= 0 for t in info["tables"].values())

    assert run_cli("maintain", "--root", str(root), "--no-vacuum") == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["table"] for r in reports[:-1]} >= {"runs", "params", "metrics", "experiments"}
    assert reports[-1]["current_state"]["runs"] == 3  # the current-state tables searches read
    assert run_cli("info", "--root", str(root)) == 0
    after = json.loads(capsys.readouterr().out)
    assert {k: t["rows"] for k, t in after["tables"].items()} == {k: t["rows"] for k, t in info["tables"].items()}
    assert run_cli("maintain", "--root", str(root), "--retention-hours", "-1") == 2
    assert "-1 is not in the range x>=0" in capsys.readouterr().err


def test_runs_lists_filters_orders_and_reports_bad_filters_in_one_line(tracking_uri, root, capsys):
    ids = _log_runs(3)
    assert run_cli("runs", "--root", str(root), "--experiment", "cli", "--order-by", "metrics.loss ASC") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run_id", "status", "metrics.loss", "params.n"]
    assert [line.split()[0] for line in lines[1:]] == ids[::-1]  # lowest loss (last run) first
    assert run_cli("runs", "--root", str(root), "--filter", "params.n = '1'") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].split()[0] == ids[1]
    assert run_cli("runs", "--root", str(root), "--max-results", "1", "--order-by", "params.n DESC") == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [ids[2]]
    assert run_cli("runs", "--root", str(root), "--filter", "metrics.loss <") == 2
    err = capsys.readouterr().err
    assert err.startswith("sparkml-ops: error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    assert run_cli("runs", "--root", str(root), "--experiment", "nope") == 0
    assert capsys.readouterr().out.strip() == "no runs"


def _killed_logger(uri: str, run_id: str, rows: int, ready: str) -> None:
    os.environ["SPARKML_OPS_FLUSH_INTERVAL_MS"] = "3600000"  # nothing reaches Delta: it all stays in the WAL
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    for step in range(rows):
        client.log_metric(run_id, "wal_only", float(step), step=step)
    Path(ready).write_text("logged")
    time.sleep(600)


@pytest.mark.slow
def test_recover_replays_a_killed_writers_log(tracking_uri, root, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    # this process keeps the root open: its own recovery thread would replay the log first
    monkeypatch.setenv("SPARKML_OPS_RECOVERY_INTERVAL_MS", str(3_600_000))
    client = MlflowClient(tracking_uri)
    run_id = client.create_run("0").info.run_id
    client._tracking_client.store.flush()
    ready = tmp_path / "ready"
    child = mp.get_context("spawn").Process(target=_killed_logger, args=(tracking_uri, run_id, 25, str(ready)))
    child.start()
    deadline = time.monotonic() + 120
    while not ready.exists() and time.monotonic() < deadline and child.is_alive():
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert ready.exists(), "the child did not log"
    done = _cli("recover", "--root", str(root))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["replayed_rows"] == 25
    again = _cli("recover", "--root", str(root))
    assert json.loads(again.stdout.splitlines()[-1])["replayed_rows"] == 0
    history = MlflowClient(tracking_uri).get_metric_history(run_id, "wal_only")
    assert sorted(m.step for m in history) == list(range(25))


def _error_line(stderr: str) -> str:
    """The one line our error handler prints (after any warnings the imports emitted); no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("sparkml-ops: error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow  # four CLI subprocesses
def test_errors_are_one_line_without_traceback(tracking_uri, root):
    done = _cli("lineage", "0" * 32, "--root", str(root))
    assert done.returncode == 2
    assert _error_line(done.stderr).startswith("sparkml-ops: error: no sparkml_ops tracking root at")
    _log_runs(1)
    done = _cli("lineage", "0" * 32, "--root", str(root))
    assert done.returncode == 2 and "0" * 32 in _error_line(done.stderr)
    done = _cli("run", str(root / "no-such-project"), "--root", str(root))
    assert done.returncode == 2 and "no-such-project" in _error_line(done.stderr)
    done = _cli("score", "-m", "x", "-i", "x", "-o", "y", "--conf", "nokey", "--root", str(root))
    assert done.returncode == 2 and "--conf 'nokey' must be KEY=VALUE" in done.stderr


def test_gc_help_states_the_collectors_wait():
    from sparkml_ops.lake.blobs import DEFAULT_WAIT_S, MIN_WAIT_S

    code, out = run_cli_output("gc", "--help")
    assert code == 0 and f"at least {MIN_WAIT_S:g} (default {DEFAULT_WAIT_S:g})" in " ".join(out.split())


def test_sql_formats_match_the_writer():
    from sparkml_ops.cli.sql import FORMATS
    from sparkml_ops.sql.output import FORMATS as WRITER_FORMATS

    assert tuple(FORMATS) == tuple(WRITER_FORMATS)


def test_score_spec_round_trips_and_names_bad_fields():
    from sparkml_ops.errors import BadInput
    from sparkml_ops.models.jobio import ScoreSpec

    spec = ScoreSpec(model="models:/m/latest", input="in", output="out", stream=True, columns=("a", "b"),
                     reload_every=3)
    assert ScoreSpec.from_argv(["--spec", spec.to_json()]) == spec
    with pytest.raises(BadInput, match=r"unknown: \['colums'\]"):
        ScoreSpec.from_json('{"model": "m", "input": "i", "output": "o", "colums": ["a"]}')
    with pytest.raises(BadInput, match="takes --spec JSON"):
        ScoreSpec.from_argv(["--model", "m"])
    with pytest.raises(BadInput, match="--batch-size must be a positive integer, got 0"):
        ScoreSpec(model="m", input="i", output="o", batch_size=0)
