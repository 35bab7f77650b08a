"""Rules the Bicep compiler, ARM and azd apply, checked over our own files (the Bicep CLI cannot be installed
here; issue 20). Each rule says where it comes from; each test failed on the files before issue 20's fixes."""
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"
ROOT = INFRA.parent
DECLARATION = re.compile(r"^(?:@|var |param |resource |module |output |targetScope|type |func |//)", re.M)


def parse(path: Path) -> dict:
    return BicepParser().parse(file_path=path)


@pytest.fixture(scope="module")
def bicep():
    return {p.relative_to(INFRA).as_posix(): parse(p) for p in sorted(INFRA.rglob("*.bicep"))}


def texts() -> dict[str, str]:
    return {p.relative_to(INFRA).as_posix(): p.read_text() for p in sorted(INFRA.rglob("*.bicep"))}


def variable_bodies(text: str) -> dict[str, str]:
    """Each top-level `var` with the text up to the next top-level declaration."""
    bodies = {}
    for m in re.finditer(r"^var (\w+)\s*=", text, re.M):
        end = DECLARATION.search(text, m.end())
        bodies[m.group(1)] = text[m.end():end.start() if end else len(text)]
    return bodies


def runtime_variables(text: str) -> set[str]:
    """Variables whose value is known only once the deployment runs: they read `.properties` or `.outputs` of a
    resource or module, or `reference(`/`list*(`, directly or through another such variable."""
    bodies = variable_bodies(text)
    direct = re.compile(r"\b\w+(?:\[[^\]]*\])?\.(?:properties|outputs)\b|\breference\(|\blist\w*\(")
    runtime = {name for name, body in bodies.items() if direct.search(body)}
    changed = True
    while changed:
        changed = False
        for name, body in bodies.items():
            if name not in runtime and any(re.search(rf"\b{r}\b", body) for r in runtime):
                runtime.add(name)
                changed = True
    return runtime


def for_inputs(text: str) -> list[str]:
    """The input expression of every for-expression: `[for x in INPUT:` and `[for (x, i) in INPUT:`."""
    return [m.group(1) for m in re.finditer(r"\[for\s+(?:\([^)]*\)|\w+)\s+in\s+(.+?):\s", text)]


def test_no_for_expression_iterates_over_a_value_known_only_at_runtime():
    # BCP178 (Bicep's DeployTimeConstantValidator): a for-expression's input must be calculable at the start of
    # the deployment; Bicep issue #1917 is appSettings built from a runtime property. `existing` resources and
    # module outputs are runtime too.
    for name, text in texts().items():
        runtime = runtime_variables(text)
        existing = set(re.findall(r"^resource (\w+) '[^']+' existing", text, re.M))
        for expr in for_inputs(text):
            assert not re.search(r"\.(?:properties|outputs)\b|\breference\(|\blist\w*\(", expr), (name, expr)
            used = set(re.findall(r"\b\w+\b", expr))
            assert not used & runtime, (name, expr, used & runtime)
            assert not {w for w in used if f"{w}." in expr} & existing, (name, expr)


def test_the_runtime_rule_catches_the_pattern_issue_20_reported():
    before = ("var plain = {\n  A: appInsights.properties.ConnectionString\n}\nvar both = union(plain, secrets)\n"
              "resource site 'x@1' = {\n  appSettings: [for item in items(both): { name: item.key }]\n}\n")
    assert runtime_variables(before) == {"plain", "both"}
    assert for_inputs(before) == ["items(both)"]


# A tiny evaluator for the expressions ARM must evaluate even when a module's condition is false.
class Unsupported(Exception):
    pass


