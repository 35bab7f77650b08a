"""OpenTelemetry through the Azure Monitor distro: configured on first use of the services when
APPLICATIONINSIGHTS_CONNECTION_STRING is set, off (and never imported) otherwise.

Custom metrics per action version: executions by final status, flow latency, compensations. Logs carry
the correlation id (shared/logs.py), which travels with every queue message, flow call and approval card.
With APPLICATIONINSIGHTS_AUTHENTICATION_STRING set (Entra-only ingestion), the exporter authenticates as
the app's managed identity.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)
_lock = threading.Lock()
_instruments: dict[str, Any] | None = None


def configure(settings: Any, meter_provider: Any = None) -> bool:
    """Turn telemetry on when a connection string is set (or a meter provider is given, in tests)."""
    global _instruments
    if not settings.appinsights_connection_string and meter_provider is None:
        return False
    with _lock:
        if meter_provider is None:
            from azure.monitor.opentelemetry import configure_azure_monitor

            options: dict[str, Any] = {"connection_string": settings.appinsights_connection_string,
                                       "sampling_ratio": max(0.0, min(1.0, settings.sampling_percentage / 100)),
                                       "logger_name": "closedloop"}
            if settings.appinsights_entra:
                from azure.identity import DefaultAzureCredential
                options["credential"] = DefaultAzureCredential()
            configure_azure_monitor(**options)
            from opentelemetry import metrics
            meter = metrics.get_meter("closedloop")
        else:
            meter = meter_provider.get_meter("closedloop")
        _instruments = {
            "executions": meter.create_counter("closedloop.executions", unit="1",
                                               description="Flow executions that ended, by action version and status"),
            "latency": meter.create_histogram("closedloop.flow.latency", unit="ms",
                                              description="Child-flow call latency by action version"),
            "compensations": meter.create_counter("closedloop.compensations", unit="1",
                                                  description="Rollbacks the watchdog ran, by the action rolled back"),
        }
    log.info("OpenTelemetry on (Azure Monitor)")
    return True


def off() -> None:
    global _instruments
    _instruments = None


def execution_ended(action_id: str, version: int, status: str) -> None:
    if _instruments is not None:
        _instruments["executions"].add(1, {"action": action_id, "version": version, "status": status})


def flow_latency(action_id: str, version: int, ms: float) -> None:
    if _instruments is not None:
        _instruments["latency"].record(ms, {"action": action_id, "version": version})


def compensated(action_id: str, version: int) -> None:
    if _instruments is not None:
        _instruments["compensations"].add(1, {"action": action_id, "version": version})
