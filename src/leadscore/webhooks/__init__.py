"""Alerts and write-back over webhooks: subscriptions, signed payloads, a durable outbox delivered at least once.

- :mod:`~leadscore.webhooks.signing`: HMAC-SHA256 signatures with a timestamp; ``verify`` for receivers;
- :mod:`~leadscore.webhooks.targets`: the SSRF guard (public addresses only, unless the operator allows);
- :mod:`~leadscore.webhooks.subscriptions`: checking and creating subscriptions (the secret shown once);
- :mod:`~leadscore.webhooks.delivery`: the worker (retries with backoff, order per lead, dead letters);
- :mod:`~leadscore.webhooks.producers`: goal behind, model promoted, drift detected;
- :mod:`~leadscore.webhooks.service`: the worker configured by the settings, with its periodic jobs.

The outbox itself (enqueue in the caller's transaction, claim, mark) is :mod:`leadscore.store.outbox`; a lead's
events are enqueued by the score keeper's write (:mod:`leadscore.store.lead_events`).
"""
