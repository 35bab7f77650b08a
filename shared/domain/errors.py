"""Errors the domain and services raise; the HTTP layer maps each to one RFC 9457 problem."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field: a JSON Pointer into the body, `?name` for a query parameter, `header:Name` for a header."""

    pointer: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        if self.pointer.startswith("?"):
            return {"parameter": self.pointer[1:], "detail": self.detail}
        if self.pointer.startswith("header:"):
            return {"header": self.pointer[7:], "detail": self.detail}
        return {"pointer": self.pointer, "detail": self.detail}


class ProblemError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: Iterable[FieldError] = (), **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.extra = extra

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the problem carries besides its body."""
        return {}


class InvalidInput(ProblemError):
    """The body parsed but its content is wrong: every bad field is named."""

    status = 422
    title = "Invalid input"


class MalformedBody(ProblemError):
    status = 400
    title = "Malformed request body"


class MalformedHeader(ProblemError):
    """A header the app reads (the Easy Auth principal) that does not parse: named as `header:Name`."""

    status = 400
    title = "Malformed request header"


class NotFound(ProblemError):
    status = 404
    title = "Not found"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class Unauthorized(ProblemError):
    """No credentials, or credentials (an API key, a signed token) that do not verify."""

    status = 401
    title = "Unauthorized"


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class Gone(ProblemError):
    status = 410
    title = "Gone"


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(ProblemError):
    status = 415
    title = "Unsupported media type"


class Unavailable(ProblemError):
    """A part the app needs (the store, the bus) refused the connection, did not answer within its timeout, or
    kept failing after its retries: 503, and the client may try again after `retry_after` seconds."""

    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, retry_after: float = 5, errors: Iterable[FieldError] = (), **extra: Any):
        super().__init__(detail, errors, **extra)
        self.retry_after = max(1, math.ceil(retry_after))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def pointer(*parts: Any) -> str:
    """JSON Pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)

