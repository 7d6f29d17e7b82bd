"""The small, picklable description of a model that travels inside every Spark task.

It carries no model bytes: those travel once per session as a Spark archive (see
``shipping.py``). A worker finds the unpacked archive by ``archive`` name, loads the model
once and caches it by ``digest``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelHandle:
    uri: str
    run_id: str | None
    model_id: str | None
    digest: str
    archive: str | None  # name under SparkFiles of the unpacked model archive
    local_path: str  # the driver's copy: used when the archive is not there (same machine)
    input_kind: str  # "columns" | "tensor" | "any" (see spec.InputSpec)
    input_names: tuple[str, ...]  # names the model sees, one per bound column, in call order
    tensor_dtype: str | None  # numpy dtype of an unnamed tensor input
    numeric: bool  # every input is a numeric scalar (the matrix fast paths apply)
    result_arrow: Any  # pyarrow.DataType of the result column
    batch_size: int
    allow_pickle: bool  # the driver allowed MLflow to unpickle model files
    fast: bool  # use the direct sklearn/onnxruntime paths when they apply
    onnx_threads: int = 1

    @property
    def label(self) -> str:
        ids = ", ".join(f"{k} {v}" for k, v in (("model", self.model_id), ("run", self.run_id)) if v)
        return self.uri + (f" ({ids})" if ids else "")
