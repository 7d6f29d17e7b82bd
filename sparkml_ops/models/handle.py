"""The small, picklable description of a model that travels inside every Spark task.

It carries no model bytes: those travel once per session as a Spark archive (see
``shipping.py``). A worker finds the unpacked archive by ``archive`` name, loads the model
once and caches it by ``digest``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparkml_ops.models.predictors import LoadOptions


@dataclass(frozen=True)
class ModelHandle:
    uri: str
    run_id: str | None
    model_id: str | None
    digest: str
    archive: str | None  # name under SparkFiles of the unpacked model archive
    local_path: str  # the driver's copy: used when the archive is not there (same machine)
    input_names: tuple[str, ...]  # names the model sees, one per bound column, in call order
    result_arrow: Any  # pyarrow.DataType of the result column
    batch_size: int
    options: LoadOptions  # how a worker loads the model (what the REST server loads it with, too)

    @property
    def label(self) -> str:
        ids = ", ".join(f"{k} {v}" for k, v in (("model", self.model_id), ("run", self.run_id)) if v)
        return self.uri + (f" ({ids})" if ids else "")
