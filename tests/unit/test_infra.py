"""The Bicep deployment, parsed (pycep; the Bicep CLI cannot be downloaded here): every setting and queue the
code reads is provided, nothing secret is emitted, and each identity-based connection has its role."""
import json
import re
from pathlib import Path

import pytest
from pycep import BicepParser

from shared.runtime import REPO_CATALOG, load_catalog
from shared.settings import DEFAULTS

INFRA = Path(__file__).resolve().parents[2] / "infra"
ROOT = INFRA.parent
# Read by the code but deliberately not set by the deployment, each with the reason (also in the README).
NOT_IN_AZURE = {
    "TABLES_CONNECTION": "identity-based: AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage": "identity-based: AzureWebJobsStorage__accountName/__credential/__clientId",
    "ServiceBusConnection": "identity-based: ServiceBusConnection__fullyQualifiedNamespace",
    "OUTBOX_DIR": "the local host's card folder",
    "CATALOG_DIR": "the catalog ships in the package (catalog/)",
    "PROMPT_DIR": "the prompts ship in the package (prompts/)",
    "WEBSITE_AUTH_ENABLED": "set by App Service itself when Easy Auth is on",
    "LLM_BASE_URL": "for OpenAI-compatible endpoints other than Azure OpenAI",
    "LLM_API_KEY": "for OpenAI-compatible endpoints other than Azure OpenAI",
    "LLM_MODEL": "for OpenAI-compatible endpoints other than Azure OpenAI",
    "AZURE_OPENAI_API_KEY": "the managed identity gets tokens instead",
    "DATAVERSE_TOKEN": "the local fake Dataverse only",
}


def parse(path: Path) -> dict:
    return BicepParser().parse(file_path=path)


@pytest.fixture(scope="module")
def bicep():
    return {p.relative_to(INFRA).as_posix(): parse(p) for p in sorted(INFRA.rglob("*.bicep"))}


def set_by_deployment(bicep) -> set[str]:
    plain = set(bicep["modules/functionapp.bicep"]["variables"]["plain"]["value"])
    # Settings read from a resource at runtime sit outside the loop (BCP178), as literal {name, value} objects.
    plain |= {s["name"] for s in bicep["modules/functionapp.bicep"]["variables"]["runtimeSettings"]["value"]}
    main = (INFRA / "main.bicep").read_text()
    secret = set(re.findall(r"'([A-Z][A-Z0-9_]+)'", main.split("var secretSettings")[0].split("var optionalSettings")[1]))
    secret |= set(re.findall(r"\['([A-Z][A-Z0-9_]+)'\]\)", main))
    return plain | secret


def test_every_bicep_file_parses_and_every_module_exists(bicep):
    assert {"main.bicep", "modules/functionapp.bicep", "modules/servicebus.bicep", "modules/roles.bicep"} <= set(bicep)
    for name, doc in bicep.items():
        for module in doc.get("modules", {}).values():
            assert (INFRA / Path(name).parent / module["detail"]["path"]).exists(), (name, module["detail"])


def test_every_setting_the_code_reads_is_set_or_documented(bicep):
    provided = set_by_deployment(bicep)
    flows = {a.flow.setting for a in load_catalog(REPO_CATALOG, "local").versions.values()} | {"FLOW_READ_RECORD"}
    main = parse(INFRA / "main.bicep")
    assert "flowUrls" in main["parameters"]  # FLOW_* come in as a secure object, one Key Vault secret each
    assert "items(flowUrls)" in (INFRA / "main.bicep").read_text()
    missing = [s for s in DEFAULTS if s not in provided and s not in NOT_IN_AZURE]
    assert missing == [], f"settings the code reads but the deployment does not set: {missing}"
    assert flows and all(f.startswith("FLOW_") for f in flows)
    readme = (ROOT / "README.md").read_text()
    assert all(name in readme for name in NOT_IN_AZURE)


def test_every_binding_expression_and_queue_is_declared(bicep):
    triggers = (ROOT / "shared" / "api" / "stage_triggers.py").read_text()
    expressions = set(re.findall(r"%([A-Z_]+)%", triggers))
    provided = bicep["modules/functionapp.bicep"]["variables"]["plain"]["value"]
    assert expressions <= set(provided)
    queues = bicep["modules/servicebus.bicep"]["parameters"]["queues"]["default"]
    assert sorted(queues) == sorted(provided[e] for e in expressions if e.endswith("_QUEUE"))
    assert sorted(queues) == sorted(DEFAULTS[f"{q.upper()}_QUEUE"] for q in ("triage", "plan", "execute", "verify"))


def test_azure_keeps_one_table_per_kind(bicep):
    # Shards help only Azurite; in Azure each costs a query per cross-partition read (README "Partitions
    # spread over tables").
    plain = bicep["modules/functionapp.bicep"]["variables"]["plain"]["value"]
    assert "tableShards" in json.dumps(plain["TABLE_SHARDS"])  # a parameter: a store created with 8 keeps 8
    assert bicep["main.bicep"]["parameters"]["tableShards"]["default"] == "1" == DEFAULTS["TABLE_SHARDS"]


