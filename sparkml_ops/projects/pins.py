"""Pinned input versions for rebuilds: the ``SPARKML_OPS_PIN_INPUTS`` contract.

``sparkml-ops rebuild`` reads the original run's dataset inputs; every input whose source is
a Delta table with a version (MLflow's ``delta_table`` source: ``{"path": …,
"delta_table_version": N}`` or ``{"delta_table_name": …, …}``) becomes a pin. The rebuilt job
sees them, in its driver and executors, as the JSON list in ``SPARKML_OPS_PIN_INPUTS``::

    [{"path": "/data/events", "table": null, "version": 3, "name": "events", "digest": "ab12…"}]

A project's loader asks :func:`pinned_version` for the version to read (falling back to the
latest when nothing is pinned) and logs what it read with ``sparkml_ops.lineage.log_input``,
so the rebuilt run records the same data versions as the original.
"""

from __future__ import annotations

import json
import os
from typing import Any

from sparkml_ops import config
from sparkml_ops.errors import BadInput

PIN_ENV = config.SETTINGS["pin_inputs"].env
DELTA_SOURCE_TYPES = ("delta_table", "delta")


def normalise_location(location: str) -> str:
    """Comparable form of a table path or name: ``file://`` dropped, local paths absolute, no trailing '/'."""
    text = str(location).strip()
    if text.startswith("file://"):
        text = text[len("file://"):]
    if "://" not in text and (text.startswith(("/", ".", "~")) or os.sep in text):
        text = os.path.abspath(os.path.expanduser(text))
    return text.rstrip("/") or text


def pins_from_inputs(dataset_inputs: list[Any]) -> list[dict[str, Any]]:
    """Pins for the Delta inputs (with a version) among a run's ``run.inputs.dataset_inputs``."""
    pins = []
    for item in dataset_inputs or []:
        dataset = getattr(item, "dataset", item)
        if getattr(dataset, "source_type", None) not in DELTA_SOURCE_TYPES:
            continue
        try:
            source = json.loads(dataset.source or "{}")
        except ValueError:
            continue
        version = source.get("delta_table_version", source.get("version"))
        location = source.get("path") or source.get("delta_table_name") or source.get("table")
        if version is None or location is None:
            continue
        pins.append({"path": normalise_location(source["path"]) if source.get("path") else None,
                     "table": source.get("delta_table_name") or source.get("table"),
                     "version": int(version), "name": dataset.name, "digest": dataset.digest})
    return pins


def unversioned_delta_inputs(dataset_inputs: list[Any]) -> list[str]:
    """Names of Delta inputs logged without a version (a rebuild reads their latest version).

    MLflow's ``DeltaDatasetSource`` omits ``delta_table_version`` when it is 0, so a table read
    at its first version looks unversioned: loaders should write the version themselves.
    """
    pinned = {p["name"] for p in pins_from_inputs(dataset_inputs)}
    out = []
    for item in dataset_inputs or []:
        dataset = getattr(item, "dataset", item)
        if getattr(dataset, "source_type", None) in DELTA_SOURCE_TYPES and dataset.name not in pinned:
            out.append(f"{dataset.name} ({dataset.source})")
    return out


def pinned_inputs() -> list[dict[str, Any]]:
    """The pins this process was started with ([] outside a rebuild)."""
    pins = config.resolve("pin_inputs")
    if not all(isinstance(p, dict) and "version" in p for p in pins):
        raise BadInput(f"${PIN_ENV} must be a JSON list of objects with 'version', got {json.dumps(pins)[:80]!r}")
    return pins


def pinned_version(location: str) -> int | None:
    """The pinned Delta version for a table path or name, or None (read the latest)."""
    wanted = normalise_location(location)
    for pin in pinned_inputs():
        if wanted in (pin.get("path"), pin.get("table")):
            return int(pin["version"])
    return None
