"""The Opportunity: one deviation on one case, scored, deduplicated and tracked through its lifecycle."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import sha256
from typing import Any

from .aliases import Aliases
from .catalog import Catalog
from .findings import MAX_ATTRIBUTES_CHARS, MAX_EXTENSIONS_BYTES, Finding, KpiImpact, Signal, instant
from .kpi import expectations
from .pii import scrub
from .policy import Measurement, ScoringPolicy
from .scoring import NO_CALIBRATION, Calibrations, Scores, calibrated, score, scorer
from .status import Status, check_transition

# Enough to recognise redeliveries of recent events without growing the record without bound.
MAX_EVENT_IDS = 50
MAX_HISTORY = 100
# The root cause rendered from signals is read by people and by consumers of the text field: as long as a
# text rootCause may be (findings.Text).
MAX_ROOT_CAUSE = 2000


@lru_cache(maxsize=4096)
def group_key(process_area: str, pattern: str) -> str:
    """Stable 8-hex key of processArea + deviationPattern: the storage partition of its opportunities."""
    text = f"{process_area.strip().casefold()}\x1f{pattern.strip().casefold()}"
    return sha256(text.encode()).hexdigest()[:8]


def opportunity_id(process_area: str, pattern: str, case_key: str) -> str:
    """Source-neutral id: the same case + pattern from Celonis or Process Mining is one opportunity.

    8 hex of the group (processArea + pattern, case-insensitive) then 24 of the case key, so a store
    can find the partition from the id alone.
    """
    return group_key(process_area, pattern) + sha256(case_key.strip().encode()).hexdigest()[:24]


def partition_of(opportunity_id_: str) -> str:
    return opportunity_id_[:8]


@dataclass(slots=True)
class Opportunity:
    id: str
    source: str
    sourceEventIds: list[str]
    processArea: str
    deviationPattern: str
    caseKey: str
    detectedAt: datetime
    lastDetectedAt: datetime
    attributes: dict[str, Any]
    kpiImpact: float | None
    rootCause: str | None
    recommendedAction: str | None
    severity: str | None
    complianceFlags: list[str]
    scores: Scores
    rationale: str
    status: Status
    occurrences: int
    revision: int
    createdAt: datetime
    updatedAt: datetime
    owner: str | None = None
    notes: str | None = None
    cohort: str | None = None
    correlationId: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    # The draw triage made for the experiment: {"actionId", "version", "at"} (domain/impact.py reads it).
    arm: dict[str, Any] | None = None
    # Expected KPI movements as reported: [{"metric", "reported"?, "estimate", "unit", "direction", "change"}].
    kpis: list[dict[str, Any]] = field(default_factory=list)
    # Root-cause signals: [{"name", "value", "share"?, "weight"?}] (a text rootCause stays in `rootCause`).
    signals: list[dict[str, Any]] = field(default_factory=list)
    # Fields the app does not know, kept as the sender sent them.
    extensions: dict[str, Any] = field(default_factory=dict)
    # The names as the miner reported them, where an alias (catalog/aliases.json) changed them.
    reported: dict[str, str] | None = None
    # Findings on this case within policy.echoWindowHours after the agent acted: the miner's stale view.
    echoes: int = 0
    # When the deviation came back after that window on a verified case (ISO times, newest last, bounded).
    recurrences: list[str] = field(default_factory=list)
    # A person's estimate of the work (hours); None: the candidate action's catalog estimate stands.
    effortHours: float | None = None
    # Identifying attributes a person supplied (review provide, enrichment): attribute -> their principal id.
    # A plan using one needs another person's approval (domain/identifying.py).
    supplied: dict[str, str] = field(default_factory=dict)
    # Store concurrency token; never part of the domain's decisions.
    etag: str | None = None

    @property
    def group(self) -> str:
        return partition_of(self.id)

    def explained(self) -> str:
        """The stored rationale, or the one rendered from the current score's terms."""
        return self.rationale or self.scores.rationale()

    def transition(self, target: Status, actor: str, reason: str, at: datetime) -> Opportunity:
        """A copy in `target` status with the move recorded; raises IllegalTransition if not allowed.

        The reason is free text (a dismiss reason, a flow's message) and the history is shown to anyone
        who reads the opportunity: it is scrubbed here, so no caller can store it raw."""
        check_transition(self.status, target)
        entry = {"from": self.status.value, "to": target.value, "at": at.isoformat(), "actor": actor,
                 "reason": scrub(reason)}
        return replace(self, status=target, revision=self.revision + 1, updatedAt=at,
                       history=([*self.history, entry])[-MAX_HISTORY:])


