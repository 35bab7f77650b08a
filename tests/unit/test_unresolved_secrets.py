"""A Key Vault reference App Service could not resolve reaches the app as its own text, which is public
(infra/modules/functionapp.bicep): it is found once (Settings.unresolved), never used as a key or a URL, and the
app refuses to act while any setting holds one."""
import hashlib
import hmac
import json
import logging
import re

import pytest

from shared import runtime
from shared.adapters.notifiers import WebhookNotifier
from shared.api import edge, stage_triggers
from shared.bootstrap import build_flows, build_notifier
from shared.domain import identity
from shared.domain.errors import Unavailable
from shared.ports import FlowNotConfigured
from shared.services import approvals
from shared.settings import Settings
from tests.conftest import ROOT
from tests.factories import memory_services

REFERENCE = "@Microsoft.KeyVault(VaultName=kv-closedloop;SecretName=approval-signing-key)"
SPELLINGS = (REFERENCE, "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x/)",
             "  @microsoft.keyvault(SecretUri=https://kv.vault.azure.net/secrets/x/)\n",
             "@MICROSOFT.KEYVAULT (VaultName=kv;SecretName=x)", "\t@ Microsoft . KeyVault(VaultName=kv;SecretName=x)")


@pytest.mark.parametrize("text", SPELLINGS)
def test_an_unresolved_reference_is_found_whatever_its_case_and_spacing(text):
    assert Settings.from_env({"APPROVAL_SIGNING_KEY": text}).unresolved == ("APPROVAL_SIGNING_KEY",)


def test_resolved_values_and_lookalikes_are_not_references():
    env = {"APPROVAL_SIGNING_KEY": "s3cret", "TEAMS_WEBHOOK_URL": "https://x.example/@Microsoft.KeyVault(",
           "INGEST_API_KEY": "Microsoft.KeyVault(x)", "CELONIS_SIGNING_SECRET": ""}
    assert Settings.from_env(env).unresolved == ()
    assert Settings.from_env({}).unresolved == ()


def _secret_settings_in_infra() -> set[str]:
    """Every app setting infra/main.bicep turns into a Key Vault reference (its secret-setting lists), read from the
    text: quoted UPPER_CASE names on the lines that build them."""
    text = (ROOT / "infra" / "main.bicep").read_text()
    building = re.compile(r"\s*var\s+\w*(secret|optional|flow)\w*Settings", re.IGNORECASE)
    lines = [line for line in text.splitlines() if building.match(line)]
    return {name for line in lines for name in re.findall(r"'([A-Z][A-Z0-9_]+)'", line)}


def test_every_secret_setting_the_infra_makes_a_reference_is_found_unresolved():
    names = _secret_settings_in_infra() | {"FLOW_AP_REQUEST_MISSING_FIELDS", "AZURE_OPENAI_API_KEY", "LLM_API_KEY",
                                           "DATAVERSE_TOKEN"}
    assert {"APPROVAL_SIGNING_KEY", "APPROVAL_FLOW_KEY", "INGEST_API_KEY"} <= names
    settings = Settings.from_env(dict.fromkeys(names, REFERENCE))
    assert set(settings.unresolved) == names


def test_an_unresolved_signing_key_never_signs_or_verifies_not_even_on_the_local_host():
    for environment in ("local", "prod"):
        svc = memory_services(APPROVAL_SIGNING_KEY=REFERENCE, CLOSEDLOOP_ENV=environment)
        with pytest.raises(Unavailable) as refused:
            approvals.signing_key(svc)
        assert refused.value.status == 503 and refused.value.retry_after > 0
        assert refused.value.extra["setting"] == "APPROVAL_SIGNING_KEY" and "Key Vault" in refused.value.detail
        with pytest.raises(Unavailable):
            approvals.find(svc, "any-approval-id")
        assert svc.settings.approvals_off and "unresolved Key Vault reference" in svc.settings.approvals_off


