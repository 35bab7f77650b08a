""""Local" is opt-in: with no environment name the app is production, and App Service never runs as local. The
local host that opts in keeps its settings to itself: nothing in os.environ changes."""
import logging
import os

import requests

from shared.settings import Settings
from tests.conftest import hosted, settle
from tests.factories import principal_header, treated_case

ADMIN = principal_header("ops@contoso.com", "Autonomy.Admin")
PRICE = {"processArea": "accounts-payable", "deviationPattern": "price-variance", "source": "erp",
         "detectedAt": "2026-11-19T08:30:00Z", "kpiImpact": {"daysSaved": 3, "costOfDelayPerDay": 40.0}}


def test_no_environment_name_means_production():
    settings = Settings.from_env({})
    assert settings.environment == "prod" and not settings.local
    assert "APPROVAL_SIGNING_KEY" in (settings.approvals_off or "")
    assert Settings.from_env({"APPROVAL_SIGNING_KEY": "from-key-vault"}).approvals_off is None


def test_app_service_refuses_local_and_says_so(caplog):
    with caplog.at_level(logging.ERROR):
        settings = Settings.from_env({"CLOSEDLOOP_ENV": "local", "WEBSITE_INSTANCE_ID": "4f2a…"})
    assert settings.environment == "prod" and not settings.local and settings.local_refused
    assert any("refused on App Service" in r.getMessage() for r in caplog.records)


def _forged_autonomy_change(server):
    return requests.post(f"{server.base_url}/autonomy", json={"freeze": True, "reason": "forged"}, headers=ADMIN)


def test_without_an_environment_name_a_forged_principal_is_not_believed(azurite):
    with hosted(azurite, CLOSEDLOOP_ENV="", INGEST_API_KEY="ingest-secret") as server:
        r = _forged_autonomy_change(server)
        assert r.status_code == 401, r.text
        assert requests.get(f"{server.base_url}/autonomy").json()["frozen"] is False


def test_local_on_app_service_does_not_believe_a_forged_principal(azurite):
    with hosted(azurite, CLOSEDLOOP_ENV="local", WEBSITE_INSTANCE_ID="4f2a0b") as server:
        assert _forged_autonomy_change(server).status_code == 401


def test_the_local_host_opts_in_to_local_trust(azurite):
    with hosted(azurite) as server:
        assert _forged_autonomy_change(server).status_code == 200


def test_without_a_signing_key_approvals_are_off_and_the_case_waits_for_review(azurite):
    with hosted(azurite, CLOSEDLOOP_ENV="", APPROVAL_SIGNING_KEY="") as server:
        case = treated_case("NOKEY", action="ap.post-gl-adjustment")
        finding = {**PRICE, "eventId": f"e-{case}", "caseKey": case,
                   "attributes": {"invoiceId": case, "vendorId": "V-1", "amount": 120.0, "glAccount": "6100"}}
        r = requests.post(server.base_url + "/findings", json=finding)
        assert r.status_code == 202, r.text
        oid = r.json()["opportunities"][0]["id"]
        settle(server, 60)
        opp = requests.get(f"{server.base_url}/opportunities/{oid}").json()
        assert opp["status"] == "needs_review", opp["status"]
        assert "APPROVAL_SIGNING_KEY" in opp["history"][-1]["reason"]
        assert opp["approvals"] == []  # nothing was signed with a made-up key


def test_without_a_signing_key_missing_data_waits_for_review_and_answers_are_503_not_500(azurite):
    with hosted(azurite, CLOSEDLOOP_ENV="", APPROVAL_SIGNING_KEY="") as server:
        case = treated_case("NOKEYDATA", action="ap.post-gl-adjustment")
        finding = {**PRICE, "eventId": f"e-{case}", "caseKey": case,
                   "attributes": {"invoiceId": case, "vendorId": "V-1", "amount": 120.0}}  # no glAccount
        oid = requests.post(server.base_url + "/findings", json=finding).json()["opportunities"][0]["id"]
        settle(server, 60)
        opp = requests.get(f"{server.base_url}/opportunities/{oid}").json()
        assert opp["status"] == "needs_review" and opp["approvals"] == [], opp["status"]
        assert "glAccount" in opp["history"][-1]["reason"]
        r = requests.post(f"{server.base_url}/approvals/{oid}-a1-{'0' * 32}", json={"decision": "approve",
                                                                                     "token": "x"})
        assert r.status_code == 503 and r.headers.get("Retry-After"), (r.status_code, r.text)


def test_the_local_host_keeps_its_settings_to_itself(azurite):
    from shared import runtime

    before = dict(os.environ)
    with hosted(azurite) as server:
        settings = runtime.services().settings
        assert settings.bus == "local" and settings.local and settings.table_shards == 8
        assert settings.public_base_url == server.base_url.removesuffix("/api")
        assert settings.get("FLOW_READ_RECORD").startswith(server.sandbox.base_url)
        assert dict(os.environ) == before
    assert dict(os.environ) == before


def test_a_host_booted_inside_another_gives_the_outer_one_its_services_back(azurite):
    from shared import runtime

    with hosted(azurite) as outer:
        mine = runtime.services()
        with hosted(azurite) as inner:
            assert runtime.services() is not mine
            assert runtime.services().settings.public_base_url == inner.base_url.removesuffix("/api")
        assert runtime.services() is mine and mine.settings.public_base_url == outer.base_url.removesuffix("/api")
