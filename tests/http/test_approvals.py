"""Approvals and enrichment over the sandbox's flows: who may decide, and what each answer does."""
from datetime import timedelta

import pytest

from shared.domain.errors import Conflict, Forbidden, Gone, InvalidInput, Unauthorized
from shared.domain.identity import Principal
from shared.domain.status import Status
from shared.services import approvals
from tests.http.test_pipeline import drive, start

PRICE = dict(processArea="accounts-payable", deviationPattern="price-variance",
             attributes={"invoiceId": "INV-9", "vendorId": "V-1", "amount": 120.0, "glAccount": "6100"})
ANA = Principal("ana-oid", "ana@contoso.com", frozenset({"AP.Approver"}), "easy-auth")
BOB = Principal("bob-oid", "bob@contoso.com", frozenset({"Sales.Manager"}), "easy-auth")
RITA = Principal("rita-oid", "rita@contoso.com", frozenset({"Backlog.Owner"}), "easy-auth")


def awaiting(svc, **kw):
    oid = start(svc, **{**PRICE, **kw})
    drive(svc)
    [(kind, _, _, notice)] = [n for n in svc.notifier.sent if n[1] == oid]
    assert kind == "approve" and svc.store.get(oid).status is Status.awaiting_approval
    return oid, notice


def decide(svc, notice, decision="approve", who=ANA, token=None):
    return approvals.decide(svc, notice["approvalId"], token or notice["token"], decision, who, None, None, "cid")


def test_approved_action_runs_once_and_is_verified(svc, sandbox):
    oid, notice = awaiting(svc)
    assert notice["requiredRole"] == "AP.Approver" and set(notice["links"]) == {"approve", "reject", "helpful:yes", "helpful:no"}
    decided = decide(svc, notice)
    assert decided.decision == "approved" and decided.decidedBy == "ana-oid"
    drive(svc)
    assert svc.store.get(oid).status is Status.verified
    assert sandbox.effects["ap.post-gl-adjustment"] == 1
    [approval] = svc.store.approvals(oid)
    assert approval.decision == "approved" and approval.tokenHash and notice["token"] not in repr(approval)
    assert any(a.event == "approved" and a.actor == "ana-oid" for a in svc.store.audit(oid))


def test_rejected_action_never_reaches_its_flow(svc, sandbox):
    oid, notice = awaiting(svc)
    assert decide(svc, notice, "reject").decision == "rejected"
    drive(svc)
    assert svc.store.get(oid).status is Status.rejected
    assert sandbox.effects.get("ap.post-gl-adjustment", 0) == 0 and svc.store.executions(oid) == []


@pytest.mark.parametrize("case, error", [
    ("forged", Unauthorized), ("no principal", Unauthorized), ("wrong role", Forbidden), ("expired", Gone)])
def test_a_refused_decision_leaves_the_opportunity_waiting(svc, sandbox, case, error):
    oid, notice = awaiting(svc)
    if case == "forged":
        call = lambda: decide(svc, notice, token=notice["token"][:-3] + "AAA")  # noqa: E731
    elif case == "no principal":
        call = lambda: decide(svc, notice, who=None)  # noqa: E731
    elif case == "wrong role":
        call = lambda: decide(svc, notice, who=BOB)  # noqa: E731
    else:
        svc.clock.current += timedelta(hours=svc.settings.approval_ttl_hours, seconds=1)
        call = lambda: decide(svc, notice)  # noqa: E731
    with pytest.raises(error):
        call()
    drive(svc)
    assert svc.store.get(oid).status is Status.awaiting_approval and svc.store.executions(oid) == []
    assert svc.store.approvals(oid)[0].decision is None


def test_a_token_used_twice_is_a_conflict_and_acts_once(svc, sandbox):
    oid, notice = awaiting(svc)
    decide(svc, notice)
    with pytest.raises(Conflict):
        decide(svc, notice)
    drive(svc)
    assert sandbox.effects["ap.post-gl-adjustment"] == 1


def test_supplied_data_goes_back_through_triage_and_the_loop_closes(svc, sandbox):
    oid = start(svc, processArea="accounts-payable", deviationPattern="invoice-missing-po", caseKey="INV-E1",
                attributes={"invoiceId": "INV-E1"})
    drive(svc)
    [(kind, _, _, notice)] = [n for n in svc.notifier.sent if n[1] == oid]
    assert kind == "enrich" and notice["missing"] == ["vendorId", "missingFields"]
    with pytest.raises(Exception) as refused:
        approvals.decide(svc, notice["approvalId"], notice["token"], "provide", BOB, {"vendorId": "V-7"}, None, "c")
    assert refused.value.status == 422  # still missing missingFields: nothing recorded
    approvals.decide(svc, notice["approvalId"], notice["token"], "provide", BOB,
                     {"vendorId": "V-7", "missingFields": ["poNumber"]}, None, "c")
    drive(svc)
    opp = svc.store.get(oid)
    # vendorId says whom the request goes to, and only BOB vouches for it: another person approves first
    assert opp.status is Status.awaiting_approval and opp.supplied == {"vendorId": "bob-oid"}
    approve_other(svc, oid, RITA)
    assert svc.store.get(oid).status is Status.verified and svc.store.get(oid).attributes["vendorId"] == "V-7"
    assert sandbox.effects["ap.request-missing-fields"] == 1


