"""The ``%sparkml_ops`` line magic: autolog on/off, an on-demand snapshot, status."""

from __future__ import annotations

from typing import Any

USAGE = "usage: %sparkml_ops autolog on|off | %sparkml_ops snapshot | %sparkml_ops status"


def sparkml_ops_magic(line: str) -> Any:
    """``%sparkml_ops autolog on|off``, ``%sparkml_ops snapshot`` (log to the active run), ``%sparkml_ops status``."""
    from sparkml_ops.errors import BadInput  # imports mlflow: only when the magic runs
    from sparkml_ops.notebook import session

    active = session.current()
    if active is None:
        raise BadInput("notebook logging is not active in this kernel: run %load_ext sparkml_ops first")
    words = line.split()
    if len(words) == 2 and words[0] == "autolog" and words[1] in {"on", "off"}:
        active.set_autolog(words[1] == "on")
        print(f"sparkml_ops: autolog {words[1]}")
        return None
    if words == ["snapshot"]:
        snap = active.snapshot()
        print(f"sparkml_ops: snapshot of {snap.cells} cell(s), {len(snap.ipynb)} bytes ipynb, "
              f"{len(snap.html)} bytes HTML")
        return None
    if words == ["status"]:
        import mlflow

        print(f"notebook: {active.notebook.name} (from {active.notebook.found_by})\n"
              f"tracking URI: {mlflow.get_tracking_uri()}\nautolog: {'on' if active.autolog else 'off'}\n"
              f"cells captured: {len(active.recorder.cells)}")
        return None
    raise BadInput(f"%sparkml_ops {line!r} is not a command; {USAGE}")
