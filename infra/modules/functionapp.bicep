// The Function App on Flex Consumption (Python 3.11), running as the user-assigned identity. Every
// setting the app reads is set here (shared/settings.py); secrets are Key Vault references.
param name string
param location string
param tags object
param identityId string
param identityClientId string
param storageName string
param tableEndpoint string
param blobEndpoint string
param serviceBusNamespace string
param appInsightsName string
param keyVaultName string
param secretSettings array
param dataverseUrl string
param dataversePrefix string
param openAiEndpoint string
param openAiDeployment string
param connectorClientId string
param samplingPercentage int
param tableShards string
param ingestStrictSources string

var plain = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  AZURE_CLIENT_ID: identityClientId
  AzureWebJobsStorage__accountName: storageName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__tableServiceUri: tableEndpoint
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
  OTEL_SAMPLING_PERCENTAGE: string(samplingPercentage)
  CLOSEDLOOP_ENV: 'prod'
  STORE: empty(dataverseUrl) ? 'tables' : 'dataverse'
  TABLE_PREFIX: 'closedloop'
  // One table per kind by default: shards help only Azurite (README "Partitions spread over tables"); here each
  // costs a query per cross-partition read.
  TABLE_SHARDS: tableShards
  BUS: 'servicebus'
  TRIAGE_QUEUE: 'triage'
  PLAN_QUEUE: 'plan'
  EXECUTE_QUEUE: 'execute'
  VERIFY_QUEUE: 'verify'
  SWEEP_SCHEDULE: '0 */5 * * * *'
  MAX_BODY_BYTES: '4194304'
  STORE_TIMEOUT_SECONDS: '5'
  // Empty: a 202's Location is polled only on the configured flow URLs' hosts.
  FLOW_POLL_HOSTS: ''
  PUBLIC_BASE_URL: 'https://${name}.azurewebsites.net'
  APPROVAL_TTL_HOURS: '72'
  DATAVERSE_URL: dataverseUrl
  DATAVERSE_PREFIX: dataversePrefix
  AZURE_OPENAI_ENDPOINT: openAiEndpoint
  AZURE_OPENAI_DEPLOYMENT: openAiDeployment
  AZURE_OPENAI_API_VERSION: '2024-10-21'
  LLM_TIMEOUT_SECONDS: '10'
  PLAN_PROMPT: 'plan.v1'
  // Sources held to known fields only (README "Tolerant reader"); CELONIS_SIGNING_SECRET is a Key Vault reference.
  INGEST_STRICT_SOURCES: ingestStrictSources
}
resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Settings known only once the deployment runs (a property of an existing resource) stay out of every
// for-expression: Bicep needs a loop's input at the start of the deployment (BCP178, the compiler's
// DeployTimeConstantValidator; Bicep issue #1917 is this very pattern on appSettings). They are listed as literal
// {name, value} objects and concatenated with the loop over the deploy-time-known settings.
var runtimeSettings = [
  // With local auth off this only locates the resource: writing needs the identity (Monitoring Metrics Publisher).
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights.properties.ConnectionString }
]

var secrets = toObject(secretSettings, s => s, s => '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${toLower(replace(s, '_', '-'))})')

var knownSettings = [for item in items(union(plain, secrets)): { name: item.key, value: item.value }]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${name}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: concat(runtimeSettings, knownSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}app-package'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

// Easy Auth for the Copilot Studio connector's Entra app: a valid token becomes X-MS-CLIENT-PRINCIPAL (roles
// for approvals and autonomy). Anonymous calls still reach the routes, which need their function key.
resource auth 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(connectorClientId)) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: { requireAuthentication: false, unauthenticatedClientAction: 'AllowAnonymous' }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: connectorClientId
          // The cloud's own Entra endpoint (https://login.microsoftonline.com/ in the public cloud), not a literal.
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: { allowedAudiences: ['api://${connectorClientId}'] }
      }
    }
    login: { tokenStore: { enabled: false } }
  }
}

output name string = site.name
output uri string = 'https://${site.properties.defaultHostName}'
