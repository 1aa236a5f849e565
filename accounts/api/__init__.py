"""The REST API's accounts endpoints, by area (only productstudio/urls.py imports them):
``credits`` (the balance and the ledger) and ``webhooks`` (endpoints, deliveries, secrets).
"""
