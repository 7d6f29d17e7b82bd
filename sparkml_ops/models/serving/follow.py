"""Serving generations: the loaded model and its batcher, swapped without failing a request.

A request takes the current :class:`Generation` once and finishes on it. With ``--follow`` a
background task re-resolves the model URI (``models:/name@alias``) every few seconds; when it
names another registered version, the new model is loaded off the event loop, becomes current
in one assignment, and the old generation drains (its queued requests still get answers from
the old model) before its batcher stops. So no request is dropped or failed by a swap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

from sparkml_ops.models.serving.batcher import MicroBatcher
from sparkml_ops.models.serving.predictor import ServedModel
from sparkml_ops.models.serving.settings import ServeConfig

_log = logging.getLogger(__name__)
INLINE_PREDICT_S = 0.005  # models faster than this per small batch are called on the event loop


def time_predict(model: ServedModel) -> float:
    """Median seconds of one small fast-path call: decides whether it may run on the event loop."""
    import numpy as np

    assert model.fast is not None, "only fast-path models are timed"
    matrix = np.zeros((8, model.fast.width), dtype=model.fast.dtype)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        try:
            model.predict_matrix(matrix)
        except Exception:
            return float("inf")
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@dataclass
class Generation:
    """One loaded model version and the batcher in front of it."""

    model: ServedModel
    name: str | None = None  # registered model name and version, when served from the registry
    version: int | None = None
    digest: str | None = None
    batcher: MicroBatcher | None = None
    model_calls: str | None = None
    inflight: int = field(default=0)

    @property
    def header(self) -> list[tuple[bytes, bytes]]:
        """Response headers naming the version that answered."""
        if self.version is None:
            return []
        return [(b"x-model-version", str(self.version).encode()), (b"x-model-name", (self.name or "").encode())]

    def start(self, config: ServeConfig, executor: Executor, *, inline: bool | None = None) -> None:
        """Start the batcher (on the running loop); ``inline``: measured already, off the loop."""
        if self.model.fast is None:
            return
        if inline is None:
            inline = time_predict(self.model) < INLINE_PREDICT_S
        self.batcher = MicroBatcher(self.model.predict_matrix, max_rows=config.max_batch_rows,
                                    max_wait_s=config.max_wait_ms / 1000.0, executor=None if inline else executor)
        self.batcher.start()
        self.model_calls = "event loop" if inline else "model thread"

    async def retire(self) -> None:
        """Wait for the requests that took this generation, then stop its batcher."""
        while self.inflight:
            await asyncio.sleep(0.005)
        if self.batcher is not None:
            await self.batcher.close()


def _load(config: ServeConfig, current: Generation) -> tuple[Generation, bool | None] | None:
    """Resolve the URI again (in a thread); a loaded new generation if it names another version."""
    from sparkml_ops.models.resolve import resolve_model

    resolved = resolve_model(config.model_uri)
    if (resolved.registered_version, resolved.digest) == (current.version, current.digest):
        return None
    model = ServedModel(resolved.path, fast_path=config.fast_path)
    inline = time_predict(model) < INLINE_PREDICT_S if model.fast is not None else None
    return Generation(model, resolved.registered_name, resolved.registered_version, resolved.digest), inline


async def follow(app, interval_s: float) -> None:
    """Re-resolve ``app.config.model_uri`` every ``interval_s`` and swap to a new version."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            loaded = await asyncio.to_thread(_load, app.config, app.active)
        except Exception as exc:  # the registry or the download failed: keep serving what we have
            _log.warning("sparkml-ops: could not re-resolve %s (still serving version %s): %s",
                         app.config.model_uri, app.active.version, exc)
            continue
        if loaded is None:
            continue
        new, inline = loaded
        new.start(app.config, app.executor, inline=inline)
        old, app.active = app.active, new
        app.swaps += 1
        _log.warning("sparkml-ops: %s now serves %s version %s (was %s)", app.config.model_uri, new.name,
                     new.version, old.version)
        await old.retire()