def evaluate(node: Any, env: dict[str, Any]) -> Any:
    if isinstance(node, (int, bool)) or node is None:
        return node
    if isinstance(node, str):  # pycep gives a parameter or variable reference and a string literal alike
        value = env.get(node, node)
        if isinstance(value, Unsupported):
            raise value
        return value
    if isinstance(node, list):
        return [evaluate(n, env) for n in node]
    if "function" in node:
        f = node["function"]
        args = f.get("parameters") or {}
        kind = f["type"]
        if kind == "split":
            return str(evaluate(args["input_string"], env)).split(evaluate(args["delimiter"], env))
        if kind == "empty":
            return not evaluate(args["item_to_test"], env)
        if kind == "last":
            return evaluate(args["arg_1"], env)[-1]
        if kind == "resource_group":
            sub, rg = (evaluate(args.get(k), env) for k in ("subscription_id", "resource_group_name"))
            sub = sub or "00000000-0000-0000-0000-000000000000"
            rg = rg or "rg-test"
            return {"id": f"/subscriptions/{sub}/resourceGroups/{rg}", "name": rg, "subscription": sub}
        raise Unsupported(kind)
    if "operator" in node:
        op = node["operator"]
        ops = op["operands"]
        kind = op["type"]
        if kind == "index_accessor":
            seq = evaluate(ops["operand_1"], env)
            index = evaluate(ops["operand_2"], env)
            if not isinstance(seq, list) or not -len(seq) <= index < len(seq):
                raise IndexError(f"index {index} out of bounds of {seq!r}")  # ARM: template validation fails
            return seq[index]
        if kind == "property_accessor":
            return evaluate(ops["operand_1"], env)[ops["operand_2"]]
        if kind == "conditional":
            chosen = "true_value" if evaluate(ops["condition"], env) else "false_value"
            return evaluate(ops[chosen], env)
        if kind == "not":
            return not evaluate(ops["bool_value"], env)
        raise Unsupported(kind)
    raise Unsupported(json.dumps(node)[:80])


def scope_env(doc: dict) -> dict[str, Any]:
    env: dict[str, Any] = {n: p.get("default") for n, p in doc.get("parameters", {}).items()}
    for name, var in doc.get("variables", {}).items():
        try:
            env[name] = evaluate(var["value"], env)
        except (Unsupported, KeyError, TypeError, IndexError, AttributeError) as e:
            env[name] = Unsupported(f"{name}: {e}")
    return env


def conditional_module_scopes(bicep) -> list[tuple[str, str, Any, dict]]:
    found = []
    for file, doc in bicep.items():
        for name, module in doc.get("modules", {}).items():
            config = module["config"]
            if config.get("condition") is not None and isinstance(config["config"].get("scope"), dict):
                found.append((file, name, config["config"]["scope"], doc))
    return found


def test_every_conditional_modules_scope_is_valid_with_the_default_parameters(bicep):
    # ARM evaluates a module's scope (the nested deployment's subscriptionId/resourceGroup) even when its
    # condition is false: split('', '/')[2] fails template validation (issue 20).
    scopes = conditional_module_scopes(bicep)
    assert {(f, n) for f, n, _, _ in scopes} >= {("modules/roles.bicep", "openAi")}
    for file, name, scope, doc in scopes:
        result = evaluate(scope, scope_env(doc))
        assert result["subscription"] and result["name"], (file, name, result)


def test_the_scope_evaluator_rejects_issue_20s_unguarded_split():
    unguarded = {"function": {"type": "resource_group", "parameters": {
        "subscription_id": {"operator": {"type": "index_accessor", "operands": {
            "operand_1": {"function": {"type": "split", "parameters": {"input_string": "id", "delimiter": "/"}}},
            "operand_2": 2}}},
        "resource_group_name": None}}}
    with pytest.raises(IndexError):
        evaluate(unguarded, {"id": ""})


def test_the_deploying_principals_type_comes_from_azd(bicep):
    # azd substitutes AZURE_PRINCIPAL_TYPE with the signed-in principal's type (User or ServicePrincipal;
    # azure-dev pkg/infra/provisioning/bicep evalParamEnvSubst); a mismatched type fails UnmatchedPrincipalType.
    param = bicep["main.bicep"]["parameters"]["principalType"]
    assert param["default"] == "User"
    allowed = next(d["argument"] for d in param["decorators"] if d["type"] == "allowed")
    assert sorted(allowed) == ["Group", "ServicePrincipal", "User"]
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["principalType"]["value"].startswith("${AZURE_PRINCIPAL_TYPE")
    roles = texts()["modules/roles.bicep"]
    assert "principalType: 'User'" not in roles  # the developer's assignment takes the given type
    assert "developerPrincipalType: principalType" in texts()["main.bicep"]


