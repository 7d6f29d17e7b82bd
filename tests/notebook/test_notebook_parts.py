"""The notebook package's parts without a kernel: snapshot documents, provider, display, plots, bad input."""

from __future__ import annotations

import json
import time
import warnings

import pytest

from sparkml_ops.errors import BadInput
from sparkml_ops.notebook.capture import CellRecord
from sparkml_ops.notebook.document import build_notebook, take_snapshot
from sparkml_ops.notebook.source import NotebookWarning


def _cell(n: int, *outputs: tuple[str, dict]) -> CellRecord:
    return CellRecord(source=f"cell_{n}()", execution_count=n, outputs=list(outputs), finished=True)


def _stream(text: str, name: str = "stdout") -> tuple[str, dict]:
    return ("stream", {"name": name, "text": text})


def test_unserialisable_output_becomes_a_warning_and_a_marker_keeping_the_rest():
    cells = [_cell(1, _stream("first ")), _cell(2, ("display_data", {"data": {"application/json": {1, 2}}}),
                                                _stream("still here"))]
    with pytest.warns(NotebookWarning, match=r"cell \[2\].*could not be serialised"):
        notebook, truncated, dropped = build_notebook(cells, max_bytes=10_000, title="t")
    assert (truncated, dropped) == (0, 1)
    second = notebook.cells[1].outputs
    assert "could not be serialised" in second[0]["text"] and second[1]["text"] == "still here"
    assert notebook.cells[0].outputs[0]["text"] == "first "


def test_snapshot_over_the_cap_truncates_the_largest_outputs_with_a_marker():
    big, small = "y" * 50_000, "tiny"
    cells = [_cell(1, _stream(big)), _cell(2, _stream(small)),
             _cell(3, ("error", {"ename": "KeyError", "evalue": "'k'",
                                 "traceback": ["Traceback (most recent call last)", "KeyError: 'k'"]}))]
    with pytest.warns(NotebookWarning, match="truncation marker"):
        snap = take_snapshot(cells, max_bytes=5_000, title="capped.ipynb")
    assert snap.truncated_outputs == 1
    assert big not in snap.ipynb and big not in snap.html
    nb = json.loads(snap.ipynb)
    assert "output truncated" in "".join(nb["cells"][0]["outputs"][0]["text"])
    assert "".join(nb["cells"][1]["outputs"][0]["text"]) == small
    assert nb["cells"][2]["outputs"][0]["ename"] == "KeyError"
    assert "KeyError" in snap.html and "<script src=" not in snap.html


