"""Personal data in a finding never reaches logs, audit entries or cards, though the flows still get it."""
import json
import logging
from dataclasses import asdict

from shared.domain.pii import redact, scrub
from shared.logs import install_scrubber
from tests.http.test_pipeline import drive, start

EMAIL, IBAN, PHONE = "jane.doe@contoso.com", "DE89370400440532013000", "+44 20 7946 0958"
NOTE = f"vendor says: mail {EMAIL}, pay to {IBAN}, call {PHONE}"


def leaks(text):
    return [x for x in (EMAIL, IBAN, PHONE, "jane.doe", "0532013000") if x in text]


def test_free_text_is_scrubbed_and_contract_pii_fields_are_masked():
    assert leaks(scrub(NOTE)) == [] and "[email]" in scrub(NOTE) and "[iban]" in scrub(NOTE)
    assert redact({"managerEmail": EMAIL, "amount": 12.5}, ["managerEmail"]) == {"managerEmail": "***", "amount": 12.5}
    assert scrub("INV-00012 for 1,200.50 on 2026-11-19T08:30:00Z") == "INV-00012 for 1,200.50 on 2026-11-19T08:30:00Z"


def test_pii_in_a_finding_stays_out_of_audit_cards_and_logs_but_reaches_the_flow(svc, sandbox, caplog):
    install_scrubber()
    caplog.set_level(logging.INFO)
    logging.getLogger("closedloop.test").warning("vendor contact %s", EMAIL)
    # Low risk, executes (the flow needs vendorEmail); a medium-risk twin waits for approval with a card.
    done = start(svc, processArea="accounts-payable", deviationPattern="invoice-missing-po", caseKey="INV-P1",
                 attributes={"invoiceId": "INV-P1", "vendorId": "V-1", "missingFields": ["poNumber"],
                             "vendorEmail": EMAIL, "note": NOTE})
    waiting = start(svc, processArea="accounts-payable", deviationPattern="price-variance", caseKey="INV-P2",
                    attributes={"invoiceId": "INV-P2", "vendorId": "V-1", "amount": 120.0, "glAccount": "6100",
                                "note": NOTE})
    asks = start(svc, processArea="accounts-payable", deviationPattern="invoice-missing-po", caseKey="INV-P3",
                 attributes={"invoiceId": "INV-P3", "note": NOTE, "vendorEmail": EMAIL})
    drive(svc)
    [x] = svc.store.executions(done)
    assert x.parameters["vendorEmail"] == EMAIL  # the step that needs it gets it
    audit = json.dumps([asdict(a) for oid in (done, waiting, asks) for a in svc.store.audit(oid)], default=str)
    assert leaks(audit) == []
    history = json.dumps([svc.store.get(o).history for o in (done, waiting, asks)])
    assert leaks(history) == []
    sent = json.dumps(svc.notifier.sent, default=str)
    assert any(n[0] == "approve" for n in svc.notifier.sent) and any(n[0] == "enrich" for n in svc.notifier.sent)
    assert leaks(sent) == []
    assert leaks(caplog.text) == [] and "vendor contact [email]" in caplog.text
