"""Every setting the app reads is listed, with its local default, in local.settings.example.json."""
import json
import os

from devhost.boot import load_settings
from shared.bootstrap import build_flows
from shared.settings import DEFAULTS, Settings
from tests.conftest import ROOT


def example():
    return json.loads((ROOT / "local.settings.example.json").read_text())["Values"]


def test_every_setting_the_app_reads_is_in_the_example():
    assert set(DEFAULTS) <= set(example())


def test_every_catalog_flow_setting_is_in_the_example():
    flows = {json.loads(p.read_text())["flow"]["setting"] for p in (ROOT / "catalog" / "actions").glob("*.json")}
    assert flows | {"FLOW_READ_RECORD"} <= set(example())


def test_a_malformed_number_falls_back_to_its_default_instead_of_failing():
    assert Settings.from_env({"MAX_BODY_BYTES": "lots"}).max_body_bytes == int(DEFAULTS["MAX_BODY_BYTES"])


def test_a_setting_only_the_catalog_names_is_read_from_the_same_mapping():
    settings = Settings.from_env({"FLOW_AP_REQUEST_MISSING_FIELDS": " https://flows.example/ap "})
    assert settings.get("FLOW_AP_REQUEST_MISSING_FIELDS") == "https://flows.example/ap"
    assert settings.get("FLOW_O2C_OPEN_CASE") == "" and settings.get("TABLE_PREFIX") == "closedloop"
    assert build_flows(settings).url("FLOW_AP_REQUEST_MISSING_FIELDS") == " https://flows.example/ap "


def test_settings_from_the_environment_are_a_snapshot_taken_once():
    settings = Settings.from_env()
    assert dict(settings.source) == dict(os.environ) and settings.source is not os.environ


def test_one_table_per_kind_unless_the_local_host_runs_on_azurite():
    assert Settings.from_env({}).table_shards == 1
    azurite = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k;TableEndpoint=http://127.0.0.1:1/x;"
    assert load_settings({"TABLES_CONNECTION": azurite, "TABLE_SHARDS": ""}, environ={})["TABLE_SHARDS"] == "8"
    assert load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "TABLE_SHARDS": ""},
                         environ={})["TABLE_SHARDS"] == "8"
    assert load_settings({"TABLES_CONNECTION": azurite, "TABLE_SHARDS": "3"}, environ={})["TABLE_SHARDS"] == "3"
    cloud = "DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey=k;EndpointSuffix=core.windows.net"
    assert not load_settings({"TABLES_CONNECTION": cloud, "TABLE_SHARDS": ""}, environ={}).get("TABLE_SHARDS")

