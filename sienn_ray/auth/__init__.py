"""Safe to share: API keys, principals, rate limits, quotas, browser rules and the audit trail.

Plain Python (no Ray): the HTTP middleware (``api/security.py``), the CLI and the
registry use these; ``api/rate_limit_store.py`` is the Ray actor that shares
rate-limit counters between API replicas.
"""
