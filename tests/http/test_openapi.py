"""The OpenAPI 2.0 document: valid, one operation per route and a route per operation, the connector's file
the same, examples accepted by the local host, and thousands of generated requests with zero 5xx."""
import json
import os
import re

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.api.openapi import CONNECTOR, OPERATIONS, document
from tests.conftest import hosted


_ROUTES = """
import json, function_app
found = []
for f in function_app.app.get_functions():
    b = f.get_bindings_dict()["bindings"][0]
    if b["type"] == "httpTrigger":
        found += [["/" + b["route"], str(getattr(m, "value", m)).lower()] for m in b["methods"]]
print(json.dumps(found))
"""


def routes():
    """Every (path, method) the Functions host would serve, from a fresh interpreter (indexing is one-shot)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", _ROUTES], cwd=ROOT, capture_output=True, text=True, check=True)
    return {tuple(r) for r in json.loads(out.stdout)}


def test_the_document_is_valid_openapi_2():
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV2SpecValidator

    validate(document(), cls=OpenAPIV2SpecValidator)


def test_every_http_route_is_an_operation_and_every_operation_a_route():
    documented = {(path, method) for path, methods in document()["paths"].items() for method in methods}
    assert documented == routes()


def test_operations_are_written_for_an_agent_choosing_a_tool():
    doc = document()
    ops = [op for methods in doc["paths"].values() for op in methods.values()]
    ids = [op["operationId"] for op in ops]
    assert len(ids) == len(set(ids))
    for op in ops:
        assert op["summary"] and len(op["summary"]) <= 80 and len(op["description"]) >= 30
        assert all(p.get("x-ms-summary") for p in op["parameters"])
    assert doc["securityDefinitions"]["oauth2-auth"]["type"] == "oauth2"
    assert len(json.dumps(doc).encode()) < 1_000_000


def test_the_connector_file_is_the_same_document():
    on_disk = json.loads((CONNECTOR / "apiDefinition.swagger.json").read_text())
    assert on_disk == document("closedloop.azurewebsites.net"), "run: python -m shared.api.openapi"
    props = json.loads((CONNECTOR / "apiProperties.json").read_text())
    assert props["properties"]["connectionParameters"]["token"]["oAuthSettings"]["identityProvider"] == "aad"


@pytest.fixture(scope="module")
def served(azurite):
    with hosted(azurite) as server:
        yield server


def test_the_app_serves_the_same_document(served):
    host = served.base_url.split("://")[1].split("/")[0]
    got = requests.get(f"{served.base_url}/openapi.json").json()
    assert got == document(host, "http")


def test_the_examples_in_the_document_are_accepted_by_the_running_app(served):
    from tests.http.test_catalog_http import _principal

    admin = _principal("ana@contoso.com", "Autonomy.Admin")  # the connector's caller, as Easy Auth passes it
    for path, method, op_id, *_rest, example in OPERATIONS:
        if example is None or "{" in path:
            continue
        r = requests.request(method.upper(), served.base_url + path, json=example, headers=admin)
        assert r.status_code < 300, (op_id, r.status_code, r.text[:300])


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                     max_leaves=12)
_FIELDS = ["eventId", "processArea", "deviationPattern", "caseKey", "detectedAt", "attributes", "metric", "value",
           "observedAt", "token", "decision", "owner", "dismiss", "reason", "mode", "freeze", "kpiImpact"]
_SHAPED = st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6)
_BODY = st.one_of(_JSON, _SHAPED, st.lists(_SHAPED, max_size=3)).map(lambda v: json.dumps(v).encode()) | \
    st.binary(max_size=80)
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_OPS = [(p, m, [x for x in params if x["in"] in ("path", "query")]) for p, m, _id, _s, _d, params, *_ in OPERATIONS]


# In CI the examples are derandomized (the same 3000 every run), so a clean clone's verdict does not depend
# on the draw; locally each run explores new ones, and .hypothesis keeps what failed.
@settings(max_examples=3000, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=list(HealthCheck))
@given(op=st.sampled_from(_OPS), values=st.lists(_TEXT, min_size=8, max_size=8), body=_BODY,
       kind=st.sampled_from(["application/json", "text/csv", "text/plain", "", "application/x-www-form-urlencoded"]))
def test_thousands_of_generated_and_malformed_requests_never_get_a_5xx(served, op, values, body, kind):
    path, method, params = op
    url, query, i = path, {}, 0
    for p in params:
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", requests.utils.quote(values[i], safe="") or "x")
        elif values[i]:
            query[p["name"]] = values[i]
        i += 1
    r = requests.request(method.upper(), served.base_url + url, params=query,
                         data=body if method != "get" else None, headers={"content-type": kind} if kind else {})
    assert r.status_code < 500, (method, url, query, body[:200], r.status_code, r.text[:300])
    if r.status_code >= 400 and r.status_code != 404 or re.search(r"problem", r.headers.get("content-type", "")):
        assert r.headers["content-type"].startswith("application/problem+json"), r.headers


@pytest.mark.parametrize("route, query", [("/opportunities", {"top": "²"}), ("/kpis", {"actionVersion": "²"}),
                                          ("/insights", {"days": "³"}), ("/incidents", {"top": "¹"})])
def test_unicode_digits_that_are_not_numbers_get_a_422_not_a_500(served, route, query):
    # Found by the generated requests above: str.isdigit() is true for '²', which int() refuses.
    r = requests.get(served.base_url + route, params=query)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")


# Rules of the server that Swagger 2.0, which the custom connector needs, cannot state: it has no unions
# (oneOf, or a type list), no patternProperties and no way to say "a token this API issued". Each exception names
# the operations it covers and why; every other check runs on every operation as `schemathesis run -c all` does.
_SCHEMATHESIS_TOML = """
[[operations]]
# Continuation tokens are opaque keyset cursors only the API issues; give one it issued.
include-operation-id = "ListOpportunities"
parameters = {{ "query.continuationToken" = "{token}" }}