def approve_other(svc, oid, who):
    [(_, _, _, ask)] = [n for n in svc.notifier.sent if n[1] == oid and n[0] == "approve"]
    decide(svc, ask, who=who)
    drive(svc)


def test_supplied_form_text_is_read_as_the_contracts_types_and_checked(svc, sandbox):
    oid = start(svc, processArea="accounts-payable", deviationPattern="invoice-missing-po", caseKey="INV-E2",
                attributes={"invoiceId": "INV-E2"})
    drive(svc)
    [(_, _, _, notice)] = [n for n in svc.notifier.sent if n[1] == oid]
    for data, pointer in (({"vendorId": "V-7", "missingFields": "poNumber", "invoiceId": "INV-X"}, "/data/invoiceId"),
                          ({"vendorId": 7, "missingFields": "poNumber"}, "/data/vendorId")):
        with pytest.raises(InvalidInput) as refused:
            approvals.decide(svc, notice["approvalId"], notice["token"], "provide", BOB, data, None, "c")
        assert [e.pointer for e in refused.value.errors] == [pointer]
    approvals.decide(svc, notice["approvalId"], notice["token"], "provide", BOB,
                     {"vendorId": "V-7", "missingFields": "poNumber, grNumber"}, None, "c")  # as a form posts it
    assert svc.store.get(oid).attributes["missingFields"] == ["poNumber", "grNumber"]
    drive(svc)
    approve_other(svc, oid, RITA)
    assert svc.store.get(oid).status is Status.verified


OLGA = Principal("olga-oid", "olga@contoso.com", frozenset({"Backlog.Owner", "AP.Approver"}), "easy-auth")


def test_enrichment_supplies_a_missing_identifying_field_and_the_supplier_cannot_approve_its_plan(svc, sandbox):
    oid = start(svc, processArea="accounts-payable", deviationPattern="invoice-missing-po", caseKey="INV-E3",
                attributes={"invoiceId": "INV-E3", "missingFields": ["poNumber"]})
    drive(svc)
    [(_, _, _, notice)] = [n for n in svc.notifier.sent if n[1] == oid]
    approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OLGA, {"vendorId": "V-7"}, None, "c")
    drive(svc)
    opp = svc.store.get(oid)
    assert opp.status is Status.awaiting_approval and opp.supplied == {"vendorId": "olga-oid"}
    assert "vendorId supplied by olga-oid" in opp.history[-1]["reason"]
    [(_, _, _, ask)] = [n for n in svc.notifier.sent if n[1] == oid and n[0] == "approve"]
    assert ask["requiredRole"] == "Backlog.Owner"  # a low-risk action with no role: the review role approves
    with pytest.raises(Forbidden, match="supplied vendorId; another person approves"):
        decide(svc, ask, who=OLGA)
    assert svc.store.get(oid).status is Status.awaiting_approval and svc.store.executions(oid) == []
    decide(svc, ask, who=RITA)
    drive(svc)
    assert svc.store.get(oid).status is Status.verified and sandbox.effects["ap.request-missing-fields"] == 1


def test_enrichment_cannot_change_an_identifying_field_the_finding_gave(svc, sandbox):
    oid = start(svc, processArea="accounts-payable", deviationPattern="invoice-missing-po", caseKey="INV-E4",
                attributes={"invoiceId": "INV-E4", "vendorId": "V-1", "vendorEmail": "ap@vendor.example"})
    drive(svc)
    [(_, _, _, notice)] = [n for n in svc.notifier.sent if n[1] == oid]
    for field, value in (("vendorId", "V-OTHER"), ("vendorEmail", "someone@else.example")):
        with pytest.raises(InvalidInput) as refused:
            approvals.decide(svc, notice["approvalId"], notice["token"], "provide", OLGA,
                             {"missingFields": "poNumber", field: value}, None, "c")
        assert [(e.pointer, e.detail) for e in refused.value.errors] == [
            (f"/data/{field}", "identifies the record; it cannot be changed")]
    opp = svc.store.get(oid)
    assert opp.status is Status.needs_data and opp.attributes["vendorId"] == "V-1" and opp.supplied == {}


