"""The scopes an API key may carry, in a module that imports nothing, so the command line can name them in its
help without loading the settings (pydantic) or the grades (pandas)."""

#: The scopes an API key may carry: scoring requests, ingestion from a CRM, reading stored leads and models,
#: managing webhook subscriptions.
SCOPES: tuple[str, ...] = ("score", "ingest", "read", "webhooks")
