"""Notebook logging benchmarks (issue 12).

    python bench/bench_notebook.py [--quick] [--only hook,snapshot] [--workdir DIR]

Figures (each one JSON line, references measured in the same run):

- ``hook``: time added to each executed cell by the live-kernel capture (IPython events,
  the kernel-session wrapper, the run bookkeeping), median ms per cell. Measured in a real
  ipykernel started by nbclient: blocks of cells (``y = i * 2; print(...)``, run with
  ``run_cell`` from one driver cell) alternate with capture on (``%load_ext sparkml_ops``)
  and off (``%unload_ext``), so both see the same kernel and load. The reference is the
  median cell time without capture; the figure is the difference of the medians.
- ``snapshot``: building ``notebook.ipynb`` + ``notebook.html`` for 200 executed cells, 50
  of them with a matplotlib PNG, s; and the HTML size over the ipynb size. The reference is
  nbconvert's stock ``lab`` HTML export of the same notebook (what ``jupyter nbconvert
  --to html`` does). The time to also log both files to a run on a Delta root is reported.
  CPU seconds are reported next to wall seconds: on a shared, loaded host they are the
  better estimate of the wall time on a quiet one.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, median, parse_args, reference_env, workdir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GROUPS = ("hook", "snapshot")
SIZES = {"quick": {"blocks": 4, "cells": 100, "repeats": 1}, "full": {"blocks": 8, "cells": 250, "repeats": 3}}

_DRIVER = """
import json, time
_ip = get_ipython()
def _block(n, start):
    out = []
    for i in range(start, start + n):
        t = time.perf_counter_ns()
        _ip.run_cell(f"y = {i} * 2\\nprint('row', {i})", store_history=True)
        out.append(time.perf_counter_ns() - t)
    return out
