"""The four agent stages, each fed by its Service Bus queue (queue names from app settings)."""
import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("closedloop.stages")


def _run(stage: str, msg: func.ServiceBusMessage) -> None:
    from ..runtime import services
    from ..services.pipeline import handle

    handle(services(), stage, msg.get_body(), getattr(msg, "delivery_count", None) or 1)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%TRIAGE_QUEUE%", connection="ServiceBusConnection")
def triage(msg: func.ServiceBusMessage) -> None:
    _run("triage", msg)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%PLAN_QUEUE%", connection="ServiceBusConnection")
def plan(msg: func.ServiceBusMessage) -> None:
    _run("plan", msg)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%EXECUTE_QUEUE%", connection="ServiceBusConnection")
def execute(msg: func.ServiceBusMessage) -> None:
    _run("execute", msg)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%VERIFY_QUEUE%", connection="ServiceBusConnection")
def verify(msg: func.ServiceBusMessage) -> None:
    _run("verify", msg)


@bp.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False, use_monitor=True)
def sweep(timer: func.TimerRequest) -> None:
    """Every few minutes: re-send work a lost message would otherwise strand."""
    import uuid

    from ..runtime import services
    from ..services.sweep import reconcile

    reconcile(services(), f"sweep-{uuid.uuid4()}")
