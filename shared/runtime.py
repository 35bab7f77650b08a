"""The services the Functions host's entry points use: built once from the environment on first call (not at
import: cold start stays cheap), or installed by the local host (devhost/boot.py). Composition lives in
shared/bootstrap.py; its loaders are re-exported here for the modules and tests that name them."""
from __future__ import annotations

import threading

from .bootstrap import REPO_CATALOG, SystemClock, load_catalog, load_policy, tune_gc
from .ports import Services
from .settings import Settings

__all__ = ["REPO_CATALOG", "SystemClock", "install", "load_catalog", "load_policy", "reset", "services", "settings",
           "tune_gc"]

_lock = threading.Lock()
_services: Services | None = None
_settings: Settings | None = None  # the environment's, read once: what services() builds from


def settings() -> Settings:
    """The settings the process's services are (or will be) built from, without building them: the installed
    services' own (the local host's), else a snapshot of the environment taken once. Never raises for a value."""
    global _settings
    installed = _services
    if installed is not None:
        return installed.settings
    if _settings is None:
        with _lock:
            if _settings is None:
                _settings = Settings.from_env()
    return _settings


def services() -> Services:
    """The process's services: the installed ones, else built from the environment on first call."""
    global _services, _settings
    if _services is None:
        with _lock:
            if _services is None:
                from .bootstrap import bootstrap
                _settings = _settings or Settings.from_env()
                _services = bootstrap(_settings)
    return _services


def install(replacement: Services) -> Services | None:
    """Serve `replacement` from now on (the local host's own services); returns those it replaced."""
    return reset(replacement)


def reset(replacement: Services | None = None) -> Services | None:
    """Drop (or replace) the services; the next `services()` builds afresh. Returns those it replaced."""
    global _services, _settings
    with _lock:
        previous, _services, _settings = _services, replacement, None
    return previous