def test_queues_match_host_json_and_the_local_bus(bicep):
    from shared.adapters.local_bus import LocalBus

    props = bicep["modules/servicebus.bicep"]["resources"]["queue"]["config"]["config"]["properties"]
    assert props["requiresDuplicateDetection"] is True and props["deadLetteringOnMessageExpiration"] is True
    assert props["maxDeliveryCount"] == LocalBus().max_deliveries
    assert props["duplicateDetectionHistoryTimeWindow"] == "PT10M" == f"PT{int(LocalBus().duplicate_window_s // 60)}M"
    host = json.loads((ROOT / "host.json").read_text())["extensions"]["serviceBus"]
    assert host["maxAutoLockRenewalDuration"] == "00:05:00" and props["lockDuration"] == "PT1M"


def test_no_key_or_connection_string_is_emitted_or_enabled(bicep):
    text = "\n".join(p.read_text() for p in INFRA.rglob("*.bicep"))
    assert "listKeys(" not in text and "AccountKey=" not in text and "SharedAccessKey" not in text
    for name, doc in bicep.items():
        for out_name, out in doc.get("outputs", {}).items():
            blob = json.dumps(out).lower()
            named = out_name.lower().replace("key_vault", "vault")  # the vault's name is not a key
            assert "connectionstring" not in blob and "key" not in named and "secret" not in blob, (name, out_name)
    assert bicep["modules/storage.bicep"]["resources"]["account"]["config"]["properties"]["allowSharedKeyAccess"] is False
    assert bicep["modules/servicebus.bicep"]["resources"]["namespace"]["config"]["properties"]["disableLocalAuth"] is True
    assert bicep["modules/monitoring.bicep"]["resources"]["appInsights"]["config"]["properties"]["DisableLocalAuth"] is True
    secure = {n for n, p in bicep["main.bicep"]["parameters"].items() if any(d["type"] == "secure" for d in p["decorators"])}
    assert {"flowUrls", "approvalFlowUrl", "approvalFlowKey", "teamsWebhookUrl", "ingestApiKey", "celonisSigningSecret",
            "approvalSigningKey"} <= secure
    plain = json.dumps(bicep["modules/functionapp.bicep"]["variables"]["plain"])
    assert not any(s in plain for s in secure)  # secrets reach the app only as Key Vault references


ROLES = {"ServiceBusConnection": ["serviceBusDataSender", "serviceBusDataReceiver"],
         "AzureWebJobsStorage": ["storageBlobDataOwner", "storageQueueDataContributor"],
         "ServiceBusConnection (Flex Consumption scaler)": ["serviceBusDataOwner"], "AzureWebJobsStorage__tableServiceUri": ["storageTableDataContributor"],
         "Key Vault references": ["keyVaultSecretsUser"], "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": ["monitoringMetricsPublisher"],
         "AZURE_OPENAI_ENDPOINT": ["cognitiveServicesOpenAIUser"]}
GUIDS = {"serviceBusDataSender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39", "serviceBusDataReceiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
         "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
         "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb", "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
         "cognitiveServicesOpenAIUser": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
         "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
         "serviceBusDataOwner": "090c5cfd-751d-490a-894a-3ce6f1109419"}


def test_each_identity_based_connection_has_its_role_assignment(bicep):
    roles = bicep["modules/roles.bicep"]
    defined = roles["variables"]["roles"]["value"]
    assert {k: defined[k] for k in GUIDS} == GUIDS  # the built-in role ids, as Azure documents them
    text = (INFRA / "modules" / "roles.bicep").read_text() + (INFRA / "modules" / "openai-role.bicep").read_text()
    for connection, needed in ROLES.items():
        for role in needed:
            assert f"roles.{role})" in text or f"roleId: roles.{role}" in text, (connection, role)
    plain = bicep["modules/functionapp.bicep"]["variables"]["plain"]["value"]
    assert plain["ServiceBusConnection__credential"] == plain["AzureWebJobsStorage__credential"] == "managedidentity"


def test_azd_finds_the_app_and_the_infrastructure():
    text = (ROOT / "azure.yaml").read_text()
    assert re.search(r"host: function", text) and re.search(r"language: python", text) and "path: infra" in text
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    main = parse(INFRA / "main.bicep")["parameters"]
    assert set(params) <= set(main)


def test_the_celonis_signing_secret_reaches_the_app_only_as_a_key_vault_reference(bicep):
    main = (INFRA / "main.bicep").read_text()
    optional = main.split("var optionalSettings")[1].split("\n")[0]
    assert "empty(celonisSigningSecret) ? [] : ['CELONIS_SIGNING_SECRET']" in optional  # unset stays unset: "off"
    secret = bicep["modules/keyvault.bicep"]["resources"]["celonis"]
    assert secret["config"]["config"]["name"] == "celonis-signing-secret"  # the name its reference derives
    assert "celonisSigningSecret" in json.dumps(secret["config"]["condition"])  # created only when given
    plain = bicep["modules/functionapp.bicep"]["variables"]["plain"]["value"]
    assert "CELONIS_SIGNING_SECRET" not in plain and "ingestStrictSources" in json.dumps(plain["INGEST_STRICT_SOURCES"])
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["ingestStrictSources"]["value"] == "${INGEST_STRICT_SOURCES=}"
