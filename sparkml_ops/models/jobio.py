"""What both scoring jobs share: reading inputs, asking the executors who they are, reporting."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sparkml_ops.errors import BadInput

if TYPE_CHECKING:
    from sparkml_ops.models.environment import EnvMode

JobKind = Literal["batch", "stream"]
RESULT_PREFIX = "SPARKML_OPS_RESULT "
INPUT_FORMATS = ("auto", "parquet", "json", "csv", "delta")
STREAM_INPUT_FORMATS = ("auto", "parquet", "json", "rate")  # file sources Spark can stream, and demos


@dataclass(frozen=True)
class ScoreSpec:
    """Everything a scoring job needs, handed to ``spark-submit`` as one JSON argument (``--spec``).

    ``sparkml-ops score`` builds it from its options; the job reads it back with
    :meth:`from_argv` — the options are declared once (in the CLI), not parsed twice.
    Invalid combinations raise :class:`BadInput` naming the option and the rule.
    """

    model: str
    input: str
    output: str
    stream: bool = False
    output_col: str = "prediction"
    columns: tuple[str, ...] = ()
    batch_size: int = 50_000
    env: EnvMode = "local"
    env_cache: str | None = None
    tracking_uri: str | None = None
    report: str | None = None
    input_format: str = "auto"
    format: str = "delta"  # batch: output format
    mode: str = "append"  # batch: output mode
    job_id: str | None = None  # batch: idempotency key of the Delta commit (default: random)
    checkpoint: str | None = None  # stream: checkpoint (default <output>/_checkpoint)
    reload_every: int = 0  # stream: re-resolve the model when N seconds have passed (0: never)
    trigger_seconds: float = 1.0
    max_files_per_trigger: int | None = None
    rows_per_second: int = 100  # stream: rate source speed
    available_now: bool = False  # stream: process what is there, then stop
    timeout: float | None = None  # stream: stop after this many seconds

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        if self.batch_size <= 0:
            raise BadInput(f"--batch-size must be a positive integer, got {self.batch_size}")
        if self.format not in ("delta", "parquet") or self.mode not in ("append", "overwrite"):
            raise BadInput(f"--format {self.format} / --mode {self.mode}: expected delta|parquet and append|overwrite")
        if self.stream:
            self._check_stream()
        else:
            self._check_batch()

    def _check_stream(self) -> None:
        if self.format != "delta":
            raise BadInput("--stream writes a Delta table; --format parquet is for batch jobs")
        if self.input_format not in STREAM_INPUT_FORMATS:
            raise BadInput(f"--input-format {self.input_format} cannot be streamed; "
                           f"--stream reads {', '.join(STREAM_INPUT_FORMATS)}")
        if self.reload_every < 0:
            raise BadInput(f"--reload-every must be >= 0, got {self.reload_every}")

    def _check_batch(self) -> None:
        if self.input_format == "rate":
            raise BadInput("--input-format rate is a stream source; add --stream")
        if self.input_format not in INPUT_FORMATS:
            raise BadInput(f"--input-format {self.input_format} must be one of {list(INPUT_FORMATS)}")
        for name in ("checkpoint", "max_files_per_trigger", "timeout"):
            if getattr(self, name) is not None:
                raise BadInput(f"--{name.replace('_', '-')} applies to --stream only")
        if self.reload_every or self.available_now:
            raise BadInput("--reload-every and --available-now apply to --stream only")

    @property
    def kind(self) -> JobKind:
        return "stream" if self.stream else "batch"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ScoreSpec:
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise BadInput(f"job spec is not JSON: {exc}") from exc
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known) if isinstance(values, dict) else None
        if unknown is None or unknown:
            raise BadInput(f"job spec must be a JSON object of {sorted(known)}; unknown: {unknown}")
        return cls(**values)

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None) -> ScoreSpec:
        """The spec of ``<job script> --spec JSON``."""
        args = list(sys.argv[1:] if argv is None else argv)
        if len(args) != 2 or args[0] != "--spec":
            raise BadInput(f"a scoring job takes --spec JSON (written by `sparkml-ops score`), got {args}")
        return cls.from_json(args[1])


def detect_format(path: str, declared: str) -> str:
    if declared not in INPUT_FORMATS:
        raise BadInput(f"input format {declared!r} must be one of {list(INPUT_FORMATS)}")
    if declared != "auto":
        return declared
    local = Path(path)
    if (local / "_delta_log").is_dir():
        return "delta"
    suffixes = {p.suffix for p in local.rglob("*") if p.is_file()} if local.is_dir() else {local.suffix}
    for fmt, suffix in (("json", ".json"), ("csv", ".csv")):
        if suffix in suffixes and ".parquet" not in suffixes:
            return fmt
    return "parquet"


def read_input(spark, path: str, fmt: str = "auto"):
    """A batch DataFrame over ``path``; Delta tables are read through delta-rs's file list (no Delta jars)."""
    fmt = detect_format(path, fmt)
    if fmt == "delta":
        from sparkml_ops.lake.delta import data_files

        files = data_files(path)
        if not files:
            raise BadInput(f"Delta table {path} has no data files")
        return spark.read.parquet(*files)
    reader = spark.read
    if fmt == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    return reader.format(fmt).load(path)