def test_streams_merge_and_images_render_inline():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    cells = [_cell(1, _stream("a"), _stream("b"), _stream("warn", "stderr"),
                   ("display_data", {"data": {"image/png": png, "text/plain": "<Figure>"}, "metadata": {}}))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        snap = take_snapshot(cells, max_bytes=1_000_000, title="img.ipynb")
    outputs = json.loads(snap.ipynb)["cells"][0]["outputs"]
    assert [o["output_type"] for o in outputs] == ["stream", "stream", "display_data"]
    assert "".join(outputs[0]["text"]) == "ab"
    assert f"data:image/png;base64,{png}" in snap.html


def test_provider_is_cheap_and_inert_outside_a_kernel(monkeypatch):
    from sparkml_ops.notebook.context import NotebookRunContext

    monkeypatch.delenv("SPARKML_OPS_NOTEBOOK_TAGS", raising=False)
    start = time.perf_counter()
    provider = NotebookRunContext()
    assert time.perf_counter() - start < 0.05
    assert provider.in_context() is False
    monkeypatch.setenv("SPARKML_OPS_NOTEBOOK_TAGS", json.dumps({"mlflow.source.name": "/nb/x.ipynb"}))
    executor = NotebookRunContext()  # a Spark executor started from a notebook
    assert executor.in_context() is True
    assert executor.tags() == {"mlflow.source.name": "/nb/x.ipynb"}


def test_snapshot_and_magic_outside_a_kernel_are_clear_errors():
    from sparkml_ops.notebook import snapshot
    from sparkml_ops.notebook.magics import sparkml_ops_magic

    with pytest.raises(BadInput, match="IPython kernel"):
        snapshot()
    with pytest.raises(BadInput, match="load_ext sparkml_ops"):
        sparkml_ops_magic("autolog off")


def test_display_html_of_runs_and_run_tables(tracking_uri, monkeypatch):
    import mlflow
    import pandas as pd

    from sparkml_ops.notebook.display import run_html, runs_frame_html

    with mlflow.start_run(run_name="shown") as run:
        mlflow.log_params({"depth": 3, "lr": 0.5})
        mlflow.log_metric("auc", 0.91234567)
    fetched = mlflow.get_run(run.info.run_id)
    page = run_html(fetched)
    assert "shown" in page and "depth=3" in page and "auc=0.912346" in page and "FINISHED" in page
    assert "<a href" not in page
    monkeypatch.setenv("SPARKML_OPS_SERVER_URL", "http://127.0.0.1:5000/")
    linked = run_html(fetched)
    assert f'href="http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"' in linked
    table = runs_frame_html(mlflow.search_runs())
    assert "1 run(s)" in table and "lr=0.5" in table
    plain = pd.DataFrame({"a": [1]})
    assert runs_frame_html(plain) == plain._repr_html_()  # other frames keep pandas' HTML


def test_plot_metrics_draws_each_runs_history_and_rejects_bad_input(tracking_uri):
    import mlflow

    from sparkml_ops.notebook import plot_metrics

    ids = []
    for scale in (1.0, 2.0):
        with mlflow.start_run() as run:
            for step in range(4):
                mlflow.log_metric("loss", scale / (step + 1), step=step)
        ids.append(run.info.run_id)
    with mlflow.start_run() as empty:
        pass
    figure = plot_metrics(mlflow.search_runs(), "loss")
    lines = figure.axes[0].get_lines()
    assert len(lines) == 3
    drawn = {tuple(line.get_ydata()) for line in lines if len(line.get_ydata())}
    assert drawn == {(1.0, 0.5, 1 / 3, 0.25), (2.0, 1.0, 2 / 3, 0.5)}
    assert any("(no data)" in t.get_text() for t in figure.axes[0].get_legend().get_texts())
    assert plot_metrics(empty.info.run_id, "loss").axes[0].get_ylabel() == "loss"
    with pytest.raises(BadInput, match="metric name"):
        plot_metrics(ids, "")
    with pytest.raises(BadInput, match="not a run id"):
        plot_metrics([42], "loss")


_TERMINAL_SHELL = """
import warnings
warnings.simplefilter("always")
from IPython.core.interactiveshell import InteractiveShell
from sparkml_ops.notebook import session
shell = InteractiveShell.instance()
with warnings.catch_warnings(record=True) as caught:
    active = session.activate(shell, mlflow_ready=True)
shell.run_cell("answer = 6 * 7\\nanswer", store_history=True)
snap = active.snapshot()
print("WARN", [str(w.message) for w in caught])
print("CELLS", snap.cells, "42" in snap.ipynb)
"""


@pytest.mark.slow  # a fresh IPython process
def test_unwritable_root_warns_when_logging_starts(tmp_path):
    """A plain (terminal) IPython shell: activation checks the root; cells are still captured."""
    import os
    import subprocess
    import sys

    from tests.notebook.conftest import REPO, kernel_env

    root = tmp_path / "locked"
    root.mkdir()
    as_root = os.geteuid() == 0
    subprocess.run(["chattr", "+i", str(root)] if as_root else ["chmod", "a-w", str(root)], check=True)
    try:
        env = kernel_env(root / "lake", SPARKML_OPS_NOTEBOOK_AUTOLOG="false")
        done = subprocess.run([sys.executable, "-c", _TERMINAL_SHELL], env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=300)
    finally:
        subprocess.run(["chattr", "-i", str(root)] if as_root else ["chmod", "u+w", str(root)], check=True)
    assert done.returncode == 0, done.stderr
    assert "is not writable" in done.stdout and str(root / "lake") in done.stdout
    assert "CELLS 1 True" in done.stdout
