"""closedloop: process-mining findings turned into verified actions.

Kept import-free on purpose: `function_app` imports this package at cold start.
"""
