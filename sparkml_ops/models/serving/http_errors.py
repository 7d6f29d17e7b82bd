"""Request errors with their HTTP status, serialised the way MLflow's scoring server does.

Every problem with a request is one of these, raised while decoding, so the app turns it
into a 4xx with a message naming the field or column — never a 500.
"""

from __future__ import annotations

import orjson

from sparkml_ops.errors import BadInput


class RequestError(BadInput):
    """A request the server cannot score; ``status`` is the HTTP status to answer with."""

    status = 400
    code = "BAD_REQUEST"

    def body(self) -> bytes:
        """MLflow's error body: ``{"error_code": ..., "message": ...}``."""
        return orjson.dumps({"error_code": self.code, "message": self.message})


class PayloadError(RequestError):
    """The body does not decode, or does not match the model signature."""


class PayloadTooLarge(RequestError):
    status = 413
    code = "REQUEST_LIMIT_EXCEEDED"


class UnsupportedMediaType(RequestError):
    status = 415
    code = "BAD_REQUEST"
