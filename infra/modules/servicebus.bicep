// The four agent queues. Settings match host.json and the local bus: duplicate detection (message ids are
// deterministic), 10 deliveries then the dead-letter queue, a lock the host renews for up to 5 minutes.
param name string
param location string
param tags object
param queues array = ['triage', 'plan', 'execute', 'verify']

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = [for q in queues: {
  parent: namespace
  name: q
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    maxDeliveryCount: 10
    lockDuration: 'PT1M'
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    enableBatchedOperations: true
  }
}]

output name string = namespace.name
// The host name from the namespace itself (https://<name>.servicebus.windows.net:443/ in the public cloud, another
// suffix in sovereign clouds); environment() has no Service Bus suffix.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '/')[2], ':')[0]
