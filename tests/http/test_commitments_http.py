"""The weekly commitment over HTTP on the local host: who may commit, what is refused by name, and what the
backlog shows of committed items (done, in flight, stuck)."""
from shared.domain.commitment import current_week
from tests.factories import finding, principal_header, settled, treated_case

ANA = principal_header("ana@contoso.com")
OWNER = principal_header("olga@contoso.com", "Backlog.Owner")
NOBODY = "pattern-nobody-automates"


def seed(api, prefix, n=1, pattern=NOBODY):
    """Cases no catalog action handles: they stop at needs_review and the agents leave them alone."""
    r = api.post("/findings", json=[finding(deviationPattern=pattern, caseKey=treated_case(f"{prefix}-{i}"))
                                    for i in range(n)])
    assert r.status_code == 202
    ids = [o["id"] for o in r.json()["opportunities"]]
    for oid in ids:
        settled(api, oid, "needs_review")
    return ids


def move(oid, *path):
    """Move a case along a legal status path in the store (what reviewers and the sweep do elsewhere)."""
    from shared import runtime
    from shared.domain.status import Status
    from shared.services.lifecycle import advance

    svc = runtime.services()
    advance(svc, svc.store.get(oid), [Status(s) for s in path], "test", "moved by the test", "cid-move")


def commit(api, body, headers=OWNER):
    return api.post("/backlog/commitments", json=body, headers=headers)


def test_committing_needs_a_signed_in_person_with_the_commit_role(api):
    [oid] = seed(api, "ROLE")
    body = {"week": "2026-W10", "owner": "ana@contoso.com", "items": [{"opportunityId": oid}]}
    assert commit(api, body, headers={}).status_code == 401
    r = commit(api, body, headers=ANA)
    assert r.status_code == 403 and "Backlog.Owner" in r.json()["detail"]
    r = api.patch(f"/opportunities/{oid}", json={"committedFor": "2026-W10"}, headers=ANA)
    assert r.status_code == 403
    assert api.get("/backlog/commitments", params={"week": "2026-W10"}).json()["items"] == []
    assert not any(a["event"] == "committed" for a in api.get(f"/opportunities/{oid}").json()["audit"])


def test_a_bad_commitment_names_each_field_and_commits_nothing(api):
    r = commit(api, {"week": "2026-W54", "owner": "", "items": [{"opportunityId": 5}, {"processArea": "ap"}],
                     "extra": 1})
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {"/week", "/owner", "/items/0", "/items/1", "/extra"}
    r = commit(api, {"owner": "ana", "items": [{"opportunityId": "f" * 32}] * 51})
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/items"]
    [oid] = seed(api, "BAD")
    r = commit(api, {"week": "2026-W11", "owner": "ana", "items": [
        {"opportunityId": oid}, {"opportunityId": "f" * 32}, {"processArea": "nowhere", "deviationPattern": "none"}]})
    assert r.status_code == 404
    assert [e["pointer"] for e in r.json()["errors"]] == ["/items/1/opportunityId", "/items/2"]
    assert api.get("/backlog/commitments", params={"week": "2026-W11"}).json()["items"] == []
    for params in ({"week": "49"}, {"week": "2026-W00"}):
        r = api.get("/backlog/commitments", params=params)
        assert r.status_code == 422 and r.json()["errors"][0]["parameter"] == "week"
    r = api.patch(f"/opportunities/{oid}", json={"committedFor": "next week"}, headers=OWNER)
    assert r.status_code == 422 and [e["pointer"] for e in r.json()["errors"]] == ["/committedFor"]


def test_a_group_and_a_single_case_are_committed_and_committing_again_replaces_the_owner(api):
    pattern = "pattern-committed-group"
    seed(api, "GROUP", 2, pattern)
    [single] = seed(api, "SINGLE")
    week = "2026-W12"
    r = commit(api, {"week": week, "owner": "ana@contoso.com", "items": [
        {"processArea": "Accounts-Payable", "deviationPattern": pattern}, {"opportunityId": single}]})
    assert r.status_code == 201 and r.json()["week"] == week
    r = commit(api, {"week": week, "owner": "bob@contoso.com", "items": [
        {"processArea": "accounts-payable", "deviationPattern": pattern}]})
    assert r.status_code == 201
    items = api.get("/backlog/commitments", params={"week": week}).json()["items"]
    assert [(i["kind"], i["owner"]) for i in items] == [("group", "bob@contoso.com"), ("opportunity", "ana@contoso.com")]
    assert items[0]["by"] == "olga@contoso.com" and items[0]["cases"] == 2
    view = api.get(f"/opportunities/{single}").json()
    assert view["owner"] == "ana@contoso.com"
    [entry] = [a for a in view["audit"] if a["event"] == "committed"]
    assert entry["actor"] == "olga@contoso.com" and entry["inputs"]["week"] == week
    assert view["status"] == "needs_review"  # a commitment moves no status


def test_the_backlog_shows_the_weeks_commitments_first_with_what_became_of_them(api):
    pattern = "pattern-committed-outcomes"
    done, flying, _waiting_on_review = seed(api, "OUTCOME", 3, pattern)
    [low] = seed(api, "LOW-ONE")
    week = "2026-W13"
    assert commit(api, {"week": week, "owner": "ana", "items": [
        {"processArea": "accounts-payable", "deviationPattern": pattern}]}).status_code == 201
    r = api.patch(f"/opportunities/{low}", json={"committedFor": week, "owner": "bob"}, headers=OWNER)
    assert r.status_code == 200 and r.json()["owner"] == "bob"
    move(done, "closed")
    move(flying, "planned")
    items = api.get("/backlog", params={"week": week}).json()["items"]
    group, single = items[0], items[1]
    assert group["kind"] == "group" and group["deviationPattern"] == pattern
    assert group["committed"]["owner"] == "ana" and group["committed"]["week"] == week
    assert group["counts"] == {"done": 1, "inFlight": 1, "stuck": 1}
    assert group["cases"] == 2 and group["finished"] == 1  # the open backlog: the closed case is counted apart
    assert single["kind"] == "opportunity" and single["opportunityId"] == low
    assert single["committed"]["owner"] == "bob" and single["outcome"] == "stuck"
    assert all(i["committed"] is None for i in items[2:])
    # Another week's backlog has nothing committed on top.
    assert all(i["committed"] is None for i in api.get("/backlog", params={"week": "2026-W40"}).json()["items"])


def test_the_backlog_defaults_to_the_current_weeks_commitments(api):
    [oid] = seed(api, "THIS-WEEK")
    r = api.patch(f"/opportunities/{oid}", json={"committedFor": current_week(_now())}, headers=OWNER)
    assert r.status_code == 200 and r.json()["owner"] == "olga@contoso.com"
    first = api.get("/backlog").json()["items"][0]
    assert first["kind"] == "opportunity" and first["opportunityId"] == oid
    assert api.get("/backlog/commitments").json()["week"] == current_week(_now())
    page = api.get("/dashboard").text
    assert 'id="commitments"' in page and "olga@contoso.com" in page and f"case {oid[:8]}" in page


def _now():
    from datetime import UTC, datetime
    return datetime.now(UTC)
