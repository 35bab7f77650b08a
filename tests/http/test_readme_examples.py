"""Every ingest example in the README is posted to the local host as written, and its opportunity read back.

An example is a fenced ```http block (request line, headers, blank line, body) after an HTML comment
`<!-- example: ... -->` that says what the stored opportunity must show (`expect path=value; ...`, a path being
slash-separated keys into GET /api/opportunities/{id}), and `signed` when the host must hold the README's example
Celonis signing secret. `{{now}}` in an example stands for the current UTC time and `{{hmac}}` for the signature
of its body, as the README's signing snippet computes it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.conftest import hosted

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "example-signing-secret"  # the README's example secret
_EXAMPLE = re.compile(r"<!-- example:(?P<notes>[^>]*?)-->\s*```http\n(?P<request>.*?)```", re.S)


def examples() -> list[tuple[str, dict]]:
    found = []
    for k, m in enumerate(_EXAMPLE.finditer(README.read_text(encoding="utf-8"))):
        head, _, body = m["request"].partition("\n\n")
        request_line, *header_lines = head.strip().splitlines()
        method, target = request_line.split()[:2]
        headers = dict(line.split(":", 1) for line in header_lines)
        notes = m["notes"].strip()
        expect = {}
        for part in re.findall(r"expect ([^;]+)", notes):
            for pair in part.split(","):
                key, _, value = pair.strip().partition("=")
                expect[key.strip()] = value.strip()
        found.append((f"{k}:{target.split('?')[0]}", {
            "method": method, "target": target, "headers": {h.strip(): v.strip() for h, v in headers.items()},
            "body": body.strip(), "expect": expect, "signed": "signed" in re.split(r"[\s;,]+", notes)}))
    return found


EXAMPLES = examples()


def test_signed_examples_are_told_apart():
    # "signed;" before the expectations marks an example for the host holding the secret.
    assert any(e["signed"] for _, e in EXAMPLES) and not all(e["signed"] for _, e in EXAMPLES)


def test_the_readme_documents_an_example_per_sender():
    targets = [e["target"].split("?")[0] + " " + e["headers"].get("Content-Type", e["headers"].get("content-type", ""))
               + (" ce" if any(h.lower().startswith("ce-") for h in e["headers"]) else "") for _, e in EXAMPLES]
    assert any(t.startswith("/api/findings/celonis ") and "cloudevents" not in t and " ce" not in t
               for t in targets), "a Celonis event subscription or Action Flow example"
    assert any(t.startswith("/api/findings/celonis") and t.endswith(" ce") for t in targets), \
        "an Orchestration Engine CloudEvent (binary mode) example"
    assert any(t.startswith("/api/findings/process-mining") for t in targets), "a Process Mining trigger example"
    assert any(t.startswith("/api/findings ") for t in targets), "a generic example"


@pytest.fixture(scope="module")
def host(request, azurite):
    """One local host at a time (the app's services are one per process): pytest groups the examples by this
    module-scoped parameter and stops the first host before it starts the second."""
    with hosted(azurite, **({"CELONIS_SIGNING_SECRET": SECRET} if request.param else {})) as server:
        yield server


def _fill(text: str, now: str) -> str:
    return text.replace("{{now}}", now)


def _at(doc, path: str):
    for key in path.split("/"):
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    return doc


@pytest.mark.parametrize("host,example", [(e["signed"], e) for _, e in EXAMPLES], indirect=["host"],
                         ids=[n for n, _ in EXAMPLES])
def test_readme_example_is_accepted_and_its_opportunity_reads_back(host, example):
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    body = _fill(example["body"], now).encode()
    headers = {k: _fill(v, now) for k, v in example["headers"].items()}
    for key, value in headers.items():
        if value == "{{hmac}}":
            headers[key] = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    url = host.base_url.removesuffix("/api") + _fill(example["target"], now)
    r = requests.request(example["method"], url, data=body, headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    ids = [o["id"] for o in r.json()["opportunities"]]
    assert ids, r.text
    opp = requests.get(f"{host.base_url}/opportunities/{ids[0]}", timeout=30).json()
    for path, wanted in example["expect"].items():
        got = _at(opp, path)
        assert (json.dumps(got) if not isinstance(got, str) else got) == wanted, (path, got, opp)
