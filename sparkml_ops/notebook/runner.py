"""Run a notebook file headless with nbclient, with the kernel knowing the notebook's path.

nbclient (and papermill, built on it) start a kernel without telling it which notebook it
runs; this runner passes the path as ``SPARKML_OPS_NOTEBOOK_PATH`` so runs get the right
experiment and source tags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sparkml_ops.errors import BadInput


def run_notebook(path: str | os.PathLike[str], *, kernel_name: str = "python3", timeout: int = 600,
                 allow_errors: bool = False, env: dict[str, str] | None = None,
                 output_path: str | os.PathLike[str] | None = None) -> Any:
    """Execute the notebook at ``path`` in its own directory; returns the executed notebook node.

    ``allow_errors=False`` stops at the first failing cell (raising nbclient's
    ``CellExecutionError``) — the notebook's run still ends FAILED with its snapshot logged.
    """
    import nbformat
    from nbclient import NotebookClient

    source = Path(path).expanduser().resolve()
    if not source.is_file():
        raise BadInput(f"run_notebook: {str(path)!r} is not a notebook file")
    notebook = nbformat.read(source, as_version=4)
    kernel_env = dict(os.environ)
    kernel_env.update(env or {})
    kernel_env["SPARKML_OPS_NOTEBOOK_PATH"] = str(source)
    client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(source.parent)}})
    try:
        client.execute(env=kernel_env)
    finally:
        if output_path is not None:
            nbformat.write(notebook, Path(output_path))
    return notebook
