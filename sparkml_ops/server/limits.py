"""Request-body guard in front of MLflow's app: oversized bodies get 413, non-object JSON 400.

MLflow's Flask handlers read a whole JSON body into memory before validating it. This ASGI
wrapper refuses a body larger than the limit before any handler sees it — by its
``Content-Length`` at once, or by counting a streamed body as it arrives. Artifact uploads
(``PUT .../mlflow-artifacts/artifacts/...``) stream to the Delta tables with bounded memory
and are not limited. A JSON body to the REST API that is not a JSON object (invalid JSON, a
list, a number) is refused with MLflow's 400 error shape: a few of MLflow's handlers would
otherwise fail on it with a 500.
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
        if _is_json_api_write(scope):
            await self._checked_json(scope, receive, send)
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

    async def _checked_json(self, scope: Scope, receive: Any, send: Any) -> None:
        """Read the (bounded) body, refuse anything but a JSON object, then replay it to the app."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, size)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = _not_a_json_object(body)
        if problem is not None:
            await _send_json(send, 400, {"error_code": "INVALID_PARAMETER_VALUE",
                                         "message": f"request body {problem}; send a JSON object"})
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _exempt(self, scope: Scope) -> bool:
        return scope.get("method") == "PUT" and STREAMED_UPLOAD_MARKER in scope.get("path", "")

    async def _refuse(self, send: Any, size: int) -> None:
        await _send_json(send, 413, {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": f"request body of {size} bytes is larger than the server's limit of {self.max_bytes} "
                       "bytes; send smaller batches (artifact uploads are not limited)",
        })


async def _send_json(send: Any, status: int, payload: dict[str, str]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


_JSON_API_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/3.0/mlflow")


def _is_json_api_write(scope: Scope) -> bool:
    if scope.get("method") not in ("POST", "PATCH", "DELETE"):
        return False
    if not scope.get("path", "").startswith(_JSON_API_PREFIXES):
        return False
    content_type = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"")
    return content_type.split(b";")[0].strip().lower() == b"application/json"


def _not_a_json_object(body: bytes) -> str | None:
    """Why ``body`` is not a JSON object, or None when it is one (an empty body is left to MLflow)."""
    if not body.strip():
        return None
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"is not valid JSON ({exc})"
    if not isinstance(value, dict):
        return f"is a JSON {type(value).__name__}, not an object"
    return None


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