def rescore(opp: Opportunity, catalog: Catalog, policy: ScoringPolicy,
            calibrations: Calibrations = NO_CALIBRATION) -> Opportunity:
    """The opportunity scored afresh (its reported impact calibrated by what was measured, when given)."""
    scores = score(opp.processArea, opp.deviationPattern, opp.attributes, opp.kpiImpact, opp.severity,
                   opp.complianceFlags, catalog, policy)
    if opp.kpis:
        scores.expecting(opp.kpis)
    calibrated(scores, calibrations, opp.processArea, opp.deviationPattern, opp.kpis)
    return replace(opp, scores=scores, rationale="")


def _share(value: float) -> str:
    return f"{value * 100:.0f}%"


def signal_records(signals: Sequence[Signal]) -> tuple[list[dict[str, Any]], str]:
    """(the opportunity's `signals`, the rootCause text told from them: "vendor=V300 (34%); plant=1010").
    Text values are scrubbed of personal data; names are identifiers (checked at ingest)."""
    records: list[dict[str, Any]] = []
    parts: list[str] = []
    for s in signals:
        value = scrub(s.value) if isinstance(s.value, str) else s.value
        record: dict[str, Any] = {"name": s.name, "value": value}
        if s.share is not None:
            record["share"] = s.share
        if s.weight is not None:
            record["weight"] = s.weight
        records.append(record)
        shown = s.name if value is None else f"{s.name}={str(value).lower() if isinstance(value, bool) else value}"
        if s.share is not None:
            shown += f" ({_share(s.share)})"
        elif s.weight is not None:
            shown += f" (weight {s.weight:g})"
        parts.append(shown)
    text = "; ".join(parts)
    return records, text if len(text) <= MAX_ROOT_CAUSE else text[:MAX_ROOT_CAUSE - 1] + "…"


def from_findings(findings: Sequence[Finding], catalog: Catalog, policy: ScoringPolicy, now: datetime,
                  correlation_id: str | None = None, aliases: Aliases | None = None,
                  measurement: Measurement | None = None,
                  calibrations: Calibrations = NO_CALIBRATION) -> list[Opportunity]:
    """New Opportunities from validated findings, scored (a reported impact calibrated: scoring.Calibrations). This is
    the ingest hot path (~10 µs a finding here, where a call costs ~0.3 µs), so lookups are hoisted, the record is
    built positionally, and its history starts empty: creation is told by createdAt and source. The miner's free text
    (rootCause, recommendedAction, signal values) is scrubbed; attribute values are kept, since the flows need them.
    A named KPI (kpiImpact `metric`) is mapped through `aliases` (none: kept as sent) and its direction read from
    `measurement`'s metric conventions (none: by sign, else an increase); see domain/kpi.py."""
    score_one = scorer(catalog, policy)
    new, utc_zone, kpi_type = Status.new, UTC, KpiImpact
    out = []
    for f in findings:
        area, pattern, case = f.processArea, f.deviationPattern, f.caseKey
        attributes, flags, severity = f.attributes, f.complianceFlags, f.severity
        kpi = f.kpiImpact
        kpis = None
        if kpi is None:
            impact = None
        elif kpi.__class__ is kpi_type and kpi.metric is None:
            impact = kpi.money()
        elif kpi.__class__ is kpi_type or kpi.__class__ is list:
            # Only a finding that names a KPI pays for this (~3 µs): the bench's findings and most real ones don't.
            kpis, impact = expectations(kpi, aliases, measurement)
        else:
            impact = float(kpi)  # type: ignore[arg-type]
        detected = f.detectedAt
        if detected.__class__ is not datetime or detected.tzinfo is not utc_zone:
            detected = instant(detected)
        sent, action = f.rootCause, f.recommendedAction
        signals = None
        # Most findings carry neither (the samples: 1 in 5 a root cause); scrub() returns clean text at ~0.3 µs.
        if not sent:
            cause = None
        elif isinstance(sent, str):
            cause = scrub(sent)
        else:
            signals, cause = signal_records(sent)
        if action:
            action = scrub(action)
        scores = score_one(area, pattern, attributes, impact, severity, flags)
        # Positional, in field order: id, source, sourceEventIds, processArea, deviationPattern, caseKey,
        # detectedAt, lastDetectedAt, attributes, kpiImpact, rootCause, recommendedAction, severity,
        # complianceFlags, scores, rationale, status, occurrences, revision, createdAt, updatedAt. The rest keep
        # their defaults: passing all 34 positionally measured ~0.3 µs a finding slower than the default factories.
        opp = Opportunity(opportunity_id(area, pattern, case), f.source, [f.eventId], area, pattern, case, detected,
                          detected, attributes, impact, cause, action, severity, flags, scores, "", new, 1, 1,
                          now, now)
        opp.correlationId = correlation_id
        if kpis:
            opp.kpis = kpis
            scores.expecting(kpis)
        if calibrations:  # falsy until a calibration was measured: the hot path pays one truth test
            calibrated(scores, calibrations, area, pattern, kpis or ())
        if signals:
            opp.signals = signals
        extensions = f.extensions
        if extensions:
            opp.extensions = dict(extensions)
        out.append(opp)
    return out


