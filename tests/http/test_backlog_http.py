"""Reading and curating the backlog over HTTP."""
from tests.factories import finding, principal_header, treated_case

ANA = principal_header("ana@contoso.com")
OWNER = principal_header("olga@contoso.com", "Backlog.Owner")


def seed(api, n, **kw):
    r = api.post("/findings", json=[finding(**kw) for _ in range(n)])
    assert r.status_code == 202
    return [o["id"] for o in r.json()["opportunities"]]


def test_list_is_ranked_and_paged_with_continuation_tokens(api):
    seed(api, 12, processArea="lead-management", deviationPattern="lead-stale",
         attributes={"leadId": "L", "region": "EMEA"})
    items, token = [], None
    while True:
        params = {"top": 5, "processArea": "lead-management", "deviationPattern": "lead-stale"}
        if token:
            params["continuationToken"] = token
        page = api.get("/opportunities", params=params).json()
        items += page["items"]
        token = page["continuationToken"]
        if not token:
            break
    assert len(items) == 12 and len({i["id"] for i in items}) == 12
    assert [i["scores"]["priority"] for i in items] == sorted((i["scores"]["priority"] for i in items), reverse=True)


def test_bad_query_parameters_are_named(api):
    for params, name in (({"top": "0"}, "top"), ({"top": "many"}, "top"), ({"status": "nope"}, "status"),
                         ({"continuationToken": "%%%"}, "continuationToken")):
        r = api.get("/opportunities", params=params)
        assert r.status_code == 422 and r.json()["errors"][0]["parameter"] == name


def test_unknown_opportunity_is_404(api):
    assert api.get("/opportunities/ffffffffffffffffffffffffffffffff").status_code == 404
    assert api.patch("/opportunities/nope", json={"owner": "x"}, headers=ANA).status_code == 404


def settled(api, oid, status, timeout=60.0):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get(f"/opportunities/{oid}").json()["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{oid} never reached {status}")


def test_patch_owner_notes_and_dismiss(api):
    # A pattern no catalog action handles stops at needs_review, so the agents leave it alone meanwhile.
    [oid] = seed(api, 1, deviationPattern="pattern-nobody-automates", caseKey=treated_case("NOBODY"))
    settled(api, oid, "needs_review")
    r = api.patch(f"/opportunities/{oid}", json={"owner": "ana@contoso.com", "notes": "vendor called"}, headers=ANA)
    assert r.status_code == 200 and r.json()["owner"] == "ana@contoso.com" and r.json()["notes"] == "vendor called"
    etag = r.headers["ETag"]
    r = api.patch(f"/opportunities/{oid}", json={"dismiss": True, "dismissReason": "duplicate vendor"},
                  headers={"If-Match": etag, **OWNER})
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert api.patch(f"/opportunities/{oid}", json={"notes": "late"}, headers={"If-Match": etag, **ANA}).status_code == 412


def test_patch_refuses_unknown_and_mistyped_fields_naming_each(api):
    [oid] = seed(api, 1, deviationPattern="pattern-nobody-automates", caseKey=treated_case("NOBODY-FIELDS"))
    r = api.patch(f"/opportunities/{oid}", json={"status": "closed", "owner": 5, "dismiss": "yes"}, headers=ANA)
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {"/status", "/owner", "/dismiss"}
    assert api.get(f"/opportunities/{oid}").json()["owner"] is None


def test_patch_trusts_no_name_header_only_the_verified_principal(api):
    [oid] = seed(api, 1, deviationPattern="pattern-nobody-automates", caseKey=treated_case("NOBODY-NAME"))
    settled(api, oid, "needs_review")
    forged = {"x-ms-client-principal-name": "ceo@contoso.com"}
    r = api.patch(f"/opportunities/{oid}", json={"notes": "x"}, headers=forged)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    r = api.patch(f"/opportunities/{oid}", json={"notes": "called"}, headers={**forged, **ANA})
    assert r.status_code == 200
    [entry] = [a for a in api.get(f"/opportunities/{oid}").json()["audit"] if a["event"] == "updated"]
    assert entry["actor"] == "ana@contoso.com" and entry["inputs"]["changes"] == {"notes": "called"}


def test_dismissal_needs_the_dismiss_role_and_is_audited(api):
    [oid] = seed(api, 1, deviationPattern="pattern-nobody-automates", caseKey=treated_case("NOBODY-DISMISS"))
    settled(api, oid, "needs_review")
    r = api.patch(f"/opportunities/{oid}", json={"dismiss": True, "dismissReason": "no"}, headers=ANA)
    assert r.status_code == 403 and "Backlog.Owner" in r.json()["detail"]
    assert api.get(f"/opportunities/{oid}").json()["status"] == "needs_review"
    r = api.patch(f"/opportunities/{oid}", json={"dismiss": True, "dismissReason": "vendor left"}, headers=OWNER)
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    [entry] = [a for a in api.get(f"/opportunities/{oid}").json()["audit"] if a["event"] == "dismissed"]
    assert entry["actor"] == "olga@contoso.com" and entry["reason"] == "vendor left"


def test_backlog_groups_cases_by_area_and_pattern(api):
    seed(api, 3, processArea="order-to-cash", deviationPattern="delivery-sla-breached",
         attributes={"orderId": "O", "customerId": "C", "shippingCost": 40})
    groups = api.get("/backlog").json()["items"]
    g = next(g for g in groups if g["deviationPattern"] == "delivery-sla-breached")
    assert g["cases"] == 3 and g["actionId"] == "o2c.credit-expedited-shipping"
    assert g["meanPriority"] > 0 and sum(g["statusCounts"].values()) == 3


def test_unknown_route_and_wrong_method_are_problems(api):
    assert api.get("/nothing-here").status_code == 404
    r = api.delete("/findings")
    assert r.status_code == 405 and "POST" in r.headers["Allow"]


def test_health_reports_the_store_and_the_timer_heartbeat(api, host):
    r = api.get("/health")
    assert r.status_code == 200 and r.json()["checks"]["store"] == "ok"
    host.run_timer("sweep")
    sweep = api.get("/health").json()["checks"]["sweep"]
    assert sweep["ok"] is True and sweep["lastRun"]


def test_the_host_fires_the_sweep_on_its_schedule(azurite):
    import time

    import requests

    from tests.conftest import hosted

    # Every second, so the schedule (not run_timer) must beat the heartbeat within a few seconds.
    with hosted(azurite, {"scheduled": True}, SWEEP_SCHEDULE="* * * * * *") as server:
        deadline = time.monotonic() + 15
        sweep = {}
        while time.monotonic() < deadline:
            sweep = requests.get(f"{server.base_url}/health").json()["checks"]["sweep"]
            if sweep.get("lastRun"):
                break
            time.sleep(0.2)
        assert sweep.get("ok") is True and sweep["lastRun"], sweep

