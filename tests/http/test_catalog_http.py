"""The action catalog over HTTP: loaded from the repo into the store, new versions only ever added."""
import json

from tests.conftest import ROOT


def repo_action(action_id):
    return json.loads((ROOT / "catalog" / "actions" / f"{action_id}.v1.json").read_text())


def _principal(name, *roles):
    import base64
    claims = [{"typ": "preferred_username", "val": name}] + [{"typ": "roles", "val": r} for r in roles]
    doc = {"auth_typ": "aad", "name_typ": "preferred_username", "role_typ": "roles", "claims": claims}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(doc).encode()).decode()}


EDITOR = _principal("max@contoso.com", "Catalog.Approver")


def test_catalog_lists_every_repo_action_from_the_store(api):
    items = api.get("/actions").json()["items"]
    ids = {i["id"] for i in items}
    assert {p.name.split(".v")[0] for p in (ROOT / "catalog" / "actions").glob("*.json")} <= ids
    gl = next(i for i in items if i["id"] == "ap.post-gl-adjustment")
    assert gl["riskTier"] == "medium" and gl["approvalRole"] == "AP.Approver" and gl["flow"]["setting"]


def test_put_adds_the_next_version_and_keeps_the_old_one(api):
    body = repo_action("leads.escalate")
    del body["id"], body["version"]
    body.update(dailyCap=42, reason="sales asked for a lower cap")
    r = api.put("/actions/leads.escalate", json=body, headers=EDITOR)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and r.json()["dailyCap"] == 42 and r.json()["author"] == "max@contoso.com"
    assert r.json()["state"] == "active"  # a lower cap only tightens: no second person needed
    versions = api.get("/actions/leads.escalate").json()["items"]
    assert [(v["version"], v["dailyCap"]) for v in versions] == [(1, 500), (2, 42)]
    latest = next(i for i in api.get("/actions").json()["items"] if i["id"] == "leads.escalate")
    assert latest["version"] == 2


def test_put_refuses_a_version_number_and_bad_fields_by_name(api):
    body = repo_action("leads.escalate")
    assert api.put("/actions/leads.escalate", json=body, headers=EDITOR).status_code == 422  # carries id + version
    del body["version"]
    body["riskTier"] = "extreme"
    body["dailyCap"] = -1
    r = api.put("/actions/leads.escalate", json=body, headers=EDITOR)
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {"/riskTier", "/dailyCap"}


def test_unknown_action_is_404_and_incidents_list_answers(api):
    assert api.get("/actions/no.such-action").status_code == 404
    r = api.get("/incidents", params={"top": 5})
    assert r.status_code == 200 and isinstance(r.json()["items"], list)
    assert api.get("/incidents", params={"top": "0"}).status_code == 422


def test_a_version_raising_the_cap_waits_for_a_second_person_before_it_is_used(api):
    body = repo_action("leads.reassign")
    del body["id"], body["version"]
    body.update(dailyCap=body["dailyCap"] + 100, reason="ramp up")
    author = _principal("max@contoso.com", "Catalog.Approver")
    r = api.put("/actions/leads.reassign", json=body, headers=author)
    assert r.status_code == 201 and r.json()["state"] == "pending" and r.json()["author"] == "max@contoso.com"
    assert "daily cap" in r.json()["activationNeeded"][0]
    in_use = next(i for i in api.get("/actions").json()["items"] if i["id"] == "leads.reassign")
    assert in_use["version"] == 1  # the pending version is not used
    url = f"/actions/leads.reassign/versions/{r.json()['version']}/activate"
    assert api.post(url).status_code == 401
    assert api.post(url, headers=_principal("eve@contoso.com", "Sales.Manager")).status_code == 403
    own = api.post(url, headers=author)
    assert own.status_code == 403 and "second person" in own.json()["detail"]
    ok = api.post(url, headers=_principal("ana@contoso.com", "Catalog.Approver"))
    assert ok.status_code == 200, ok.text
    in_use = next(i for i in api.get("/actions").json()["items"] if i["id"] == "leads.reassign")
    assert in_use["version"] == r.json()["version"] and in_use["state"] == "active"
    assert api.post(url, headers=_principal("ana@contoso.com", "Catalog.Approver")).status_code == 409


def test_the_policy_in_use_is_recorded_with_its_author_and_reason(api):
    [policy] = api.get("/policies").json()["items"]
    assert policy["version"] == 3 and policy["inUse"] is True
    assert policy["author"] and policy["reason"] and policy["holdoutPercent"] == 10.0
    assert policy["measurement"]["roi"]["leads.escalate"]["valuePerUnit"] == {"cycle_time_days": 35.0}


def test_a_rate_limit_the_limiter_cannot_hold_is_refused_when_the_version_is_added(api):
    body = repo_action("leads.escalate")
    del body["id"], body["version"]
    body["rateLimit"] = {"perMinute": 50_000, "burst": 3}
    r = api.put("/actions/leads.escalate", json=body, headers=EDITOR)
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {"/rateLimit/perMinute", "/rateLimit/burst"}


