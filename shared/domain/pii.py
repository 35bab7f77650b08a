"""Personal data kept out of logs, audit entries and cards.

Two nets: fields a data contract marks `x-pii` are masked by name wherever a record is shown, and any
free text (a flow's message, a reason, a log line) has e-mail addresses, IBANs and phone numbers
replaced, since a flow may quote them back ("escalated LD-1 to ana@contoso.com"). The flow calls
themselves get the real values: executing the action is the step that needs them.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

MASK = "***"
_PATTERNS = [
    ("[email]", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")),
    # IBAN: country code, check digits, 11-30 alphanumerics, optionally grouped by spaces.
    ("[iban]", re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")),
    # Phone: an international or a long national number; 7+ digits with separators.
    ("[phone]", re.compile(r"(?<![\w.])\+?\(?\d[\d ()\-.]{6,}\d(?![\w.])")),
]
_ANY = re.compile(r"@|\d{3}|[A-Z]{2}\d{2}")  # cheap pre-check: most strings hold none of these


def scrub(text: str) -> str:
    """Free text with e-mail addresses, IBANs and phone numbers replaced by a placeholder."""
    if len(text) < 7 or not _ANY.search(text):  # nothing shorter than 7 characters is any of the three
        return text
    for placeholder, pattern in _PATTERNS:
        if placeholder != "[email]" or "@" in text:
            text = pattern.sub(placeholder, text)
    return text


def redact(value: Any, fields: Iterable[str] = ()) -> Any:
    """A copy of a JSON-like value: `fields` (contract x-pii names) masked, every string scrubbed."""
    masked = frozenset(fields)
    return _redact(value, masked)


def _redact(value: Any, masked: frozenset[str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, dict):
        return {k: MASK if k in masked and v not in (None, "") else _redact(v, masked) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v, masked) for v in value]
    return value


def contract_fields(contract: dict[str, Any]) -> list[str]:
    """The fields a data contract marks as personal data."""
    marked = contract.get("x-pii") or []
    return [f for f in marked if isinstance(f, str)]
