"""The services the Functions host's entry points use: built once from the environment on first call (not at
import: cold start stays cheap), or installed by the local host (devhost/boot.py). Composition lives in
shared/bootstrap.py; its loaders are re-exported here for the modules and tests that name them."""
from __future__ import annotations

import threading

from .bootstrap import REPO_CATALOG, SystemClock, load_catalog, load_policy, tune_gc
from .ports import Services

__all__ = ["REPO_CATALOG", "SystemClock", "install", "load_catalog", "load_policy", "reset", "services", "tune_gc"]

_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The process's services: the installed ones, else built from the environment on first call."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                from .bootstrap import bootstrap
                from .settings import Settings
                _services = bootstrap(Settings.from_env())
    return _services


def install(replacement: Services) -> Services | None:
    """Serve `replacement` from now on (the local host's own services); returns those it replaced."""
    return reset(replacement)


def reset(replacement: Services | None = None) -> Services | None:
    """Drop (or replace) the services; the next `services()` builds afresh. Returns those it replaced."""
    global _services
    with _lock:
        previous, _services = _services, replacement
    return previous
