"""The memory backend (tests and the demo only)."""
