"""The four agent stages, each fed by its Service Bus queue (queue names from app settings)."""
import logging
import uuid
from typing import TYPE_CHECKING

import azure.functions as func

from .edge import lazy, services

if TYPE_CHECKING:
    from ..services import runner
    from ..services import sweep as sweeps
else:
    runner, sweeps = lazy("shared.services.runner"), lazy("shared.services.sweep")

bp = func.Blueprint()
log = logging.getLogger("closedloop.stages")


def _run(stage: str, msgs: list[func.ServiceBusMessage]) -> None:
    # Batches (cardinality many): the runner gathers reads, writes and flow calls across messages.
    runner.run(services(), stage, [(m.get_body(), getattr(m, "delivery_count", None) or 1) for m in msgs])


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
    """Every few minutes: re-send work a lost message would otherwise strand; escalate unanswered requests."""
    sweeps.run(services(), f"sweep-{uuid.uuid4()}")