def test_a_teams_webhook_gets_the_link_card_and_an_approval_flow_the_submit_card(svc, sandbox):
    from shared.adapters.notifiers import FlowNotifier, WebhookNotifier

    oid, notice = awaiting(svc)
    WebhookNotifier(sandbox.webhook_url()).notify("approve", oid, "approve?", notice)
    FlowNotifier(sandbox.people_settings()["APPROVAL_FLOW_URL"], "https://app.example").notify(
        "approve", oid, "[Approve now](https://evil.example)?", notice)
    (teams, message), (flow, request) = sandbox.people.received[-2:]
    [attachment] = message["attachments"]
    assert teams == "teams" and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert {a["type"] for a in attachment["content"]["actions"]} == {"Action.OpenUrl"}
    assert flow == "approvals" and request["callbackUrl"] == f"https://app.example/api/approvals/{notice['approvalId']}"
    assert {a["type"] for a in request["card"]["actions"]} == {"Action.Submit"} and request["token"]
    # the flow may show the subject as the Teams message beside the card: Markdown-escaped like card data
    assert request["subject"] == "\\[Approve now\\]\\(https\\:\u2060//evil\\.\u2060example\\)?"


def test_the_sweep_escalates_an_unanswered_approval_once_and_the_token_still_works(svc, sandbox):
    from shared.services import sweep

    oid, notice = awaiting(svc)
    assert sweep.run(svc, "s1")["escalated"] == 0
    svc.clock.current += timedelta(hours=svc.policy.approvalSlaHours, minutes=1)
    assert sweep.run(svc, "s2")["escalated"] == 1
    assert sweep.run(svc, "s3")["escalated"] == 0  # once
    [(kind, _, subject, details)] = [n for n in svc.notifier.sent if n[0] == "escalate"]
    assert notice["approvalId"] == details["request"] and "unanswered" in subject
    assert details["cards"]["links"]["version"] == "1.5"
    assert any(a.event == "approval.escalated" for a in svc.store.audit(oid))
    decide(svc, notice)  # still within its 72 h: the approver can answer late
    drive(svc)
    assert svc.store.get(oid).status is Status.verified


def test_an_action_withdrawn_from_this_environment_after_approval_never_runs(svc, sandbox):
    from shared.domain.catalog import Action, Catalog

    oid, notice = awaiting(svc)
    current = svc.catalog.actions["ap.post-gl-adjustment"]
    withdrawn = Action.model_validate({**current.model_dump(mode="json"), "version": current.version + 1,
                                       "environments": ["prod"]})
    svc.catalog = Catalog([*svc.catalog.versions.values(), withdrawn], "local")
    decide(svc, notice)
    drive(svc)
    assert svc.store.get(oid).status is Status.failed
    assert sandbox.effects.get("ap.post-gl-adjustment", 0) == 0


def test_an_approval_stored_with_an_old_unsuffixed_id_still_resolves_for_its_token_and_role_only(svc, sandbox):
    """Ids made before they carried an HMAC (`<opportunity>-a<revision>`) stay answerable after an upgrade."""
    from dataclasses import replace

    from shared.domain.approvals import sign, token_hash
    from shared.domain.errors import NotFound

    oid, notice = awaiting(svc)
    [current] = svc.store.approvals(oid)
    legacy = current.id.rpartition("-")[0]
    key = approvals.signing_key(svc)
    token = sign(key, legacy, current.expiresAt)
    svc.store.commit(svc.store.get(oid), (), (), [replace(current, id=legacy, tokenHash=token_hash(token), etag=None)])
    with pytest.raises(Unauthorized):
        approvals.view(svc, legacy, None, None)
    with pytest.raises(Forbidden):
        approvals.view(svc, legacy, None, BOB)
    assert approvals.view(svc, legacy, token, None).id == legacy
    with pytest.raises(NotFound):
        approvals.view(svc, f"{oid}-a999", None, ANA)
    assert approvals.decide(svc, legacy, token, "approve", ANA, None, None, "cid").decision == "approved"
    drive(svc)
    assert svc.store.get(oid).status is Status.verified


CARL = Principal("carl-oid", "carl@contoso.com", frozenset({"AP.Approver"}), "easy-auth")


