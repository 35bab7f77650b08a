"""Any miner's vocabulary: pattern and process-area aliases applied at ingest, the names as reported kept."""
import json

import pytest

from shared.bootstrap import load_aliases
from shared.domain.aliases import Aliases
from shared.domain.cards import md
from shared.domain.opportunity import opportunity_id
from shared.domain.status import Status
from shared.runtime import REPO_CATALOG
from shared.services.ingest import ingest
from shared.services.insights import weekly_review
from tests.factories import finding, memory_services, validated
from tests.factories import run_stages as _run


def _with_repo_aliases():
    svc = memory_services()
    svc.aliases = load_aliases(REPO_CATALOG)
    return svc


def test_every_alias_in_the_repo_names_a_catalog_pattern_or_process_area():
    aliases = load_aliases(REPO_CATALOG)
    actions = [a for a in memory_services().catalog.versions.values() if a.matches is not None]
    patterns = {p for a in actions for p in a.matches.deviationPatterns}
    areas = {a.matches.processArea for a in actions}
    targets = {t for table in aliases.patterns.values() for t in table.values()}
    assert targets and targets <= patterns, targets - patterns
    area_targets = {t for table in aliases.processAreas.values() for t in table.values()}
    assert area_targets and area_targets <= areas, area_targets - areas


def test_a_celonis_pattern_name_is_mapped_so_the_case_is_planned_not_sent_to_review():
    svc = _with_repo_aliases()
    [r] = ingest(svc, validated(finding(source="celonis", deviationPattern="missing-po-number")), "cid").results
    opp = svc.store.get(r.opportunity.id)
    assert opp.deviationPattern == "invoice-missing-po"
    assert opp.reported == {"deviationPattern": "missing-po-number"}
    assert opp.id == opportunity_id("accounts-payable", "invoice-missing-po", opp.caseKey)
    assert opp.scores.actionId == "ap.request-missing-fields"
    _run(svc, "triage", "plan")
    opp = svc.store.get(r.opportunity.id)
    assert opp.status is Status.planned
    assert opp.reported == {"deviationPattern": "missing-po-number"}


def test_without_the_alias_the_same_finding_has_no_catalog_action():
    svc = memory_services()  # no aliases
    [r] = ingest(svc, validated(finding(source="celonis", deviationPattern="missing-po-number")), "cid").results
    _run(svc, "triage", "plan")
    opp = svc.store.get(r.opportunity.id)
    assert opp.status is Status.needs_review and opp.reported is None


def test_two_sources_naming_one_case_differently_are_one_opportunity():
    svc = memory_services()
    svc.aliases = Aliases.from_doc({
        "patterns": {"celonis": {"Invoice without PO": "invoice-missing-po"},
                     "process-mining": {"PO missing": "invoice-missing-po"}},
        "processAreas": {"*": {"AP": "accounts-payable"}}})
    a = finding(source="celonis", processArea="AP", deviationPattern="Invoice without PO", caseKey="INV-77")
    b = finding(source="process-mining", deviationPattern="PO missing", caseKey="INV-77")
    first = ingest(svc, validated(a), "cid").results[0]
    second = ingest(svc, validated(b), "cid").results[0]
    assert (first.outcome, second.outcome) == ("created", "updated")
    assert first.opportunity.id == second.opportunity.id
    opp = svc.store.get(first.opportunity.id)
    assert opp.occurrences == 2 and opp.source == "celonis,process-mining"
    assert opp.reported and opp.reported["deviationPattern"] in ("Invoice without PO", "PO missing")


def test_a_source_table_wins_over_the_any_source_table_and_names_match_case_insensitively():
    aliases = Aliases.from_doc({"patterns": {"*": {"late": "delivery-sla-breached"},
                                             "celonis": {"LATE": "delivery-sla-at-risk"}}})
    assert aliases.names("celonis", "order-to-cash", " Late ") == ("order-to-cash", "delivery-sla-at-risk")
    assert aliases.names("generic", "order-to-cash", "late") == ("order-to-cash", "delivery-sla-breached")
    assert aliases.names("generic", "order-to-cash", "delivery-sla-breached") is None


