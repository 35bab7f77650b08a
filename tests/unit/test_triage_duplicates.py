"""Triage's duplicate check: one live opportunity per case and action, whichever pattern reported it."""
import json

from shared.domain.status import Status
from shared.services import backlog, pipeline
from shared.services.runner import run
from shared.services.ingest import ingest
from tests.factories import finding, memory_services, person, validated

# Both patterns lead to ap.request-missing-fields in the catalog.
PATTERNS = ("invoice-missing-po", "missing-vendor-data")


def case(pattern, key="INV-77"):
    return finding(deviationPattern=pattern, caseKey=key,
                   attributes={"invoiceId": key, "vendorId": "V-1", "missingFields": ["poNumber"]})


def triage(svc, oid):
    message = next(m for m in svc.bus.messages if m.body["opportunityId"] == oid and m.body["type"] == "triage")
    return pipeline.handle(svc, "triage", json.dumps(message.body).encode())


def ids(svc, *items):
    return [r.opportunity.id for r in ingest(svc, validated(*items), "cid").results]


def test_same_case_and_action_under_another_pattern_is_a_duplicate_and_never_planned():
    svc = memory_services()
    first, second = ids(svc, case(PATTERNS[0]), case(PATTERNS[1]))
    assert first != second
    assert triage(svc, first) == "triaged"
    assert triage(svc, second) == "duplicate"
    twin = svc.store.get(second)
    assert twin.status is Status.duplicate
    assert svc.store.audit(second)[-1].outputs == {"duplicateOf": first}
    planned = [m.body["opportunityId"] for m in svc.bus.messages if m.body["type"] == "plan"]
    assert planned == [first]


def test_other_cases_and_redelivery_to_the_holder_are_not_duplicates():
    svc = memory_services()
    a, b = ids(svc, case(PATTERNS[0], "INV-1"), case(PATTERNS[1], "INV-2"))
    assert triage(svc, a) == "triaged" and triage(svc, b) == "triaged"
    assert triage(svc, a) == "already triaged"


def test_a_control_case_holds_its_claim_so_no_other_pattern_treats_it():
    svc = memory_services()
    svc.policy = svc.policy.model_copy(update={"holdoutPercent": 100.0})
    held, twin = ids(svc, case(PATTERNS[0]), case(PATTERNS[1]))
    assert triage(svc, held) == "control"
    svc.policy = svc.policy.model_copy(update={"holdoutPercent": 0.0})
    assert triage(svc, twin) == "duplicate"


def test_a_case_whose_holder_was_dismissed_is_taken_over():
    svc = memory_services()
    first, second = ids(svc, case(PATTERNS[0]), case(PATTERNS[1]))
    assert triage(svc, first) == "triaged"
    backlog.patch(svc, first, {"dismiss": True}, person("ana", "Backlog.Owner"), "cid")
    assert triage(svc, second) == "triaged"


def test_a_holder_waiting_for_data_yields_to_a_twin_that_has_it():
    svc = memory_services()
    incomplete = finding(deviationPattern=PATTERNS[0], caseKey="INV-5", attributes={"invoiceId": "INV-5"})
    waiting, complete = ids(svc, incomplete, case(PATTERNS[1], "INV-5"))
    assert triage(svc, waiting) == "needs_data"
    assert triage(svc, complete) == "triaged"


def test_in_one_batch_twins_make_one_triaged_and_one_duplicate():
    svc = memory_services()
    both = ids(svc, case(PATTERNS[0]), case(PATTERNS[1]), case(PATTERNS[0], "INV-9"))
    bodies = [(json.dumps(m.body).encode(), 1) for m in svc.bus.take("triage")]
    results = run(svc, "triage", bodies)
    assert sorted(results) == ["duplicate", "triaged", "triaged"]
    statuses = {oid: svc.store.get(oid).status for oid in both}
    assert statuses[both[2]] is Status.triaged
    assert sorted(s.value for oid, s in statuses.items() if oid != both[2]) == ["duplicate", "triaged"]
