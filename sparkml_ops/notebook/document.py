"""Turn recorded cells into a notebook (nbformat v4) and a self-contained HTML page (nbconvert).

Outputs that cannot be serialised are replaced by a note; when the outputs together exceed
the snapshot cap, the largest ones are replaced by a truncation marker until the rest fit.
Either way the notebook stays valid and a warning says what happened — a snapshot never
fails a run.
"""

from __future__ import annotations

import functools
import html
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sparkml_ops.notebook.capture import CellRecord
from sparkml_ops.notebook.source import NotebookWarning

TRUNCATED_MARKER = "[sparkml_ops: output truncated — the snapshot exceeded notebook_snapshot_max_bytes={cap}]"
UNSERIALISABLE_MARKER = "[sparkml_ops: output could not be serialised ({error}) and was left out]"


@dataclass(frozen=True)
class Snapshot:
    """A notebook snapshot: the ipynb text, its HTML rendering and what had to be cut."""

    ipynb: str
    html: str
    cells: int
    truncated_outputs: int
    dropped_outputs: int


def build_notebook(cells: Sequence[CellRecord], *, max_bytes: int, title: str) -> tuple[Any, int, int]:
    """(notebook node, outputs truncated by the cap, outputs dropped as unserialisable).

    Nodes are built as plain nbformat-v4 dicts: ``nbformat.v4.new_*`` validates every node
    against the schema, which costs more than the whole snapshot on a notebook with images.
    """
    from nbformat import from_dict

    nb_cells: list[Any] = []
    sized: list[tuple[int, list[Any], int]] = []  # (size, the cell's output list, index)
    dropped = 0
    for number, record in enumerate(cells):
        outputs, bad = _outputs(record)
        dropped += bad
        nb_cells.append({"cell_type": "code", "id": f"cell-{number}", "metadata": {}, "source": record.source,
                         "execution_count": record.execution_count, "outputs": outputs})
        for index, output in enumerate(outputs):
            sized.append((_size(output), outputs, index))
    truncated = _apply_cap(sized, max_bytes)
    kernel = sys.modules.get("ipykernel")
    metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python", "version": sys.version.split()[0], "pygments_lexer": "ipython3"},
        "sparkml_ops": {"title": title, "kernel": getattr(kernel, "__version__", None)},
        "title": title,
    }
    return from_dict({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": nb_cells}), truncated, dropped


def _size(output: dict[str, Any]) -> int:
    if output["output_type"] == "stream":
        return len(output["text"]) + 40
    if output["output_type"] == "error":
        return len(json.dumps(output))
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in output["data"].values()) + 60


def _stream(name: str, text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def _outputs(record: CellRecord) -> tuple[list[dict[str, Any]], int]:
    """The cell's outputs as nbformat dicts; streams of one name that follow each other merge."""
    outputs: list[dict[str, Any]] = []
    bad = 0
    for kind, content in record.outputs:
        try:
            output = _output(kind, content, record)
            json.dumps(output)
        except (TypeError, ValueError, KeyError) as exc:
            bad += 1
            warnings.warn(f"cell [{record.execution_count}]: a {kind} output could not be serialised ({exc}); "
                          "the snapshot leaves it out", NotebookWarning, stacklevel=2)
            output = _stream("stderr", UNSERIALISABLE_MARKER.format(error=exc) + "\n")
        if (output["output_type"] == "stream" and outputs and outputs[-1]["output_type"] == "stream"
                and outputs[-1]["name"] == output["name"]):
            outputs[-1]["text"] += output["text"]
            continue
        outputs.append(output)
    if record.error is not None and not any(o["output_type"] == "error" for o in outputs):
        error = record.error
        outputs.append({"output_type": "error", "ename": type(error).__name__, "evalue": str(error),
                        "traceback": [f"{type(error).__name__}: {error}"]})
    return outputs, bad


def _output(kind: str, content: dict[str, Any], record: CellRecord) -> dict[str, Any]:
    if kind == "stream":
        return _stream(str(content["name"]), str(content["text"]))
    if kind == "error":
        return {"output_type": "error", "ename": str(content["ename"]), "evalue": str(content["evalue"]),
                "traceback": [str(line) for line in content.get("traceback", [])]}
    data = dict(content["data"])
    metadata = dict(content.get("metadata") or {})
    if kind == "execute_result":
        return {"output_type": "execute_result", "data": data, "metadata": metadata,
                "execution_count": content.get("execution_count", record.execution_count)}
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def _apply_cap(sized: list[tuple[int, list[Any], int]], max_bytes: int) -> int:
    """Replace the largest outputs with a marker until the total fits ``max_bytes``."""
    total = sum(size for size, _, _ in sized)
    truncated = 0
    marker = TRUNCATED_MARKER.format(cap=max_bytes) + "\n"
    for size, outputs, index in sorted(sized, key=lambda item: item[0], reverse=True):
        if total <= max_bytes:
            break
        outputs[index] = _stream("stderr", marker)
        total -= size - len(marker)
        truncated += 1
    return truncated


_TEMPLATE = """{%- extends 'classic/base.html.j2' -%}
{% block input %}
<div class="inner_cell"><div class="input_area">
{{ cell.source | highlight_code(metadata=cell.metadata) }}
</div></div>
{%- endblock input %}
"""


@functools.lru_cache(maxsize=1)
def _exporter() -> Any:
    """nbconvert's HTML exporter on the ``classic`` cell markup, with two costs removed.

    Built once per process (compiling the templates is most of a small snapshot's cost); only
    the preprocessor that inlines the pygments CSS runs (each one re-validates the notebook).
    Code inputs skip ``clean_html`` (pygments has already escaped them; outputs that are HTML
    are still sanitised), and the final BeautifulSoup pass that adds alt texts and tab stops
    is not run: on a page of base64 images it costs more than rendering the page.
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    try:
        from IPython.lib.lexers import IPython3Lexer as Lexer
    except ImportError:  # IPython is optional for building snapshots
        from pygments.lexers import PythonLexer as Lexer
    lexer, formatter = Lexer(), HtmlFormatter(cssclass="highlight hl-ipython3")

    def highlight_code(source: str, language: str | None = None, metadata: Any = None) -> str:
        # nbconvert's own filter builds a new lexer and formatter for every cell
        return highlight(source or " ", lexer, formatter)

    class SnapshotExporter(HTMLExporter):
        def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> Any:
            resources = self._init_resources(resources)
            self.register_filter("highlight_code", highlight_code)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return SnapshotExporter(template_name="basic", template_file="snapshot.html.j2",
                            extra_loaders=[DictLoader({"snapshot.html.j2": _TEMPLATE})],
                            default_preprocessors=["nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"])


def render_html(notebook: Any, title: str) -> str:
    """A self-contained HTML page: nbconvert's cell markup (no CDN scripts) with inline styles."""
    body, resources = _exporter().from_notebook_node(notebook)
    styles = "\n".join(resources.get("inlining", {}).get("css", []))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}\n{styles}</style>\n</head>\n"
        f"<body>\n<h1 class=\"nb-title\">{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
.nb-title { font-size: 1.2em; font-weight: 600; }
.cell { margin: 0.6em 0; }
.input_prompt, .output_prompt, .prompt { color: #888; font-family: monospace; font-size: 0.85em; }
.input_area { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 3px; padding: 0.3em 0.6em; }
pre { margin: 0; white-space: pre-wrap; font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.85em; }
.output_area img { max-width: 100%; }
.output_stderr, .output_error { background: #fdeeee; }
.ansi-red-fg { color: #b22b31; } .ansi-green-fg { color: #007427; } .ansi-cyan-fg { color: #0e7893; }
.ansi-blue-fg { color: #0065ca; } .ansi-yellow-fg { color: #b27d12; } .ansi-bold { font-weight: bold; }
table.dataframe { border-collapse: collapse; } table.dataframe td, table.dataframe th { padding: 2px 6px; }
"""


def take_snapshot(cells: Sequence[CellRecord], *, max_bytes: int, title: str) -> Snapshot:
    """Build the ipynb and HTML texts of ``cells``."""
    notebook, truncated, dropped = build_notebook(cells, max_bytes=max_bytes, title=title)
    if truncated:
        warnings.warn(f"notebook snapshot: {truncated} output(s) over the {max_bytes}-byte cap were replaced "
                      "by a truncation marker (setting notebook_snapshot_max_bytes)", NotebookWarning, stacklevel=2)
    text = json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    return Snapshot(ipynb=text, html=render_html(notebook, title), cells=len(cells),
                    truncated_outputs=truncated, dropped_outputs=dropped)
