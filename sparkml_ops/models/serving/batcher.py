"""Micro-batching: concurrent requests share one model call, so throughput grows with load.

Requests queue their input matrix; one task per worker process takes everything queued (up
to ``max_rows``), optionally waits up to ``max_wait`` for more, stacks the matrices, calls
the model once and hands each request its slice of the output. With ``max_wait=0`` an idle
server answers at once, and batches form by themselves while the model is busy. A batch
that fails is retried request by request, so one bad request fails alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import numpy as np

from sparkml_ops.errors import InvalidState


def _rows(output: Any) -> Any:
    """A model output as something with rows: numpy arrays and pandas frames as they are, else an array."""
    return output if hasattr(output, "shape") else np.asarray(output)


class MicroBatcher:
    """Runs ``predict(matrix) -> rows`` (an array or DataFrame, row-aligned) over batches of queued requests."""

    def __init__(self, predict: Callable[[np.ndarray], Any], *, max_rows: int, max_wait_s: float,
                 executor: Executor | None = None) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._max_wait = max_wait_s
        self._executor = executor  # None: call the model on the event loop (cheap models)
        self._queue: deque[tuple[np.ndarray, asyncio.Future, float]] = deque()
        self._queued_rows = 0
        self._wake = asyncio.Event()  # bound to a loop at first use (Python >= 3.10); start() makes fresh ones
        self._full = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self.requests = 0
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sparkml-ops-batcher")

    async def close(self) -> None:
        """Finish every queued request, then stop."""
        self._closing = True
        if self._task is not None:
            self._wake.set()
            self._full.set()  # stop waiting for a batch to fill
            await self._task
            self._task = None

    async def submit(self, matrix: np.ndarray) -> Any:
        """Predictions for ``matrix``'s rows, computed in some batch."""
        if self._task is None or self._task.done():
            raise InvalidState("the batcher is not running: start() it first (or it was closed)")
        future = asyncio.get_running_loop().create_future()
        self.requests += 1
        self._queue.append((matrix, future, time.monotonic()))
        self._queued_rows += matrix.shape[0]
        if self._queued_rows >= self._max_rows:
            self._full.set()
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                if self._max_wait > 0 and self._queued_rows < self._max_rows and not self._closing:
                    await self._fill()
                await self._run_batch(self._take())
            if self._closing:
                return

    async def _fill(self) -> None:
        """Wait until the batch is full or its oldest request has waited ``max_wait``."""
        remaining = self._queue[0][2] + self._max_wait - time.monotonic()
        if remaining > 0:
            self._full.clear()
            try:
                await asyncio.wait_for(self._full.wait(), remaining)
            except (asyncio.TimeoutError, TimeoutError):
                pass

    def _take(self) -> list[tuple[np.ndarray, asyncio.Future, float]]:
        batch: list[tuple[np.ndarray, asyncio.Future, float]] = []
        rows = 0
        while self._queue and (not batch or rows + self._queue[0][0].shape[0] <= self._max_rows):
            item = self._queue.popleft()
            rows += item[0].shape[0]
            batch.append(item)
        self._queued_rows -= rows
        return batch

    async def _call(self, matrix: np.ndarray) -> Any:
        if self._executor is None:
            return self._predict(matrix)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._predict, matrix)

    async def _run_batch(self, batch) -> None:
        live = [item for item in batch if not item[1].done()]  # a client may have gone away
        if not live:
            return
        if len(live) == 1:
            await self._single(live[0])
            return
        matrix = np.concatenate([item[0] for item in live])
        try:
            output = _rows(await self._call(matrix))
        except Exception:
            output = None
        if output is None or not output.shape or output.shape[0] != matrix.shape[0]:
            for item in live:  # fail (or succeed) one by one
                await self._single(item)
            return
        self.batches += 1
        self.rows += matrix.shape[0]
        start = 0
        for rows, future, _ in live:
            end = start + rows.shape[0]
            if not future.done():
                future.set_result(output.iloc[start:end] if hasattr(output, "iloc") else output[start:end])
            start = end

    async def _single(self, item) -> None:
        matrix, future, _ = item
        try:
            output = await self._call(matrix)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        self.batches += 1
        self.rows += matrix.shape[0]
        if not future.done():
            future.set_result(_rows(output))
