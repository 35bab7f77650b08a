"""The four agent stages, each fed by its Service Bus queue (queue names from app settings)."""
import logging
import uuid
from typing import TYPE_CHECKING

import azure.functions as func

from ..domain.errors import Unavailable
from .edge import lazy, services

if TYPE_CHECKING:
    from ..services import runner
    from ..services import sweep as sweeps
else:
    runner, sweeps = lazy("shared.services.runner"), lazy("shared.services.sweep")

bp = func.Blueprint()
log = logging.getLogger("closedloop.stages")


def _run(stage: str, msgs: list[func.ServiceBusMessage]) -> None:
    # The services first, before any message is read: while a setting holds an unresolved Key Vault reference
    # services() raises (shared/api/edge.py), the function fails, and the host abandons the batch untouched. Service
    # Bus then redelivers each message, counting deliveries; past the queue's maxDeliveryCount (10,
    # infra/modules/servicebus.bicep) it moves to the dead-letter queue. Nothing is lost for good: once the
    # reference resolves, the sweep re-sends the nudge of every opportunity left in a stage's status
    # (services/sweep.reconcile) and reports the dead letters (surface_dead_letters).
    svc = services()
    # Batches (cardinality many): the runner gathers reads, writes and flow calls across messages.
    runner.run(svc, stage, [(m.get_body(), getattr(m, "delivery_count", None) or 1) for m in msgs])


@bp.service_bus_queue_trigger(arg_name="msgs", queue_name="%TRIAGE_QUEUE%", connection="ServiceBusConnection",
                              cardinality=func.Cardinality.MANY)
def triage(msgs: list[func.ServiceBusMessage]) -> None:
    _run("triage", msgs)


@bp.service_bus_queue_trigger(arg_name="msgs", queue_name="%PLAN_QUEUE%", connection="ServiceBusConnection",
                              cardinality=func.Cardinality.MANY)
def plan(msgs: list[func.ServiceBusMessage]) -> None:
    _run("plan", msgs)


@bp.service_bus_queue_trigger(arg_name="msgs", queue_name="%EXECUTE_QUEUE%", connection="ServiceBusConnection",
                              cardinality=func.Cardinality.MANY)
def execute(msgs: list[func.ServiceBusMessage]) -> None:
    _run("execute", msgs)


@bp.service_bus_queue_trigger(arg_name="msgs", queue_name="%VERIFY_QUEUE%", connection="ServiceBusConnection",
                              cardinality=func.Cardinality.MANY)
def verify(msgs: list[func.ServiceBusMessage]) -> None:
    _run("verify", msgs)


@bp.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def sweep(timer: func.TimerRequest) -> None:
    """Every few minutes: re-send work a lost message would otherwise strand; escalate unanswered requests. Skipped
    (logged) while a setting holds an unresolved Key Vault reference: the next run after the restart catches up."""
    try:
        svc = services()
    except Unavailable as exc:
        if not exc.extra.get("unresolved"):
            raise
        log.warning("sweep skipped: %s", exc.detail)
        return
    sweeps.run(svc, f"sweep-{uuid.uuid4()}")
