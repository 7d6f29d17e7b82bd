"""Live-kernel capture: every executed cell's source and outputs, from IPython's execution events.

The file on disk may be unsaved or stale, so the snapshot is built from what the kernel
actually ran. Sources come from ``pre_run_cell``; outputs are the messages the kernel
publishes to the front-end (streams, display data incl. images, results, errors), taken at
the kernel's one ``Session.send`` and matched to their cell by the parent message id. The
hooks only append references: building notebook cells happens at snapshot time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CAPTURED_TYPES = frozenset({"stream", "display_data", "execute_result", "error", "clear_output"})


@dataclass
class CellRecord:
    """One executed cell: its source, execution count, outputs (raw message contents) and outcome."""

    source: str
    execution_count: int | None
    outputs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: BaseException | None = None
    finished: bool = False


class CellRecorder:
    """Records executed cells of one IPython shell; ``install``/``uninstall`` attach to its events."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.cells: list[CellRecord] = []
        self._by_parent: dict[str, CellRecord] = {}
        self._lock = threading.Lock()
        self._session: Any = None
        self._original_send: Callable[..., Any] | None = None
        self.after_cell: list[Callable[[CellRecord], None]] = []
        self._unbound: CellRecord | None = None

    # -- wiring --------------------------------------------------------------------------------

    def install(self) -> None:
        """Register the execution events and wrap the kernel session's ``send`` (ipykernel only)."""
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        self._backfill()
        kernel = getattr(self.shell, "kernel", None)
        session = getattr(kernel, "session", None)
        if session is not None and self._original_send is None:
            self._session = session
            self._original_send = session.send
            session.send = self._send

    def _backfill(self) -> None:
        """Cells that ran before capture started, from the kernel's history (sources and results,
        not what they printed); the cell running now is captured from here on."""
        history = getattr(getattr(self.shell, "history_manager", None), "input_hist_raw", None) or []
        results = getattr(self.shell, "user_ns", {}).get("Out", {}) or {}
        count = len(history) - 1  # history[0] is empty; the last entry is the cell running now
        for number in range(1, count):
            record = CellRecord(source=history[number], execution_count=number, finished=True)
            if number in results:
                record.outputs.append(("execute_result", {"data": {"text/plain": _safe_repr(results[number])},
                                                          "metadata": {}, "execution_count": number}))
            self.cells.append(record)
        running = history[count] if count > 0 else None
        if running is not None:
            self.cells.append(CellRecord(source=running, execution_count=count))
            parent = self._parent_id()
            if parent:
                self._by_parent[parent] = self.cells[-1]
            else:  # the parent header is not visible from here (another thread): bind on its first output
                self._unbound = self.cells[-1]

    def uninstall(self) -> None:
        for name, hook in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                self.shell.events.unregister(name, hook)
            except ValueError:
                pass
        if self._session is not None and self._original_send is not None:
            del self._session.send  # the instance attribute; the class's method shows again
            self._session = None
            self._original_send = None

    # -- events --------------------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        record = CellRecord(source=info.raw_cell or "", execution_count=None)
        self._unbound = None
        parent = self._parent_id()
        with self._lock:
            self.cells.append(record)
            if parent:
                self._by_parent[parent] = record

    def post_run_cell(self, result: Any) -> None:
        if not self.cells:
            return
        record = self.cells[-1]
        record.execution_count = result.execution_count
        record.error = result.error_in_exec or result.error_before_exec
        if self._session is None and result.result is not None:  # terminal IPython: no messages
            record.outputs.append(("execute_result", {"data": {"text/plain": repr(result.result)},
                                                      "metadata": {}, "execution_count": result.execution_count}))
        record.finished = True
        for callback in list(self.after_cell):
            callback(record)

    def current(self) -> CellRecord | None:
        return self.cells[-1] if self.cells else None

    # -- messages ------------------------------------------------------------------------------

    def _parent_id(self) -> str | None:
        get_parent = getattr(self.shell, "get_parent", None)
        parent = get_parent() if get_parent else getattr(self.shell, "parent_header", None)
        header = (parent or {}).get("header") or {}
        return header.get("msg_id")

    def _send(self, stream: Any, msg_or_type: Any, content: Any = None, parent: Any = None, *args: Any,
              **kwargs: Any) -> Any:
        original = self._original_send
        assert original is not None
        try:
            if isinstance(msg_or_type, str):
                kind = msg_or_type
            else:
                kind = msg_or_type.get("msg_type") or msg_or_type["header"]["msg_type"]
            if kind in CAPTURED_TYPES:
                self._record(kind, content, parent, msg_or_type)
        except Exception:  # capture must never break the kernel's output path
            pass
        return original(stream, msg_or_type, content, parent, *args, **kwargs)

    def _record(self, kind: str, content: Any, parent: Any, msg: Any) -> None:
        if not isinstance(msg, str):
            content = msg.get("content", content)
            parent = msg.get("parent_header", parent)
        header = (parent or {}).get("header", parent) or {}
        msg_id = header.get("msg_id", "")
        record = self._by_parent.get(msg_id)
        if record is None:
            if self._unbound is None or not msg_id:
                return
            record = self._by_parent[msg_id] = self._unbound
            self._unbound = None
        if kind == "clear_output":
            record.outputs.clear()
            return
        record.outputs.append((kind, content))


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not stop capture
        return f"<unrepresentable {type(value).__name__}: {exc}>"