[[operations]]
# Attribute names must be identifiers (no patternProperties), Celonis triggers need a mapping or both query names,
# and text must not be blank or hold only what the store refuses: a schema-valid body may still be a 422.
# Findings and outcomes also take epoch numbers for dates, numbers as text and a plain number for kpiImpact,
# which a one-type schema cannot say, so a "wrong type" there may be accepted.
include-operation-id-regex = "^(IngestFindings|IngestCelonis|IngestProcessMining|SendOutcomes)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 403, 404, 409, 422, 429, "5xx"]
checks.negative_data_rejection.expected-statuses = ["2xx", 400, 401, 403, 404, 405, 406, 409, 415, 422, 428, 429, "5xx"]

[[operations]]
# `helpful` is "yes", "no" or a boolean; a one-type schema says the words. Supplied `data` is free-form contract
# fields, and the one body decoder refuses what no store keeps (integers past 64 bits, lone surrogates): a 422.
include-operation-id = "DecideApproval"
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 403, 404, 409, 422, 429, "5xx"]
checks.negative_data_rejection.expected-statuses = ["2xx", 400, 401, 403, 404, 405, 406, 409, 415, 422, 428, 429, "5xx"]

[[operations]]
# A year has 52 or 53 ISO weeks (the pattern allows 53), and a commitment item is either an opportunityId or a
# processArea with a deviationPattern (no unions): a schema-valid week or item may still be a 422, an id a 404.
include-operation-id-regex = "^(CommitBacklog|GetBacklog|ListCommitments|UpdateOpportunity)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", 401, 403, 404, 409, 422, 429, "5xx"]
"""
# Enough generated cases (>= 1,000 over the operations) in about a minute and a half on the 2-core reference machine.
_MAX_EXAMPLES = 12


def test_schemathesis_with_every_check_finds_no_failure(served, tmp_path):
    import base64
    import subprocess
    import sys
    from pathlib import Path

    token = base64.urlsafe_b64encode(json.dumps({"p": 1e15, "id": ""}).encode()).decode().rstrip("=")
    config = tmp_path / "schemathesis.toml"
    config.write_text(_SCHEMATHESIS_TOML.format(token=token))
    cli = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run([str(cli), "--no-color", "--config-file", str(config), "run",
                          f"{served.base_url}/openapi.json", "--url", served.base_url, "-c", "all",
                          "--seed", "20261203", "--max-examples", str(_MAX_EXAMPLES)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    out = run.stdout + run.stderr
    generated = re.search(r"(\d+) generated", out)
    assert run.returncode == 0, out[-8000:]
    assert generated and int(generated.group(1)) >= 1000, out[-3000:]


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "OPTIONS", "HEAD", "CONNECT"])
def test_a_method_a_route_lacks_is_a_405_problem_with_allow_as_on_the_functions_host(served, method):
    # The stdlib server answered 501 with an HTML page to any method it had no handler for.
    r = requests.request(method, f"{served.base_url}/opportunities/{'0' * 32}", timeout=10)
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "PATCH"}
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (r.content == b"") == (method == "HEAD")


def test_an_empty_batch_the_server_refuses_is_one_the_document_refuses_too():
    paths = document()["paths"]
    for path in ("/findings", "/outcomes"):
        assert paths[path]["post"]["parameters"][0]["schema"]["minItems"] == 1
    assert document()["definitions"]["ProcessRefresh"]["properties"]["businessRuleStatistics"]["minItems"] == 1


def test_every_error_status_is_documented_as_a_problem_and_every_store_call_as_503_with_retry_after():
    for path, methods in document()["paths"].items():
        for method, op in methods.items():
            assert "application/problem+json" in op["produces"] or op["operationId"] == "GetHealth"
            codes = set(op["responses"])
            if op["operationId"] != "GetOpenApi":
                assert "Retry-After" in op["responses"]["503"]["headers"], (path, method)
            if any(p["in"] == "body" for p in op["parameters"]):
                assert {"400", "413", "415", "422"} <= codes, (path, method)
            if op["operationId"] not in ("GetHealth", "GetOpenApi", "DecideApproval", "ConfirmApproval"):
                assert "401" in codes, (path, method)  # the function key, in Azure


@pytest.mark.parametrize("route, name", [("/opportunities", "top"), ("/backlog", "top"), ("/kpis", "actionVersion"),
                                         ("/kpis.csv", "actionVersion"), ("/insights", "days")])
def test_a_query_number_of_4401_digits_is_a_422_naming_the_parameter(served, route, name):
    # int() of more than 4,300 digits raises ValueError: it was a 500.
    r = requests.get(served.base_url + route, params={name: "1" * 4401})
    assert r.status_code == 422 and r.json()["errors"][0]["parameter"] == name
