// Key Vault for flow URLs (SAS-signed), API keys and signing keys; the app reads them as Key Vault
// references. A secret is created only when a value was given.
param name string
param location string
param tags object
@secure()
param flowUrls object
@secure()
param approvalFlowUrl string
@secure()
param approvalFlowKey string
@secure()
param teamsWebhookUrl string
@secure()
param ingestApiKey string
@secure()
param celonisSigningSecret string
@secure()
param approvalSigningKey string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
  }
}

resource flows 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for item in items(flowUrls): {
  parent: vault
  name: toLower(replace(item.key, '_', '-'))
  properties: {
    value: item.value
  }
}]

resource approvalFlow 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(approvalFlowUrl)) {
  parent: vault
  name: 'approval-flow-url'
  properties: {
    value: approvalFlowUrl
  }
}

resource approvalKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(approvalFlowKey)) {
  parent: vault
  name: 'approval-flow-key'
  properties: {
    value: approvalFlowKey
  }
}

resource teams 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(teamsWebhookUrl)) {
  parent: vault
  name: 'teams-webhook-url'
  properties: {
    value: teamsWebhookUrl
  }
}

resource ingest 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(ingestApiKey)) {
  parent: vault
  name: 'ingest-api-key'
  properties: {
    value: ingestApiKey
  }
}

resource celonis 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(celonisSigningSecret)) {
  parent: vault
  name: 'celonis-signing-secret'
  properties: {
    value: celonisSigningSecret
  }
}

resource signing 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'approval-signing-key'
  properties: {
    value: approvalSigningKey
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