def test_autonomy_is_read_by_anyone_and_changed_only_by_its_admin_role(api):
    before = api.get("/autonomy").json()
    assert before["frozen"] is False and before["effective"]["leads.reassign"] == "autonomous"
    body = {"freeze": True, "reason": "drill"}
    assert api.post("/autonomy", json=body).status_code == 401
    assert api.post("/autonomy", json=body, headers=_principal("eve@contoso.com", "Sales.Manager")).status_code == 403
    admin = _principal("ops@contoso.com", "Autonomy.Admin")
    r = api.post("/autonomy", json=body, headers=admin)
    assert r.status_code == 200 and r.json()["frozen"] is True and r.json()["changedBy"] == "ops@contoso.com"
    assert api.get("/autonomy").json()["effective"]["leads.reassign"] == "approval"
    assert api.post("/autonomy", json={"freeze": False, "reason": "drill over"}, headers=admin).status_code == 200


def _attack_body():
    body = repo_action("ap.post-gl-adjustment")
    del body["id"], body["version"]
    body.update(riskTier="low", approvalRole=None, holdoutPercent=0, reason="faster")
    return body


def test_adding_a_version_needs_a_signed_in_catalog_approver(api):
    body = _attack_body()
    r = api.put("/actions/ap.post-gl-adjustment", json=body)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    r = api.put("/actions/ap.post-gl-adjustment", json=body, headers=_principal("eve@contoso.com", "AP.Approver"))
    assert r.status_code == 403 and "Catalog.Approver" in r.json()["detail"]
    assert [v["version"] for v in api.get("/actions/ap.post-gl-adjustment").json()["items"]] == [1]


def test_a_body_never_names_the_author(api):
    body = {**_attack_body(), "author": "bob@contoso.com"}
    r = api.put("/actions/ap.post-gl-adjustment", json=body, headers=EDITOR)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/author"]
    r = api.put("/actions/ap.post-gl-adjustment", json={**_attack_body(), "origin": "repo"}, headers=EDITOR)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/origin"]


def test_lowering_risk_dropping_approval_and_holdout_waits_for_a_second_person(api):
    r = api.put("/actions/ap.post-gl-adjustment", json=_attack_body(), headers=EDITOR)
    assert r.status_code == 201 and r.json()["state"] == "pending", r.text
    assert r.json()["author"] == "max@contoso.com" and r.json()["origin"] == "api"
    needed = " ".join(r.json()["activationNeeded"])
    assert "risk tier lowered" in needed and "approval role" in needed and "holdoutPercent" in needed
    in_use = next(i for i in api.get("/actions").json()["items"] if i["id"] == "ap.post-gl-adjustment")
    assert in_use["version"] == 1 and in_use["approvalRole"] == "AP.Approver"
    url = f"/actions/ap.post-gl-adjustment/versions/{r.json()['version']}/activate"
    assert api.post(url, headers=EDITOR).status_code == 403  # its author cannot activate it


def test_pointing_an_action_at_another_flow_setting_waits_for_a_second_person(api):
    body = repo_action("o2c.close-case")
    del body["id"], body["version"]
    body["flow"] = {"setting": "FLOW_LEADS_REASSIGN", "connector": body["flow"]["connector"]}
    r = api.put("/actions/o2c.close-case", json=body, headers=EDITOR)
    assert r.status_code == 201 and r.json()["state"] == "pending"
    assert r.json()["activationNeeded"] == ["flow changed"]


def test_an_old_pending_version_cannot_undo_a_tightening_that_went_live_after_it(api):
    body = repo_action("ap.cancel-field-request")
    del body["id"], body["version"]
    loose = api.put("/actions/ap.cancel-field-request", json={**body, "flow": {**body["flow"], "setting": "FLOW_X"}},
                    headers=EDITOR)
    assert loose.status_code == 201 and loose.json()["state"] == "pending"
    tight = api.put("/actions/ap.cancel-field-request", json={**body, "dailyCap": 1}, headers=EDITOR)
    assert tight.status_code == 201 and tight.json()["state"] == "active"
    r = api.post(f"/actions/ap.cancel-field-request/versions/{loose.json()['version']}/activate",
                 headers=_principal("ana@contoso.com", "Catalog.Approver"))
    assert r.status_code == 409 and "superseded" in r.json()["detail"]
    in_use = next(i for i in api.get("/actions").json()["items"] if i["id"] == "ap.cancel-field-request")
    assert in_use["version"] == tight.json()["version"] and in_use["dailyCap"] == 1


def test_a_contract_the_planner_cannot_compile_is_refused_before_it_is_stored(api):
    body = repo_action("ap.cancel-field-request")
    del body["id"], body["version"]
    for contract in ({"required": 5}, {"type": "object", "properties": {"a": {"type": "no-such-type"}}}):
        r = api.put("/actions/ap.cancel-field-request", json={**body, "dataContract": contract}, headers=EDITOR)
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"].startswith("/dataContract"), r.text
