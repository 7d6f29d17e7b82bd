"""Real notebooks run by nbclient in a real ipykernel, from a kernelspec installed for the test session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

KERNEL = "sparkml-ops-test"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kernelspec running this interpreter, installed under a temporary prefix (works from a clean venv)."""
    prefix = tmp_path_factory.mktemp("jupyter")
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", KERNEL],
                   check=True, capture_output=True)
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(prefix / "share" / "jupyter"), previous]))
    yield KERNEL
    if previous is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = previous


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    import nbformat
    import nbformat.v4 as v4

    nbformat.write(v4.new_notebook(cells=[v4.new_code_cell(c) for c in cells]), path)
    return path


def kernel_env(root: Path, **extra: str) -> dict[str, str]:
    """The kernel's environment: our checkout first on the path, a fresh root, no inherited MLflow settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "SPARKML_OPS_", "JPY_", "PYSPARK_SUBMIT"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["SPARKML_OPS_ROOT"] = str(root)
    env["SPARKML_OPS_FLUSH_INTERVAL_MS"] = "100"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.update(extra)
    return env


def execute(path: Path, kernel: str, env: dict[str, str], *, with_path: bool = True,
            allow_errors: bool = False) -> Any:
    """Run the notebook at ``path`` headless; returns the executed notebook (nbclient's own record)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    if with_path:
        env = {**env, "SPARKML_OPS_NOTEBOOK_PATH": str(path)}
    client = NotebookClient(notebook, timeout=300, kernel_name=kernel, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return notebook


def outputs_text(cell: Any) -> str:
    """Everything a cell printed or returned, as plain text."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
        parts.append(output.get("data", {}).get("text/html", ""))
        parts.append(output.get("evalue", ""))
    return "".join(p if isinstance(p, str) else "".join(p) for p in parts)


@pytest.fixture
def notebook_runner(kernel_name: str) -> Callable[..., Any]:
    def run(path: Path, env: dict[str, str], **kwargs: Any) -> Any:
        return execute(path, kernel_name, env, **kwargs)

    return run
