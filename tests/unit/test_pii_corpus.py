"""The scrubber against a corpus: real-looking personal data from several countries goes, what operators need
(links, IP addresses, timestamps, ids, amounts) stays. tests/http/test_pii.py pushes the same corpus through
every sink of the local host."""
import io
import logging
from datetime import datetime, timezone

import pytest

from shared.domain.audit import AuditEntry
from shared.domain.opportunity import from_findings
from shared.domain.pii import redact, scrub
from shared.domain.status import Status
from shared.logs import JsonFormatter, bind, install_scrubber
from tests.factories import finding, memory_services, validated

# Valid IBANs (the check digits verify, see the first test), compact, grouped and in lower case.
IBANS = [
    "DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "de89 3704 0044 0532 0130 00", "de89370400440532013000",
    "GB29NWBK60161331926819", "GB29 NWBK 6016 1331 9268 19", "gb29 nwbk 6016 1331 9268 19",
    "FR1420041010050500013M02606", "FR14 2004 1010 0505 0001 3M02 606", "fr14 2004 1010 0505 0001 3m02 606",
    "NL91ABNA0417164300", "NL91 ABNA 0417 1643 00", "nl91abna0417164300",
    "ES9121000418450200051332", "ES91 2100 0418 4502 0005 1332", "es91 2100 0418 4502 0005 1332",
    "IT60X0542811101000000123456", "IT60 X054 2811 1010 0000 0123 456", "it60 x054 2811 1010 0000 0123 456",
    "CH9300762011623852957", "CH93 0076 2011 6238 5295 7", "ch93 0076 2011 6238 5295 7",
    "PL61109010140000071219812874", "PL61 1090 1014 0000 0712 1981 2874", "pl61109010140000071219812874",
    "AT61 1904 3002 3457 3201", "BE68 5390 0754 7034", "DK5000400440116243", "SE45 5000 0000 0583 9825 7466",
    "NO93 8601 1117 947", "FI2112345600000785", "IE29 AIBK 9311 5212 3456 78", "PT50000201231234567890154",
    "LU280019400644750000", "CZ65 0800 0000 1920 0014 5399",
]
PHONES = [
    "+49 89 1234567", "089/1234567", "(030) 123 456 78", "+1 (415) 555-0100", "0044 20 7946 0958",
    "+33 1 23 45 67 89", "06-12345678", "+44 20 7946 0958", "020 7946 0958", "0171 1234567", "015112345678",
    "+49 (0)89 1234567", "+49-89-7654321", "415-555-0199", "(212) 555-0142", "+41 44 668 18 00", "+48 12 345 67 89",
    "+39 06 1234 5678", "+34 912 345 678", "+31 6 23456789", "01 23 45 67 89", "+43 1 234567", "+353 1 234 5678",
    "0049 30 12345678", "+1-202-555-0173",
]
EMAILS = [
    "jane.doe@contoso.com", "jöhn@exämple.de", "ana+billing@contoso.co.uk", "ap-team+inv.2026@sub.mail.example.org",
    "müller.jürgen@bücher.example", "用户@例子.广告", "δοκιμή@παράδειγμα.δοκιμή", "info@xn--bcher-kva.example",
    "o.brien@contoso-eu.com", "señor.niño@empresa.es", "99.customer@shop.example", "first_last@fabrikam.io",
]
POSITIVE = IBANS + PHONES + EMAILS

NEGATIVE = [
    "http://127.0.0.1:17402/api/approvals/0123456789abcdef0123456789abcdef-a2?decision=approve&token=eyJh.c2ln",
    "https://contoso.sharepoint.com:8443/sites/ap/Shared%20Documents/2026/INV-2026-000123.pdf",
    "http://localhost:7071/api/opportunities/33ef2c76987a278ee1149e52ec2ad78d", "http://[::1]:7071/api/health",
    "https://[2001:db8::1]:8443/x", "10.0.0.12", "192.168.100.200", "192.168.100.200:8080", "127.0.0.1:10002",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "fe80::1ff:fe23:4567:890a", "::ffff:192.0.2.128",
    "2026-11-19T08:30:00Z", "2026-11-19T08:30:00.123456+01:00", "2026-11-19 08:30:00", "2026-11-19 08:30:00,123",
    "20261119T083000Z", "1763541000", "1763541000123", "1763541000.125", "INV-2026-000123", "PO-4500012345",
    "4500012345", "SO-0000123456", "1,234,567.89", "1.234.567,89", "EUR 12,500.00", "1 234 567,89 €", "19.11.2026",
    "11/19/2026", "2026/11/19", "2026-11-19/2026-11-26", "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "12345678-1234-1234-1234-123456789012", "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "DE123456789", "0.1234567",
]


