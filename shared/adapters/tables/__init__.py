"""The tables backend."""
