"""Request-body limit in front of MLflow's app: oversized REST bodies get 413, not memory.

MLflow's Flask handlers read a whole JSON body into memory before validating it. This ASGI
wrapper refuses a body larger than the limit before any handler sees it — by its
``Content-Length`` at once, or by counting a streamed body as it arrives. Artifact uploads
(``PUT .../mlflow-artifacts/artifacts/...``) stream to the Delta tables with bounded memory
and are not limited.
"""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]

STREAMED_UPLOAD_MARKER = "/mlflow-artifacts/artifacts/"


class BodyLimit:
    """ASGI middleware: bodies over ``max_bytes`` answer 413 with MLflow's JSON error shape."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._exempt(scope):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await self._refuse(send, length)
            return
        received = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(received)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge as exc:
            if not started:
                await self._refuse(send, exc.size)

    def _exempt(self, scope: Scope) -> bool:
        return scope.get("method") == "PUT" and STREAMED_UPLOAD_MARKER in scope.get("path", "")

    async def _refuse(self, send: Any, size: int) -> None:
        body = json.dumps({
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": f"request body of {size} bytes is larger than the server's limit of {self.max_bytes} "
                       "bytes; send smaller batches (artifact uploads are not limited)",
        }).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
