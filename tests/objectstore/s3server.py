"""moto's S3 server on 127.0.0.1, as a process the tests start: ``python s3server.py``.

Prints ``port <n>`` once it listens on a free port. Real S3 checks a conditional write
(``If-None-Match: *``, ``If-Match``) and stores the object in one atomic step; moto's
threaded server checks, then stores, so two racing writers could both pass the check. The
wrapper below makes each conditional PUT atomic, as S3 specifies; everything else (reads,
listings, plain PUTs) is served concurrently, untouched. ``GET /_s3server/stats`` answers
how many conditional PUTs it served and how many of them failed their precondition (412).
``python s3server.py 30`` adds 30 ms to every request, as a distant object store would (for
measuring what round trips cost; the tests run without it).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


class AtomicConditionalPuts:
    """WSGI wrapper: conditional PUTs run one at a time (check and store under one lock)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], latency_s: float = 0.0) -> None:
        self.app = app
        self.latency_s = latency_s  # added to every request: a far-away object store's round trip
        self.lock = threading.Lock()
        self.stats = {"conditional_puts": 0, "precondition_failed": 0}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/_s3server/stats":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(self.stats).encode()]
        if self.latency_s:
            time.sleep(self.latency_s)
        conditional = environ.get("REQUEST_METHOD") == "PUT" and (
            "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ)
        if not conditional:
            return self.app(environ, start_response)

        def counting_start_response(status: str, *args: Any) -> Any:
            self.stats["precondition_failed"] += status.startswith("412")
            return start_response(status, *args)

        with self.lock:
            self.stats["conditional_puts"] += 1
            return list(self.app(environ, counting_start_response))


def main() -> None:
    latency_s = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0.0  # optional: latency in ms
    app = AtomicConditionalPuts(DomainDispatcherApplication(create_backend_app), latency_s)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"port {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
