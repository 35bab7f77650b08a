"""What the miner-specific normalizers share: query names, coercions, and errors pointed at the sender's body."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, get_args, get_origin

import msgspec

from ..domain.errors import FieldError, InvalidInput, pointer
from ..domain.findings import Finding, instant
from .generic import struct_errors, validate_findings


@dataclass
class Normalized:
    """The findings of one request, and how many reported items were not deviations (rated OK)."""

    findings: list[Finding]
    skipped: int = 0


def query_name(params: Mapping[str, str], key: str, errors: list[FieldError]) -> str | None:
    """A name from the query string (1 to 100 characters), None when absent; a bad one is added to errors."""
    value = params.get(key)
    if value is not None and not (0 < len(value.strip()) <= 100):
        errors.append(FieldError(f"?{key}", "must be 1 to 100 characters and not blank"))
        return None
    return None if value is None else value.strip()


def number(value: Any) -> float | None:
    """A finite float from a number or numeric text ('' and None give None); ValueError otherwise."""
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"expected a finite number, got {value!r}")
    return result


def shown(value: Any, most: int = 60) -> str:
    """A sent value as an error message quotes it: its repr, cut to `most` characters (a 4 MB cell is no message)."""
    text = repr(value)
    return text if len(text) <= most else text[:most - 3] + "..."


def iso(value: datetime | int | float | None) -> str | None:
    """UTC ISO-8601 text of a datetime (naive = UTC) or of epoch seconds/milliseconds."""
    return None if value is None else instant(value).isoformat().replace("+00:00", "Z")


def when(text: str) -> datetime:
    """A UTC datetime from ISO-8601 text (also `YYYY-MM-DD HH:MM:SS`) or epoch seconds/milliseconds digits."""
    if text.replace(".", "", 1).isdecimal():
        return instant(float(text) if "." in text else int(text))
    return instant(datetime.fromisoformat(text))


def shape_errors(item: Any, typ: type, at: tuple = ()) -> list[FieldError]:
    """Every bad field of item against a Struct, inside nested Structs and lists of them too; extra keys are fine."""
    errors = [e for e in struct_errors(item, typ, at) if e.detail != "unknown field"]
    for f in msgspec.structs.fields(typ) if isinstance(item, dict) else ():
        inner, many = _struct_of(f.type)
        value = item.get(f.encode_name)
        if inner is None or not isinstance(value, list if many else dict):
            continue
        # msgspec names only the first problem inside a nested value; name them all instead.
        inside = [e for k, v in (enumerate(value) if many else [(None, value)])
                  for e in shape_errors(v, inner, (*at, f.encode_name) if k is None else (*at, f.encode_name, k))]
        base = pointer(*at, f.encode_name)
        if inside:
            errors = [e for e in errors if e.pointer != base and not e.pointer.startswith(base + "/")] + inside
    return errors


def validated(items: list[dict], origins: list[dict[str, tuple]],
              reject: Callable[[list[FieldError]], InvalidInput], strict: bool = False) -> list[Finding]:
    """validate_findings, with each error re-pointed at the part of the sender's body the field came from."""
    try:
        return validate_findings(items, strict)
    except InvalidInput as exc:
        raise reject([_repoint(e, origins) for e in exc.errors]) from None


def _repoint(error: FieldError, origins: list[dict[str, tuple]]) -> FieldError:
    parts = error.pointer.split("/")[1:]
    if not parts or not parts[0].isdecimal():
        return error
    origin, field = origins[int(parts[0])], "/".join(parts[1:])
    at = origin.get("/".join(parts[1:3])) or origin.get(field.split("/")[0]) or origin[""]
    return FieldError(pointer(*at), f"{error.detail} (as the finding's {field})" if field else error.detail)


def _struct_of(tp: Any) -> tuple[type | None, bool]:
    tp = get_args(tp)[0] if get_origin(tp) is Annotated else tp
    many = get_origin(tp) is list
    tp = get_args(tp)[0] if many else tp
    return (tp, many) if isinstance(tp, type) and issubclass(tp, msgspec.Struct) else (None, False)
