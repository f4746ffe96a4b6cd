"""The HTTP server inside `run`: health, metrics, the admin API and the dashboard.

Handlers call the engine services (client, control, dlq, stats); they never
issue queue commands of their own.
"""