# Parameters main.parameters.json leaves out on purpose, with the reason.
NOT_MAPPED: dict[str, str] = {}
ENV_NAMES = {"samplingPercentage": "OTEL_SAMPLING_PERCENTAGE", "approvalSigningKey": "APPROVAL_SIGNING_KEY",
             "celonisSigningSecret": "CELONIS_SIGNING_SECRET", "flowUrls": "FLOW_URLS", "tableShards": "TABLE_SHARDS",
             "approvalFlowUrl": "APPROVAL_FLOW_URL", "approvalFlowKey": "APPROVAL_FLOW_KEY",
             "teamsWebhookUrl": "TEAMS_WEBHOOK_URL", "ingestApiKey": "INGEST_API_KEY"}


def test_every_parameter_an_operator_gives_is_reachable_through_azd(bicep):
    # The site's app settings are deployed as a whole: a setting added in the portal is gone after the next
    # provision, so everything an operator sets must come through `azd env set` (issue 20).
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    main = bicep["main.bicep"]["parameters"]
    for name in main:
        if name in NOT_MAPPED:
            continue
        assert name in params, f"{name}: not in main.parameters.json"
        value = params[name]["value"]
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}", value), (name, value)
    for name, env in ENV_NAMES.items():
        assert params[name]["value"].startswith("${" + env), name
    # An object parameter is a JSON string in the env (azd parses it, azure-dev #6694, azd 1.23.4): no `=default`
    # (its braces would end the substitution), unset leaves the parameter out so Bicep's {} applies.
    assert params["flowUrls"]["value"] == "${FLOW_URLS}" and main["flowUrls"]["default"] == {}
    required = re.search(r"azd:\s*'>=\s*([\d.]+)'", (ROOT / "azure.yaml").read_text())
    assert required and tuple(map(int, required.group(1).split("."))) >= (1, 23, 4)


def test_the_approval_signing_key_is_not_renewed_on_every_provision(bicep):
    # newGuid() (as a parameter default or anywhere) is evaluated on each deployment: a new signing key each
    # `azd provision` and every outstanding approval token stops verifying (issue 20).
    for name, text in texts().items():
        code = "\n".join(line.split("//")[0] for line in text.splitlines())
        assert "newGuid()" not in code and "utcNow(" not in code, name
    param = bicep["main.bicep"]["parameters"]["approvalSigningKey"]
    assert param["default"] is None  # no default: azd generates it once and keeps it (infra.parameters.*)
    meta = next(d["argument"] for d in param["decorators"] if d["type"] == "metadata")
    assert meta["azd"]["type"] == "generate" and meta["azd"]["config"]["length"] >= 32
    assert any(d["type"] == "secure" for d in param["decorators"])
    secret = bicep["modules/keyvault.bicep"]["resources"]["signing"]["config"]
    assert secret["properties"]["value"] == "approvalSigningKey"  # the parameter as given, nothing derived


def test_every_identity_based_binding_has_its_roles(bicep):
    roles = texts()["modules/roles.bicep"]
    defined = bicep["modules/roles.bicep"]["variables"]["roles"]["value"]
    # Built-in role ids (Azure's built-in roles reference).
    assert defined["storageQueueDataContributor"] == "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
    assert defined["serviceBusDataOwner"] == "090c5cfd-751d-490a-894a-3ce6f1109419"
    # The MCP tool trigger keeps its state in AzureWebJobsStorage queues (Microsoft's Flex MCP sample).
    assert "roles.storageQueueDataContributor)" in roles
    # The Flex Consumption scaler reads each trigger queue's length: Manage (Data Owner), on the queues only.
    scaler = bicep["modules/roles.bicep"]["resources"]["sbScaler"]["config"]
    assert scaler["loop_type"]["detail"]["array_name"] == "queues"
    assert "serviceBusDataOwner" in json.dumps(scaler["config"]["properties"])
    block = roles.split("resource sbScaler")[1].split("\n}]")[0]
    assert "scope: queue[i]" in block  # the queues, not the namespace
    assert roles.count("roles.serviceBusDataOwner)") == block.count("roles.serviceBusDataOwner)") == 2
    assert (bicep["modules/roles.bicep"]["parameters"]["queues"]["default"]
            == bicep["modules/servicebus.bicep"]["parameters"]["queues"]["default"])