def test_only_the_names_an_alias_changed_are_kept_as_reported():
    svc = memory_services()
    svc.aliases = Aliases.from_doc({"processAreas": {"*": {"AP": "accounts-payable"}}})
    [r] = ingest(svc, validated(finding(processArea="AP")), "cid").results
    assert svc.store.get(r.opportunity.id).reported == {"processArea": "AP"}
    [plain] = ingest(svc, validated(finding()), "cid").results
    assert svc.store.get(plain.opportunity.id).reported is None


def test_a_pattern_still_unknown_after_aliasing_is_a_catalog_gap_named_as_reported_with_counts():
    svc = memory_services()
    svc.policy = svc.policy.model_copy(update={"measurement": svc.policy.measurement.model_copy(
        update={"gapMinCases": 3})})
    svc.aliases = Aliases.from_doc({"patterns": {"*": {"off-contract": "maverick-buying"}}})
    ingest(svc, validated(*(finding(processArea="procurement", deviationPattern="off-contract") for _ in range(2)),
                          finding(processArea="procurement", deviationPattern="maverick-buying")), "cid")
    [gap] = weekly_review(svc)["catalogGaps"]
    assert (gap["processArea"], gap["deviationPattern"], gap["cases"]) == ("procurement", "maverick-buying", 3)
    assert gap["reportedAs"] == [{"processArea": "procurement", "deviationPattern": "off-contract", "cases": 2},
                                 {"processArea": "procurement", "deviationPattern": "maverick-buying", "cases": 1}]


def test_the_review_card_of_a_catalog_gap_names_the_pattern_as_reported_and_as_mapped():
    svc = memory_services()
    svc.aliases = Aliases.from_doc({"patterns": {"*": {"off-contract": "maverick-buying"}}})
    [r] = ingest(svc, validated(finding(processArea="procurement", deviationPattern="off-contract")), "cid").results
    _run(svc, "triage", "plan")
    assert svc.store.get(r.opportunity.id).status is Status.needs_review
    [(kind, oid, _, details)] = svc.notifier.sent
    facts = {f["title"]: f["value"] for block in details["cards"]["links"]["body"] if block["type"] == "FactSet"
             for f in block["facts"]}
    assert kind == "review" and oid == r.opportunity.id
    assert facts["Process"] == "procurement / maverick-buying"
    assert facts["Reported as"] == "procurement / off-contract"
    assert facts["Catalog gap"] == md("No catalog action for maverick-buying (reported as off-contract) in procurement")


@pytest.mark.parametrize("renames", [False, True])
def test_findings_without_an_alias_are_passed_on_as_they_are(renames):
    from shared.services.ingest import canonical

    aliases = Aliases.from_doc({"patterns": {"*": {"x": "invoice-missing-po"}}}) if renames else Aliases()
    findings = validated(finding(), finding())
    named, reported = canonical(aliases, findings)
    assert named is findings and reported == {}


def test_process_mining_names_in_the_query_string_are_mapped_by_that_sources_table():
    from shared.ingest import process_mining
    from tests.conftest import ROOT

    svc = _with_repo_aliases()
    body = (ROOT / "samples" / "process-mining-o2c-sla.json").read_bytes()
    found = process_mining.normalize(body, "application/json", {"processArea": "O2C",
                                                                "deviationPattern": "Late delivery"})
    report = ingest(svc, found.findings, "cid", found.skipped)
    opps = [svc.store.get(r.opportunity.id) for r in report.results]
    assert opps and {(o.processArea, o.deviationPattern) for o in opps} == {("order-to-cash", "delivery-sla-breached")}
    assert {json.dumps(o.reported, sort_keys=True) for o in opps} == \
        {json.dumps({"processArea": "O2C", "deviationPattern": "Late delivery"}, sort_keys=True)}
    # "Late delivery" is process-mining's own name: another source sending it is not mapped by that table
    [generic] = ingest(svc, validated(finding(processArea="O2C", deviationPattern="Late delivery")), "cid").results
    assert generic.opportunity.deviationPattern == "Late delivery" and generic.opportunity.processArea == "order-to-cash"
