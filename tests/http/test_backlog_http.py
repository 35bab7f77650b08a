"""Reading and curating the backlog over HTTP."""
from tests.factories import finding, principal_header, settled, treated_case

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
    # Every case, open or finished: the agents may have finished some already (the backlog lists open work).
    groups = api.get("/backlog", params={"state": "all"}).json()["items"]
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


def _close_in_store(oid):
    """Close a needs_review case through the store along a legal path (closing by sweep or card is not this
    file's subject)."""
    from shared import runtime
    from shared.domain.status import Status
    from shared.services.lifecycle import advance

    svc = runtime.services()
    advance(svc, svc.store.get(oid), [Status.closed], "olga@contoso.com", "nothing left to do", "cid-close")


def test_closed_case_leaves_the_open_backlog(api):
    pattern = "pattern-closed-leaves-backlog"
    keep, close = seed(api, 1, deviationPattern=pattern, caseKey=treated_case("OPEN-KEEP")) + \
        seed(api, 1, deviationPattern=pattern, caseKey=treated_case("OPEN-CLOSE"))
    settled(api, keep, "needs_review")
    settled(api, close, "needs_review")
    _close_in_store(close)

    def listed(state=None):
        params = {"deviationPattern": pattern, **({"state": state} if state else {})}
        return {o["id"] for o in api.get("/opportunities", params=params).json()["items"]}

    def group(state=None):
        params = {"deviationPattern": pattern, **({"state": state} if state else {})}
        [g] = api.get("/backlog", params=params).json()["items"]
        return g

    assert listed("open") == {keep} and listed("finished") == {close} and listed() == listed("all") == {keep, close}
    for g in (group(), group("open")):
        assert g["cases"] == 1 and g["statusCounts"] == {"needs_review": 1} and g["finished"] == 1
    assert group("finished")["statusCounts"] == {"closed": 1}
    assert group("all")["cases"] == 2


def test_an_unknown_state_is_named(api):
    for path in ("/opportunities", "/backlog"):
        r = api.get(path, params={"state": "done"})
        assert r.status_code == 422 and r.json()["errors"][0]["parameter"] == "state"


def test_effort_is_the_persons_estimate_else_the_catalogs(api):
    [oid] = seed(api, 1, processArea="order-to-cash", deviationPattern="delivery-sla-breached",
                 caseKey=treated_case("EFFORT", "order-to-cash"),
                 attributes={"orderId": "O", "customerId": "C", "shippingCost": 40})
    view = api.get(f"/opportunities/{oid}").json()
    from shared.runtime import REPO_CATALOG, load_catalog
    action = load_catalog(REPO_CATALOG, "local").actions["o2c.credit-expedited-shipping"]
    assert (view["effortHours"], view["effortSource"]) == (
        (action.effortHours, "catalog") if action.effortHours is not None else (None, None))
    assert view["prerequisites"] == action.prerequisites and view["failureModes"] == action.failureModes
    r = api.patch(f"/opportunities/{oid}", json={"effortHours": 6.5}, headers=ANA)
    assert r.status_code == 200 and (r.json()["effortHours"], r.json()["effortSource"]) == (6.5, "person")
    assert api.get(f"/opportunities/{oid}").json()["effortHours"] == 6.5
    for bad in (-1, 10_001, "six", True):
        r = api.patch(f"/opportunities/{oid}", json={"effortHours": bad}, headers=ANA)
        assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/effortHours"]
    assert api.patch(f"/opportunities/{oid}", json={"effortHours": None}, headers=ANA).json()["effortSource"] in (
        "catalog", None)
    g = next(g for g in api.get("/backlog", params={"deviationPattern": "delivery-sla-breached", "state": "all"}).json()["items"])
    assert g["action"] == {"effortHours": action.effortHours, "prerequisites": action.prerequisites,
                           "failureModes": action.failureModes}
