"""Compact HTML for runs in the notebook: the active run, a ``Run``, a ``search_runs`` DataFrame.

Registered by type name with IPython's HTML formatter, so nothing is imported until such
an object is displayed. A DataFrame that is not a runs table keeps pandas' own HTML.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from sparkml_ops import config

_STYLE = ("<style>.smo-run{font-family:sans-serif;font-size:13px;border:1px solid #ddd;border-radius:4px;"
          "padding:6px 10px;display:inline-block}.smo-run table{border-collapse:collapse}"
          ".smo-run td,.smo-run th{padding:1px 8px;text-align:left;vertical-align:top}"
          ".smo-FAILED{color:#b22b31}.smo-FINISHED{color:#007427}.smo-RUNNING{color:#0065ca}</style>")
_MAX_ITEMS = 12
_MAX_ROWS = 50


def run_url(experiment_id: str, run_id: str) -> str | None:
    """Link to the run page of the configured tracking server UI (setting ``server_url``)."""
    base = str(config.resolve("server_url") or "").rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}" if base else None


def _pairs(items: Iterable[tuple[str, Any]]) -> str:
    items = sorted(items)
    shown = ", ".join(f"{html.escape(str(k))}={html.escape(_short(v))}" for k, v in items[:_MAX_ITEMS])
    more = f" … (+{len(items) - _MAX_ITEMS})" if len(items) > _MAX_ITEMS else ""
    return shown + more


def _short(value: Any) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _name_cell(name: str, experiment_id: str, run_id: str) -> str:
    label = html.escape(name or run_id)
    url = run_url(experiment_id, run_id)
    return f"<a href=\"{html.escape(url)}\" target=\"_blank\">{label}</a>" if url else label


def run_html(run: Any) -> str:
    """One run: name (linked when ``server_url`` is set), status, params, latest metrics."""
    info, data = run.info, run.data
    status = html.escape(str(info.status))
    return (
        f"{_STYLE}<div class=\"smo-run\"><table>"
        f"<tr><th>run</th><td>{_name_cell(info.run_name, info.experiment_id, info.run_id)}"
        f" <code>{html.escape(info.run_id)}</code></td></tr>"
        f"<tr><th>status</th><td class=\"smo-{status}\">{status}</td></tr>"
        f"<tr><th>params</th><td>{_pairs(data.params.items())}</td></tr>"
        f"<tr><th>metrics</th><td>{_pairs(data.metrics.items())}</td></tr>"
        "</table></div>"
    )


def runs_frame_html(frame: Any) -> str:
    """A ``search_runs`` result: one row per run, params and metrics folded into one cell each."""
    if not {"run_id", "experiment_id", "status"} <= set(frame.columns):
        return frame._repr_html_()
    params = [c for c in frame.columns if c.startswith("params.")]
    metrics = [c for c in frame.columns if c.startswith("metrics.")]
    rows = []
    for _, row in frame.head(_MAX_ROWS).iterrows():
        name = row.get("tags.mlflow.runName") or ""
        status = html.escape(str(row["status"]))
        p = _pairs((c.removeprefix("params."), row[c]) for c in params if _present(row[c]))
        m = _pairs((c.removeprefix("metrics."), row[c]) for c in metrics if _present(row[c]))
        rows.append(f"<tr><td>{_name_cell(str(name), str(row['experiment_id']), str(row['run_id']))}</td>"
                    f"<td class=\"smo-{status}\">{status}</td><td>{p}</td><td>{m}</td></tr>")
    more = f"<div>… {len(frame) - _MAX_ROWS} more runs</div>" if len(frame) > _MAX_ROWS else ""
    return (f"{_STYLE}<div class=\"smo-run\"><div>{len(frame)} run(s)</div><table>"
            "<tr><th>run</th><th>status</th><th>params</th><th>metrics</th></tr>"
            f"{''.join(rows)}</table>{more}</div>")


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN is absent


_TYPES = (("mlflow.entities.run", "Run", run_html),
          ("mlflow.tracking.fluent", "ActiveRun", run_html),
          ("pandas.core.frame", "DataFrame", runs_frame_html))


def register(shell: Any) -> None:
    formatter = shell.display_formatter.formatters["text/html"]
    for module, name, printer in _TYPES:
        formatter.for_type_by_name(module, name, printer)


def unregister(shell: Any) -> None:
    formatter = shell.display_formatter.formatters["text/html"]
    for module, name, _ in _TYPES:
        try:
            formatter.pop(f"{module}.{name}")
        except KeyError:
            pass
