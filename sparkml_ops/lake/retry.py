"""One retry policy for Delta I/O: whether an error is worth retrying is decided by its type.

Transient: another writer committed first — delta-rs's ``CommitFailedError`` or our own
:class:`~sparkml_ops.errors.CommitConflict`. Retrying (after re-reading the table) is safe.
Terminal: everything else delta-rs or the file system raises — ``DeltaProtocolError`` (a
table needs a reader or writer feature we lack), ``SchemaMismatchError``,
``TableNotFoundError``, a plain ``DeltaError`` or ``OSError`` (I/O, permissions, a corrupt
log). Retrying those only delays the error, so they surface at once as
:class:`~sparkml_ops.errors.StorageError` naming what was being done. Every module of the
lake that commits goes through :func:`retry`; none matches error text.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from deltalake.exceptions import CommitFailedError, DeltaError

from sparkml_ops.errors import CommitConflict, SparkmlOpsError, StorageError

T = TypeVar("T")
_log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
TRANSIENT: tuple[type[BaseException], ...] = (CommitFailedError, CommitConflict)
DELTA_IO: tuple[type[BaseException], ...] = (DeltaError, OSError, CommitConflict)  # what retry() looks at


def is_transient(exc: BaseException) -> bool:
    """True for a lost commit race (retry), False for a protocol, schema, missing-table or I/O error."""
    return isinstance(exc, TRANSIENT)


def is_relisted(exc: BaseException) -> bool:
    """For readers: a data file vanished between listing and reading it (compaction, gc), or a
    commit race — listing the table again fixes both."""
    return isinstance(exc, FileNotFoundError) or is_transient(exc)


def backoff(attempt: int, *, base_s: float = 0.005, cap_s: float = 1.0) -> None:
    """Sleep ``base_s * 2**attempt`` (at most ``cap_s``), jittered so racing writers spread out."""
    time.sleep(min(cap_s, base_s * 2 ** min(attempt, 30)) * (0.5 + random.random()))


def terminal(exc: BaseException, what: str) -> SparkmlOpsError:
    """``exc`` as our error: our own errors unchanged, a delta-rs or OS error as StorageError."""
    if isinstance(exc, SparkmlOpsError):
        return exc
    return StorageError(f"cannot {what}: {type(exc).__name__}: {exc}")


def retry(
    action: Callable[[], T],
    *,
    what: str,
    attempts: int = MAX_ATTEMPTS,
    settled: Callable[[BaseException], bool] | None = None,
    transient: Callable[[BaseException], bool] = is_transient,
    base_s: float = 0.005,
    cap_s: float = 1.0,
) -> T | None:
    """Run ``action`` until it returns, retrying transient errors with backoff.

    ``what`` completes "cannot ..." in the error raised for a terminal error, or for a transient
    one still failing after ``attempts``. ``settled(exc)``, called on every delta-rs or OS error
    before it is classified, drops stale handles and answers whether the work is done anyway
    (an idempotent commit that landed before the error, a table another process created): then
    ``retry`` returns None. ``transient`` widens what is retried for a reader: a data file
    listed and then rewritten by compaction (``FileNotFoundError``) is worth listing again.
    Errors that are neither ours nor delta-rs's nor the OS's propagate.
    """
    for attempt in range(attempts):
        try:
            return action()
        except Exception as exc:
            ours = isinstance(exc, SparkmlOpsError)
            if (ours and not isinstance(exc, CommitConflict)) or not isinstance(exc, DELTA_IO):
                raise
            if settled is not None and settled(exc):
                return None
            if not transient(exc) or attempt == attempts - 1:
                if ours:
                    raise
                raise terminal(exc, what) from exc
            _log.debug("%s: %s (attempt %d); retrying", what, exc, attempt + 1)
        backoff(attempt, base_s=base_s, cap_s=cap_s)
    raise StorageError(f"cannot {what}: no attempt was made (attempts={attempts})")
