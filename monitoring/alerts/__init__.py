"""Alerts: department rules evaluated periodically, deduplicated alerts, notifications and signed webhooks.

models (tables), sources (what each kind of rule watches), services (every state change and the
periodic passes), selectors (reads through the policy), webhooks (URL checks and signing),
views, forms, api, metrics and the top bar's unread count (context_processors).
"""
