"""Errors the domain and services raise; the HTTP layer maps each to one RFC 9457 problem."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable


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


class InvalidInput(ProblemError):
    """The body parsed but its content is wrong: every bad field is named."""

    status = 422
    title = "Invalid input"


class MalformedBody(ProblemError):
    status = 400
    title = "Malformed request body"


class NotFound(ProblemError):
    status = 404
    title = "Not found"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


def pointer(*parts: Any) -> str:
    """JSON Pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def from_pydantic(exc: Any, prefix: tuple = ()) -> list[FieldError]:
    """Field errors from a pydantic ValidationError, each pointing at its place in the body."""
    out = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(err["loc"])
        # Unions report each branch ("float", "KpiImpact"); the pointer should name the field only.
        loc = tuple(p for p in loc if p not in _UNION_TAGS)
        out.append(FieldError(pointer(*loc), err["msg"]))
    # One field can fail several union branches; keep one line per pointer and message.
    seen, unique = set(), []
    for e in out:
        if (e.pointer, e.detail) not in seen:
            seen.add((e.pointer, e.detail))
            unique.append(e)
    return unique


# Names pydantic puts in a location for union branches of our models, not fields of the body.
_UNION_TAGS = frozenset({"constrained-float", "float", "KpiImpact", "typed-dict"})
