"""Personal data kept out of logs, audit entries and cards.

Two nets: fields a data contract marks `x-pii` are masked by name wherever a record is shown, and any
free text (a flow's message, a reason, a log line) has e-mail addresses, IBANs and phone numbers
replaced, since a flow may quote them back ("escalated LD-1 to ana@contoso.com"). The flow calls
themselves get the real values: executing the action is the step that needs them.

What is *not* replaced, because operators need it and it names no person: URLs (host, port, path),
IPv4/IPv6 addresses, ISO-8601 dates and times, epoch seconds and milliseconds, amounts, GUIDs and
business ids such as `INV-2026-000123`. Where a string could be either, the choice is made per pattern
below and says why.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

MASK = "***"

# E-mail: any letters (IDN: `jöhn@exämple.de`, `用户@例子.广告`), plus-addressing, a dotted domain whose
# last label is letters or punycode. `=`, `?`, `&` and `/` are not local-part characters here, so a link's
# query keeps its shape (`?to=[email]`) and a path such as `/@team` is no address.
_EMAIL = re.compile(r"[\w.%+\-]+@(?:[\w\-]+\.)+(?:[^\W\d_]{2,63}|xn--[\w\-]{2,59})\b")

# IBAN: country, check digits, then exactly that country's BBAN length, compact or in groups of four, any
# case ("de89 3704 0044 0532 0130 00"); check digits 02-98 (00, 01 and 99 never occur). Being exact about
# the length keeps the next word out ("BE68 5390 0754 7034 Brussels") and ids of other lengths in. The
# checksum (mod 97) is deliberately not required: a mistyped IBAN still points at an account, and an id
# of exactly an IBAN's shape (an IBAN country, two digits, that country's length: DE + 20) is rare next
# to IBANs quoted in text.
_IBAN = re.compile(r"\b([A-Za-z]{2})(\d{2})(?=[ \u00a0]?[A-Za-z0-9]{4})")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


@cache  # compiled on first use: 24 lengths at ~0.25 ms each would add 6 ms to every cold start
def _bban(size: int) -> re.Pattern:
    """The rest of an IBAN of `size` characters: groups of four, each after an optional space, then the last few."""
    groups, rest = divmod(size - 4, 4)
    tail = rf"[ \u00a0]?[A-Za-z0-9]{{{rest}}}" if rest else ""
    return re.compile(rf"(?:[ \u00a0]?[A-Za-z0-9]{{4}}){{{groups}}}{tail}(?![A-Za-z0-9])")

# Phone candidates: a run of digits and the separators people write (space, - . / parentheses), led by
# +, ( or a digit. Not inside a word or an id (`INV-2026-000123`, a GUID's groups), a path (`/api/1234567`),
# a decimal or an IP address (`10.0.0.12`), or before `:digit` (a time, a port) or `.digit`.
_PHONE = re.compile(r"(?<![\w\-/+(])(?<!\d[.:])\(?\+?\(?\d[\d \u00a0\-./()]{5,24}\d(?![\w\-]|[./:]\d)")
# Dates are the commonest digit runs with separators: 2026-11-19, 19.11.2026, 11/19/2026.
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_DECIMAL = re.compile(r"\d+[.,]\d+")
# North American numbers carry no trunk 0: (415) 555-0100, 415-555-0100, 1-415-555-0100.
_NANP = re.compile(r"(?:1[ .\-])?\(?[2-9]\d{2}\)?[ .\-]?[2-9]\d{2}[ .\-]\d{4}")
_NOT_DIGIT = re.compile(r"\D")
_PIECE = re.compile(r"[^ \u00a0]+")

# Cheap pre-check, run on every log line and free text: an address needs "@", and an IBAN or a phone
# number three digits with at most one other character between each ("+33 1 23 45 67 89" has no \d{3}).
# `"@" in` plus this regex take 0.5 µs on a 33-character sentence here, one regex `@|\d\D?\d\D?\d` 1.0 µs.
_DIGITS = re.compile(r"\d\D?\d\D?\d")


def scrub(text: str) -> str:
    """Free text with e-mail addresses, IBANs and phone numbers replaced by a placeholder."""
    if len(text) < 7:  # nothing shorter than 7 characters is any of the three
        return text
    at = "@" in text
    if not at and not _DIGITS.search(text):
        return text
    if at:
        text = _EMAIL.sub("[email]", text)
    text = _ibans(text)
    return _PHONE.sub(_phone, text)


def _ibans(text: str) -> str:
    """`text` with each IBAN replaced: a known country, check digits 02-98, exactly that country's length."""
    out, done = [], 0
    for m in _IBAN.finditer(text):
        size = _IBAN_LENGTHS.get(m.group(1).upper())
        if size is None or m.start() < done or not 2 <= int(m.group(2)) <= 98:
            continue
        bban = _bban(size).match(text, m.end())
        if bban is not None:
            out += [text[done:m.start()], "[iban]"]
            done = bban.end()
    return "".join(out) + text[done:] if out else text


def _phone(m: re.Match) -> str:
    """A phone candidate replaced when it is one, or the phone numbers within it."""
    found = m.group()
    if _is_phone(found):
        # "(+49 89 1234567)": the bracket opened before the number stays, as its closing one does.
        return "([phone]" if found[0] == "(" and found.count("(") > found.count(")") else "[phone]"
    if " " not in found and "\u00a0" not in found:
        return found
    # A run that is no number as a whole may hold one next to others: "089/1234567 2026-11-19",
    # "call 089/1234567 089/7654321". Longest phone first from each space-separated piece.
    pieces = [p.span() for p in _PIECE.finditer(found)]
    out, done, i = [], 0, 0
    while i < len(pieces):
        for j in range(len(pieces), i, -1):
            start, end = pieces[i][0], pieces[j - 1][1]
            if _is_phone(found[start:end]):
                out += [found[done:start], "[phone]"]
                done, i = end, j
                break
        else:
            i += 1
    return "".join(out) + found[done:] if out else found


def _is_phone(text: str) -> bool:
    """A phone number by its shape: international (+, 00), national with its trunk 0, or North American.

    Digit runs led by 1-9 without a + (amounts "1 234 567", epochs "1763541000", IPs, years) are not, so a
    national number written without its 0 survives; a bare run led by one 0 is taken for one ("0891234567"),
    so a zero-padded id of 8-13 digits led by a single 0 ("0100001234") is eaten: exports carry bare
    numbers far more often than zero-padded ids in free text.
    """
    core = text.lstrip("(")
    if core[0] not in "+0" and not _NANP.fullmatch(text[1:] if text.startswith("((") else text):
        return False
    if _DATE.fullmatch(core) or _DECIMAL.fullmatch(core):
        return False
    digits = len(text) - len(_NOT_DIGIT.findall(text))
    if core[0] == "+":
        return core.lstrip("+(")[:1] != "0" and 8 <= digits <= 15  # E.164: at most 15 digits
    if core.startswith("00"):
        return core[2:3] not in ("0", "") and 10 <= digits <= 17  # 00 + an E.164 number
    return 8 <= digits <= 13 if core[0] == "0" else True


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