def probe_workers(spark, partitions: int = 2) -> list[dict[str, Any]]:
    """Each Python worker that runs a probe task reports its interpreter and package locations."""
    from sparkml_ops.models import worker

    return [json.loads(text) for text in _on_workers(spark, lambda: json.dumps(worker.probe()), partitions)]


def _on_workers(spark, fn: Callable[[], str], partitions: int = 1) -> list[str]:
    """``fn()`` run in as many Python worker tasks as ``partitions``."""
    import pyarrow as pa

    def run(batches):
        for batch in batches:
            yield pa.RecordBatch.from_pydict({"v": [fn()] * batch.num_rows})

    return [r.v for r in spark.range(0, partitions, 1, partitions).mapInArrow(run, "v string").collect()]


def probe_backend(spark, scorer: Any) -> str:
    """The backend that scores for ``scorer`` (a ``ModelUDF``, or a resolved Spark ML model): ``"spark"``,
    ``"compiled"``, or what a Python worker's :func:`~sparkml_ops.models.worker.predictor` took for it."""
    from sparkml_ops.models import worker

    if not hasattr(scorer, "handle_for"):
        return "spark"
    if scorer.compiled is not None:
        return "compiled"
    handle = scorer.handle_for(scorer.input_names or ())
    return _on_workers(spark, lambda: worker.predictor(handle).kind)[0]


def report(result: dict[str, Any], path: str | None) -> None:
    text = json.dumps(result, default=str, sort_keys=True)
    print(RESULT_PREFIX + text, flush=True)
    if path:
        Path(path).write_text(text)


def set_tracking(uri: str | None) -> None:
    if uri:
        import mlflow

        mlflow.set_tracking_uri(uri)


def log(message: str) -> None:
    print(f"[sparkml-ops] {message}", file=sys.stderr, flush=True)


def run_job(app_name: str, kind: JobKind, job: Callable[[Any, ScoreSpec], dict[str, Any]],
            argv: Sequence[str] | None = None) -> int:
    """The spark-submit entry shared by the batch and stream jobs: one session, a result report, a clean stop."""
    from pyspark.sql import SparkSession

    spec = ScoreSpec.from_argv(argv)
    if spec.kind != kind:
        raise BadInput(f"the {kind} scoring job was given a {spec.kind} job spec")
    set_tracking(spec.tracking_uri)
    spark = SparkSession.builder.appName(app_name).getOrCreate()
    try:
        report(job(spark, spec), spec.report)
    finally:
        spark.stop()
    return 0
