// closedloop: a Flex Consumption Function App beside Dataverse, with Service Bus, Azure Tables, Key Vault
// and Application Insights, every connection identity-based (no keys, no connection strings with secrets).
// Deploy: `azd up`, or `az deployment sub create -l <region> -f infra/main.bicep -p environmentName=<name>`.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the environment (azd sets it); names the resource group and tags every resource.')
param environmentName string

// Regions offering Flex Consumption, as Microsoft's Flex Consumption azd quickstart lists them
// (Azure-Samples/functions-quickstart-python-http-azd, infra/main.bicep, commit 7ed4638, Nov 2025; its canary
// region eastus2euap left out). `az functionapp list-flexconsumption-locations` gives today's list.
@description('Azure region for every resource; one that offers Flex Consumption.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of a person or group to grant data access for local development (optional).')
param principalId string = ''

// azd fills AZURE_PRINCIPAL_TYPE with the signed-in principal's type (User, or ServicePrincipal in CI); a role
// assignment whose principalType does not match the principal fails with UnmatchedPrincipalType.
@description('Type of principalId: User, ServicePrincipal (azd in CI) or Group.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

// Key Vault keeps a deleted vault's name for softDeleteRetentionInDays (7): `azd down` without --purge, then
// `azd up` with the same environment, would collide with the deleted vault. Change this to get a new name.
@description('Anything; a new value gives the Key Vault a new name (after an `azd down` without --purge).')
param keyVaultNameSeed string = ''

@description('Dataverse environment URL, e.g. https://contoso.crm.dynamics.com (empty: records in Azure Tables).')
param dataverseUrl string = ''

@description('Publisher prefix of the provisioned Dataverse tables.')
param dataversePrefix string = 'cl'

@description('Azure OpenAI endpoint for LLM-assisted planning (empty: deterministic planning only).')
param openAiEndpoint string = ''

@description('Azure OpenAI deployment name used for planning.')
param openAiDeployment string = ''

@description('Resource id of the Azure OpenAI account, to grant the app "Cognitive Services OpenAI User".')
param openAiResourceId string = ''

@description('Client id of the Entra app registration that the Copilot Studio connector signs in to (Easy Auth).')
param connectorClientId string = ''

@secure()
@description('Child-flow URLs with their SAS signatures, by app setting name: {"FLOW_LEADS_REASSIGN": "https://…"}.')
param flowUrls object = {}

@secure()
@description('URL of the approval flow (HTTP trigger with its SAS signature).')
param approvalFlowUrl string = ''

@secure()
@description('Key the approval flow signs its answers with (x-closedloop-signature).')
param approvalFlowKey string = ''

@secure()
@description('Teams Workflows webhook URL for escalations.')
param teamsWebhookUrl string = ''

@secure()
@description('Shared secret senders (Celonis, flows) present in x-api-key.')
param ingestApiKey string = ''

@secure()
@description('Secret Celonis signs its events with: x-emporix-hmac = Base64(HMAC-SHA256(secret, body)), or sent as is in x-closedloop-secret (empty: unsigned events are taken).')
param celonisSigningSecret string = ''

@description('Sources whose findings must hold only known fields, comma-separated (e.g. "celonis,generic"); empty: every source keeps unknown fields under extensions.')
param ingestStrictSources string = ''

// No default: a default such as newGuid() is evaluated on every deployment, so each `azd provision` would
// write a new key and every outstanding approval token would stop verifying. azd generates this value once
// (metadata type 'generate') and keeps it in the environment's config (infra.parameters.approvalSigningKey,
// azd's bicep_provider.go ensureParameters), reusing it on every provision; APPROVAL_SIGNING_KEY overrides it.
@secure()
@minLength(32)
@description('HMAC key of approval tokens: generated once by azd, or APPROVAL_SIGNING_KEY; keep it across provisions.')
@metadata({ azd: { type: 'generate', config: { length: 64, noSpecial: true } } })
param approvalSigningKey string

@description('Share of telemetry kept (0-100); sampling of requests and dependencies.')
param samplingPercentage int = 100

@description('Tables the records are spread over. 1 (one per kind) unless the store was created with another count: a deployment that ran with 8 keeps 8, or the app refuses to start.')
param tableShards string = '1'

var tags = { 'azd-env-name': environmentName }
// App settings that hold secrets: each becomes a Key Vault reference, and only when a value was given
// (an unset one stays unset, which the app reads as "off").
var flowSettings = [for item in items(flowUrls): item.key]
var optionalSettings = concat(empty(approvalFlowUrl) ? [] : ['APPROVAL_FLOW_URL'], empty(approvalFlowKey) ? [] : ['APPROVAL_FLOW_KEY'], empty(teamsWebhookUrl) ? [] : ['TEAMS_WEBHOOK_URL'], empty(ingestApiKey) ? [] : ['INGEST_API_KEY'], empty(celonisSigningSecret) ? [] : ['CELONIS_SIGNING_SECRET'])
var secretSettings = concat(flowSettings, optionalSettings, ['APPROVAL_SIGNING_KEY'])
var suffix = toLower(uniqueString(subscription().id, environmentName, location))
// Without a seed, exactly the suffix the vault has always had: uniqueString(a, b, c, '') is another hash than
// uniqueString(a, b, c), and a new name would leave a deployed environment's vault (and its secrets) behind.
var vaultSuffix = empty(keyVaultNameSeed) ? suffix : toLower(uniqueString(subscription().id, environmentName, location, keyVaultNameSeed))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-closedloop-${suffix}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stcl${suffix}'
    location: location
    tags: tags
  }
}

module servicebus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: 'sb-closedloop-${suffix}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    name: 'closedloop-${suffix}'
    location: location
    tags: tags
  }
}

module keyvault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-cl-${vaultSuffix}'
    location: location
    tags: tags
    flowUrls: flowUrls
    approvalFlowUrl: approvalFlowUrl
    approvalFlowKey: approvalFlowKey
    teamsWebhookUrl: teamsWebhookUrl
    ingestApiKey: ingestApiKey
    celonisSigningSecret: celonisSigningSecret
    approvalSigningKey: approvalSigningKey
  }
}

module functionapp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: 'func-closedloop-${suffix}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageName: storage.outputs.name
    tableEndpoint: storage.outputs.tableEndpoint
    blobEndpoint: storage.outputs.blobEndpoint
    serviceBusNamespace: servicebus.outputs.fullyQualifiedNamespace
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyvault.outputs.name
    secretSettings: secretSettings
    dataverseUrl: dataverseUrl
    dataversePrefix: dataversePrefix
    openAiEndpoint: openAiEndpoint
    openAiDeployment: openAiDeployment
    connectorClientId: connectorClientId
    samplingPercentage: samplingPercentage
    tableShards: tableShards
    ingestStrictSources: ingestStrictSources
  }
  // The site starts only after its identity holds its roles: a Key Vault reference resolved before Key Vault
  // Secrets User exists reaches the app as the literal @Microsoft.KeyVault(...) text.
  dependsOn: [roles]
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    developerPrincipalId: principalId
    developerPrincipalType: principalType
    storageName: storage.outputs.name
    serviceBusName: servicebus.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyvault.outputs.name
    openAiResourceId: openAiResourceId
  }
}

// Names and endpoints only: nothing secret leaves the deployment.
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionapp.outputs.name
output SERVICE_API_URI string = functionapp.outputs.uri
output AZURE_KEY_VAULT_NAME string = keyvault.outputs.name