def test_a_settings_object_built_by_hand_with_the_reference_is_refused_too():
    svc = memory_services(APPROVAL_SIGNING_KEY="resolved")
    svc.settings = Settings.from_env({"APPROVAL_SIGNING_KEY": REFERENCE.lower(), "CLOSEDLOOP_ENV": "local"})
    object.__setattr__(svc.settings, "unresolved", ())  # what a caller that skipped the scan would hold
    with pytest.raises(Unavailable):
        approvals.signing_key(svc)


def test_a_flow_answer_signed_with_the_literal_reference_text_is_refused():
    body = json.dumps({"decision": "approve", "approver": {"id": "0000", "roles": ["approver"]}}).encode()
    forged = "sha256=" + hmac.new(REFERENCE.encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(Unavailable) as refused:
        identity.from_flow(REFERENCE, body, forged, {"id": "0000", "roles": ["approver"]})
    assert refused.value.extra["setting"] == "APPROVAL_FLOW_KEY" and refused.value.status == 503
    with pytest.raises(Unavailable):
        identity.from_flow("  " + REFERENCE.upper(), body, forged, {"id": "0000"})
    good = "sha256=" + hmac.new(b"real-key", body, hashlib.sha256).hexdigest()
    assert identity.from_flow("real-key", body, good, {"id": "0000"}).id == "0000"  # resolved: as before


def test_a_flow_or_webhook_url_that_is_a_reference_is_never_called(caplog):
    settings = Settings.from_env({"FLOW_AP_REQUEST_MISSING_FIELDS": REFERENCE, "FLOW_O2C_OPEN_CASE": "https://f.example/x",
                                  "TEAMS_WEBHOOK_URL": REFERENCE, "APPROVAL_FLOW_URL": REFERENCE})
    with caplog.at_level(logging.ERROR):
        flows = build_flows(settings)
        with pytest.raises(FlowNotConfigured):
            flows.url("FLOW_AP_REQUEST_MISSING_FIELDS")
        assert flows.url("FLOW_O2C_OPEN_CASE") == "https://f.example/x"
        notifier = build_notifier(settings)
    routed = vars(notifier)
    assert not any(isinstance(n, WebhookNotifier) or type(n).__name__ == "FlowNotifier" for n in routed.values())


@pytest.fixture
def installed():
    def install(**settings):
        runtime.install(memory_services(**settings))
    yield install
    runtime.reset()


def test_every_entry_point_gets_a_503_naming_the_settings_while_one_is_unresolved(installed):
    installed(APPROVAL_SIGNING_KEY=REFERENCE, TEAMS_WEBHOOK_URL=REFERENCE)
    with pytest.raises(Unavailable) as refused:
        edge.services()
    assert refused.value.headers["Retry-After"] == "300"
    assert refused.value.extra["unresolved"] == ["APPROVAL_SIGNING_KEY", "TEAMS_WEBHOOK_URL"]
    assert "Key Vault Secrets User" in refused.value.detail and "restart" in refused.value.detail


def test_with_everything_resolved_the_services_are_served(installed):
    installed(APPROVAL_SIGNING_KEY="resolved")
    assert edge.services().settings.unresolved == ()


class _Message:
    """A Service Bus message that records whether the function read it."""

    delivery_count = 1

    def __init__(self):
        self.read = False

    def get_body(self):
        self.read = True
        return b"{}"


def test_a_stage_trigger_raises_before_reading_its_messages_so_the_host_abandons_them(installed):
    installed(APPROVAL_FLOW_KEY=REFERENCE)
    messages = [_Message(), _Message()]
    with pytest.raises(Unavailable):
        stage_triggers.triage(messages)
    assert not any(m.read for m in messages)


def test_the_sweep_is_skipped_and_says_why(installed, caplog):
    installed(INGEST_API_KEY=REFERENCE)
    with caplog.at_level(logging.WARNING, logger="closedloop.stages"):
        stage_triggers.sweep(None)
    assert any("sweep skipped" in r.getMessage() and "INGEST_API_KEY" in r.getMessage() for r in caplog.records)