def _iban_checks(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def test_the_corpus_holds_over_fifty_real_looking_strings_and_its_ibans_verify():
    assert len(POSITIVE) >= 50 and len(set(POSITIVE)) == len(POSITIVE)
    assert all(_iban_checks(i) for i in IBANS)
    assert {i[:2].upper() for i in IBANS} >= {"DE", "GB", "FR", "NL", "ES", "IT", "CH", "PL"}


@pytest.mark.parametrize("text", POSITIVE)
def test_personal_data_is_scrubbed_alone_and_within_a_sentence(text):
    for line in (text, f"call {text}.", f"vendor ({text}) asked on 2026-11-19T08:30:00Z", f"x:{text};y"):
        cleaned = scrub(line)
        assert text not in cleaned and "[" in cleaned, (line, cleaned)


@pytest.mark.parametrize("text", NEGATIVE)
def test_links_addresses_times_ids_and_amounts_survive_alone_and_within_a_sentence(text):
    for line in (text, f"at {text}, done", f"see ({text})", f"{text}."):
        assert scrub(line) == line


def test_personal_data_next_to_what_operators_need_goes_and_the_rest_stays():
    line = " | ".join(f"{bad} {good}" for bad, good in zip(POSITIVE, NEGATIVE * 3))
    cleaned = scrub(line)
    assert [p for p in POSITIVE if p in cleaned] == []
    assert [n for n in NEGATIVE if n not in cleaned] == []


def test_a_lower_case_iban_is_scrubbed():
    assert scrub("pay to de89 3704 0044 0532 0130 00 now") == "pay to [iban] now"


def test_a_phone_number_with_a_slash_is_scrubbed():
    assert scrub("Tel. 089/1234567 (Zentrale)") == "Tel. [phone] (Zentrale)"


def test_a_non_ascii_email_address_is_scrubbed():
    assert scrub("an jöhn@exämple.de gesendet") == "an [email] gesendet"


def test_a_local_approval_link_in_a_log_line_keeps_its_ip_address_and_port():
    line = ("approve card for 33ef2c76 in /tmp/outbox/x.json; answer at "
            "http://127.0.0.1:17402/api/approvals/33ef2c76-a2?decision=approve&token=abc at 2026-11-19 08:30:00")
    assert scrub(line) == line


def test_an_iban_followed_by_a_word_and_another_iban_loses_both():
    assert scrub("BE68 5390 0754 7034 Brussels GB29 NWBK 6016 1331 9268 19") == "[iban] Brussels [iban]"


def test_two_phone_numbers_and_a_date_in_one_run_are_told_apart():
    assert scrub("089/1234567 089/7654321 2026-11-19") == "[phone] [phone] 2026-11-19"


def test_scrubbing_twice_changes_nothing_more():
    once = scrub(" ".join(POSITIVE + NEGATIVE))
    assert scrub(once) == once


def test_the_dismiss_reason_is_scrubbed_in_the_status_history():
    svc = memory_services()
    [opp] = from_findings(validated(finding()), svc.catalog, svc.policy.scoring, datetime.now(timezone.utc))
    at = datetime(2026, 11, 19, 8, 30, tzinfo=timezone.utc)
    moved = opp.transition(Status.dismissed, "api", "vendor jöhn@exämple.de, de89 3704 0044 0532 0130 00", at)
    assert moved.history[-1]["reason"] == "vendor [email], [iban]"


def test_an_audit_entry_scrubs_its_reason_inputs_and_outputs_whoever_builds_it():
    at = datetime(2026, 11, 19, 8, 30, tzinfo=timezone.utc)
    entry = AuditEntry("o1", at, "ana", "approved", "by 089/1234567", "cid", {"comment": "ring +33 1 23 45 67 89",
                       "vendorEmail": "a@b.example"}, {"evidence": {"to": ["jöhn@exämple.de"]}}, pii=frozenset({"vendorEmail"}))
    assert (entry.reason, entry.inputs, entry.outputs) == (
        "by [phone]", {"comment": "ring [phone]", "vendorEmail": "***"}, {"evidence": {"to": ["[email]"]}})


def test_a_root_cause_and_a_recommended_action_are_scrubbed_at_ingest():
    svc = memory_services()
    body = finding(rootCause="vendor gb29 nwbk 6016 1331 9268 19 unknown", recommendedAction="call 06-12345678")
    [opp] = from_findings(validated(body), svc.catalog, svc.policy.scoring, datetime.now(timezone.utc))
    assert (opp.rootCause, opp.recommendedAction) == ("vendor [iban] unknown", "call [phone]")


def test_log_messages_extra_fields_and_exception_text_are_scrubbed():
    install_scrubber()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("closedloop.test.pii")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        bind(log, "cid", vendor="jöhn@exämple.de").info("paid to %s at 2026-11-19T08:30:00Z", "nl91abna0417164300")
        try:
            raise ValueError("expected a number, got '+49 89 1234567'")
        except ValueError:
            log.exception("failed from 10.0.0.12")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert [p for p in ("jöhn@exämple.de", "nl91abna0417164300", "+49 89 1234567") if p in text] == []
    assert "2026-11-19T08:30:00Z" in text and "10.0.0.12" in text and text.count("[") >= 3


def test_redact_masks_contract_fields_and_scrubs_every_other_string():
    assert redact({"vendorEmail": "x", "notes": ["call 0171 1234567"], "amount": 12.5}, ["vendorEmail"]) == {
        "vendorEmail": "***", "notes": ["call [phone]"], "amount": 12.5}