def from_finding(f: Finding, catalog: Catalog, policy: ScoringPolicy, now: datetime,
                 correlation_id: str | None = None, aliases: Aliases | None = None,
                 measurement: Measurement | None = None) -> Opportunity:
    """One new Opportunity from a validated finding."""
    return from_findings([f], catalog, policy, now, correlation_id, aliases, measurement)[0]


def merge(existing: Opportunity, incoming: Opportunity, catalog: Catalog, policy: ScoringPolicy,
          now: datetime, calibrations: Calibrations = NO_CALIBRATION) -> Opportunity | None:
    """Fold a newly seen finding into an existing opportunity; None when it is a redelivery.

    A redelivered event changes nothing. A new event on the same case + pattern counts an occurrence,
    refreshes attributes and impact (latest report wins) and is scored again. Named KPIs: a report naming any
    replaces them; root-cause signals go with the root cause they were told as; extensions are a union (the latest
    wins per name; past MAX_EXTENSIONS_BYTES, the latest report's alone); the names as reported too.
    """
    fresh = [e for e in incoming.sourceEventIds if e not in existing.sourceEventIds]
    if not fresh:
        return None
    attributes = {**existing.attributes, **incoming.attributes}
    if len(json.dumps(attributes, default=str)) > 2 * MAX_ATTRIBUTES_CHARS:
        attributes = incoming.attributes  # the latest report wins over an unbounded union
    extensions = existing.extensions
    if incoming.extensions:
        extensions = {**existing.extensions, **incoming.extensions}
        if len(json.dumps(extensions, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_EXTENSIONS_BYTES:
            extensions = incoming.extensions
    reported = {**(existing.reported or {}), **(incoming.reported or {})} or None
    sources = existing.source if incoming.source in existing.source.split(",") else \
        f"{existing.source},{incoming.source}"
    merged = replace(
        existing,
        source=sources,
        sourceEventIds=(existing.sourceEventIds + fresh)[-MAX_EVENT_IDS:],
        occurrences=existing.occurrences + len(fresh),
        lastDetectedAt=max(existing.lastDetectedAt, incoming.lastDetectedAt),
        detectedAt=min(existing.detectedAt, incoming.detectedAt),
        attributes=attributes,
        kpiImpact=incoming.kpiImpact if incoming.kpiImpact is not None else existing.kpiImpact,
        rootCause=incoming.rootCause or existing.rootCause,
        # A text root cause after signals replaces them too: the text is the latest report of the cause.
        signals=incoming.signals if incoming.rootCause else existing.signals,
        kpis=incoming.kpis or existing.kpis,
        extensions=extensions,
        reported=reported,
        # An attribute the miner now reports is the finding's, no longer one person's word.
        supplied={k: v for k, v in existing.supplied.items() if k not in incoming.attributes},
        recommendedAction=incoming.recommendedAction or existing.recommendedAction,
        severity=incoming.severity or existing.severity,
        complianceFlags=sorted(set(existing.complianceFlags) | set(incoming.complianceFlags)),
        revision=existing.revision + 1,
        updatedAt=now,
    )
    return rescore(merged, catalog, policy, calibrations)
