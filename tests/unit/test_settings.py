"""Every setting the app reads is listed, with its local default, in local.settings.example.json."""
import json

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
