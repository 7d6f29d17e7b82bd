"""Run a generator on a helper thread with a bounded queue, so I/O and hashing overlap.

The queue bound is the memory bound: at most ``depth`` items (chunks) wait at a time.
sha256 releases the GIL on large buffers, so producer and consumer really run in parallel.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterator[T], depth: int = 3) -> Iterator[T]:
    """Yield ``items`` produced ahead on a thread; a producer error is raised here."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            slots.put(_Failure(exc))

    thread = threading.Thread(target=produce, name="sparkml_ops-blob-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class BackgroundHasher:
    """sha256 of a sequence of buffers, computed on a helper thread (a second core).

    At most ``depth`` buffers wait, so memory stays bounded; ``hexdigest`` waits for the rest.
    """

    def __init__(self, depth: int = 3) -> None:
        self._pending: queue.Queue = queue.Queue(maxsize=depth)
        self._hasher = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, name="sparkml_ops-blob-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data = self._pending.get()
            if data is _DONE:
                return
            self._hasher.update(data)

    def update(self, data: object) -> None:
        self._pending.put(data)

    def hexdigest(self) -> str:
        self.close()
        return self._hasher.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._pending.put(_DONE)
            self._thread.join()
