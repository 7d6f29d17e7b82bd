"""The ASGI app: MLflow's scoring protocol over one :class:`ServedModel`.

Starlette serves ``GET /ping``, ``/health``, ``/version``, ``/metadata``, the lifespan and
every error route; ``POST /invocations`` — the only hot route — is answered by a plain ASGI
handler in front of it, which skips Starlette's request/response objects, routing and
middleware (about a third of the per-request cost for a 1-row request). Small fast-path
bodies are decoded on the event loop (microseconds) and queued on the
:class:`MicroBatcher`; large bodies and MLflow's general path run on one model thread, so
the model is never called from two threads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sparkml_ops.models.serving.follow import Generation, follow
from sparkml_ops.models.serving.http_errors import PayloadError, PayloadTooLarge, RequestError
from sparkml_ops.models.serving.payload import content_kind, decode_json, read_table, table_to_matrix
from sparkml_ops.models.serving.predictor import ServedModel, encode_predictions
from sparkml_ops.models.serving.settings import ServeConfig

_log = logging.getLogger(__name__)
_INLINE_DECODE_BYTES = 64 * 1024  # larger bodies are decoded off the event loop
_JSON = b"application/json"


class _ClientGone(Exception):
    """The client disconnected before sending its whole body."""


class ScoringApp:
    """ASGI entry point: ``POST /invocations`` here, everything else (and the lifespan) in Starlette."""

    def __init__(self, model: ServedModel, config: ServeConfig) -> None:
        # The serving generation: requests take it once; --follow swaps it (see follow.py).
        self.active = Generation(model, config.model_name, config.model_version, config.model_digest)
        self.swaps = 0
        self.config = config
        self.limit = config.max_body_bytes
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparkml-ops-model")
        self.started = time.time()
        self.description = {"model_uri": config.model_uri, **model.describe(),
                            "batching": {"max_batch_rows": config.max_batch_rows, "max_wait_ms": config.max_wait_ms}}
        self.description["model_id"] = self.description.get("model_id") or config.model_id
        self.description["run_id"] = self.description.get("run_id") or config.run_id
        self.first = self.active
        self.starlette = Starlette(routes=[
            Route("/invocations", self._invocations_fallback, methods=["POST"]),
            Route("/ping", self._ping, methods=["GET"]),
            Route("/health", self._ping, methods=["GET"]),
            Route("/version", self._version, methods=["GET"]),
            Route("/metadata", self._metadata, methods=["GET"]),
        ], lifespan=self._lifespan)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/invocations":
            await self._invocations(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)

    # -- POST /invocations ----------------------------------------------------------------------
    async def _invocations(self, scope, receive, send) -> None:
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        headers = None
        generation = self.active
        generation.inflight += 1
        try:
            kind = content_kind(content_type)
            body = await self._body(receive, length)
            status, payload, media = await self._score(generation, kind, body)
        except _ClientGone:
            return
        except RequestError as exc:
            status, payload, media = exc.status, exc.body(), _JSON
            if exc.status == 413:
                headers = [(b"connection", b"close")]  # do not read the rest of a huge body
        except Exception as exc:  # a payload MLflow's parser chokes on is still the client's problem
            _log.exception("request failed")
            error = PayloadError(f"the request could not be scored: {type(exc).__name__}: {exc}")
            status, payload, media = error.status, error.body(), _JSON
        finally:
            generation.inflight -= 1
        response_headers = [(b"content-type", media), (b"content-length", str(len(payload)).encode()),
                            *generation.header]
        if headers:
            response_headers += headers
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    async def _body(self, receive, length: bytes | None) -> bytes:
        limit = self.limit
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise PayloadError(f"Content-Length {length!r} is not a number") from None
            if declared > limit:
                raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit} bytes (--max-body-bytes)")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the body is over the limit of {limit} bytes (--max-body-bytes)")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if not size:
            raise PayloadError("the request body is empty; send a JSON, CSV, Parquet or Arrow body")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _score(self, generation: Generation, kind: str, body: bytes) -> tuple[int, bytes, bytes]:
        model, loop = generation.model, asyncio.get_running_loop()
        fast, batcher = model.fast, generation.batcher
        if fast is None or batcher is None:  # a model without the fast path has no batcher either
            content, status, media = await loop.run_in_executor(self.executor, model.invoke_general, kind, body)
            return status, content, media.encode()
        if kind == "json" and len(body) <= _INLINE_DECODE_BYTES:
            matrix = model.decode_fast(decode_json(body))
        elif kind == "json":
            matrix = await loop.run_in_executor(self.executor, lambda: model.decode_fast(decode_json(body)))
        else:
            matrix = await loop.run_in_executor(
                self.executor, lambda: table_to_matrix(read_table(kind, body), fast, kind))
        if matrix.shape[0] == 0:
            return 200, b'{"predictions":[]}', _JSON
        try:
            output = await batcher.submit(matrix)
        except Exception as exc:
            raise PayloadError(f"the model failed on this input: {type(exc).__name__}: {exc}") from None
        return 200, encode_predictions(output), _JSON

    async def _invocations_fallback(self, request: Request) -> Response:  # pragma: no cover - routed above
        return Response(status_code=404)

    # -- other routes -----------------------------------------------------------------------------
    async def _ping(self, request: Request) -> Response:
        return Response(b"\n", media_type="application/json")

    async def _version(self, request: Request) -> Response:
        """MLflow's version (its protocol); for a registered model, JSON naming the version serving now."""
        from mlflow.version import VERSION

        generation = self.active
        if generation.version is None:
            return Response(VERSION, media_type="application/json")
        return Response(orjson.dumps({
            "model_name": generation.name, "model_version": generation.version, "model_uri": self.config.model_uri,
            "model_id": generation.model.describe()["model_id"], "mlflow_version": VERSION, "swaps": self.swaps,
        }), media_type="application/json")

    async def _metadata(self, request: Request) -> Response:
        generation = self.active
        doc = dict(self.description, uptime_s=round(time.time() - self.started, 3))
        if generation is not self.first:  # --follow swapped: describe the model serving now
            doc.update(generation.model.describe())
        doc.update(model_name=generation.name, model_version=generation.version, swaps=self.swaps)
        doc["batching"] = dict(doc["batching"], model_calls=generation.model_calls)
        if generation.batcher is not None:
            doc.update(requests=generation.batcher.requests, batches=generation.batcher.batches,
                       rows=generation.batcher.rows)
        return Response(orjson.dumps(doc), media_type="application/json")

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette):
        os.environ["_MLFLOW_IS_IN_SERVING_ENVIRONMENT"] = "true"
        self.active.start(self.config, self.executor)
        follower = asyncio.get_running_loop().create_task(follow(self, self.config.follow_interval_s)) \
            if self.config.follow else None
        # Everything loaded so far (mlflow, pandas, the model) lives as long as the server: keep it
        # out of the collector, whose full passes over it otherwise stall requests for ~200 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            await self.active.retire()  # in-flight requests get their answers
            self.executor.shutdown(wait=True)


def build_app(model: ServedModel, config: ServeConfig) -> ScoringApp:
    """An ASGI app serving ``model`` with ``config``'s limits and batching."""
    return ScoringApp(model, config)


def create_app() -> ScoringApp:
    """uvicorn factory for worker processes: options come from ``$SPARKML_OPS_SERVE_CONFIG``."""
    config = ServeConfig.from_env()
    return build_app(ServedModel(config.model_path, fast_path=config.fast_path), config)