def test_the_site_waits_for_its_roles(bicep):
    # A Key Vault reference resolved before Key Vault Secrets User exists reaches the app as literal text.
    app = bicep["main.bicep"]["modules"]["functionapp"]["config"]
    assert "roles" in (app.get("dependsOn") or [])
    roles = bicep["main.bicep"]["modules"]["roles"]["config"]
    assert "functionapp" not in json.dumps(roles)  # no cycle


NEEDED_AT_RUNTIME = ["function_app.py", "host.json", "requirements.txt", "shared", "catalog", "prompts"]
EXCLUDED = ["outbox", ".hypothesis", "__pycache__", "infra", "scripts", "tests", "bench", "devhost", "node_modules",
            ".azurite", ".venv", "docs", "samples", ".pytest_cache", ".mypy_cache", ".ruff_cache",
            "local.settings.json"]


def test_the_package_holds_only_what_runs():
    # .funcignore replaces azd's Python defaults, so every folder the app does not read must be listed.
    lines = {line.strip().rstrip("/") for line in (ROOT / ".funcignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    assert set(EXCLUDED) <= lines, set(EXCLUDED) - lines
    assert not set(NEEDED_AT_RUNTIME) & lines
    # Nothing the app imports lives in an excluded folder (devhost is the local host only).
    code = [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py"))]
    for path in code:
        for m in re.finditer(r"^\s*(?:from|import)\s+(\w+)", path.read_text(), re.M):
            assert m.group(1) not in lines, (path, m.group(1))


FLEX_REGIONS = {"australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "centralindia", "centralus",
                "eastasia", "eastus", "eastus2", "francecentral", "germanywestcentral", "italynorth", "japaneast",
                "koreacentral", "northcentralus", "northeurope", "norwayeast", "southafricanorth", "southcentralus",
                "southeastasia", "southindia", "spaincentral", "swedencentral", "uaenorth", "uksouth", "ukwest",
                "westcentralus", "westeurope", "westus", "westus2", "westus3"}


def test_only_flex_consumption_regions_and_azd_prompts_for_one(bicep):
    # Microsoft's Flex Consumption azd quickstart (Azure-Samples/functions-quickstart-python-http-azd) lists these.
    location = bicep["main.bicep"]["parameters"]["location"]
    allowed = next(d["argument"] for d in location["decorators"] if d["type"] == "allowed")
    assert set(allowed) == FLEX_REGIONS
    meta = next(d["argument"] for d in location["decorators"] if d["type"] == "metadata")
    assert meta == {"azd": {"type": "location"}}


def test_cloud_endpoints_come_from_the_cloud_not_literals():
    for name, text in texts().items():
        code = "\n".join(line.split("//")[0] for line in text.splitlines())
        for public in ("sts.windows.net", "login.microsoftonline.com", "servicebus.windows.net", "vault.azure.net"):
            assert public not in code, (name, public)
    assert "environment().authentication.loginEndpoint" in texts()["modules/functionapp.bicep"]
    assert "properties.serviceBusEndpoint" in texts()["modules/servicebus.bicep"]


def test_a_key_vault_name_can_be_reused_after_azd_down(bicep):
    # A deleted vault keeps its name for softDeleteRetentionInDays: the name is per environment and a seed
    # gives a new one; the README says `azd down --purge`.
    main = texts()["main.bicep"]
    vault = re.search(r"var vaultSuffix = (.+)", main)
    assert vault and "environmentName" in vault.group(1) and "keyVaultNameSeed" in vault.group(1)
    # No seed: the name a deployed environment's vault already has (its secrets live there).
    assert re.match(r"empty\(keyVaultNameSeed\) \? suffix :", vault.group(1))
    assert "kv-cl-${vaultSuffix}" in main
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["keyVaultNameSeed"]["value"] == "${KEY_VAULT_NAME_SEED=}"
    readme = (ROOT / "README.md").read_text()
    assert "azd down --purge" in readme and "KEY_VAULT_NAME_SEED" in readme


def test_the_readme_says_what_azd_up_asks_for_and_what_only_a_deployment_proves():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying to Azure")[1].split("\n## ")[0]
    steps = ("azd env new", "AZURE_LOCATION", "AZURE_PRINCIPAL_TYPE", "azd env set FLOW_URLS")
    asks = [section.index(s) for s in steps]
    assert asks == sorted(asks)
    assert "only a real deployment" in section.lower()
    for env in ENV_NAMES.values():
        assert env in section, env
