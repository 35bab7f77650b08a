// Cognitive Services OpenAI User on an existing Azure OpenAI account, for the app's identity.
param accountName string
param principalId string
param roleId string

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = { name: accountName }

resource openAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, roleId)
  scope: account
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
  }
}
