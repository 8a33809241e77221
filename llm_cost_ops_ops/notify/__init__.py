"""Notifications: run failures and rollout alerts as a generic JSON webhook or a Slack message.

Plain Python (no Dagster). Messages are redacted before they are built: no secret value, no
credential in a URL, no token reaches a message.
"""
