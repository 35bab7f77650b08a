"""Bus on Azure Service Bus through azure-servicebus (imported on first send, not at cold start).

The output binding cannot set message_id or schedule a message, so the app sends with the SDK:
the deterministic message_id lets the queue's duplicate detection drop resends.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from ..ports import Message


class ServiceBusBus:
    def __init__(self, connection_string: str | None = None, namespace: str | None = None):
        if not connection_string and not namespace:
            raise ValueError("set ServiceBusConnection or ServiceBusConnection__fullyQualifiedNamespace")
        self._connection_string = connection_string
        self._namespace = namespace
        self._client: Any = None
        self._senders: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _sender(self, queue: str) -> Any:
        # Senders are not thread-safe; callers hold self._lock.
        if self._client is None:
            from azure.servicebus import ServiceBusClient
            self._client = self._connect(ServiceBusClient)
        if queue not in self._senders:
            self._senders[queue] = self._client.get_queue_sender(queue)
        return self._senders[queue]

    def send(self, messages: Sequence[Message]) -> None:
        from azure.servicebus import ServiceBusMessage

        by_queue: dict[str, list[Message]] = {}
        for m in messages:
            by_queue.setdefault(m.queue, []).append(m)
        with self._lock:
            for queue, items in by_queue.items():
                sender = self._sender(queue)
                now_batch = sender.create_message_batch()
                for m in items:
                    sb = ServiceBusMessage(json.dumps(m.body), message_id=m.message_id,
                                           correlation_id=m.body.get("correlationId"),
                                           content_type="application/json")
                    if m.scheduled_at is not None:
                        sender.schedule_messages(sb, m.scheduled_at)
                        continue
                    try:
                        now_batch.add_message(sb)
                    except ValueError:  # batch full: send it and start another
                        sender.send_messages(now_batch)
                        now_batch = sender.create_message_batch()
                        now_batch.add_message(sb)
                if len(now_batch):
                    sender.send_messages(now_batch)

    def dead_letter_counts(self, queues: Sequence[str]) -> dict[str, int]:
        """Messages sitting in each queue's dead-letter sub-queue (management API; Data Owner or Listen)."""
        from azure.servicebus.management import ServiceBusAdministrationClient
        with self._connect(ServiceBusAdministrationClient) as admin:
            # The SDK leaves the count None when the service did not report it: nothing seen is 0.
            return {q: admin.get_queue_runtime_properties(q).dead_letter_message_count or 0 for q in queues}

    def _connect(self, client_class: Any) -> Any:
        """A data or management client: by connection string, else the namespace and the managed identity."""
        if self._connection_string:
            return client_class.from_connection_string(self._connection_string)
        from azure.identity import DefaultAzureCredential
        return client_class(self._namespace, DefaultAzureCredential())
