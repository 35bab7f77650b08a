"""Local stand-ins for the Power Automate child flows: signed HTTP endpoints over an in-memory system of record."""
from .core import Sandbox, load_catalog
from .flows import READ_ACTION

__all__ = ["READ_ACTION", "Sandbox", "load_catalog"]
