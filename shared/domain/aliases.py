"""Any miner's vocabulary → the catalog's: pattern and process-area aliases per source, KPI metric aliases.

Read from `<catalog dir>/aliases.json` (README "Any miner's vocabulary"). Ingest applies them before an
opportunity's id is computed, so dedupe, scoring and matching see one vocabulary; the name as reported is
kept on the opportunity. Names match case-insensitively and ignoring surrounding blanks; a source's own
table wins over `"*"`, which applies to every source.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ANY_SOURCE = "*"
# Distinct (source, processArea, pattern) triples remembered: a miner sends a handful, but the names are the
# sender's, so the memo is emptied when it reaches this size rather than growing with whatever is sent.
_MEMO_SIZE = 4096


def _key(name: str) -> str:
    return name.strip().casefold()


def _table(doc: Any, where: str) -> dict[str, dict[str, str]]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected an object of sources")
    out: dict[str, dict[str, str]] = {}
    for source, names in doc.items():
        if not isinstance(names, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                  for k, v in names.items()):
            raise ValueError(f"{where}.{source}: expected an object of name → non-blank name")
        out[source] = {_key(k): v.strip() for k, v in names.items()}
    return out


@dataclass(frozen=True)
class Aliases:
    """Alias tables; every lookup returns the name unchanged when no alias is set for it."""

    patterns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    processAreas: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    metrics: Mapping[str, str] = field(default_factory=dict)
    # (source, processArea, pattern) → the catalog's (processArea, pattern), or None when neither changes: `names`
    # fills it; ingest reads it first (a dict get is ~0.1 µs a finding where the method call costs twice that).
    memo: dict[tuple[str, str, str], tuple[str, str] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def renames(self) -> bool:
        """Whether any pattern or process-area alias is set: without one, ingest skips the lookups."""
        return bool(self.patterns or self.processAreas)

    def names(self, source: str, process_area: str, pattern: str) -> tuple[str, str] | None:
        """The catalog's (processArea, deviationPattern) for names as `source` reports them, or None when an
        alias changes neither. Ingest asks once per finding, so the answer is remembered per triple."""
        key = (source, process_area, pattern)
        memo = self.memo
        try:
            return memo[key]
        except KeyError:
            pass
        area, mapped = self.process_area(source, process_area), self.pattern(source, pattern)
        found = None if (area, mapped) == (process_area, pattern) else (area, mapped)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = found
        return found

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Aliases:
        """From the JSON document; ValueError naming the part that is not an alias table."""
        metrics = doc.get("metrics") or {}
        if not isinstance(metrics, dict) or not all(isinstance(v, str) and v.strip() for v in metrics.values()):
            raise ValueError("metrics: expected an object of metric name → metric name")
        return cls(_table(doc.get("patterns"), "patterns"), _table(doc.get("processAreas"), "processAreas"),
                   {_key(k): v.strip() for k, v in metrics.items()})

    def _lookup(self, tables: Mapping[str, Mapping[str, str]], source: str, name: str) -> str:
        if not tables:
            return name
        key = _key(name)
        # A finding merged from several miners carries "celonis,process-mining": its first source names it.
        own = tables.get(source.split(",", 1)[0].strip())
        found = (own.get(key) if own else None) or (tables.get(ANY_SOURCE) or {}).get(key)
        return found or name

    def pattern(self, source: str, name: str) -> str:
        """The catalog's name for a deviation pattern as `source` reports it."""
        return self._lookup(self.patterns, source, name)

    def process_area(self, source: str, name: str) -> str:
        """The catalog's name for a process area as `source` reports it."""
        return self._lookup(self.processAreas, source, name)

    def metric(self, name: str) -> str:
        """The outcome metric (`POST /api/outcomes` vocabulary) a miner's KPI name stands for."""
        return self.metrics.get(_key(name), name) if self.metrics else name