"""


def bench_hook(work: Path, sizes: dict) -> None:
    import nbformat.v4 as v4
    from nbclient import NotebookClient

    cells = ["import mlflow\nimport sparkml_ops.notebook", _DRIVER]
    for block in range(sizes["blocks"]):
        on = block % 2 == 1
        cells.append("%load_ext sparkml_ops" if on else "%unload_ext sparkml_ops" if block else "pass")
        cells.append(f"print('SAMPLES', {on}, json.dumps(_block({sizes['cells']}, {block * sizes['cells']})))")
    notebook = v4.new_notebook(cells=[v4.new_code_cell(c) for c in cells])
    env = dict(os.environ, SPARKML_OPS_ROOT=str(work / "lake"), PYTHONPATH=str(REPO),
               SPARKML_OPS_NOTEBOOK_PATH=str(work / "bench.ipynb"), SPARKML_OPS_NOTEBOOK_AUTOLOG="false")
    with tempfile.TemporaryDirectory() as prefix:
        import subprocess

        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", prefix, "--name", "smo-bench"],
                       check=True, capture_output=True)
        os.environ["JUPYTER_PATH"] = str(Path(prefix) / "share" / "jupyter")
        NotebookClient(notebook, timeout=1800, kernel_name="smo-bench",
                       resources={"metadata": {"path": str(work)}}).execute(env=env)
    samples: dict[bool, list[int]] = {True: [], False: []}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for line in "".join(output.get("text", "")).splitlines():
                if line.startswith("SAMPLES "):
                    _, on, data = line.split(" ", 2)
                    samples[on == "True"].extend(json.loads(data))
    with_ms = median(samples[True]) / 1e6
    without_ms = median(samples[False]) / 1e6
    overhead = max(with_ms - without_ms, 0.0)
    emit("notebook capture overhead per cell", ours=overhead, reference={"cell_without_capture_ms": without_ms},
         unit="ms (median)", better="lower", target=1.0, n=len(samples[True]),
         ratio_basis={"cell_without_capture_ms": with_ms}, cell_with_capture_ms=with_ms)


def _records(count: int, images: int) -> list:
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sparkml_ops.notebook.capture import CellRecord

    every = max(count // images, 1)
    records = []
    for number in range(1, count + 1):
        record = CellRecord(source=f"result_{number} = train(step={number})\nprint(result_{number})",
                            execution_count=number, finished=True)
        record.outputs.append(("stream", {"name": "stdout", "text": f"step {number}: loss={1 / number:.5f}\n" * 3}))
        if number % every == 0 and len([r for r in records if len(r.outputs) > 1]) < images:
            figure, ax = plt.subplots(figsize=(5, 3))
            ax.plot([x * number % 17 for x in range(50)])
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=72)
            plt.close(figure)
            png = base64.b64encode(buffer.getvalue()).decode()
            record.outputs.append(("display_data", {"data": {"image/png": png, "text/plain": "<Figure>"},
                                                    "metadata": {}}))
        records.append(record)
    return records


def bench_snapshot(work: Path, sizes: dict) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    from sparkml_ops.notebook.document import build_notebook, take_snapshot

    records = _records(200, 50)
    take_snapshot(records[:2], max_bytes=100_000_000, title="warm-up.ipynb")  # imports, template compile
    snapshot_s, snapshot_cpu_s = [], []
    for _ in range(sizes["repeats"]):
        start, cpu = time.perf_counter(), time.process_time()
        snap = take_snapshot(records, max_bytes=100_000_000, title="bench.ipynb")
        snapshot_s.append(time.perf_counter() - start)
        snapshot_cpu_s.append(time.process_time() - cpu)
    notebook, _, _ = build_notebook(records, max_bytes=100_000_000, title="bench.ipynb")
    HTMLExporter(template_name="lab").from_notebook_node(nbformat.from_dict(build_notebook(
        records[:2], max_bytes=100_000_000, title="warm-up.ipynb")[0]))
    reference_s, reference_cpu_s = [], []
    for _ in range(sizes["repeats"]):
        start, cpu = time.perf_counter(), time.process_time()
        stock_html, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.from_dict(notebook))
        reference_s.append(time.perf_counter() - start)
        reference_cpu_s.append(time.process_time() - cpu)
    ipynb_bytes, html_bytes = len(snap.ipynb.encode()), len(snap.html.encode())
    emit("notebook snapshot 200 cells / 50 images", ours=min(snapshot_s), reference={"nbconvert_lab_html_s":
         min(reference_s)}, unit="s", better="lower", target=2.0, n=200,
         ipynb_bytes=ipynb_bytes, html_bytes=html_bytes, stock_lab_html_bytes=len(stock_html.encode()),
         cpu_s=min(snapshot_cpu_s), reference_cpu_s=min(reference_cpu_s))
    emit("notebook snapshot html/ipynb size", ours=html_bytes / ipynb_bytes,
         reference={"nbconvert_lab_html": len(stock_html.encode()) / ipynb_bytes}, unit="ratio", better="lower",
         target=1.2, n=200)

    import mlflow

    from sparkml_ops.notebook.session import HTML_ARTIFACT, IPYNB_ARTIFACT

    mlflow.set_tracking_uri(f"delta:{work / 'lake-snap'}")
    client = mlflow.MlflowClient()
    run = client.create_run(client.create_experiment("bench"))
    start = time.perf_counter()
    snap = take_snapshot(records, max_bytes=100_000_000, title="bench.ipynb")
    client.log_text(run.info.run_id, snap.ipynb, IPYNB_ARTIFACT)
    client.log_text(run.info.run_id, snap.html, HTML_ARTIFACT)
    logged_s = time.perf_counter() - start
    emit("notebook snapshot built and logged to a Delta root", ours=logged_s, reference={}, unit="s",
         better="lower", target=None, n=200)


def main() -> None:
    args = parse_args(__doc__ or "", groups=GROUPS)
    reference_env()
    sizes = SIZES["quick" if args.quick else "full"]
    with workdir(args.workdir) as work:
        if "snapshot" in args.only:
            bench_snapshot(work, sizes)
        if "hook" in args.only:
            bench_hook(work, sizes)


if __name__ == "__main__":
    main()
