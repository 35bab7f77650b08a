"""Data contracts: each action's JSON Schema for its flow input, compiled once and checked per plan."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .catalog import Action
from .errors import FieldError, pointer

_compiled: dict[tuple[str, int], Any] = {}


def _validator(action: Action) -> Any:
    # fastjsonschema turns a schema into Python code: ~4 µs a check here, against ~50 µs interpreting it.
    key = (action.id, action.version)
    fn = _compiled.get(key)
    if fn is None:
        import fastjsonschema

        fn = _compiled[key] = fastjsonschema.compile(action.dataContract)
    return fn


def violations(action: Action, parameters: Mapping[str, Any]) -> list[FieldError]:
    """What is wrong with `parameters` for this action's contract, as pointers into the parameters."""
    import fastjsonschema

    try:
        _validator(action)(dict(parameters))
    except fastjsonschema.JsonSchemaValueException as exc:
        path = list((exc.path or [])[1:])
        return [FieldError(pointer("parameters", *path), exc.message.replace("data.", "", 1).replace("data ", ""))]
    return []


def properties(action: Action) -> tuple[str, ...]:
    return tuple(action.dataContract.get("properties", {}))


def missing(action: Action, attributes: Mapping[str, Any]) -> list[str]:
    """Required contract fields the attributes do not supply (after the action's parameter map)."""
    mapped = action.parameterMap or {}
    return [name for name in action.required_fields()
            if attributes.get(mapped.get(name, name)) in (None, "", [])]