def test_above_the_second_threshold_the_first_approval_asks_a_different_person(svc, sandbox):
    oid, first = awaiting(svc, attributes={**PRICE["attributes"], "amount": 900.0})
    assert first["approvers"] == 2 and first["stage"] == 1
    assert decide(svc, first).decision == "approved"
    drive(svc)
    assert svc.store.get(oid).status is Status.awaiting_approval and svc.store.executions(oid) == []
    [(kind, _, subject, second)] = [n for n in svc.notifier.sent
                                    if n[1] == oid and n[3]["approvalId"] != first["approvalId"]]
    assert kind == "approve" and "second approval" in subject and second["stage"] == 2
    assert second["requiredRole"] == "AP.Approver"
    facts = {f["title"]: f["value"] for b in second["cards"]["links"]["body"] if b["type"] == "FactSet"
             for f in b["facts"]}
    assert "approved first by ana" in facts["Approval"]
    with pytest.raises(Forbidden, match="cannot approve twice"):
        decide(svc, second, who=Principal("ana-oid", "ana@contoso.com", frozenset({"AP.Approver"}), "flow"))
    assert [a.decision for a in sorted(svc.store.approvals(oid), key=lambda a: a.createdAt)] == ["approved", None]
    assert decide(svc, second, who=CARL).decision == "approved"
    drive(svc)
    assert svc.store.get(oid).status is Status.verified and sandbox.effects["ap.post-gl-adjustment"] == 1
    assert [a.event for a in svc.store.audit(oid)].count("updated") == 1


def test_two_approvers_are_told_apart_by_id_only(svc, sandbox):
    oid, first = awaiting(svc, attributes={**PRICE["attributes"], "amount": 900.0})
    decide(svc, first, who=Principal("ana-oid", "Ana Silva", frozenset({"AP.Approver"}), "easy-auth"))
    second = [n for n in svc.notifier.sent if n[1] == oid][-1][3]
    with pytest.raises(Forbidden, match="cannot approve twice"):  # the same object id, however the flow names her
        decide(svc, second, who=Principal("ana-oid", "ana.alias@contoso.com", frozenset({"AP.Approver"}), "flow"))
    namesake = Principal("other-oid", "Ana Silva", frozenset({"AP.Approver"}), "flow")
    assert decide(svc, second, who=namesake).decision == "approved"  # another person who shares her name
    drive(svc)
    assert svc.store.get(oid).status is Status.verified


@pytest.mark.parametrize("stage", [1, 2])
def test_a_reject_at_either_stage_rejects(svc, sandbox, stage):
    oid, notice = awaiting(svc, attributes={**PRICE["attributes"], "amount": 900.0})
    if stage == 2:
        decide(svc, notice)
        notice = [n for n in svc.notifier.sent if n[1] == oid][-1][3]
    assert decide(svc, notice, "reject", who=CARL).decision == "rejected"
    drive(svc)
    assert svc.store.get(oid).status is Status.rejected and svc.store.executions(oid) == []


def test_a_helpful_answer_with_a_decision_is_kept_once_on_the_record_and_as_feedback(svc, sandbox):
    oid, notice = awaiting(svc)
    approvals.decide(svc, notice["approvalId"], notice["token"], "approve", ANA, None, None, "cid", helpful=False)
    [record] = svc.reference.telemetry("feedback", svc.clock.now() - timedelta(days=1))
    assert (record["cardKind"], record["helpful"], record["by"], record["actionVersion"]) == \
        ("approve", False, "ana-oid", 1)
    assert svc.store.approvals(oid)[0].helpful is False


def test_a_reviewer_supplies_the_missing_invoice_id_and_another_person_approves_before_the_flow_runs_once(
        svc, sandbox):
    from tests.factories import replace_action

    contract = svc.catalog.actions["ap.post-gl-adjustment"].dataContract  # invoiceId optional: triage passes it
    replace_action(svc, "ap.post-gl-adjustment", dataContract={**contract, "required": ["vendorId", "amount"]})
    oid = start(svc, **{**PRICE, "caseKey": "CASE-P2",
                        "attributes": {"vendorId": "V-1", "amount": 120.0, "glAccount": "ABC"}})
    drive(svc)
    [(kind, _, _, review)] = [n for n in svc.notifier.sent if n[1] == oid]
    assert kind == "review"
    approvals.decide(svc, review["approvalId"], review["token"], "provide", OLGA,
                     {"invoiceId": "INV-P2", "glAccount": "6100"}, None, "c")
    drive(svc)
    opp = svc.store.get(oid)
    assert opp.status is Status.awaiting_approval and opp.supplied == {"invoiceId": "olga-oid"}
    assert "invoiceId supplied by olga-oid: another person approves" in opp.history[-1]["reason"]
    [(_, _, _, ask)] = [n for n in svc.notifier.sent if n[1] == oid and n[0] == "approve"]
    with pytest.raises(Forbidden, match="supplied invoiceId; another person approves"):
        decide(svc, ask, who=OLGA)  # she holds AP.Approver, but the invoice id is her word alone
    decide(svc, ask, who=ANA)
    drive(svc)
    assert svc.store.get(oid).status is Status.verified and sandbox.effects["ap.post-gl-adjustment"] == 1
    [x] = svc.store.executions(oid)
    assert x.parameters["invoiceId"] == "INV-P2"
