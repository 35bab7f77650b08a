"""With INGEST_API_KEY set, senders must present it (x-api-key, or AppKey as Celonis sends it)."""
import pytest
import requests

from tests.conftest import hosted
from tests.factories import finding


@pytest.fixture(scope="module")
def keyed(azurite):
    with hosted(azurite, INGEST_API_KEY="s3cret-key") as server:
        yield server.base_url


@pytest.mark.parametrize("headers,status", [
    ({}, 401), ({"x-api-key": "wrong"}, 401), ({"x-api-key": "s3cret-key"}, 202), ({"AppKey": "s3cret-key"}, 202),
])
def test_ingest_requires_the_configured_key(keyed, headers, status):
    r = requests.post(keyed + "/findings", json=finding(), headers=headers)
    assert r.status_code == status
    if status == 401:
        assert r.json()["errors"][0]["header"] == "x-api-key"
